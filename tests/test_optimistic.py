"""Optimistic units on PostgreSQL (storage/optimistic.py): a unit that lost the race to another
unit of the same learner writes nothing and runs again; one that must see its own writes, or
leaves the fast path, locks the learner first."""

from __future__ import annotations

import asyncio
import json
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


async def locked(other: asyncpg.Connection, learner: int) -> bool:
    try:
        async with other.transaction():
            await other.execute("SELECT 1 FROM learners WHERE id = $1 FOR UPDATE NOWAIT", learner)
    except asyncpg.LockNotAvailableError:
        return True
    return False


async def test_a_unit_that_reads_what_it_wrote_locks_the_learner_first(postgres_store):
    store = postgres_store
    learner = await learner_id(store)
    other = await raw_connection(store)
    try:
        async with store.unit(optimistic=True) as repo:
            await repo.learner(WHO, NOW)
            await repo.record_answer(learner, token="t1", **ANSWER)
            assert not await locked(other, learner)
            assert await repo.answered(learner, "t1")  # it must see the answer: written first
            assert await locked(other, learner)
        assert await other.fetchval("SELECT count(*) FROM answers") == 1
    finally:
        await other.close()


async def test_reads_that_list_what_the_unit_holds_back_add_it(postgres_store):
    """A lesson's end reads the answers, days and lessons it has just added: the unit adds
    what it holds to what it reads, and stays unlocked."""
    store = postgres_store
    learner = await learner_id(store)
    other = await raw_connection(store)
    later = NOW.replace(hour=10)
    try:
        async with store.unit() as repo:
            await repo.record_answer(learner, token="t0", **ANSWER | {"question_id": "q0"})
            await repo.add_practice_day(learner, NOW.date())
        async with store.unit(optimistic=True) as repo:
            await repo.learner(WHO, later)
            await repo.record_answer(learner, token="t1", **ANSWER | {"at": later})
            await repo.complete_lesson(learner, "l1", "c", later)
            await repo.add_practice_day(learner, NOW.date())  # already there: not twice
            await repo.add_practice_day(learner, later.date().replace(day=3))
            assert [f.question_id for f in await repo.answers(learner)] == ["q0", "q1"]
            assert [f.question_id for f in await repo.answers(learner, ["q1", "q9"])] == ["q1"]
            assert await repo.completed_lessons(learner) == {"l1"}
            days = [NOW.date(), NOW.date().replace(day=3)]
            assert await repo.practice_days(learner) == days
            assert (await repo.streak_history(learner))[0] == days
            record = await repo.history(learner, ["q1", "q0"])
            assert [f.question_id for f in record.answers] == ["q0", "q1"]
            assert (record.days, record.completed) == (days, {"l1"})
            assert not await locked(other, learner)
        async with store.unit() as repo:
            assert [f.question_id for f in await repo.answers(learner)] == ["q0", "q1"]
            assert await repo.completed_lessons(learner) == {"l1"}
            assert await repo.practice_days(learner) == days
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

    counted: list[int] = []
    store.on_conflict = lambda: counted.append(1)
    assert await store.run(work) == 11
    assert seen == [0, 10]
    assert counted == [1]


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


async def test_a_learner_changed_behind_the_cache_is_read_again(postgres_store):
    """The process keeps the rows it wrote last; another process's change is caught by the
    version check: a writing unit conflicts once and runs again on the fresh row, and a unit
    that only reads checks the version and does the same."""
    store = postgres_store
    await learner_id(store)

    async def advance(repo) -> int:
        learner = await repo.learner(WHO, NOW)
        seen.append(learner.item_index)
        learner.item_index += 1
        return learner.item_index

    async def look(repo) -> int:
        learner = await repo.learner(WHO, NOW)
        seen.append(learner.item_index)
        return learner.item_index

    seen: list[int] = []
    assert await store.run(advance) == 1  # read from the database, then kept
    assert await store.run(advance) == 2  # from the cache
    assert seen == [0, 1]
    other = await raw_connection(store)
    try:
        await other.execute("UPDATE learners SET item_index = 10")
        seen.clear()
        assert await store.run(look) == 10
        assert seen == [2, 10]
        await other.execute("UPDATE learners SET item_index = 20")
        seen.clear()
        assert await store.run(advance) == 21
        assert seen == [10, 20]  # the cache had the row the last read found
    finally:
        await other.close()


def test_the_learner_cache_keeps_the_most_recently_used_rows():
    from storage.optimistic import LearnerCache

    cache = LearnerCache(size=2, cards=2)
    cache.put("a", ("a",), 1)
    cache.put("b", ("b",), 1)
    assert cache.get("a") == (("a",), 1, {})  # now "b" is the least recently used
    cache.put("c", ("c",), 1, {"q1": None, "q2": {"due": "x"}, "q3": None})
    assert cache.get("b") is None and cache.get("a")
    assert cache.get("c") == (("c",), 1, {"q2": {"due": "x"}, "q3": None})  # the newest cards
    cache.forget("a")
    assert cache.get("a") is None


