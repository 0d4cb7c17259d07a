"""The SQLAlchemy repository behind the engine's `Repository` protocol, one per transaction.

Written on SQLAlchemy Core, not the ORM: every Telegram update is one short transaction, and the
ORM's session, identity map and flush cost more CPU than the four statements they would save us
writing (measured in bench/interactive.py). The learner row is loaded into a plain `LearnerRow`;
when the unit ends, only the columns the engine changed are written back. The statements a button
press or a quiz poll runs are built once, at import, with their values bound at execution:
building a statement and computing its cache key cost SQLAlchemy more than running it on SQLite.

`SqlStore.unit()` opens a connection and a transaction; the learner row is read `FOR UPDATE` on
PostgreSQL (SQLite's `BEGIN IMMEDIATE` already serialises writers), so two updates of the same
learner handled at once cannot interleave their read-modify-write.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import aclosing, asynccontextmanager
from dataclasses import fields
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    bindparam,
    delete,
    func,
    literal,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker

from bot.tutor.events import Who
from bot.tutor.ports import AnswerFact, CertificateFact, LearnerState
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
from storage.privacy import PrivacyQueries
from storage.trainers import TrainerQueries

LEARNERS = Learner.__table__


LearnerRow = LearnerState
"""The engine's learner, as loaded from one `learners` row."""

FIELDS = tuple(f.name for f in fields(LearnerRow))
_COLUMNS = [LEARNERS.c[name] for name in FIELDS]


_INSERTS = {"sqlite": sqlite_insert, "postgresql": pg_insert}


def _insert_ignoring(model: Any, *keys: str) -> dict[str, Any]:
    """INSERT … ON CONFLICT (keys) DO NOTHING for each dialect; the values come at execution."""
    return {
        name: insert(model).on_conflict_do_nothing(index_elements=list(keys))
        for name, insert in _INSERTS.items()
    }


def _upsert(model: Any, keys: list[str], columns: list[str]) -> dict[str, Any]:
    """INSERT … ON CONFLICT (keys) DO UPDATE SET columns for each dialect."""
    statements = {}
    for name, insert in _INSERTS.items():
        statement = insert(model)
        statements[name] = statement.on_conflict_do_update(
            index_elements=keys, set_={c: statement.excluded[c] for c in columns}
        )
    return statements


_LEARNER_BY_EXTERNAL_ID = (
    select(*_COLUMNS).where(LEARNERS.c.external_id == bindparam("b_key")).with_for_update()
)
_LEARNER_BY_ID = select(*_COLUMNS).where(LEARNERS.c.id == bindparam("b_key")).with_for_update()
_UPDATE_LEARNER = update(LEARNERS).where(LEARNERS.c.id == bindparam("b_learner"))
_ANSWERED = select(Answer.id).where(
    Answer.learner_id == bindparam("b_learner"), Answer.token == bindparam("b_token")
)
_INSERT_ANSWER = _insert_ignoring(Answer, "learner_id", "token")
_ANSWERS = (
    select(*ANSWER_FACT_COLUMNS)
    .where(Answer.learner_id == bindparam("b_learner"))
    .order_by(Answer.answered_at, Answer.id)
)
_ANSWERS_TO = _ANSWERS.where(Answer.question_id.in_(bindparam("b_questions", expanding=True)))
_ANSWERS_SINCE = (
    select(func.count())
    .select_from(Answer)
    .where(
        Answer.learner_id == bindparam("b_learner"),
        Answer.context == bindparam("b_context"),
        Answer.answered_at >= bindparam("b_since"),
    )
)
_INSERT_COMPLETION = _insert_ignoring(LessonCompletion, "learner_id", "lesson_id")
_COMPLETED = select(LessonCompletion.lesson_id).where(
    LessonCompletion.learner_id == bindparam("b_learner")
)
_INSERT_PRACTICE_DAY = _insert_ignoring(PracticeDay, "learner_id", "day")
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
_REVIEW_CARD = select(ReviewCard.card).where(
    ReviewCard.learner_id == bindparam("b_learner"),
    ReviewCard.question_id == bindparam("b_question"),
)
_SAVE_REVIEW_CARD = _upsert(ReviewCard, ["learner_id", "question_id"], ["due", "card"])
_DUE_REVIEWS = (
    select(ReviewCard.question_id)
    .where(ReviewCard.learner_id == bindparam("b_learner"), ReviewCard.due <= bindparam("b_now"))
    .order_by(ReviewCard.due, ReviewCard.question_id)
    .limit(bindparam("b_limit"))
)
_INSERT_POLL_LINK = _insert_ignoring(PollLink, "poll_id")
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
)


class SqlStore:
    def __init__(self, engine: AsyncEngine):
        self.engine = engine
        self.sessions = async_sessionmaker(engine, expire_on_commit=False)
        """ORM sessions, for code and tests that read freely outside the engine's units."""

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[SqlRepository]:
        """One connection and one transaction, which the first statement begins (on SQLite with
        the write lock). The update's statements run straight on the driver (`storage.direct`):
        on SQLite all of them, on PostgreSQL those after the first. After an exception, the pool
        rolls the transaction back as it takes the connection back (its reset on return, which
        sees the driver's transaction too).

        On SQLite a unit never gives the event loop a turn while it holds the one pooled
        connection: nothing in it waits (`storage.inline_sqlite`), and it closes the connection
        itself. SQLAlchemy's `async with` closes in a task of its own, so that a cancellation
        cannot interrupt a close that waits for the server; on SQLite that hand-off was the only
        wait, and the updates that ran meanwhile found the connection taken and queued for it
        (94 % of units in bench/interactive.py)."""
        connection: Any = self.engine.connect()
        if self.engine.dialect.name == "sqlite":  # a server's driver keeps SQLAlchemy's exit
            connection = aclosing(await connection)  # returns at once on the inline connection
        async with connection as conn:
            repo = SqlRepository(conn)
            yield repo
            await repo.finish()


