"""The repository and migrations, on SQLite and on PostgreSQL (a throwaway cluster)."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select, text

from bot.tutor.engine import Tutor
from bot.tutor.events import Command, Press, Who
from bot.tutor.ports import Agenda
from storage.db import create_engine, current_revision, upgrade
from storage.direct import DirectPostgres
from storage.models import Base, LessonCompletion
from tests.chat import Chat, first_answer, take_lesson

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
WHO = Who("tg:42", chat_id=42, display_name="Ada")


async def record(repo, learner_id: int, question: str, token: str, correct: bool = True) -> None:
    """An answer to `question` in lesson l1, at NOW."""
    await repo.record_answer(
        learner_id,
        question_id=question,
        lesson_id="l1",
        token=token,
        choice="0",
        correct=correct,
        at=NOW,
    )


async def test_migrations_match_the_models(db_url):
    engine = create_engine(db_url)
    await upgrade(engine)
    assert await current_revision(engine) is not None

    def diff(conn):
        return compare_metadata(MigrationContext.configure(conn), Base.metadata)

    async with engine.connect() as conn:
        assert await conn.run_sync(diff) == []
    await upgrade(engine)  # running again is harmless
    await engine.dispose()


async def test_learner_is_created_once_and_keeps_its_chat(store):
    async with store.unit() as repo:
        first = await repo.learner(WHO, NOW)
        first.language = "it"
    async with store.unit() as repo:
        again = await repo.learner(WHO, NOW)
        assert again.id == first.id and again.language == "it" and again.chat_id == 42


@pytest.mark.parametrize("optimistic", [False, True])
async def test_answers_are_unique_per_presentation(store, optimistic):
    async with store.unit(optimistic=optimistic) as repo:
        learner = await repo.learner(WHO, NOW)
        kwargs = dict(question_id="q1", lesson_id="l1", token="tok1", choice="0", correct=True)
        await repo.record_answer(learner.id, at=NOW, **kwargs)
        await repo.record_answer(learner.id, at=NOW + timedelta(minutes=1), **kwargs)
    async with store.unit(optimistic=optimistic) as repo:
        assert await repo.answered(learner.id, "tok1")
        assert not await repo.answered(learner.id, "tok2")
        facts = await repo.answers(learner.id)
        assert [(f.question_id, f.correct, f.answered_at) for f in facts] == [("q1", True, NOW)]


@pytest.mark.parametrize("optimistic", [False, True])
async def test_lessons_days_and_polls(store, optimistic):
    async with store.unit(optimistic=optimistic) as repo:
        learner = await repo.learner(WHO, NOW)
        await repo.complete_lesson(learner.id, "l1", "c", NOW)
        await repo.complete_lesson(learner.id, "l1", "c", NOW + timedelta(days=1))
        await repo.add_practice_day(learner.id, date(2026, 3, 2))
        await repo.add_practice_day(learner.id, date(2026, 3, 2))
        await repo.add_practice_day(learner.id, date(2026, 3, 1))
        await repo.link_poll("p1", learner.id, "tok", NOW)
    async with store.unit() as repo:
        assert await repo.completed_lessons(learner.id) == {"l1"}
        assert await repo.practice_days(learner.id) == [date(2026, 3, 1), date(2026, 3, 2)]
        assert await repo.poll_token(learner.id, "p1") == "tok"
        assert await repo.poll_token(learner.id + 1, "p1") is None
    async with store.sessions() as session:  # the first completion stays
        assert (await session.scalars(select(LessonCompletion.completed_at))).all() == [NOW]


async def test_answers_to_chosen_questions_and_the_streak_history(store):
    async with store.unit() as repo:
        learner = await repo.learner(WHO, NOW)
        for n, question in enumerate(("q1", "q2", "q3")):
            await record(repo, learner.id, question, f"tok{n}", correct=n != 1)
        await repo.add_practice_day(learner.id, date(2026, 3, 2))
        await repo.add_practice_day(learner.id, date(2026, 2, 26))
        await repo.set_pause(learner.id, date(2026, 2, 27), date(2026, 3, 1))
    async with store.unit() as repo:
        chosen = await repo.answers(learner.id, {"q3", "q1"})
        assert [(f.question_id, f.correct) for f in chosen] == [("q1", True), ("q3", True)]
        assert await repo.answers(learner.id, []) == []
        assert await repo.streak_history(learner.id) == (
            [date(2026, 2, 26), date(2026, 3, 2)],
            [(date(2026, 2, 27), date(2026, 3, 1))],
        )


async def test_the_history_reads_streak_grades_and_lessons_done_at_once(store):
    """Repository.history: one read for a lesson's end, the same facts as the three reads it
    replaces; answers of one instant in the order they were stored."""
    async with store.unit() as repo:
        learner = await repo.learner(WHO, NOW)
        answers = (("q1", False), ("q2", True), ("q1", True), ("q9", True))
        for n, (question, correct) in enumerate(answers):
            await record(repo, learner.id, question, f"t{n}", correct)
        await repo.add_practice_day(learner.id, date(2026, 3, 1))
        await repo.add_practice_day(learner.id, date(2026, 2, 27))
        await repo.set_pause(learner.id, date(2026, 2, 28), date(2026, 2, 28))
        await repo.complete_lesson(learner.id, "l0", "c", NOW)
    async with store.unit() as repo:
        found = await repo.history(learner.id, {"q1", "q2"})
        assert [(f.question_id, f.correct) for f in found.answers] == [
            ("q1", False),
            ("q2", True),
            ("q1", True),
        ]
        assert found.days == [date(2026, 2, 27), date(2026, 3, 1)]
        assert found.pauses == [(date(2026, 2, 28), date(2026, 2, 28))]
        assert found.completed == {"l0"}
        assert (found.days, found.pauses) == await repo.streak_history(learner.id)
        assert found.answers == await repo.answers(learner.id, {"q1", "q2"})
        assert found.completed == await repo.completed_lessons(learner.id)


async def test_review_cards_and_boosters_round_trip(store):
    """JSON cards, aware datetimes and dates through the direct path (storage/direct.py) on both
    databases, mixed with statements SQLAlchemy runs (boosters) in the same unit."""
    async with store.unit() as repo:
        learner = await repo.learner(WHO, NOW)
        await repo.save_review_card(learner.id, "q1", NOW, {"stability": 1.5, "due": "x"})
        await repo.save_review_card(learner.id, "q2", NOW + timedelta(days=2), {"stability": 3})
        await repo.save_review_card(learner.id, "q1", NOW - timedelta(hours=1), {"stability": 2})
        await repo.add_boosters(learner.id, "c", [date(2026, 3, 1), date(2026, 3, 9)])
    async with store.unit() as repo:
        learner = await repo.learner(WHO, NOW)
        assert await repo.review_card(learner.id, "q1") == {"stability": 2}
        assert await repo.review_card(learner.id, "q3") is None
        assert await repo.due_reviews(learner.id, NOW, 10) == ["q1"]
        assert await repo.due_reviews(learner.id, NOW + timedelta(days=3), 1) == ["q1"]
        assert await repo.agenda(learner.id, NOW, date(2026, 3, 2), 10) == Agenda(
            ("c", 1), ["q1"], set()
        )
        await repo.finish_booster(learner.id, "c", 1, NOW)
        await repo.complete_lesson(learner.id, "l1", "c", NOW)
        assert (await repo.agenda(learner.id, NOW, date(2026, 3, 2), 10)).booster is None
        later = NOW + timedelta(days=3)
        assert await repo.agenda(learner.id, later, date(2026, 3, 9), 1) == Agenda(
            ("c", 2), ["q1"], {"l1"}
        )
        assert (await repo.agenda(learner.id, later, date(2026, 3, 9), 2)).due_reviews == [
            "q1",
            "q2",
        ]


def test_direct_statements_leave_an_expanding_in_to_sqlalchemy():
    """storage/direct.py compiles each statement once; an `IN` over a list it cannot bind
    positionally, so it refuses, and the repository runs that one through SQLAlchemy."""
    from sqlalchemy.dialects import sqlite

    from storage.direct import compiled
    from storage.repository import _ANSWERS_TO, _STREAK_HISTORY

    dialect = sqlite.dialect(paramstyle="qmark")
    with pytest.raises(ValueError, match="expanding"):
        compiled(_ANSWERS_TO["sqlite"], dialect, None)
    history = compiled(_STREAK_HISTORY, dialect, None)
    assert history.args({"b_learner": 7}) == [0, 7, 1, 7]  # literal(False/True) as SQLite's ints


async def test_statements_per_update_stay_within_budget(store, catalog, clock, monkeypatch):
    """Each statement is a round trip to PostgreSQL, and each round trip waits for a turn of a
    busy event loop: these counts are what an update's latency is made of (docs/benchmarks.md).
    A new statement on these paths should be a decision, not an accident. Counted where the
    driver sees them: on SQLite most run straight on sqlite3 (storage/direct.py). On PostgreSQL
    BEGIN and COMMIT are round trips too: presses run in optimistic units, without a transaction
    (storage/optimistic.py), but for a lesson's end."""
    from sqlalchemy import event

    postgres = store.engine.dialect.name == "postgresql"
    statements: list[str] = []
    transactions: list[object] = []
    direct_calls: list[str] = []  # PostgreSQL: those that bypassed SQLAlchemy (storage.direct)

    def keep(sql: str) -> None:
        if not sql.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            statements.append(sql)

    if store.engine.dialect.name == "sqlite":  # the pool's one connection
        async with store.engine.connect() as conn:
            sqlite = (await conn.get_raw_connection()).driver_connection.sqlite
        sqlite.set_trace_callback(keep)
    else:  # each statement where it goes to asyncpg: through SQLAlchemy or storage.direct
        event.listen(
            store.engine.sync_engine,
            "before_cursor_execute",
            lambda _conn, _cursor, statement, *_rest: keep(statement),
        )
        event.listen(store.engine.sync_engine, "begin", transactions.append)

        class Counted:
            def __init__(self, driver):
                self.driver = driver

            def is_in_transaction(self) -> bool:
                return self.driver.is_in_transaction()

            def is_closed(self) -> bool:
                return self.driver.is_closed()

            async def fetch(self, sql, *args):
                keep(sql)
                direct_calls.append(sql)
                return await self.driver.fetch(sql, *args)

            async def execute(self, sql, *args):
                keep(sql)
                direct_calls.append(sql)
                return await self.driver.execute(sql, *args)

        direct = DirectPostgres.__init__
        monkeypatch.setattr(
            DirectPostgres, "__init__", lambda self, driver, *a: direct(self, Counted(driver), *a)
        )
    chat = Chat(Tutor(catalog, store, clock=clock))
    await chat.onboard()
    await chat.command("today")
    seen: list[tuple[str, int, int]] = []  # (the press's kind, its statements, transactions)
    send = chat.send

    async def counted(event):
        statements.clear()
        transactions.clear()
        actions = await send(event)
        kind = event.data.split(":")[0] if isinstance(event, Press) else ""
        seen.append((kind, len(statements), len(transactions)))
        return actions

    chat.send = counted
    ends = []
    for lesson in catalog.courses["mooc-art"].lessons[:2]:
        await take_lesson(chat, lesson)
        ends.append(seen.pop()[1:])
        await chat.press("next lesson")

    def most(*kinds: str) -> int:
        return max(n for kind, n, _began in seen if kind in kinds)

    # SQLite: a card or a tick reads the learner and writes it back; a graded answer adds the
    # answer, and the review card read and written; a lesson's end adds the completion, the day
    # (once a day), one read of the streak, grades and lessons done, and the next lesson.
    # PostgreSQL: the learner comes from the process's cache, its version checked by the unit's
    # one write, which also carries the answer, the card, the completion and the day, and reads
    # the card of the question it puts on screen, for the answer to find in the cache
    # (storage/optimistic.py).
    assert most("go", "t") == (1 if postgres else 2)
    assert most("a", "ok") == (1 if postgres else 5)
    assert ends == ([(2, 0), (2, 0)] if postgres else [(8, 0), (7, 0)])
    assert most("today") == (2 if postgres else 3)  # + the agenda: booster, reviews, lessons done
    assert not any(began for *_press, began in seen)
    if postgres:
        assert any("INSERT INTO answers" in sql for sql in direct_calls)