class TwoInstances:
    """Two bot instances on one database, each with its own learner cache: a learner's updates
    go to one and then the other, and every answer and Continue is delivered to both at once
    (a retried webhook, say). Toggles are not: ticking an option twice unticks it, locks or not."""

    def __init__(self, *tutors):
        self.tutors = tutors
        self.turn = 0

    async def handle(self, who, event):
        data = getattr(event, "data", "")
        if data.startswith(("a:", "go:")):
            results = await asyncio.gather(*(t.handle(who, event) for t in self.tutors))
            moved_on = [r for r in results if any(getattr(a, "buttons", None) for a in r)]
            assert len(moved_on) == 1, results  # one handled it, the other found it stale
            return moved_on[0]
        self.turn += 1
        return await self.tutors[self.turn % 2].handle(who, event)

    async def bind_poll(self, who, token, poll_id):
        await self.tutors[0].bind_poll(who, token, poll_id)


async def test_two_instances_and_double_deliveries_keep_every_learner_consistent(
    pg_cluster, catalog, clock
):
    from bot.tutor.engine import Tutor
    from storage.db import create_engine, upgrade
    from tests.chat import Chat, take_lesson
    from tests.conftest import _create_database

    url = await _create_database(pg_cluster)
    engines = [create_engine(url), create_engine(url)]
    await upgrade(engines[0])
    lessons = catalog.courses["mooc-art"].lessons[:2]
    try:
        both = TwoInstances(*(Tutor(catalog, SqlStore(e), clock=clock) for e in engines))

        async def learner(n: int) -> Chat:
            chat = Chat(both, name=f"learner{n}")  # type: ignore[arg-type]
            await chat.onboard()
            await chat.command("today")
            for lesson in lessons:
                await take_lesson(chat, lesson)
                assert f"Lesson complete: {lesson.title}" in chat.said
                await chat.press("next lesson")
            return chat

        chats = await asyncio.gather(*(learner(n) for n in range(4)))
        conn = await raw_connection(SqlStore(engines[0]))
        try:
            questions = sum(len(lesson.questions) for lesson in lessons)
            for chat in chats:
                counts = await conn.fetchrow(
                    "SELECT (SELECT count(*) FROM answers a WHERE a.learner_id = l.id),"
                    " (SELECT count(*) FROM lesson_completions c WHERE c.learner_id = l.id)"
                    " FROM learners l WHERE external_id = $1",
                    chat.who.external_id,
                )
                assert tuple(counts) == (questions, 2)
        finally:
            await conn.close()
    finally:
        for engine in engines:
            await engine.dispose()


async def test_a_transaction_opened_behind_an_optimistic_unit_is_an_error(postgres_store):
    """Its one write would run inside that transaction and be rolled back with it: the unit
    fails loudly instead (every statement through SQLAlchemy locks the unit first)."""
    from sqlalchemy import text

    await learner_id(postgres_store)
    with pytest.raises(RuntimeError, match="opened a transaction"):
        async with postgres_store.unit(optimistic=True) as repo:
            (await repo.learner(WHO, NOW)).streak_days = 5
            await repo._sa.execute(text("SELECT 1"))  # around `_Locking`, as no code should
    async with postgres_store.unit(optimistic=True) as repo:
        assert (await repo.learner(WHO, NOW)).streak_days == 0
        await repo.conn.exec_driver_sql("SELECT 1")  # through it: the unit locks
        assert repo.postgres.in_transaction()


async def test_a_flood_of_one_learners_updates_at_once_is_answered_and_stored_once(
    postgres_store, catalog, clock
):
    """50 updates of one learner at once (a double tap times fifty, commands between): each
    conflicts at most three times, then takes the lock, so every update gets its reply and the
    answer is stored once."""
    from bot.tutor.engine import Tutor
    from bot.tutor.events import Command, Press
    from tests.chat import Chat, first_answer

    tutor = Tutor(catalog, postgres_store, clock=clock)
    chat = Chat(tutor)
    answer = await first_answer(chat)
    conflicts: list[int] = []
    postgres_store.on_conflict = lambda: conflicts.append(1)
    events = [Press(answer)] * 40 + [Command("today")] * 5 + [Command("progress")] * 5
    results = await asyncio.gather(*(tutor.handle(chat.who, event) for event in events))
    assert all(results), "an update got no reply"
    assert conflicts, "the updates never met: the test did not test anything"
    other = await raw_connection(postgres_store)
    try:
        assert await other.fetchval("SELECT count(*) FROM answers") == 1
    finally:
        await other.close()


