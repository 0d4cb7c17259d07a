"""Optimistic units on PostgreSQL (storage/optimistic.py): a unit that lost the race to another
unit of the same learner writes nothing and runs again; one that must see its own writes, or
leaves the fast path, locks the learner first."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from bot.tutor.events import Who
from storage.optimistic import Conflict
from storage.repository import SqlStore

pytestmark = pytest.mark.postgres

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
WHO = Who("tg:42", chat_id=42, display_name="Ada")
ANSWER = dict(question_id="q1", lesson_id="l1", choice="0", correct=True, at=NOW)


async def learner_id(store: SqlStore) -> int:
    async with store.unit() as repo:
        return (await repo.learner(WHO, NOW)).id


async def raw_connection(store: SqlStore) -> asyncpg.Connection:
    url = make_url(store.engine.url).set(drivername="postgresql")
    return await asyncpg.connect(url.render_as_string(hide_password=False))


@pytest.mark.parametrize("first_changes", ["a column", "only a row of its own"])
async def test_a_unit_that_lost_the_race_writes_nothing(postgres_store, first_changes):
    store = postgres_store
    learner = await learner_id(store)
    with pytest.raises(Conflict):
        async with store.unit(optimistic=True) as late:
            row = await late.learner(WHO, NOW)
            await late.record_answer(row.id, token="late", **ANSWER)
            row.item_index = 5
            async with store.unit(optimistic=True) as early:
                first = await early.learner(WHO, NOW)
                if first_changes == "a column":
                    first.item_index = 1
                else:  # the learner's row changes version all the same
                    await early.record_answer(first.id, token="early", **ANSWER)
    async with store.unit() as repo:
        assert (await repo.learner(WHO, NOW)).item_index == (
            1 if first_changes == "a column" else 0
        )
        assert not await repo.answered(learner, "late")


async def test_a_unit_that_reads_what_it_wrote_locks_the_learner_first(postgres_store):
    store = postgres_store
    learner = await learner_id(store)
    other = await raw_connection(store)
    try:
        async with store.unit(optimistic=True) as repo:
            await repo.learner(WHO, NOW)
            await repo.record_answer(learner, token="t1", **ANSWER)
            facts = await repo.answers(learner)  # must see the answer: it is written first
            assert [f.question_id for f in facts] == ["q1"]
            with pytest.raises(asyncpg.LockNotAvailableError):
                async with other.transaction():
                    await other.execute(
                        "SELECT 1 FROM learners WHERE id = $1 FOR UPDATE NOWAIT", learner
                    )
        assert await other.fetchval("SELECT count(*) FROM answers") == 1
    finally:
        await other.close()


async def test_a_unit_whose_learner_moved_before_it_locked_writes_nothing(postgres_store):
    store = postgres_store
    learner = await learner_id(store)
    with pytest.raises(Conflict):
        async with store.unit(optimistic=True) as repo:
            await repo.learner(WHO, NOW)
            await repo.record_answer(learner, token="t1", **ANSWER)
            async with store.unit() as meanwhile:
                (await meanwhile.learner(WHO, NOW)).streak_days = 3
            await repo.answers(learner)
    async with store.unit() as repo:
        assert not await repo.answered(learner, "t1")
        assert (await repo.learner(WHO, NOW)).streak_days == 3


async def test_a_statement_through_sqlalchemy_runs_in_the_locked_unit(postgres_store):
    """set_pause goes through SQLAlchemy: the unit locks, and all of it commits together."""
    store = postgres_store
    learner = await learner_id(store)
    async with store.unit(optimistic=True) as repo:
        row = await repo.learner(WHO, NOW)
        await repo.record_answer(learner, token="t1", **ANSWER)
        await repo.set_pause(learner, NOW.date(), NOW.date())
        row.streak_days = 4
    async with store.unit() as repo:
        assert await repo.answered(learner, "t1")
        assert (await repo.streak_history(learner))[1] == [(NOW.date(), NOW.date())]
        assert (await repo.learner(WHO, NOW)).streak_days == 4


async def test_a_failed_optimistic_unit_writes_nothing(postgres_store):
    store = postgres_store
    learner = await learner_id(store)
    with pytest.raises(RuntimeError):
        async with store.unit(optimistic=True) as repo:
            (await repo.learner(WHO, NOW)).streak_days = 9
            await repo.record_answer(learner, token="t1", **ANSWER)
            raise RuntimeError("boom")
    async with store.unit() as repo:
        assert not await repo.answered(learner, "t1")
        assert (await repo.learner(WHO, NOW)).streak_days == 0


async def test_run_runs_a_unit_again_after_a_conflict(postgres_store):
    store = postgres_store
    await learner_id(store)
    seen: list[int] = []

    async def work(repo) -> int:
        learner = await repo.learner(WHO, NOW)
        seen.append(learner.item_index)
        if len(seen) == 1:  # another update of the same learner commits meanwhile
            async with store.unit() as other:
                (await other.learner(WHO, NOW)).item_index += 10
        learner.item_index += 1
        return learner.item_index

    assert await store.run(work) == 11
    assert seen == [0, 10]


async def test_run_ends_in_a_locked_unit_however_often_it_loses(postgres_store):
    """Another process changes the learner during every try it can: the optimistic tries all
    conflict, and the last, locked, try holds the row so that nothing can."""
    store = postgres_store
    await learner_id(store)
    meddler = await raw_connection(store)
    tries: list[bool] = []

    async def work(repo) -> None:
        learner = await repo.learner(WHO, NOW)
        try:
            async with meddler.transaction():
                await meddler.execute(
                    "SELECT 1 FROM learners WHERE external_id = $1 FOR UPDATE NOWAIT",
                    WHO.external_id,
                )
                await meddler.execute(
                    "UPDATE learners SET item_index = item_index + 1 WHERE external_id = $1",
                    WHO.external_id,
                )
            tries.append(True)
        except asyncpg.LockNotAvailableError:
            tries.append(False)
        learner.streak_days = 7

    try:
        await store.run(work, attempts=3)
    finally:
        await meddler.close()
    assert tries == [True, True, False]
    async with store.unit() as repo:
        learner = await repo.learner(WHO, NOW)
        assert (learner.streak_days, learner.item_index) == (7, 2)