async def test_a_failed_unit_rolls_back(store):
    try:
        async with store.unit() as repo:
            learner = await repo.learner(WHO, NOW)
            await repo.complete_lesson(learner.id, "l1", "c", NOW)
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    async with store.unit() as repo:
        learner = await repo.learner(WHO, NOW)
        assert await repo.completed_lessons(learner.id) == set()


async def test_sqlite_units_run_on_the_driver_and_end_their_transaction(sqlite_store, tmp_path):
    """storage/direct.py: the unit's statements bypass SQLAlchemy's execution on SQLite, yet a
    unit that also runs a statement through SQLAlchemy commits once, and a failed unit rolls
    back and releases the write lock. Seen from a second sqlite3 connection, as another process
    would see it."""
    import sqlite3

    async with sqlite_store.unit() as repo:
        assert repo.direct is not None
        learner = await repo.learner(WHO, NOW)
        await record(repo, learner.id, "q1", "t1")
        await repo.save_review_card(learner.id, "q1", NOW, {"due": "x", "stability": 1.5})
        facts = await repo.answers(learner.id, ["q1"])  # an expanding IN: SQLAlchemy's path
        assert [f.question_id for f in facts] == ["q1"]
        learner.streak_days = 3
    other = sqlite3.connect(tmp_path / "tutor.db", isolation_level=None, timeout=0.1)
    assert other.execute("select count(*) from answers").fetchone() == (1,)
    assert other.execute("select streak_days from learners").fetchone() == (3,)
    async with sqlite_store.unit() as repo:
        assert await repo.review_card(learner.id, "q1") == {"due": "x", "stability": 1.5}
        assert await repo.answers_since(learner.id, NOW, "lesson") == 1
        assert await repo.answers_since(learner.id, datetime(2027, 1, 1, tzinfo=UTC), "x") == 0

    with pytest.raises(RuntimeError):
        async with sqlite_store.unit() as repo:
            learner = await repo.learner(WHO, NOW)
            await repo.complete_lesson(learner.id, "l1", "c", NOW)
            raise RuntimeError("boom")
    other.execute("BEGIN IMMEDIATE")  # the failed unit holds no lock
    assert other.execute("select count(*) from lesson_completions").fetchone() == (0,)
    other.execute("ROLLBACK")
    other.close()


