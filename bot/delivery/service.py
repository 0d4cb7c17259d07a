"""Delivery, wired: APScheduler is only the timer; storage is the system of record.

Jobs (explicit `coalesce=True` and `misfire_grace_time`, so a busy or restarted process runs a
missed tick once rather than in a burst or never):

* `tick` every 20 s: due learners' nudges into the outbox (`Planner.enqueue_due`);
* `streak-at-risk` hourly at :05: the evening reminder for learners whose local hour is 19;
* `housekeeping` daily: old delivered rows and poll links removed.

The sender runs beside them as one long task per process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.delivery.budget import Budget
from bot.delivery.sender import Sender
from bot.tutor.engine import Tutor
from bot.tutor.events import Action, Reply
from bot.tutor.ports import utcnow
from storage.outbox import Outbox, OutboxRow
from storage.schedules import Planner

log = logging.getLogger(__name__)

TICK_SECONDS = 20
TICK_GRACE_SECONDS = 15


def composer(tutor: Tutor) -> Callable[[OutboxRow], object]:
    async def compose(row: OutboxRow) -> list[Action]:
        if row.kind in ("nudge", "reminder") and row.learner_id is not None:
            return await tutor.compose(row.learner_id, row.kind, row.payload)
        text = (row.payload or {}).get("text")
        return [Reply(text)] if text else []

    return compose


class DeliveryService:
    def __init__(self, planner: Planner, sender: Sender, clock: Callable[[], datetime] = utcnow):
        self.planner = planner
        self.sender = sender
        self.clock = clock
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def build(
        cls,
        tutor: Tutor,
        outbox: Outbox,
        deliver,
        budget: Budget,
        clock: Callable[[], datetime] = utcnow,
        lease: timedelta = timedelta(minutes=2),
    ) -> DeliveryService:
        planner = Planner(outbox.engine, outbox)
        sender = Sender(outbox, composer(tutor), deliver, budget, clock=clock, lease=lease)
        return cls(planner, sender, clock)

    async def tick(self) -> None:
        report = await self.planner.enqueue_due(self.clock())
        if report.learners:
            log.info(
                "tick: %s due, %s nudges enqueued, %s held for quiet hours",
                report.learners,
                report.enqueued,
                report.skipped_quiet,
            )

    async def at_risk(self) -> None:
        await self.planner.at_risk(self.clock())

    async def housekeeping(self) -> None:
        await self.planner.housekeeping(self.clock())

    async def start(self) -> None:
        add = self.scheduler.add_job
        add(
            self.tick,
            IntervalTrigger(seconds=TICK_SECONDS),
            id="tick",
            replace_existing=True,
            coalesce=True,
            misfire_grace_time=TICK_GRACE_SECONDS,
            max_instances=1,
            next_run_time=datetime.now(UTC),
        )
        add(
            self.at_risk,
            CronTrigger(minute=5, timezone=UTC),
            id="streak-at-risk",
            replace_existing=True,
            coalesce=True,
            misfire_grace_time=600,
            max_instances=1,
        )
        add(
            self.housekeeping,
            CronTrigger(hour=3, minute=17, timezone=UTC),
            id="housekeeping",
            replace_existing=True,
            coalesce=True,
            misfire_grace_time=3600,
            max_instances=1,
        )
        await self.sender.ensure_lock()  # refuse early, with the clear message
        self.scheduler.start()
        self._task = asyncio.create_task(self.sender.run(self._stop))

    async def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        self._stop.set()
        if self._task:
            with contextlib.suppress(Exception):
                await self._task
