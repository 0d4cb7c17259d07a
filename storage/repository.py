"""The SQLAlchemy repository behind the engine's `Repository` protocol, one per unit of work.

Written on SQLAlchemy Core, not the ORM: every Telegram update is one short unit, and the ORM's
session, identity map and flush cost more CPU than the four statements they would save us
writing (measured in bench/interactive.py). The learner row is loaded into a plain `LearnerRow`;
when the unit ends, only the columns the engine changed are written back. The statements a button
press or a quiz poll runs are built once, at import, with their values bound at execution:
building a statement and computing its cache key cost SQLAlchemy more than running it on SQLite.

Two updates of the same learner handled at once must not interleave their read-modify-write.
`SqlStore.unit()` is a transaction; on PostgreSQL it reads the learner row `FOR UPDATE` (on
SQLite, `BEGIN IMMEDIATE` already serialises writers). `SqlStore.run()`, which the engine uses
for each update, is on PostgreSQL an optimistic unit instead: no lock, no transaction, one write
that checks the row's version, and a retry if it moved (`storage.optimistic` says why and how).
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from contextlib import asynccontextmanager
from dataclasses import fields
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import (
    Date,
    Integer,
    String,
    any_,
    bindparam,
    cast,
    delete,
    func,
    literal,
    null,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker

from bot.tutor.events import Who
from bot.tutor.ports import Agenda, AnswerFact, CertificateFact, History, LearnerState
from storage.direct import DirectPostgres, DirectSqlite
from storage.inline_sqlite import InlineConnection
from storage.models import (
    ANSWER_FACT_COLUMNS,
    Answer,
    Booster,
    Certificate,
    Learner,
    LessonCompletion,
    PausePeriod,
    PollLink,
    PracticeDay,
    ReviewCard,
    TestScore,
)
from storage.optimistic import (
    INSERTS,
    VERSION,
    Conflict,
    LearnerCache,
    Upsert,
    final_write,
    tables_read,
)
from storage.privacy import PrivacyQueries
from storage.trainers import TrainerQueries

LEARNERS = Learner.__table__
T = TypeVar("T")
log = logging.getLogger(__name__)


LearnerRow = LearnerState
"""The engine's learner, as loaded from one `learners` row."""

FIELDS = tuple(f.name for f in fields(LearnerRow))
_COLUMNS = [LEARNERS.c[name] for name in FIELDS]