async def test_sqlite_units_never_queue_for_the_connection(sqlite_store):
    """SqlStore.unit: on SQLite a unit holds the one pooled connection without giving the loop
    a turn, so updates handled at once each find it free (queueing for it cost the bot CPU on
    every update). SQLAlchemy's own `async with` closes in a task of its own, and then the
    next update finds the connection taken."""
    pool = sqlite_store.engine.sync_engine.pool
    found_taken = []

    async def update(i: int) -> None:
        await asyncio.sleep(0)
        found_taken.append(pool.checkedout())
        async with sqlite_store.unit() as repo:
            learner = await repo.learner(Who(f"tg:{i}", chat_id=i), NOW)
            learner.streak_days = i

    await asyncio.gather(*(update(i) for i in range(20)))
    assert found_taken == [0] * 20
    async with sqlite_store.unit() as repo:
        assert (await repo.learner(Who("tg:7", chat_id=7), NOW)).streak_days == 7


async def test_a_unit_that_ended_well_gives_its_connection_back_without_a_task(store):
    """SqlStore.unit: when giving the connection back cannot wait for the server, it takes no
    turn of the event loop (SQLAlchemy's own exit closes in a task of its own). After a failure
    on PostgreSQL the rollback may wait, and SQLAlchemy's shielded exit does it."""
    loop = asyncio.get_running_loop()
    created: list[object] = []
    factory = loop.get_task_factory()

    def counting(loop, coro, **kwargs):
        created.append(coro)
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(counting)
    try:
        async with store.unit() as repo:
            (await repo.learner(WHO, NOW)).streak_days = 2
        assert created == []
        with pytest.raises(RuntimeError):
            async with store.unit() as repo:
                (await repo.learner(WHO, NOW)).streak_days = 3
                raise RuntimeError("boom")
        assert len(created) == (0 if store.dialect == "sqlite" else 1)
    finally:
        loop.set_task_factory(factory)
    async with store.unit() as repo:
        assert (await repo.learner(WHO, NOW)).streak_days == 2