class SqlRepository(TrainerQueries, PrivacyQueries):
    def __init__(self, conn: AsyncConnection):
        self.conn = conn
        self.dialect = conn.dialect.name
        self._loaded: dict[int, tuple[LearnerRow, dict[str, Any]]] = {}
        driver = conn.sync_connection.connection.driver_connection if conn.sync_connection else None
        self.direct = (
            DirectSqlite(driver, conn.dialect) if isinstance(driver, InlineConnection) else None
        )
        """The update's statements straight on SQLite's driver (storage.direct)."""
        self.postgres = (
            DirectPostgres(driver, conn.dialect) if conn.dialect.driver == "asyncpg" else None
        )
        """Or on asyncpg, once SQLAlchemy has opened the transaction (another PostgreSQL
        driver, named in DATABASE_URL, goes through SQLAlchemy)."""

    async def _rows(self, statement: Any, params: dict[str, Any]) -> Sequence[Any]:
        if self.direct is not None:
            return self.direct.rows(statement, params)
        if self.postgres is not None and self.postgres.in_transaction():
            return await self.postgres.rows(statement, params)
        return (await self.conn.execute(statement, params)).all()

    async def _write(self, statement: Any, values: dict[str, Any]) -> int:
        """An INSERT or UPDATE of these column values (and bound parameters): rows changed."""
        if self.direct is not None:
            return self.direct.write(statement, values)
        if self.postgres is not None and self.postgres.in_transaction():
            return await self.postgres.write(statement, values)
        return (await self.conn.execute(statement, values)).rowcount

    def _insert(self, table):
        return _INSERTS[self.dialect](table)

    async def _load(self, statement, key: str | int) -> LearnerRow | None:
        rows = await self._rows(statement, {"b_key": key})
        if not rows:
            return None
        learner = LearnerRow(*rows[0])
        self._loaded[learner.id] = (learner, dict(zip(FIELDS, rows[0], strict=True)))
        return learner

    async def finish(self) -> None:
        """Write back the columns the engine changed on the learners it loaded, and commit."""
        for learner, before in self._loaded.values():
            changed = {
                name: getattr(learner, name)
                for name in FIELDS
                if getattr(learner, name) != before[name]
            }
            if changed:
                await self._write(_UPDATE_LEARNER, {"b_learner": learner.id, **changed})
        self._loaded.clear()
        if self.direct is not None:
            self.direct.commit()
        if self.conn.in_transaction():  # on SQLite, after the driver's commit, a no-op
            await self.conn.commit()

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
    ) -> bool:
        changed = await self._write(
            _INSERT_ANSWER[self.dialect],
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
        return bool(changed)

    async def answers(
        self, learner_id: int, questions: Collection[str] | None = None
    ) -> list[AnswerFact]:
        if questions is None:
            rows = await self._rows(_ANSWERS, {"b_learner": learner_id})
        else:  # an expanding IN: SQLAlchemy's execution (storage.direct)
            params = {"b_learner": learner_id, "b_questions": list(questions)}
            rows = (await self.conn.execute(_ANSWERS_TO, params)).all()
        return [AnswerFact(*row) for row in rows]

    async def complete_lesson(
        self, learner_id: int, lesson_id: str, course_id: str, at: datetime
    ) -> bool:
        changed = await self._write(
            _INSERT_COMPLETION[self.dialect],
            {
                "learner_id": learner_id,
                "lesson_id": lesson_id,
                "course_id": course_id,
                "completed_at": at,
            },
        )
        return bool(changed)

    async def completed_lessons(self, learner_id: int) -> set[str]:
        return {lesson for (lesson,) in await self._rows(_COMPLETED, {"b_learner": learner_id})}

    async def add_practice_day(self, learner_id: int, day: date) -> None:
        await self._write(
            _INSERT_PRACTICE_DAY[self.dialect], {"learner_id": learner_id, "day": day}
        )

    async def practice_days(self, learner_id: int) -> list[date]:
        return [day for (day,) in await self._rows(_PRACTICE_DAYS, {"b_learner": learner_id})]

    async def link_poll(self, poll_id: str, learner_id: int, token: str, at: datetime) -> None:
        await self._write(
            _INSERT_POLL_LINK[self.dialect],
            {"poll_id": poll_id, "learner_id": learner_id, "token": token, "created_at": at},
        )

    async def poll_token(self, learner_id: int, poll_id: str) -> str | None:
        rows = await self._rows(_POLL_TOKEN, {"b_poll": poll_id, "b_learner": learner_id})
        return rows[0][0] if rows else None

    async def streak_history(self, learner_id: int) -> tuple[list[date], list[tuple[date, date]]]:
        days: list[date] = []
        pauses: list[tuple[date, date]] = []
        for first, last, paused in await self._rows(_STREAK_HISTORY, {"b_learner": learner_id}):
            if paused:
                pauses.append((first, last))
            else:
                days.append(first)
        return sorted(days), sorted(pauses)

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
        rows = await self._rows(_REVIEW_CARD, {"b_learner": learner_id, "b_question": question_id})
        return rows[0][0] if rows else None

    async def save_review_card(
        self, learner_id: int, question_id: str, due: datetime, card: dict
    ) -> None:
        await self._write(
            _SAVE_REVIEW_CARD[self.dialect],
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

    async def due_booster(self, learner_id: int, today: date) -> tuple[str, int] | None:
        rows = await self._rows(_DUE_BOOSTER, {"b_learner": learner_id, "b_today": today})
        return (rows[0][0], rows[0][1]) if rows else None

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
