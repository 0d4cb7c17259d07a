"""The learner's data rights, from the schema itself: every table that points at `learners`
(found through its foreign keys, so a table added later is covered without a change here) is
exported by `/mydata` and erased with the learner by `/deleteme`."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Table, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.models import Base, Learner, OutboxMessage


def personal_tables() -> list[tuple[Table, list[str]]]:
    """(table, the columns that reference learners.id) for every table but learners."""
    found = []
    for table in Base.metadata.sorted_tables:
        columns = [
            fk.parent.name
            for fk in table.foreign_keys
            if fk.column.table.name == Learner.__tablename__
        ]
        if columns:
            found.append((table, columns))
    return found


def _plain(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return value


class PrivacyQueries:
    conn: AsyncConnection

    async def export_everything(self, learner_id: int) -> dict[str, Any]:
        learners = Learner.__table__
        row = (await self.conn.execute(select(learners).where(learners.c.id == learner_id))).first()
        data: dict[str, Any] = {
            "learner": {k: _plain(v) for k, v in row._mapping.items()} if row else None
        }
        for table, columns in personal_tables():
            condition = or_(*(table.c[c] == learner_id for c in columns))
            rows = await self.conn.execute(select(table).where(condition))
            data[table.name] = [{k: _plain(v) for k, v in r._mapping.items()} for r in rows]
        return data

    async def erase_everything(self, learner_id: int, chat_id: int | None) -> None:
        """Delete the learner and every row pointing at them (foreign keys cascade; we also
        delete explicitly, so nothing depends on the database enforcing them)."""
        getattr(self, "_loaded", {}).pop(learner_id, None)  # nothing may be written back
        for table, columns in reversed(personal_tables()):
            for column in columns:
                if table.c[column].nullable and table.name != OutboxMessage.__tablename__:
                    await self.conn.execute(
                        table.update().where(table.c[column] == learner_id).values({column: None})
                    )
                else:
                    await self.conn.execute(delete(table).where(table.c[column] == learner_id))
        if chat_id is not None:
            await self.conn.execute(delete(OutboxMessage).where(OutboxMessage.chat_id == chat_id))
        await self.conn.execute(delete(Learner).where(Learner.id == learner_id))