async def test_full_lesson_journey_on_each_database(store, catalog, clock):
    tutor = Tutor(catalog, store, clock=clock)
    chat = Chat(tutor)
    await chat.onboard()
    await chat.command("today")
    await take_lesson(chat, catalog.courses["mooc-art"].lessons[0])
    await chat.command("progress")
    assert "Streak: 1 day" in chat.said


async def test_concurrent_presses_of_one_learner_record_one_answer(store, catalog, clock):
    """Two copies of the same update handled at once (a retried webhook, say)."""
    tutor = Tutor(catalog, store, clock=clock)
    chat = Chat(tutor)
    data = await first_answer(chat)
    await asyncio.gather(*(tutor.handle(chat.who, Press(data)) for _ in range(5)))
    async with store.sessions() as s:
        assert await s.scalar(text("select count(*) from answers")) == 1


async def test_many_learners_at_once(store, catalog, clock):
    tutor = Tutor(catalog, store, clock=clock)
    whos = [Who(f"tg:{i}", chat_id=i) for i in range(20)]
    await asyncio.gather(*(tutor.handle(w, Command("start")) for w in whos))
    async with store.sessions() as s:
        assert await s.scalar(text("select count(*) from learners")) == 20


async def test_sqlite_runs_on_the_loop_thread_with_its_pragmas(tmp_path):
    """No aiosqlite worker thread (storage/inline_sqlite.py); WAL, foreign keys and the busy
    timeout are set on the connection; transactions still commit and roll back."""
    import sqlite3
    import threading

    before = threading.active_count()
    engine = create_engine(f"sqlite:///{tmp_path / 'inline.db'}")
    await upgrade(engine)
    async with engine.connect() as conn:
        pragmas = [
            (await conn.execute(text(f"PRAGMA {name}"))).scalar()
            for name in ("journal_mode", "foreign_keys", "busy_timeout")
        ]
    assert pragmas == ["wal", 1, 15000]
    assert threading.active_count() == before
    async with engine.begin() as conn:  # BEGIN IMMEDIATE: the write lock from the start
        other = sqlite3.connect(tmp_path / "inline.db", timeout=0)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
        other.close()
        await conn.execute(text("CREATE TABLE t (x INTEGER)"))
        await conn.execute(text("INSERT INTO t VALUES (1)"))
    try:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO t VALUES (2)"))
            raise RuntimeError("abandon")
    except RuntimeError:
        pass
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT x FROM t"))).scalars().all() == [1]
    await engine.dispose()
    async with engine.connect() as conn:  # a disposed engine opens a new connection
        assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar() == 1
    await engine.dispose()