_BY_EXTERNAL_ID = LEARNERS.c.external_id == bindparam("b_key")
_BY_ID = LEARNERS.c.id == bindparam("b_key")
_LEARNER_BY_EXTERNAL_ID = select(*_COLUMNS).where(_BY_EXTERNAL_ID).with_for_update()
_LEARNER_BY_ID = select(*_COLUMNS).where(_BY_ID).with_for_update()
_UNLOCKED = {
    _LEARNER_BY_EXTERNAL_ID: select(*_COLUMNS, VERSION).where(_BY_EXTERNAL_ID),
    _LEARNER_BY_ID: select(*_COLUMNS, VERSION).where(_BY_ID),
}
"""The learner as an optimistic unit reads it: no lock, its version last (storage.optimistic)."""
_VERSION_OF = select(VERSION).where(LEARNERS.c.id == bindparam("b_learner"))
_LEARNER_VERSION = _VERSION_OF.with_for_update()
_UPDATE_LEARNER = update(LEARNERS).where(LEARNERS.c.id == bindparam("b_learner"))
_ANSWERED = select(Answer.id).where(
    Answer.learner_id == bindparam("b_learner"), Answer.token == bindparam("b_token")
)
_INSERT_ANSWER = Upsert(Answer, ["learner_id", "token"])
_ANSWERS = (
    select(*ANSWER_FACT_COLUMNS)
    .where(Answer.learner_id == bindparam("b_learner"))
    .order_by(Answer.answered_at, Answer.id)
)
_TO_QUESTIONS = {
    "postgresql": Answer.question_id == any_(bindparam("b_questions", type_=ARRAY(String))),
    "sqlite": Answer.question_id.in_(bindparam("b_questions", expanding=True)),
}
"""Answers to the questions in `b_questions`: on PostgreSQL one array parameter, so the
statement runs straight on asyncpg; on SQLite an expanding IN, which SQLAlchemy runs."""
_ANSWERS_TO = {name: _ANSWERS.where(condition) for name, condition in _TO_QUESTIONS.items()}
_ANSWERS_SINCE = (
    select(func.count())
    .select_from(Answer)
    .where(
        Answer.learner_id == bindparam("b_learner"),
        Answer.context == bindparam("b_context"),
        Answer.answered_at >= bindparam("b_since"),
    )
)
_INSERT_COMPLETION = Upsert(LessonCompletion, ["learner_id", "lesson_id"])
_COMPLETED = select(LessonCompletion.lesson_id).where(
    LessonCompletion.learner_id == bindparam("b_learner")
)
_INSERT_PRACTICE_DAY = Upsert(PracticeDay, ["learner_id", "day"])
_PRACTICE_DAYS = (
    select(PracticeDay.day)
    .where(PracticeDay.learner_id == bindparam("b_learner"))
    .order_by(PracticeDay.day)
)
_STREAK_HISTORY = union_all(
    select(PracticeDay.day, PracticeDay.day, literal(False)).where(
        PracticeDay.learner_id == bindparam("b_learner")
    ),
    select(PausePeriod.first_day, PausePeriod.last_day, literal(True)).where(
        PausePeriod.learner_id == bindparam("b_learner")
    ),
)
"""Practice days as (day, day, False) and pauses as (first, last, True), in one round trip."""
_NO_DAY = cast(null(), Date)
_BLANK = [null()] * (len(ANSWER_FACT_COLUMNS) + 1)
_HISTORY_REST = (
    select(literal("d"), *_BLANK, PracticeDay.day, PracticeDay.day).where(
        PracticeDay.learner_id == bindparam("b_learner")
    ),
    select(literal("p"), *_BLANK, PausePeriod.first_day, PausePeriod.last_day).where(
        PausePeriod.learner_id == bindparam("b_learner")
    ),
    select(literal("c"), LessonCompletion.lesson_id, *_BLANK[1:], _NO_DAY, _NO_DAY).where(
        LessonCompletion.learner_id == bindparam("b_learner")
    ),
)
_HISTORY = {
    name: union_all(
        select(literal("a"), *ANSWER_FACT_COLUMNS, Answer.id, _NO_DAY, _NO_DAY).where(
            Answer.learner_id == bindparam("b_learner"), condition
        ),
        *_HISTORY_REST,
    )
    for name, condition in _TO_QUESTIONS.items()
}
"""A lesson's end reads in one round trip, as (kind, the answer's columns and id, first and
last day) rows: answers to chosen questions ("a", first, whose columns type the result), practice
days ("d"), pauses ("p") and lessons done ("c", the lesson in the first column)."""
_REVIEW_CARD = select(ReviewCard.card).where(
    ReviewCard.learner_id == bindparam("b_learner"),
    ReviewCard.question_id == bindparam("b_question"),
)
_NEXT_CARD = _REVIEW_CARD.scalar_subquery()
"""The card an optimistic unit's write reads for the learner's next update (`final_write`)."""
_SAVE_REVIEW_CARD = Upsert(ReviewCard, ["learner_id", "question_id"], ["due", "card"])
_DUE_REVIEWS = (
    select(ReviewCard.question_id)
    .where(ReviewCard.learner_id == bindparam("b_learner"), ReviewCard.due <= bindparam("b_now"))
    .order_by(ReviewCard.due, ReviewCard.question_id)
    .limit(bindparam("b_limit"))
)
_INSERT_POLL_LINK = Upsert(PollLink, ["poll_id"])
_POLL_TOKEN = select(PollLink.token).where(
    PollLink.poll_id == bindparam("b_poll"), PollLink.learner_id == bindparam("b_learner")
)
_DUE_BOOSTER = (
    select(Booster.course_id, Booster.number)
    .where(
        Booster.learner_id == bindparam("b_learner"),
        Booster.due_on <= bindparam("b_today"),
        Booster.done_at.is_(None),
    )
    .order_by(Booster.due_on, Booster.number)
    .limit(1)
    .subquery()
)
_DUE_REVIEWS_AT = _DUE_REVIEWS.add_columns(ReviewCard.due).subquery()
_AGENDA = union_all(
    select(
        literal("r"), _DUE_REVIEWS_AT.c.question_id, cast(null(), Integer), _DUE_REVIEWS_AT.c.due
    ),
    select(literal("b"), _DUE_BOOSTER.c.course_id, _DUE_BOOSTER.c.number, null()),
    select(literal("c"), LessonCompletion.lesson_id, null(), null()).where(
        LessonCompletion.learner_id == bindparam("b_learner")
    ),
)
"""/today's three reads in one round trip, as (kind, id, booster number, review due) rows:
reviews first, whose columns type the result."""


