"""Engine set-up and migrations: SQLite by default, PostgreSQL when `DATABASE_URL` says so.

SQLite is tuned for a bot's many small writes from concurrent tasks (research §4.2): WAL so
readers never wait for the writer, a busy timeout, foreign keys on, and every transaction started
with `BEGIN IMMEDIATE` so a read-then-write transaction takes the write lock up front instead of
failing later with "database is locked". Within one process, transactions queue for a single
pooled connection (an asyncio wait), so the busy handler only ever arbitrates between
processes. That connection runs on the event loop's own thread (`storage.inline_sqlite` says why
and what it costs). Alembic migrations run at start-up on the same connection.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

from storage.inline_sqlite import InlineConnection, inline_creator

MIGRATIONS = Path(__file__).with_name("migrations")
SQLITE_BUSY_TIMEOUT_MS = 15_000


def normalise_url(url: str) -> str:
    """Accept plain `postgresql://` and `sqlite:///` URLs and pick the async drivers."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    elif parsed.drivername == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    return parsed.render_as_string(hide_password=False)


def create_engine(url: str, *, manual_checkpoints: bool = False, **kwargs) -> AsyncEngine:
    """`manual_checkpoints`: on SQLite, no automatic WAL checkpoint on our connection; the caller
    runs a `storage.checkpoints.WalCheckpointer` instead (that module says why)."""
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        # One connection: SQLite has one writer anyway, and waiting for the pool is an asyncio
        # wait, while waiting for SQLite's lock is its busy handler's sleep (up to 100 ms a try).
        kwargs.setdefault("poolclass", AsyncAdaptedQueuePool)
        kwargs.setdefault("pool_size", 1)
        kwargs.setdefault("max_overflow", 0)
        kwargs.setdefault("pool_timeout", 60)
        kwargs.setdefault("async_creator", inline_creator(parsed.database or ":memory:"))
        engine = create_async_engine(url, **kwargs)
        _tune_sqlite(engine, manual_checkpoints)
        return engine
    # Enough pooled connections for a busy minute: past `pool_size`, SQLAlchemy opens overflow
    # connections and closes them again on return, and each new one pays the connect and every
    # statement's prepare once more (about a fifth of the CPU per update in bench/interactive.py
    # with the default of 5). Two instances keep 40 of PostgreSQL's default 100 connections.
    kwargs.setdefault("pool_size", 20)
    # No pre-ping: it is one more round trip on every update. A connection that died with the
    # server fails its first statement instead; SQLAlchemy then discards the whole pool, the
    # update is not acknowledged and Telegram delivers it again (tests/faults).
    return create_async_engine(url, **kwargs)


def sqlite_database(url: str) -> str | None:
    """The SQLite file (or URI) a database URL names; None for another database."""
    parsed = make_url(url)
    return (parsed.database or ":memory:") if parsed.get_backend_name() == "sqlite" else None


def _tune_sqlite(engine: AsyncEngine, manual_checkpoints: bool) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        # The sqlite3 module's transaction control is off (`inline_creator`); we emit BEGIN.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        if manual_checkpoints:
            cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        driver = conn.connection.driver_connection
        if isinstance(driver, InlineConnection):
            driver.begin_immediate()  # straight to sqlite3: a full statement execution cost more
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def _alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema to `revision` (Alembic, on one of the engine's connections)."""
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: command.upgrade(_alembic_config(sync), revision))


async def current_revision(engine: AsyncEngine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    async with engine.connect() as conn:
        return await conn.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )
