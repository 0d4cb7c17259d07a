"""The SQLAlchemy repository behind the engine's `Repository` protocol, one per transaction.

`SqlStore.unit()` opens a session and a transaction; the learner row is read `FOR UPDATE` on
PostgreSQL (SQLite's `BEGIN IMMEDIATE` already serialises writers), so two updates of the same
learner handled at once cannot interleave their read-modify-write.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.tutor.events import Who
from bot.tutor.ports import AnswerFact
from storage.models import (
    Answer,
    Learner,
    LessonCompletion,
    PausePeriod,
    PollLink,
    PracticeDay,
)


class SqlStore:
    def __init__(self, engine: AsyncEngine):
        self.engine = engine
        self.sessions = async_sessionmaker(engine, expire_on_commit=False)

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[SqlRepository]:
        async with self.sessions() as session, session.begin():
            yield SqlRepository(session)


class SqlRepository:
    def __init__(self, session: AsyncSession):
        self.session = session
        self.dialect = session.bind.dialect.name if session.bind else "sqlite"

    def _insert(self, table):
        return (pg_insert if self.dialect == "postgresql" else sqlite_insert)(table)

    async def learner(self, who: Who, now: datetime) -> Learner:
        query = select(Learner).where(Learner.external_id == who.external_id).with_for_update()
        learner = (await self.session.execute(query)).scalar_one_or_none()
        if learner is None:
            await self.session.execute(
                self._insert(Learner)
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
                    created_at=now,
                )
                .on_conflict_do_nothing(index_elements=["external_id"])
            )
            learner = (await self.session.execute(query)).scalar_one()
        if who.chat_id is not None and learner.chat_id != who.chat_id:
            learner.chat_id = who.chat_id
        return learner

    async def answered(self, learner_id: int, token: str) -> bool:
        query = select(Answer.id).where(Answer.learner_id == learner_id, Answer.token == token)
        return (await self.session.execute(query)).first() is not None

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
    ) -> bool:
        result = await self.session.execute(
            self._insert(Answer)
            .values(
                learner_id=learner_id,
                question_id=question_id,
                lesson_id=lesson_id,
                token=token,
                choice=choice,
                correct=correct,
                answered_at=at,
            )
            .on_conflict_do_nothing(index_elements=["learner_id", "token"])
        )
        return bool(result.rowcount)

    async def answers(self, learner_id: int) -> list[AnswerFact]:
        rows = await self.session.execute(
            select(
                Answer.question_id,
                Answer.lesson_id,
                Answer.choice,
                Answer.correct,
                Answer.answered_at,
            )
            .where(Answer.learner_id == learner_id)
            .order_by(Answer.answered_at, Answer.id)
        )
        return [AnswerFact(*row) for row in rows]

    async def complete_lesson(
        self, learner_id: int, lesson_id: str, course_id: str, at: datetime
    ) -> bool:
        result = await self.session.execute(
            self._insert(LessonCompletion)
            .values(
                learner_id=learner_id, lesson_id=lesson_id, course_id=course_id, completed_at=at
            )
            .on_conflict_do_nothing(index_elements=["learner_id", "lesson_id"])
        )
        return bool(result.rowcount)

    async def completed_lessons(self, learner_id: int) -> set[str]:
        rows = await self.session.scalars(
            select(LessonCompletion.lesson_id).where(LessonCompletion.learner_id == learner_id)
        )
        return set(rows)

    async def add_practice_day(self, learner_id: int, day: date) -> None:
        await self.session.execute(
            self._insert(PracticeDay)
            .values(learner_id=learner_id, day=day)
            .on_conflict_do_nothing(index_elements=["learner_id", "day"])
        )

    async def practice_days(self, learner_id: int) -> list[date]:
        rows = await self.session.scalars(
            select(PracticeDay.day)
            .where(PracticeDay.learner_id == learner_id)
            .order_by(PracticeDay.day)
        )
        return list(rows)

    async def link_poll(self, poll_id: str, learner_id: int, token: str, at: datetime) -> None:
        await self.session.execute(
            self._insert(PollLink)
            .values(poll_id=poll_id, learner_id=learner_id, token=token, created_at=at)
            .on_conflict_do_nothing(index_elements=["poll_id"])
        )

    async def poll_token(self, learner_id: int, poll_id: str) -> str | None:
        query = select(PollLink.token).where(
            PollLink.poll_id == poll_id, PollLink.learner_id == learner_id
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def pauses(self, learner_id: int) -> list[tuple[date, date]]:
        rows = await self.session.execute(
            select(PausePeriod.first_day, PausePeriod.last_day)
            .where(PausePeriod.learner_id == learner_id)
            .order_by(PausePeriod.first_day)
        )
        return [(first, last) for first, last in rows]

    async def set_pause(self, learner_id: int, first: date, last: date | None) -> None:
        covering = (
            await self.session.scalars(
                select(PausePeriod).where(
                    PausePeriod.learner_id == learner_id,
                    PausePeriod.first_day <= first,
                    PausePeriod.last_day >= first,
                )
            )
        ).all()
        for period in covering:  # a new pause or an early end replaces the running one
            if period.first_day < first:
                period.last_day = first - timedelta(days=1)
            else:
                await self.session.delete(period)
        if last is not None:
            self.session.add(PausePeriod(learner_id=learner_id, first_day=first, last_day=last))

    async def learner_by_id(self, learner_id: int) -> Learner | None:
        query = select(Learner).where(Learner.id == learner_id).with_for_update()
        return (await self.session.execute(query)).scalar_one_or_none()
