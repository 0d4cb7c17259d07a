"""Trainer data: cohorts, trainer invites, broadcasts, and the cohort figures behind /stats.

A mixin of `SqlRepository` (same connection, same transaction), kept apart so the learner's
repository stays readable. Broadcast recipients are put in the outbox with one
`INSERT … SELECT` (50,000 learners are one statement, not 50,000), learners known to have
blocked the bot straight away as "blocked".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, and_, case, cast, func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.models import (
    ANSWER_FACT_COLUMNS,
    Answer,
    Broadcast,
    Cohort,
    CohortMember,
    Learner,
    LessonCompletion,
    OutboxMessage,
    TestScore,
    TrainerInvite,
)


@dataclass(frozen=True)
class CohortFact:
    id: int
    code: str
    name: str
    course_id: str | None
    default_time: str | None
    owner_id: int
    revoked: bool
    members: int = 0


_COHORT = (
    Cohort.id,
    Cohort.code,
    Cohort.name,
    Cohort.course_id,
    Cohort.default_time,
    Cohort.owner_id,
    Cohort.revoked,
)


class TrainerQueries:
    conn: AsyncConnection

    async def create_invite(self, code: str, by: int, at: datetime) -> None:
        await self.conn.execute(
            TrainerInvite.__table__.insert().values(code=code, created_by=by, created_at=at)
        )

    async def use_invite(self, code: str, learner_id: int) -> bool:
        result = await self.conn.execute(
            update(TrainerInvite)
            .where(TrainerInvite.code == code, TrainerInvite.used_by.is_(None))
            .values(used_by=learner_id)
        )
        return bool(result.rowcount)

    async def set_role(self, external_id: str, role: str, now: datetime) -> int:
        from bot.tutor.events import Who

        learner = await self.learner(Who(external_id), now)  # type: ignore[attr-defined]
        learner.role = role
        return learner.id

    async def create_cohort(self, code: str, name: str, owner_id: int, at: datetime) -> int:
        result = await self.conn.execute(
            Cohort.__table__.insert()
            .values(code=code, name=name, owner_id=owner_id, created_at=at, revoked=False)
            .returning(Cohort.id)
        )
        return result.scalar_one()

    async def update_cohort(self, cohort_id: int, **values: Any) -> None:
        await self.conn.execute(update(Cohort).where(Cohort.id == cohort_id).values(**values))

    async def cohort(self, cohort_id: int) -> CohortFact | None:
        return await self._cohort(Cohort.id == cohort_id)

    async def cohort_by_code(self, code: str) -> CohortFact | None:
        return await self._cohort(Cohort.code == code)

    async def _cohort(self, condition) -> CohortFact | None:
        row = (await self.conn.execute(select(*_COHORT).where(condition))).first()
        return CohortFact(*row) if row else None

    async def cohorts(self, owner_id: int | None) -> list[CohortFact]:
        members = (
            select(func.count())
            .select_from(CohortMember)
            .where(CohortMember.cohort_id == Cohort.id)
            .scalar_subquery()
        )
        query = select(*_COHORT, members).order_by(Cohort.id)
        if owner_id is not None:
            query = query.where(Cohort.owner_id == owner_id)
        return [CohortFact(*row) for row in await self.conn.execute(query)]

    async def join_cohort(self, cohort_id: int, learner_id: int, at: datetime) -> bool:
        result = await self.conn.execute(
            self._insert(CohortMember)  # type: ignore[attr-defined]
            .values(cohort_id=cohort_id, learner_id=learner_id, joined_at=at)
            .on_conflict_do_nothing(index_elements=["cohort_id", "learner_id"])
        )
        return bool(result.rowcount)

    async def learner_cohorts(self, learner_id: int) -> list[int]:
        rows = await self.conn.scalars(
            select(CohortMember.cohort_id).where(CohortMember.learner_id == learner_id)
        )
        return list(rows)

    async def create_broadcast(
        self, owner_id: int, chat_id: int | None, cohort_id: int | None, at: datetime
    ) -> int:
        result = await self.conn.execute(
            Broadcast.__table__.insert()
            .values(
                owner_id=owner_id,
                owner_chat_id=chat_id,
                cohort_id=cohort_id,
                status="draft",
                total=0,
                created_at=at,
            )
            .returning(Broadcast.id)
        )
        return result.scalar_one()

    async def broadcast(self, broadcast_id: int) -> Any:
        return (
            await self.conn.execute(select(Broadcast.__table__).where(Broadcast.id == broadcast_id))
        ).first()

    async def update_broadcast(self, broadcast_id: int, **values: Any) -> None:
        await self.conn.execute(
            update(Broadcast).where(Broadcast.id == broadcast_id).values(**values)
        )

    async def broadcasts(self, owner_id: int | None, statuses: tuple[str, ...]) -> list[Any]:
        query = select(Broadcast.__table__).where(Broadcast.status.in_(statuses))
        if owner_id is not None:
            query = query.where(Broadcast.owner_id == owner_id)
        return list((await self.conn.execute(query.order_by(Broadcast.id))).all())

    def _audience_ids(self, cohort_ids: list[int]):
        return (
            select(CohortMember.learner_id).where(CohortMember.cohort_id.in_(cohort_ids)).distinct()
        )

    async def enqueue_broadcast(
        self, broadcast_id: int, cohort_ids: list[int], now: datetime
    ) -> int:
        """One outbox row per member (learners who blocked us: straight to "blocked")."""
        source = select(
            literal("broadcast"),
            literal(f"broadcast:{broadcast_id}:") + cast(Learner.id, String),
            Learner.id,
            Learner.chat_id,
            literal(broadcast_id),
            case((Learner.active.is_(True), literal("pending")), else_=literal("blocked")),
            literal(0),
            literal(now, type_=OutboxMessage.not_before.type),
            literal(now, type_=OutboxMessage.created_at.type),
        ).where(Learner.id.in_(self._audience_ids(cohort_ids)), Learner.chat_id.is_not(None))
        statement = (
            self._insert(OutboxMessage)  # type: ignore[attr-defined]
            .from_select(
                [
                    "kind",
                    "idempotency_key",
                    "learner_id",
                    "chat_id",
                    "broadcast_id",
                    "status",
                    "attempts",
                    "not_before",
                    "created_at",
                ],
                source,
            )
            .on_conflict_do_nothing(index_elements=["idempotency_key"])
        )
        await self.conn.execute(statement)
        total = await self.conn.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.broadcast_id == broadcast_id)
        )
        return total or 0

    # --- cohort figures -------------------------------------------------------------------

    async def cohort_learners(self, cohort_ids: list[int]) -> list[Any]:
        query = (
            select(
                Learner.id,
                Learner.display_name,
                Learner.share_name,
                Learner.streak_days,
                Learner.last_practice_day,
            )
            .where(Learner.id.in_(self._audience_ids(cohort_ids)))
            .order_by(Learner.id)
        )
        return list((await self.conn.execute(query)).all())

    async def cohort_answers(self, cohort_ids: list[int]) -> list[Any]:
        query = (
            select(Answer.learner_id, *ANSWER_FACT_COLUMNS)
            .where(Answer.learner_id.in_(self._audience_ids(cohort_ids)))
            .order_by(Answer.answered_at, Answer.id)
        )
        return list((await self.conn.execute(query)).all())

    async def cohort_completions(self, cohort_ids: list[int]) -> list[tuple[int, str]]:
        query = select(LessonCompletion.learner_id, LessonCompletion.lesson_id).where(
            LessonCompletion.learner_id.in_(self._audience_ids(cohort_ids))
        )
        return [(a, b) for a, b in await self.conn.execute(query)]

    async def cohort_scores(self, cohort_ids: list[int]) -> list[tuple[int, str, str, float]]:
        query = select(
            TestScore.learner_id, TestScore.course_id, TestScore.kind, TestScore.discernment
        ).where(
            and_(
                TestScore.learner_id.in_(self._audience_ids(cohort_ids)),
                TestScore.discernment.is_not(None),
            )
        )
        return [tuple(row) for row in await self.conn.execute(query)]

    async def cancel_broadcast_rows(self, broadcast_id: int) -> int:
        result = await self.conn.execute(
            update(OutboxMessage)
            .where(OutboxMessage.broadcast_id == broadcast_id, OutboxMessage.status == "pending")
            .values(status="cancelled", last_error="cancelled by the trainer")
        )
        return result.rowcount or 0
