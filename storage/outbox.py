"""The durable outbox: proactive messages as rows, claimed with leases, never lost.

`claim` takes due rows (pending and due, or "sending" rows whose lease expired because their
process died) and marks them "sending" with a fresh lease, in one statement. On PostgreSQL the
inner select uses `FOR UPDATE SKIP LOCKED`, so any number of workers can claim at once and never
get the same row; on SQLite a single sender runs (see `acquire_lock`). Results are written back in
bulk. The unique idempotency key means a row enqueued twice is one row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from storage.models import InstanceLock, Learner, OutboxMessage

FINAL = ("sent", "failed", "blocked", "cancelled")


@dataclass(frozen=True)
class OutboxRow:
    id: int
    kind: str
    learner_id: int | None
    chat_id: int
    payload: dict[str, Any] | None
    broadcast_id: int | None
    attempts: int


@dataclass(frozen=True)
class Result:
    """What happened to one claimed row."""

    id: int
    status: str  # sent | retry | failed | blocked | skipped
    error: str | None = None
    not_before: datetime | None = None
    learner_id: int | None = None


class Outbox:
    def __init__(self, engine: AsyncEngine):
        self.engine = engine
        self.sessions = async_sessionmaker(engine, expire_on_commit=False)
        self.dialect = engine.dialect.name

    def insert(self):
        return (pg_insert if self.dialect == "postgresql" else sqlite_insert)(OutboxMessage)

    async def enqueue(self, rows: Sequence[dict[str, Any]], now: datetime) -> int:
        """Add rows (kind, idempotency_key, chat_id, learner_id, payload, broadcast_id,
        not_before); rows whose key exists already are skipped. Returns how many were new."""
        if not rows:
            return 0
        values = [
            {
                "status": "pending",
                "attempts": 0,
                "created_at": now,
                "not_before": now,
                "payload": None,
                "learner_id": None,
                "broadcast_id": None,
                **r,
            }
            for r in rows
        ]
        async with self.sessions() as session, session.begin():
            return await self.insert_rows(session, values)

    async def insert_rows(self, session, values: list[dict[str, Any]]) -> int:
        """Insert complete rows, skipping existing keys; return how many were new.

        SQLite's executemany reports the rows it inserted; asyncpg's does not, so on
        PostgreSQL the new ids come back with RETURNING instead."""
        statement = self.insert().on_conflict_do_nothing(index_elements=["idempotency_key"])
        conn = await session.connection()
        if self.dialect == "sqlite":
            return max((await conn.execute(statement, values)).rowcount, 0)
        return len((await conn.execute(statement.returning(OutboxMessage.id), values)).all())

    async def claim(self, now: datetime, limit: int, lease: timedelta) -> list[OutboxRow]:
        due = or_(
            and_(OutboxMessage.status == "pending", OutboxMessage.not_before <= now),
            and_(OutboxMessage.status == "sending", OutboxMessage.lease_until < now),
        )
        inner = select(OutboxMessage.id).where(due).order_by(OutboxMessage.id).limit(limit)
        if self.dialect == "postgresql":
            inner = inner.with_for_update(skip_locked=True)
        statement = (
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(inner.scalar_subquery()))
            .values(status="sending", lease_until=now + lease, attempts=OutboxMessage.attempts + 1)
            .returning(
                OutboxMessage.id,
                OutboxMessage.kind,
                OutboxMessage.learner_id,
                OutboxMessage.chat_id,
                OutboxMessage.payload,
                OutboxMessage.broadcast_id,
                OutboxMessage.attempts,
            )
            .execution_options(synchronize_session=False)
        )
        async with self.sessions() as session, session.begin():
            rows = (await session.execute(statement)).all()
        return sorted((OutboxRow(*r) for r in rows), key=lambda r: r.id)

    async def finish(self, results: Iterable[Result], now: datetime) -> None:
        results = list(results)
        if not results:
            return
        by_status: dict[str, list[Result]] = {}
        for r in results:
            by_status.setdefault(r.status, []).append(r)
        async with self.sessions() as session, session.begin():
            if sent := by_status.get("sent"):
                await session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id.in_([r.id for r in sent]))
                    .values(status="sent", sent_at=now, lease_until=None, last_error=None)
                    .execution_options(synchronize_session=False)
                )
            for r in by_status.get("retry", []):
                await session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id == r.id)
                    .values(
                        status="pending",
                        not_before=r.not_before or now,
                        lease_until=None,
                        last_error=(r.error or "")[:300],
                    )
                    .execution_options(synchronize_session=False)
                )
            for r in by_status.get("skipped", []):
                await session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id == r.id)
                    .values(status="cancelled", lease_until=None, last_error=r.error)
                    .execution_options(synchronize_session=False)
                )
            for r in by_status.get("failed", []):
                await session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id == r.id)
                    .values(status="failed", lease_until=None, last_error=(r.error or "")[:300])
                    .execution_options(synchronize_session=False)
                )
            blocked = by_status.get("blocked", [])
            if blocked:
                await session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id.in_([r.id for r in blocked]))
                    .values(
                        status="blocked", lease_until=None, last_error="the learner blocked the bot"
                    )
                    .execution_options(synchronize_session=False)
                )
                learners = {r.learner_id for r in blocked if r.learner_id is not None}
                if learners:
                    await self._block(session, learners)

    async def _block(self, session, learner_ids: set[int]) -> None:
        """403: the learner is inactive and nothing else waits for them."""
        await session.execute(
            update(Learner)
            .where(Learner.id.in_(learner_ids))
            .values(active=False, next_nudge_at=None)
            .execution_options(synchronize_session=False)
        )
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.learner_id.in_(learner_ids), OutboxMessage.status == "pending")
            .values(status="cancelled", last_error="the learner blocked the bot")
            .execution_options(synchronize_session=False)
        )

    async def release(self, ids: Sequence[int]) -> None:
        """Give claimed rows back (shutting down before sending them)."""
        if not ids:
            return
        async with self.sessions() as session, session.begin():
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(list(ids)), OutboxMessage.status == "sending")
                .values(status="pending", lease_until=None, attempts=OutboxMessage.attempts - 1)
                .execution_options(synchronize_session=False)
            )

    async def counts(self, broadcast_id: int | None = None) -> dict[str, int]:
        query = select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
        if broadcast_id is not None:
            query = query.where(OutboxMessage.broadcast_id == broadcast_id)
        async with self.sessions() as session:
            return {status: n for status, n in (await session.execute(query)).all()}

    async def cancel(self, broadcast_id: int) -> int:
        async with self.sessions() as session, session.begin():
            result = await session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.broadcast_id == broadcast_id, OutboxMessage.status == "pending"
                )
                .values(status="cancelled", last_error="cancelled by the trainer")
                .execution_options(synchronize_session=False)
            )
            return result.rowcount or 0

    async def acquire_lock(self, name: str, holder: str, now: datetime, lease: timedelta) -> bool:
        """Take or renew the named lease; False while another holder's lease is alive."""
        insert = (pg_insert if self.dialect == "postgresql" else sqlite_insert)(InstanceLock)
        statement = insert.values(name=name, holder=holder, lease_until=now + lease)
        statement = statement.on_conflict_do_update(
            index_elements=["name"],
            set_={"holder": holder, "lease_until": now + lease},
            where=or_(InstanceLock.holder == holder, InstanceLock.lease_until < now),
        )
        async with self.sessions() as session, session.begin():
            await session.execute(statement)
            current = await session.scalar(
                select(InstanceLock.holder).where(InstanceLock.name == name)
            )
        return current == holder

    async def release_lock(self, name: str, holder: str) -> None:
        from sqlalchemy import delete

        async with self.sessions() as session, session.begin():
            await session.execute(
                delete(InstanceLock).where(InstanceLock.name == name, InstanceLock.holder == holder)
            )
