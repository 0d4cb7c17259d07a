"""SQLite on the event loop's own thread, behind aiosqlite's API.

aiosqlite runs every sqlite3 call on a worker thread: each cursor, execute, fetch and close is a
queue hand-off there and a wake-up of the loop on the way back. A tutor update is one short
transaction of a handful of indexed statements, each done by SQLite in microseconds, so those
hand-offs were most of its database cost: `bench/interactive.py` measured about 6 ms of CPU per
update through aiosqlite's thread and about 3 ms inline (docs/benchmarks.md).

So on SQLite we keep SQLAlchemy's `sqlite+aiosqlite` dialect and aiosqlite's classes, and give
the engine (through `create_async_engine(async_creator=...)`) a connection whose calls run at once
instead of on the thread. What that trades away: a statement blocks the event loop while SQLite
works (in the bot, the WAL checkpoint, the one slow step, runs on a worker thread:
`storage.checkpoints`). Within the process that never means waiting for a lock, since every
transaction queues for the single pooled connection (`storage.db`); another process's write
transaction (a CLI command) can make our `BEGIN IMMEDIATE` wait in SQLite's busy handler, with
the loop, for as long as that transaction lasts. Deployments with several processes or heavy
trainer traffic use PostgreSQL, which this module does not touch.

It overrides aiosqlite's private `_execute`/`_connect`, so `pyproject.toml` pins aiosqlite's
minor version and `tests/test_storage.py` checks that no worker thread is started.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from typing import Any

import aiosqlite


class InlineConnection(aiosqlite.Connection):
    """An aiosqlite connection whose calls run on the calling (event loop) thread."""

    def __init__(self, connector: Callable[[], sqlite3.Connection]):
        super().__init__(connector, iter_chunk_size=64)

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self._connection is None:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)

    async def _connect(self) -> InlineConnection:
        if self._connection is None:
            self._connection = self._connector()
        return self

    def __await__(self):
        return self._connect().__await__()

    @property
    def sqlite(self) -> sqlite3.Connection:
        """The sqlite3 connection itself (`storage.direct` runs statements on it)."""
        return self._conn

    def begin_immediate(self) -> None:
        """Start a transaction holding SQLite's write lock (called from SQLAlchemy's "begin"),
        unless `storage.direct` has already started the unit's."""
        if not self._conn.in_transaction:
            self._conn.execute("BEGIN IMMEDIATE")

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        """Close at once (SQLAlchemy calls this to terminate a connection)."""
        self._running = False
        connection, self._connection = self._connection, None
        if connection is not None:
            # aiosqlite's __del__ calls this for a connection nobody closed, on whichever
            # thread the garbage collector runs; sqlite3 refuses a close from another thread
            # and closes the connection itself when it is freed.
            with contextlib.suppress(sqlite3.ProgrammingError):
                connection.close()


def inline_creator(database: str) -> Callable[[], Any]:
    """An `async_creator` for `create_async_engine`: a new inline connection to `database`.

    `isolation_level=None` hands transaction control to us (`storage.db` emits `BEGIN
    IMMEDIATE`), set here because aiosqlite's own setter goes through its worker thread.
    """

    async def create() -> InlineConnection:
        # uri=True only changes names that start with "file:" (SQLite's rule).
        return await InlineConnection(
            lambda: sqlite3.connect(database, isolation_level=None, uri=True)
        )

    return create