class SqlStore:
    def __init__(self, engine: AsyncEngine):
        self.engine = engine
        self.sessions = async_sessionmaker(engine, expire_on_commit=False)
        """ORM sessions, for code and tests that read freely outside the engine's units."""
        self.learners = LearnerCache()
        """Where an optimistic unit starts (storage.optimistic)."""
        self.dialect = engine.dialect.name
        self.on_conflict: Callable[[], None] = lambda: None
        """Called each time `run` runs a unit again (the runtime counts them in /metrics)."""

    @asynccontextmanager
    async def unit(self, *, optimistic: bool = False) -> AsyncIterator[SqlRepository]:
        """One connection and one transaction, which the first statement begins (on SQLite with
        the write lock). The update's statements run straight on the driver (`storage.direct`).
        After an exception, the pool rolls the transaction back as it takes the connection back
        (its reset on return, which sees the driver's transaction too). `optimistic`: on
        PostgreSQL, an optimistic unit instead, which may end in `Conflict`
        (`storage.optimistic`; `run` retries it).

        A unit gives the connection back without giving the event loop a turn whenever that
        cannot wait for the server: always on SQLite (`storage.inline_sqlite`), and on
        PostgreSQL after a unit that ended well, while the pool has no overflow connection to
        close. Otherwise SQLAlchemy's own exit closes it, in a task of its own, so that a
        cancellation cannot cut a rollback short. On SQLite that hand-off was the unit's only
        wait, and the updates that ran meanwhile found the one connection taken and queued for
        it (94 % of units in bench/interactive.py); on PostgreSQL it cost about 20 µs of CPU
        and a turn of the loop per update."""
        conn = await self.engine.connect()
        ended_well = False
        try:
            repo = SqlRepository(conn, optimistic=optimistic, cache=self.learners)
            yield repo
            await repo.finish()
            ended_well = True
        finally:
            pool: Any = self.engine.pool
            if self.dialect == "sqlite" or (ended_well and pool.overflow() <= 0):
                await conn.close()  # nothing to roll back or close on a server: no wait
            else:
                await conn.__aexit__(None, None, None)  # SQLAlchemy's exit, shielded

    async def run(self, work: Callable[[SqlRepository], Awaitable[T]], attempts: int = 4) -> T:
        """`work` in a unit of its own, optimistic on PostgreSQL: run again from the start while
        another unit changes the same learner first, the last time in a locked unit."""
        for left in range(attempts - 1, -1, -1):
            try:
                async with self.unit(optimistic=left > 0) as repo:
                    return await work(repo)
            except Conflict:
                if left == 0:
                    raise  # only an optimistic unit raises it
                self.on_conflict()
                log.debug("a unit met a newer learner row; running it again")
        raise AssertionError("unreachable")


class _Locking:
    """An optimistic unit's SQLAlchemy connection: a statement through it first turns the unit
    into a locked one (`SqlRepository._lock`); everything else is the connection's own. It holds
    its unit weakly: the unit holds it, and a cycle would leave every unit to the garbage
    collector instead of freeing it when the update ends."""

    STATEMENTS = frozenset({"execute", "scalar", "scalars", "exec_driver_sql", "run_sync"})

    def __init__(self, conn: AsyncConnection, unit: SqlRepository):
        self._conn = conn
        self._unit = weakref.ref(unit)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._conn, name)
        if name not in self.STATEMENTS:
            if name in ("stream", "stream_scalars"):
                raise NotImplementedError("an optimistic unit does not stream")
            return attribute

        async def locked_first(*args: Any, **kwargs: Any) -> Any:
            unit = self._unit()
            if unit is None:
                raise RuntimeError("the unit of this connection has ended")
            await unit._lock()
            return await attribute(*args, **kwargs)

        return locked_first


