"""Delivery, wired: APScheduler is only the timer; storage is the system of record.

Jobs (explicit `coalesce=True` and `misfire_grace_time`, so a busy or restarted process runs a
missed tick once rather than in a burst or never):

* `tick` every 20 s: due learners' nudges into the outbox (`Planner.enqueue_due`);
* `broadcasts` every 2 s: scheduled broadcasts started when due, progress messages edited;
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

from bot.delivery.broadcasts import BroadcastMonitor
from bot.delivery.budget import Budget
from bot.delivery.sender import Sender
from bot.transports.telegram import BotApi
from bot.tutor.engine import Tutor
from bot.tutor.events import Action, Reply
from bot.tutor.ports import utcnow
from storage.outbox import Outbox, OutboxRow
from storage.schedules import Planner

log = logging.getLogger(__name__)

TICK_SECONDS = 20
TICK_GRACE_SECONDS = 15
BROADCAST_SECONDS = 2
"""How often scheduled broadcasts start when due and progress messages are refreshed."""


def composer(tutor: Tutor) -> Callable[[OutboxRow], object]:
    """Compose each row when it is sent; a broadcast's content is read once, then cached."""
    broadcasts: dict[int, list[Action]] = {}

    async def compose(row: OutboxRow) -> list[Action]:
        if row.kind in ("nudge", "reminder") and row.learner_id is not None:
            return await tutor.compose(row.learner_id, row.kind, row.payload)
        if row.kind == "broadcast" and row.broadcast_id is not None:
            if row.broadcast_id not in broadcasts:
                if len(broadcasts) > 100:
                    broadcasts.clear()
                broadcasts[row.broadcast_id] = await tutor.compose_broadcast(row.broadcast_id)
            return broadcasts[row.broadcast_id]
        text = (row.payload or {}).get("text")
        return [Reply(text)] if text else []

    return compose


class DeliveryService:
    def __init__(
        self,
        planner: Planner,
        sender: Sender,
        clock: Callable[[], datetime] = utcnow,
        monitor: BroadcastMonitor | None = None,
    ):
        self.planner = planner
        self.sender = sender
        self.monitor = monitor
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
        api: BotApi | None = None,
    ) -> DeliveryService:
        planner = Planner(outbox.engine, outbox)
        sender = Sender(outbox, composer(tutor), deliver, budget, clock=clock, lease=lease)
        monitor = (
            BroadcastMonitor(tutor.store, api, tutor.locales_dir, clock)  # type: ignore[arg-type]
            if api is not None
            else None
        )
        return cls(planner, sender, clock, monitor)

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

    async def broadcasts(self) -> None:
        if self.monitor is not None:
            await self.monitor.tick()

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
            self.broadcasts,
            IntervalTrigger(seconds=BROADCAST_SECONDS),
            id="broadcasts",
            replace_existing=True,
            coalesce=True,
            misfire_grace_time=BROADCAST_SECONDS,
            max_instances=1,
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