async def test_a_unit_that_wrote_through_sqlalchemy_moves_the_learners_version(postgres_store):
    """A pause is written through SQLAlchemy and changes no learner column: the unit still
    moves the learner's version, so a unit that read the learner before it conflicts."""
    store = postgres_store
    learner = await learner_id(store)
    with pytest.raises(Conflict):
        async with store.unit(optimistic=True) as late:
            (await late.learner(WHO, NOW)).item_index = 5
            async with store.unit(optimistic=True) as early:
                await early.learner(WHO, NOW)
                await early.set_pause(learner, NOW.date(), NOW.date())
    async with store.unit() as repo:
        assert (await repo.learner(WHO, NOW)).item_index == 0
        assert (await repo.streak_history(learner))[1] == [(NOW.date(), NOW.date())]


async def test_the_card_of_the_question_on_screen_comes_with_the_write_and_stays_exact(
    postgres_store,
):
    """A unit that puts a question on screen has its write read that question's review card
    too; the answer's unit takes it from the cache, with what it wrote itself on top. Another
    process's change of the card changed the learner's row as well: the answer's unit, which
    used the old card, conflicts and runs again on the stored one."""
    store = postgres_store
    learner = await learner_id(store)
    first, second = {"reps": 1}, {"reps": 2}
    seen: list[dict | None] = []

    async def show(repo) -> None:
        (await repo.learner(WHO, NOW)).item_index += 1
        repo.prefetch_review_card(learner, "q1")

    async def grade(repo) -> None:
        await repo.learner(WHO, NOW)
        card = await repo.review_card(learner, "q1")
        seen.append(card)
        after = {"reps": (card or {"reps": 0})["reps"] + 1}
        await repo.save_review_card(learner, "q1", NOW, after)
        assert await repo.review_card(learner, "q1") == after  # its own write, held back

    await store.run(show)
    assert store.learners.get(WHO.external_id).cards == {"q1": None}
    await store.run(grade)
    assert seen == [None]  # from the cache: the budget test counts no read
    assert store.learners.get(WHO.external_id).cards == {"q1": first}
    other = await raw_connection(store)
    try:
        async with other.transaction():  # another instance's answer: the card and the row
            await other.execute(
                "UPDATE review_cards SET card = $1 WHERE learner_id = $2", '{"reps": 2}', learner
            )
            await other.execute("UPDATE learners SET item_index = 7 WHERE id = $1", learner)
        seen.clear()
        await store.run(grade)
        assert seen == [first, second]  # the cached card conflicted; the stored one counted
        stored = await other.fetchval(
            "SELECT card FROM review_cards WHERE learner_id = $1", learner
        )
        assert json.loads(stored) == {"reps": 3}
    finally:
        await other.close()
    async with store.unit() as repo:
        assert await repo.review_card(learner, "q1") == {"reps": 3}
        assert (await repo.learner(WHO, NOW)).item_index == 7


async def test_postgresql_over_its_unix_socket(pg_cluster, catalog, clock):
    """On one host PostgreSQL's Unix socket is the cheaper way in (docs/deploying.md): the URL
    form the deployment guide gives works, a press included."""
    from bot.tutor.engine import Tutor
    from storage.db import create_engine, upgrade
    from tests.chat import Chat
    from tests.conftest import _create_database

    database = make_url(await _create_database(pg_cluster)).database
    url = f"postgresql://tutor@/{database}?host={pg_cluster.dir}&port={pg_cluster.port}"
    engine = create_engine(url)
    try:
        await upgrade(engine)
        chat = Chat(Tutor(catalog, SqlStore(engine), clock=clock))
        await chat.onboard()
        await chat.command("today")
        assert "📘" in chat.said  # the first lesson, read and written through the socket
        async with engine.connect() as conn:  # NULL: the server sees a Unix-socket client
            assert (await conn.exec_driver_sql("SELECT inet_client_addr()")).scalar() is None
    finally:
        await engine.dispose()


async def test_a_unit_that_locked_before_its_learner_reads_the_row_not_the_cache(postgres_store):
    """Once a unit has locked (here: a statement through SQLAlchemy), it reads and locks the
    learner's row; a cached row it could not check would write stale columns back."""
    from sqlalchemy import text

    store = postgres_store

    async def advance(repo) -> None:
        (await repo.learner(WHO, NOW)).item_index += 1

    await store.run(advance)
    await store.run(advance)  # now in the cache, at item 2
    other = await raw_connection(store)
    try:
        await other.execute("UPDATE learners SET item_index = 10")
    finally:
        await other.close()
    async with store.unit(optimistic=True) as repo:
        await repo.conn.execute(text("SELECT 1"))  # the unit locks from here
        learner = await repo.learner(WHO, NOW)
        assert learner.item_index == 10
        learner.item_index += 1
    async with store.unit() as repo:
        assert (await repo.learner(WHO, NOW)).item_index == 11