class SqlRepository(TrainerQueries, PrivacyQueries):
    def __init__(
        self,
        conn: AsyncConnection,
        *,
        optimistic: bool = False,
        cache: LearnerCache | None = None,
    ):
        self.dialect = conn.dialect.name
        self._loaded: dict[int, tuple[LearnerRow, dict[str, Any]]] = {}
        driver = conn.sync_connection.connection.driver_connection if conn.sync_connection else None
        self.direct = (
            DirectSqlite(driver, conn.dialect) if isinstance(driver, InlineConnection) else None
        )
        """The update's statements straight on SQLite's driver (storage.direct)."""
        self.postgres = (
            DirectPostgres(driver, conn.dialect, conn) if conn.dialect.driver == "asyncpg" else None
        )
        """Or on asyncpg: all of an optimistic unit's, and a locked unit's once SQLAlchemy has
        opened the transaction (another PostgreSQL driver, named in DATABASE_URL, goes through
        SQLAlchemy, in locked units)."""
        self._optimistic = (
            optimistic and self.postgres is not None and not self.postgres.in_transaction()
        )
        """Until `_lock`: no transaction, writes held back (storage.optimistic)."""
        self._versions: dict[int, int] = {}
        """The version (`xmin`) of each learner row read without a lock."""
        self._cache = (cache or LearnerCache()) if self._optimistic else None
        self._cached: set[int] = set()
        """The learners this unit took from the cache, not from the database."""
        self._cards: dict[str, dict | None] = {}
        """The review cards the cache knows for the learner taken from it (`Cached.cards`)."""
        self._prefetch: str | None = None
        """The question whose card the unit's write reads too (`prefetch_review_card`)."""
        self._waiting: list[tuple[Upsert, dict[str, Any]]] = []
        self._wrote = False
        self._sa = conn
        self.conn: Any = _Locking(conn, self) if self._optimistic else conn
        """SQLAlchemy's connection, for the statements `storage.direct` does not run."""

    async def _rows(
        self, statement: Any, params: dict[str, Any], besides: Collection[Upsert] = ()
    ) -> Sequence[Any]:
        """The rows of a read. `besides`: the caller adds what this unit holds back of these
        writes (`_held`), so they need not be written first."""
        if self.direct is not None:
            return self.direct.rows(statement, params)
        if self.postgres is not None:
            read = tables_read(statement) if self._waiting else ()
            if any(w not in besides and w.table.name in read for w, _ in self._waiting):
                await self._lock()  # the read must see what waits
            if self._optimistic or self.postgres.in_transaction():
                return await self.postgres.rows(statement, params)
        return (await self.conn.execute(statement, params)).all()

    async def _write(self, statement: Any, values: dict[str, Any]) -> None:
        """An INSERT or UPDATE of these column values (and bound parameters). An optimistic
        unit holds an `Upsert` back until it ends (storage.optimistic)."""
        self._wrote = True
        if isinstance(statement, Upsert):
            if self._optimistic and self._versions:
                self._waiting.append((statement, values))
                return
            statement = statement.statements[self.dialect]
        await self._lock()
        if self.direct is not None:
            self.direct.write(statement, values)
        elif self.postgres is not None and self.postgres.in_transaction():
            await self.postgres.write(statement, values)
        else:
            await self.conn.execute(statement, values)

    def _insert(self, table):
        return INSERTS[self.dialect](table)

    async def _load(self, statement, key: str | int) -> LearnerRow | None:
        if self._optimistic and self._loaded:
            await self._lock()  # a second learner: the unit takes locks from here on
        versioned = self._optimistic
        cached = None
        if versioned and self._cache is not None and statement is _LEARNER_BY_EXTERNAL_ID:
            cached = self._cache.get(str(key))  # a locked unit reads (and locks) the row
        if cached is not None:
            row, version = cached.row, cached.version
            self._cards = dict(cached.cards)
        else:
            params = {"b_key": key}
            rows = await self._rows(_UNLOCKED[statement] if versioned else statement, params)
            if not rows:
                return None
            row, version = (rows[0][:-1], rows[0][-1]) if versioned else (rows[0], None)
        learner = LearnerRow(*row)
        if version is not None:
            self._versions[learner.id] = version
        if cached is not None:
            self._cached.add(learner.id)
        self._loaded[learner.id] = (learner, dict(zip(FIELDS, row, strict=True)))
        return learner

    def _held(self, write: Upsert, learner_id: int) -> list[dict[str, Any]]:
        """The values of `write` this optimistic unit holds back for the learner, for a read to
        add to its rows. Exact: the rows it reads are as the learner's version read says, or
        the unit ends in `Conflict` (storage.optimistic)."""
        return [v for w, v in self._waiting if w is write and v["learner_id"] == learner_id]

    def _held_column(self, write: Upsert, learner_id: int, column: str) -> set[Any]:
        """One column of `_held`: the days or the lessons a read adds."""
        return {values[column] for values in self._held(write, learner_id)}

    async def _lock(self) -> None:
        """Turn an optimistic unit into a locked one: lock each learner read and check that it
        is the version read (else `Conflict`), then write what waited (storage.optimistic)."""
        if not self._optimistic:
            return
        self._optimistic = False
        self._wrote = True  # what goes through SQLAlchemy from here may write: count it so
        for learner_id, version in self._versions.items():
            rows = (await self._sa.execute(_LEARNER_VERSION, {"b_learner": learner_id})).all()
            if not rows or rows[0][0] != version:
                raise self._conflict(self._loaded[learner_id][0])
        waiting, self._waiting = self._waiting, []
        for write, values in waiting:
            await self._write(write, values)

    def _changes(self) -> list[tuple[LearnerRow, dict[str, Any]]]:
        """Each learner loaded and its columns the engine changed. A unit that wrote changes
        (at least) `id` to itself on a learner read optimistically: the row's new version tells
        the learner's other optimistic units that it wrote."""
        changes = []
        for learner, before in self._loaded.values():
            changed = {
                name: getattr(learner, name)
                for name in FIELDS
                if getattr(learner, name) != before[name]
            }
            if not changed and self._wrote and learner.id in self._versions:
                changed = {"id": learner.id}
            changes.append((learner, changed))
        self._loaded.clear()
        return changes

    async def finish(self) -> None:
        """Write back the columns the engine changed on the learners it loaded, and commit; an
        optimistic unit writes everything in one statement, or raises `Conflict`."""
        changes = self._changes()
        if self._optimistic:
            await self._write_at_once(changes)
            return
        for learner, changed in changes:
            if changed:
                await self._write(_UPDATE_LEARNER, {"b_learner": learner.id, **changed})
                if self._cache is not None:
                    self._cache.forget(learner.external_id)  # its new version is not known here
        if self.direct is not None:
            self.direct.commit()
        if self.conn.in_transaction():  # on SQLite, after the driver's commit, a no-op
            await self.conn.commit()

    async def _write_at_once(self, changes: list[tuple[LearnerRow, dict[str, Any]]]) -> None:
        """An optimistic unit's end: `storage.optimistic.final_write`, if anything changed; if
        not, a learner taken from the cache is checked against its row."""
        assert self.postgres is not None and self._cache is not None
        if self.postgres.in_transaction():  # what it wrote would be rolled back with it
            raise RuntimeError("an optimistic unit ran a statement that opened a transaction")
        if not changes:
            return  # `_write` locks a unit that has no learner: nothing waits
        assert len(changes) == 1  # a second learner locks
        learner, changed = changes[0]
        params: dict[str, Any] = {"b_learner": learner.id}
        if not changed:
            if learner.id in self._cached:
                rows = await self.postgres.rows(_VERSION_OF, params)
                if not rows or rows[0][0] != self._versions[learner.id]:
                    raise self._conflict(learner)
            else:
                self._remember(learner, self._versions[learner.id], {})
            return
        writes = tuple((write, tuple(values)) for write, values in self._waiting)
        params["b_version"] = self._versions[learner.id]
        params.update(("l_" + name, value) for name, value in changed.items())
        for n, (_write, values) in enumerate(self._waiting):
            params.update((f"w{n}_{name}", value) for name, value in values.items())
        also = None
        if self._prefetch is not None:
            also, params["b_question"] = _NEXT_CARD, self._prefetch
        rows = await self.postgres.rows(final_write(tuple(changed), writes, also), params)
        if not rows:
            raise self._conflict(learner)
        cards = self._cards  # known only for a learner taken from the cache
        if self._prefetch is not None:
            cards[self._prefetch] = rows[0][1]
        for values in self._held(_SAVE_REVIEW_CARD, learner.id):  # newer than what it read
            cards.pop(values["question_id"], None)
            cards[values["question_id"]] = values["card"]
        self._remember(learner, rows[0][0], cards)

    def _remember(self, learner: LearnerRow, version: int, cards: dict[str, dict | None]) -> None:
        """Keep the row as the database now holds it (instants in UTC, as `UTCDateTime` reads
        them), with the review cards known at that version."""
        assert self._cache is not None
        row = tuple(
            value.astimezone(UTC) if isinstance(value, datetime) else value
            for value in (getattr(learner, name) for name in FIELDS)
        )
        self._cache.put(learner.external_id, row, version, cards)

    def _conflict(self, learner: LearnerRow) -> Conflict:
        """The learner changed since this unit read it: forget it, so the next try reads it."""
        if self._cache is not None:
            self._cache.forget(learner.external_id)
        return Conflict(f"learner {learner.id} changed")

    async def learner(self, who: Who, now: datetime) -> LearnerRow:
        learner = await self._load(_LEARNER_BY_EXTERNAL_ID, who.external_id)
        if learner is None:
            await self.conn.execute(
                self._insert(LEARNERS)
                .values(
                    external_id=who.external_id,
                    chat_id=who.chat_id,
                    display_name=who.display_name,
                    language="en",
                    onboarding="new",
                    nudges_enabled=True,
                    active=True,
                    role="learner",
                    quiz_mode="buttons",
                    item_index=0,
                    streak_days=0,
                    created_at=now,
                )
                .on_conflict_do_nothing(index_elements=["external_id"])
            )
            learner = await self._load(_LEARNER_BY_EXTERNAL_ID, who.external_id)
            assert learner is not None
        if who.chat_id is not None and learner.chat_id != who.chat_id:
            learner.chat_id = who.chat_id
        return learner

    async def learner_by_id(self, learner_id: int) -> LearnerRow | None:
        return await self._load(_LEARNER_BY_ID, learner_id)

    async def answered(self, learner_id: int, token: str) -> bool:
        return bool(await self._rows(_ANSWERED, {"b_learner": learner_id, "b_token": token}))

    async def record_answer(
        self,
        learner_id: int,
        *,
        question_id: str,
        lesson_id: str,
        token: str,
        choice: str,
        correct: bool | None,
        at: datetime,
        context: str = "lesson",
    ) -> None:
        await self._write(
            _INSERT_ANSWER,
            {
                "learner_id": learner_id,
                "question_id": question_id,
                "lesson_id": lesson_id,
                "token": token,
                "choice": choice,
                "correct": correct,
                "answered_at": at,
                "context": context,
            },
        )

    async def answers(
        self, learner_id: int, questions: Collection[str] | None = None
    ) -> list[AnswerFact]:
        params: dict[str, Any] = {"b_learner": learner_id}
        if questions is None:
            rows = await self._rows(_ANSWERS, params, besides=(_INSERT_ANSWER,))
        else:
            params["b_questions"] = list(questions)
            rows = await self._to_questions(_ANSWERS_TO, params, (_INSERT_ANSWER,))
        return self._with_held_answers(learner_id, [AnswerFact(*row) for row in rows], questions)

    async def _to_questions(
        self, statements: dict[str, Any], params: dict[str, Any], besides: Collection[Upsert]
    ) -> Sequence[Any]:
        """A read of answers to `b_questions` (`_TO_QUESTIONS`): on SQLite an expanding IN,
        which SQLAlchemy's execution runs (storage.direct)."""
        if self.dialect == "sqlite":
            return (await self.conn.execute(statements["sqlite"], params)).all()
        return await self._rows(statements[self.dialect], params, besides)

    def _with_held_answers(
        self, learner_id: int, facts: list[AnswerFact], questions: Collection[str] | None
    ) -> list[AnswerFact]:
        held = [
            AnswerFact(*(values[column.key] for column in ANSWER_FACT_COLUMNS))
            for values in self._held(_INSERT_ANSWER, learner_id)
            if questions is None or values["question_id"] in questions
        ]
        if held:  # oldest first, and after the stored ones of the same instant
            return sorted(facts + held, key=lambda fact: fact.answered_at)
        return facts

    async def history(self, learner_id: int, questions: Collection[str]) -> History:
        params = {"b_learner": learner_id, "b_questions": list(questions)}
        besides = (_INSERT_ANSWER, _INSERT_PRACTICE_DAY, _INSERT_COMPLETION)
        answered: list[tuple[datetime, int, AnswerFact]] = []
        days = self._held_column(_INSERT_PRACTICE_DAY, learner_id, "day")
        pauses: list[tuple[date, date]] = []
        completed = self._held_column(_INSERT_COMPLETION, learner_id, "lesson_id")
        for kind, *answer, answer_id, first, last in await self._to_questions(
            _HISTORY, params, besides
        ):
            if kind == "a":
                fact = AnswerFact(*answer)
                answered.append((fact.answered_at, answer_id, fact))
            elif kind == "d":
                days.add(first)
            elif kind == "p":
                pauses.append((first, last))
            else:
                completed.add(answer[0])
        facts = [fact for _at, _id, fact in sorted(answered, key=lambda a: (a[0], a[1]))]
        return History(
            sorted(days),
            sorted(pauses),
            self._with_held_answers(learner_id, facts, questions),
            completed,
        )

    async def complete_lesson(
        self, learner_id: int, lesson_id: str, course_id: str, at: datetime
    ) -> None:
        await self._write(
            _INSERT_COMPLETION,
            {
                "learner_id": learner_id,
                "lesson_id": lesson_id,
                "course_id": course_id,
                "completed_at": at,
            },
        )

    async def completed_lessons(self, learner_id: int) -> set[str]:
        rows = await self._rows(
            _COMPLETED, {"b_learner": learner_id}, besides=(_INSERT_COMPLETION,)
        )
        held = self._held_column(_INSERT_COMPLETION, learner_id, "lesson_id")
        return {lesson for (lesson,) in rows} | held

    async def add_practice_day(self, learner_id: int, day: date) -> None:
        await self._write(_INSERT_PRACTICE_DAY, {"learner_id": learner_id, "day": day})

    async def practice_days(self, learner_id: int) -> list[date]:
        params = {"b_learner": learner_id}
        days = {day for (day,) in await self._rows(_PRACTICE_DAYS, params, (_INSERT_PRACTICE_DAY,))}
        return sorted(days | self._held_column(_INSERT_PRACTICE_DAY, learner_id, "day"))

    async def link_poll(self, poll_id: str, learner_id: int, token: str, at: datetime) -> None:
        await self._write(
            _INSERT_POLL_LINK,
            {"poll_id": poll_id, "learner_id": learner_id, "token": token, "created_at": at},
        )

    async def poll_token(self, learner_id: int, poll_id: str) -> str | None:
        rows = await self._rows(_POLL_TOKEN, {"b_poll": poll_id, "b_learner": learner_id})
        return rows[0][0] if rows else None

    async def streak_history(self, learner_id: int) -> tuple[list[date], list[tuple[date, date]]]:
        days: list[date] = []
        pauses: list[tuple[date, date]] = []
        params = {"b_learner": learner_id}
        for first, last, paused in await self._rows(
            _STREAK_HISTORY, params, (_INSERT_PRACTICE_DAY,)
        ):
            if paused:
                pauses.append((first, last))
            else:
                days.append(first)
        held = self._held_column(_INSERT_PRACTICE_DAY, learner_id, "day")
        return sorted(held.union(days)), sorted(pauses)

    async def set_pause(self, learner_id: int, first: date, last: date | None) -> None:
        covering = await self.conn.execute(
            select(PausePeriod.id, PausePeriod.first_day).where(
                PausePeriod.learner_id == learner_id,
                PausePeriod.first_day <= first,
                PausePeriod.last_day >= first,
            )
        )
        for period_id, first_day in covering.all():  # a new pause or an early end replaces it
            if first_day < first:
                await self.conn.execute(
                    update(PausePeriod)
                    .where(PausePeriod.id == period_id)
                    .values(last_day=first - timedelta(days=1))
                )
            else:
                await self.conn.execute(delete(PausePeriod).where(PausePeriod.id == period_id))
        if last is not None:
            await self.conn.execute(
                PausePeriod.__table__.insert().values(
                    learner_id=learner_id, first_day=first, last_day=last
                )
            )

    async def review_card(self, learner_id: int, question_id: str) -> dict | None:
        held = [
            values["card"]
            for values in self._held(_SAVE_REVIEW_CARD, learner_id)
            if values["question_id"] == question_id
        ]
        if held:
            return held[-1]
        if self._optimistic and learner_id in self._cached and question_id in self._cards:
            return self._cards[question_id]  # as of the version this unit's write checks
        params = {"b_learner": learner_id, "b_question": question_id}
        rows = await self._rows(_REVIEW_CARD, params, besides=(_SAVE_REVIEW_CARD,))
        return rows[0][0] if rows else None

    def prefetch_review_card(self, learner_id: int, question_id: str) -> None:
        """An optimistic unit's write also reads this card, for the cache: the learner's next
        update, which grades the question, then finds it there (`storage.optimistic`)."""
        if self._optimistic and learner_id in self._versions and question_id not in self._cards:
            self._prefetch = question_id

    async def save_review_card(
        self, learner_id: int, question_id: str, due: datetime, card: dict
    ) -> None:
        await self._write(
            _SAVE_REVIEW_CARD,
            {"learner_id": learner_id, "question_id": question_id, "due": due, "card": card},
        )

    async def due_reviews(self, learner_id: int, now: datetime, limit: int) -> list[str]:
        params = {"b_learner": learner_id, "b_now": now, "b_limit": limit}
        return [question for (question,) in await self._rows(_DUE_REVIEWS, params)]

    async def answers_since(self, learner_id: int, since: datetime, context: str) -> int:
        params = {"b_learner": learner_id, "b_since": since, "b_context": context}
        return (await self._rows(_ANSWERS_SINCE, params))[0][0] or 0

    async def save_test_score(
        self,
        learner_id: int,
        course_id: str,
        kind: str,
        discernment: float | None,
        confidence: float | None,
        at: datetime,
    ) -> bool:
        result = await self.conn.execute(
            self._insert(TestScore)
            .values(
                learner_id=learner_id,
                course_id=course_id,
                kind=kind,
                discernment=discernment,
                confidence=confidence,
                taken_at=at,
            )
            .on_conflict_do_nothing(index_elements=["learner_id", "course_id", "kind"])
        )
        return bool(result.rowcount)

    async def test_scores(self, learner_id: int, course_id: str) -> dict[str, float | None]:
        rows = await self.conn.execute(
            select(TestScore.kind, TestScore.discernment).where(
                TestScore.learner_id == learner_id, TestScore.course_id == course_id
            )
        )
        return {kind: value for kind, value in rows}

    async def add_boosters(self, learner_id: int, course_id: str, due: list[date]) -> None:
        for number, day in enumerate(due, 1):
            await self.conn.execute(
                self._insert(Booster)
                .values(learner_id=learner_id, course_id=course_id, number=number, due_on=day)
                .on_conflict_do_nothing(index_elements=["learner_id", "course_id", "number"])
            )

    async def agenda(self, learner_id: int, now: datetime, today: date, reviews: int) -> Agenda:
        params = {"b_learner": learner_id, "b_now": now, "b_limit": reviews, "b_today": today}
        booster = None
        due: list[tuple[datetime, str]] = []
        completed = self._held_column(_INSERT_COMPLETION, learner_id, "lesson_id")
        for kind, name, number, at in await self._rows(_AGENDA, params, (_INSERT_COMPLETION,)):
            if kind == "r":
                due.append((at, name))
            elif kind == "b":
                booster = (name, number)
            else:
                completed.add(name)
        return Agenda(booster, [name for _at, name in sorted(due)], completed)

    async def finish_booster(
        self, learner_id: int, course_id: str, number: int, at: datetime
    ) -> None:
        await self.conn.execute(
            update(Booster)
            .where(
                Booster.learner_id == learner_id,
                Booster.course_id == course_id,
                Booster.number == number,
                Booster.done_at.is_(None),
            )
            .values(done_at=at)
        )

    async def certificate(self, learner_id: int, course_id: str) -> CertificateFact | None:
        return await self._certificate(
            (Certificate.learner_id == learner_id) & (Certificate.course_id == course_id)
        )

    async def certificate_by_code(self, code: str) -> CertificateFact | None:
        return await self._certificate(Certificate.code == code)

    async def _certificate(self, condition) -> CertificateFact | None:
        row = (
            await self.conn.execute(
                select(
                    Certificate.code,
                    Certificate.learner_id,
                    Certificate.course_id,
                    Certificate.name,
                    Certificate.score,
                    Certificate.competences,
                    Certificate.salt,
                    Certificate.issued_at,
                )
                .where(condition)
                .limit(1)
            )
        ).first()
        return CertificateFact(*row) if row else None

    async def add_certificate(self, fact: CertificateFact) -> None:
        await self.conn.execute(
            Certificate.__table__.insert().values(
                code=fact.code,
                learner_id=fact.learner_id,
                course_id=fact.course_id,
                name=fact.name,
                score=fact.score,
                competences=fact.competences,
                salt=fact.salt,
                issued_at=fact.issued_at,
            )
        )
