"""The planner's database side: find due learners, put their nudges in the outbox, move them on.

Works in batches so memory stays flat however many learners are due: each batch is one short
transaction that reads due learners (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so several
instances can tick at once), inserts one outbox row per learner keyed by the local date of the
slot (a unique key: never two nudges for one local date), and stores each learner's next
`next_nudge_at`. A learner late because we were down gets one catch-up nudge, unless it would land
in their quiet hours.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from bot.delivery.planner import in_quiet_hours, next_after, parse_weekdays
from bot.tutor.streaks import local_date
from bot.tutor.zones import resolve_zone
from storage.models import Learner, OutboxMessage, PollLink
from storage.outbox import Outbox

CATCH_UP_AFTER = timedelta(minutes=5)
"""A nudge later than this is a catch-up (subject to quiet hours)."""


@dataclass(frozen=True)
class TickReport:
    enqueued: int
    skipped_quiet: int
    learners: int


MOVE = (
    update(Learner.__table__)
    .where(Learner.__table__.c.id == bindparam("learner"))
    .values(next_nudge_at=bindparam("next_at"))
)
"""One executemany statement (Core, not the ORM's bulk path: a tick moves thousands of rows)."""


def eligible():
    return and_(
        Learner.nudges_enabled.is_(True),
        Learner.active.is_(True),
        Learner.onboarding == "done",
        Learner.daily_time.is_not(None),
    )


class Planner:
    def __init__(self, engine: AsyncEngine, outbox: Outbox, batch: int = 5000):
        self.engine = engine
        self.outbox = outbox
        self.sessions = async_sessionmaker(engine, expire_on_commit=False)
        self.batch = batch

    async def enqueue_due(self, now: datetime) -> TickReport:
        enqueued = skipped = seen = 0
        while True:
            done, new, quiet = await self._batch(now)
            enqueued, skipped, seen = enqueued + new, skipped + quiet, seen + done
            if done < self.batch:
                return TickReport(enqueued, skipped, seen)

    async def _batch(self, now: datetime) -> tuple[int, int, int]:
        query = (
            select(
                Learner.id,
                Learner.chat_id,
                Learner.time_zone,
                Learner.daily_time,
                Learner.weekdays,
                Learner.paused_until,
                Learner.quiet_hours,
                Learner.next_nudge_at,
            )
            .where(Learner.next_nudge_at <= now, eligible())
            .order_by(Learner.next_nudge_at)
            .limit(self.batch)
        )
        if self.engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        async with self.sessions() as session, session.begin():
            rows = (await session.execute(query)).all()
            if not rows:
                return 0, 0, 0
            messages, moves, quiet = [], [], 0
            for learner_id, chat_id, zone_name, daily, weekdays, paused, quiet_hours, due in rows:
                zone = resolve_zone(zone_name)
                late = now - due > CATCH_UP_AFTER
                if late and in_quiet_hours(quiet_hours, now, zone):
                    quiet += 1
                elif chat_id is not None:
                    slot = local_date(due, zone)
                    messages.append(
                        {
                            "kind": "nudge",
                            "idempotency_key": f"nudge:{learner_id}:{slot}",
                            "learner_id": learner_id,
                            "chat_id": chat_id,
                            "status": "pending",
                            "attempts": 0,
                            "not_before": now,
                            "created_at": now,
                        }
                    )
                moves.append(
                    {
                        "learner": learner_id,
                        "next_at": next_after(
                            zone_name, daily, parse_weekdays(weekdays), paused, now
                        ),
                    }
                )
            new = 0
            if messages:
                new = await self.outbox.insert_rows(session, messages)
            await session.execute(MOVE, moves)
        return len(rows), new, quiet

    async def at_risk(self, now: datetime, local_hour: int = 19) -> int:
        """Enqueue the evening "streak at risk" reminder for learners whose local hour is
        `local_hour`, with a streak of 2 or more, who have not practised today, outside quiet
        hours. Keyed per local date: at most one a day."""
        query = select(
            Learner.id,
            Learner.chat_id,
            Learner.time_zone,
            Learner.quiet_hours,
            Learner.last_practice_day,
            Learner.streak_days,
        ).where(
            eligible(),
            Learner.streak_days >= 2,
            Learner.last_practice_day >= (now - timedelta(days=2)).date(),
            Learner.chat_id.is_not(None),
        )
        messages = []
        async with self.sessions() as session:
            result = await session.stream(query.execution_options(yield_per=5000))
            async for learner_id, chat_id, zone_name, quiet, last_day, streak in result:
                zone = resolve_zone(zone_name)
                local = now.astimezone(zone)
                today = local.date()
                if local.hour != local_hour or last_day is None or last_day >= today:
                    continue
                if last_day < today - timedelta(days=1) or in_quiet_hours(quiet, now, zone):
                    continue
                messages.append(
                    {
                        "kind": "reminder",
                        "idempotency_key": f"reminder:{learner_id}:{today}",
                        "learner_id": learner_id,
                        "chat_id": chat_id,
                        "payload": {"streak": streak},
                    }
                )
        return await self.outbox.enqueue(messages, now)

    async def housekeeping(self, now: datetime, keep: timedelta = timedelta(days=30)) -> int:
        """Forget delivered and dead outbox rows and poll links older than `keep`."""
        cutoff = now - keep
        async with self.sessions() as session, session.begin():
            gone = await session.execute(
                delete(OutboxMessage).where(
                    OutboxMessage.status.in_(("sent", "failed", "blocked", "cancelled")),
                    OutboxMessage.created_at < cutoff,
                )
            )
            await session.execute(delete(PollLink).where(PollLink.created_at < cutoff))
        return gone.rowcount or 0
