"""Shared fixtures: the bundled catalog, a fake clock, SQLite and PostgreSQL databases."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.config import ROOT
from bot.content import Catalog, load_catalog
from bot.tutor.engine import Tutor
from storage.db import create_engine, upgrade
from storage.repository import SqlStore
from tests.pgcluster import Cluster, find_bindir

LESSONS = Path(os.environ.get("TEST_LESSONS", ROOT / "lessons"))
IN_CI = os.environ.get("CI", "").lower() == "true"


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog(LESSONS)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    bindir = find_bindir()
    if bindir is None:
        if IN_CI:
            pytest.fail("CI=true but the PostgreSQL binaries were not found")
        pytest.skip("PostgreSQL binaries not installed: PostgreSQL tests skipped (they run in CI)")
    cluster = Cluster(bindir).start()
    yield cluster
    cluster.stop()


_db_numbers = itertools.count()


async def _create_database(cluster: Cluster) -> str:
    import asyncpg

    name = f"t{os.getpid()}_{next(_db_numbers)}"
    conn = await asyncpg.connect(cluster.url().replace("+asyncpg", ""))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return cluster.url(name)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def db_url(request, tmp_path: Path) -> str:
    """A fresh, empty database of each kind."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'tutor.db'}"
    cluster = request.getfixturevalue("pg_cluster")
    return await _create_database(cluster)


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[SqlStore]:
    engine = create_engine(db_url)
    await upgrade(engine)
    yield SqlStore(engine)
    await engine.dispose()


@pytest.fixture
async def postgres_store(pg_cluster: Cluster) -> AsyncIterator[SqlStore]:
    engine = create_engine(await _create_database(pg_cluster))
    await upgrade(engine)
    yield SqlStore(engine)
    await engine.dispose()


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    engine = create_engine(f"sqlite:///{tmp_path / 'tutor.db'}")
    await upgrade(engine)
    yield SqlStore(engine)
    await engine.dispose()


@pytest.fixture
def tutor(catalog: Catalog, sqlite_store: SqlStore, clock: FakeClock) -> Tutor:
    return Tutor(catalog, sqlite_store, clock=clock)


@pytest.fixture
def run():
    """Run a coroutine from sync code (hypothesis tests)."""
    return lambda coro: asyncio.get_event_loop().run_until_complete(coro)
