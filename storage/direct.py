"""The statements an update runs, executed straight on the database driver.

Why: a button press is one short transaction of 2 to 10 indexed statements. Through SQLAlchemy's
async engine each statement costs about 40 µs of CPU on the event loop (a greenlet hand-off, the
execution context, the result object); sqlite3 itself runs one in about 4 µs. The tutor's
database work per press was about a fifth of its CPU in `bench/interactive.py` (docs/benchmarks.md).

What SQLAlchemy still does: it writes the SQL (the statements stay the constructs in
`storage.repository`, compiled here once per shape), it converts values both ways with the
dialect's own type processors (dates and datetimes as SQLite stores them, JSON, booleans), and it
owns the connection, its pool and the unit's end. Statements this module cannot run (an
expanding `IN`, anything built per call) go through SQLAlchemy on the same connection, in the same
transaction: `storage.db` begins it only when it is not already open.

Two drivers: SQLite's inline connection (`storage.inline_sqlite`), synchronous on the loop's
thread, and asyncpg for PostgreSQL (about 160 µs of the bot's CPU per statement through
SQLAlchemy, about 80 µs straight on asyncpg, besides the round trip itself).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement

from storage.inline_sqlite import InlineConnection

Processor = Callable[[Any], Any] | None


class Compiled:
    """One statement, compiled for one dialect and one set of value keys: its SQL, the order of
    its parameters, and the type processors for each parameter and each result column."""

    __slots__ = ("binds", "fixed", "names", "results", "sql")

    def __init__(self, statement: Any, dialect: Dialect, keys: tuple[str, ...] | None):
        compiled = statement.compile(dialect=dialect, column_keys=list(keys) if keys else None)
        if any(bind.expanding for bind in compiled.binds.values()):
            raise ValueError("an expanding IN needs SQLAlchemy's execution")
        self.sql = compiled.string
        self.names = tuple(compiled.positiontup or ())
        bound = [compiled.binds[name] for name in self.names]
        self.fixed = {n: b.value for n, b in zip(self.names, bound, strict=True) if not b.required}
        """Values written into the statement itself, such as `literal(False)`."""
        self.binds: tuple[Processor, ...] = tuple(
            b.type.dialect_impl(dialect).bind_processor(dialect) for b in bound
        )
        columns = getattr(statement, "selected_columns", ())
        self.results: tuple[Processor, ...] = tuple(
            c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns
        )

    def args(self, params: Mapping[str, Any]) -> list[Any]:
        values = []
        for name, process in zip(self.names, self.binds, strict=True):
            value = params[name] if name in params else self.fixed[name]
            values.append(value if process is None or value is None else process(value))
        return values

    def row(self, raw: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(
            value if process is None or value is None else process(value)
            for value, process in zip(raw, self.results, strict=True)
        )


@lru_cache(maxsize=512)
def compiled(statement: ClauseElement, dialect: Dialect, keys: tuple[str, ...] | None) -> Compiled:
    """Statements hash by identity: the repository's are module constants, compiled once."""
    return Compiled(statement, dialect, keys)


class DirectSqlite:
    """Runs statements on the inline connection's sqlite3 connection inside the unit's
    transaction, which the first statement opens with SQLite's write lock, as SQLAlchemy's
    begin does (`InlineConnection.begin_immediate`, one home for both)."""

    def __init__(self, inline: InlineConnection, dialect: Dialect):
        self.inline = inline
        self.connection = inline.sqlite
        self.dialect = dialect

    def _run(self, statement: Any, params: Mapping[str, Any], keys: tuple[str, ...] | None):
        ready = compiled(statement, self.dialect, keys)
        self.inline.begin_immediate()
        return ready, self.connection.execute(ready.sql, ready.args(params))

    def rows(self, statement: Any, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        ready, cursor = self._run(statement, params, None)
        return [ready.row(raw) for raw in cursor.fetchall()]

    def write(self, statement: Any, values: Mapping[str, Any]) -> None:
        """An INSERT or UPDATE whose column values (and bound parameters) are `values`."""
        self._run(statement, values, tuple(values))

    def commit(self) -> None:
        self.connection.commit()


class DirectPostgres:
    """Runs statements on one asyncpg connection: an optimistic unit's without a transaction
    (`storage.optimistic`), a locked unit's inside the transaction SQLAlchemy's asyncpg adapter
    started with the unit's first statement (the learner's row, read `FOR UPDATE`). Until that
    transaction is open, a locked unit goes through SQLAlchemy (`in_transaction`); the commit,
    or the pool's rollback after an error, stays SQLAlchemy's."""

    def __init__(self, connection: Any, dialect: Dialect, sqlalchemy: Any):
        self.connection = connection
        self.dialect = dialect
        self.sqlalchemy = sqlalchemy
        """The unit's SQLAlchemy connection on the same driver connection."""

    def in_transaction(self) -> bool:
        return self.connection.is_in_transaction()

    async def rows(self, statement: Any, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        ready = compiled(statement, self.dialect, None)
        try:
            records = await self.connection.fetch(ready.sql, *ready.args(params))
        except Exception:
            await self._if_lost()
            raise
        return [ready.row(record) for record in records]

    async def write(self, statement: Any, values: Mapping[str, Any]) -> None:
        ready = compiled(statement, self.dialect, tuple(values))
        try:
            await self.connection.execute(ready.sql, *ready.args(values))
        except Exception:
            await self._if_lost()
            raise

    async def _if_lost(self) -> None:
        """When the server is gone, SQLAlchemy drops the pool's connections as it finds the
        first one lost, but it sees only what goes through it: a lost connection is shown to it
        by a statement of its own, which fails the same way (`storage.db`)."""
        if self.connection.is_closed():
            await self.sqlalchemy.exec_driver_sql("SELECT 1")