async def test_a_serving_sqlite_app_checkpoints_on_a_worker_thread(tmp_path):
    """The bot's own connection never checkpoints inside a commit (that copy and fsync held every
    update on the event loop); a background checkpointer keeps the WAL short instead."""
    from bot.app import build_app
    from bot.config import Settings
    from tests.conftest import LESSONS

    path = tmp_path / "tutor.db"
    settings = Settings(database_url=f"sqlite:///{path}", lessons_dir=LESSONS)

    async def autocheckpoint(app) -> int:
        async with app.engine.connect() as conn:
            return (await conn.exec_driver_sql("PRAGMA wal_autocheckpoint")).scalar_one()

    one_off = await build_app(settings)
    assert one_off.checkpointer is None and await autocheckpoint(one_off) == 1000
    await one_off.close()

    app = await build_app(settings, serving=True)
    try:
        assert app.checkpointer is not None and await autocheckpoint(app) == 0
        tutor = Tutor(app.catalog, app.store)
        for n in range(30):
            await tutor.handle(Who(f"tg:{n}", chat_id=n), Command("start", ""))
        busy, frames, copied = await asyncio.to_thread(app.checkpointer.checkpoint)
        assert busy == 0 and frames > 0 and copied == frames  # everything copied, off the loop
        await tutor.handle(Who("tg:99", chat_id=99), Command("start", ""))
        _busy, after, _copied = await asyncio.to_thread(app.checkpointer.checkpoint)
        assert 0 < after < frames  # the WAL started again from its beginning
        runs = app.checkpointer.runs
        for _ in range(30):  # and it does so in the background, every second
            await asyncio.sleep(0.1)
            if app.checkpointer.runs > runs:
                break
        assert app.checkpointer.runs > runs
    finally:
        await app.close()
    assert app.checkpointer.runs > 0


async def test_a_unit_is_freed_as_it_ends_not_left_to_the_garbage_collector(store):
    """A unit per update: one held in a reference cycle waits for a collection, with its
    connection objects, and each collection then has more to look through (on PostgreSQL an
    optimistic unit and its connection proxy used to hold each other)."""
    import gc
    import weakref

    gc.disable()
    try:
        for optimistic in (True, False):
            async with store.unit(optimistic=optimistic) as repo:
                (await repo.learner(Who("tg:gc", chat_id=1), NOW)).item_index += 1
                ended = weakref.ref(repo)
            del repo
            assert ended() is None, optimistic
    finally:
        gc.enable()
