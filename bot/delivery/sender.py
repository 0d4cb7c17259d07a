"""The sender: takes outbox rows and delivers them within Telegram's limits, losing none.

A pipeline: claim a few rows (at most `concurrency` in flight), compose each one's message in the
learner's language, wait for the chat's spacing and the token's budget, send, and write results
back in small batches. Per outcome:

* sent → "sent";
* 429 → pause every send on the token for `retry_after`, the row goes back to "pending" after it;
* 5xx / network → back to "pending" with exponential backoff, "failed" with the reason after
  `max_attempts`;
* 403 → the learner is marked blocked and their pending rows cancelled (never retried);
* 401 → Telegram refuses the bot token: an error in the log, every send paused for
  `UNAUTHORIZED_PAUSE`, the row back to "pending" (the learners are not blocked: the token is
  at fault, not them, and a revoked token must not deactivate every learner it touches);
* 400 → "failed" with Telegram's description (retrying cannot help).

Rows claimed by a process that dies are claimed again when their lease expires, so a crash loses
nothing; at most the rows in flight at the crash are sent twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.delivery.budget import Budget, ChatSpacing
from bot.transports.telegram import SendError
from bot.tutor.events import Action
from bot.tutor.ports import utcnow
from storage.outbox import Outbox, OutboxRow, Result

log = logging.getLogger(__name__)

UNAUTHORIZED_PAUSE = 60.0
"""Seconds between tries while Telegram refuses the token: nothing is lost meanwhile, and
delivery resumes by itself once the token is accepted again."""

Compose = Callable[[OutboxRow], Awaitable[list[Action]]]
Deliver = Callable[[int, Action], Awaitable[object]]


class SenderLocked(RuntimeError):
    """Another process holds the SQLite sender lease."""


@dataclass
class SenderStats:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    blocked: int = 0
    rate_limited: int = 0
    unauthorized: int = 0


class Sender:
    def __init__(
        self,
        outbox: Outbox,
        compose: Compose,
        deliver: Deliver,
        budget: Budget,
        spacing: ChatSpacing | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
        concurrency: int = 64,
        lease: timedelta = timedelta(minutes=2),
        max_attempts: int = 8,
        max_backoff: float = 300.0,
        flush_every: float = 0.1,
        idle_sleep: float = 0.5,
        unauthorized_pause: float = UNAUTHORIZED_PAUSE,
    ):
        self.outbox = outbox
        self.compose = compose
        self.deliver = deliver
        self.budget = budget
        self.spacing = spacing or ChatSpacing()
        self.clock = clock
        self.concurrency = concurrency
        self.lease = lease
        self.max_attempts = max_attempts
        self.max_backoff = max_backoff
        self.flush_every = flush_every
        self.idle_sleep = idle_sleep
        self.unauthorized_pause = unauthorized_pause
        self._refusal_logged_at: float | None = None
        """When (the budget's clock) the last refused-token error was logged: once per pause,
        however many sends failed together, and whether or not a 429 pause was running."""
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{id(self)}"
        self.stats = SenderStats()
        self.on_result: Callable[[str, str], None] | None = None
        """Told (kind, status) for every row finished: the metrics hook."""

    async def ensure_lock(self) -> None:
        if self.outbox.dialect != "sqlite":
            return  # PostgreSQL: rows are claimed with SKIP LOCKED, any number of senders
        lock_lease = min(self.lease, timedelta(seconds=30))
        if not await self.outbox.acquire_lock("sender", self.holder, self.clock(), lock_lease):
            raise SenderLocked(
                "Another instance is already sending from this SQLite database. Run a single "
                "instance with SQLite, or use PostgreSQL (DATABASE_URL) for several."
            )

    async def run(self, stop: asyncio.Event, until_idle: bool = False) -> None:
        await self.ensure_lock()
        inflight: set[asyncio.Task[Result]] = set()
        kinds: dict[asyncio.Task[Result], str] = {}
        results: list[Result] = []
        last_flush = last_lock = asyncio.get_running_loop().time()
        try:
            while True:
                loop_now = asyncio.get_running_loop().time()
                if loop_now - last_lock > min(10.0, self.lease.total_seconds() / 3):
                    await self.ensure_lock()
                    last_lock = loop_now
                claimed = 0
                if not stop.is_set() and len(inflight) < self.concurrency:
                    rows = await self.outbox.claim(
                        self.clock(), self.concurrency - len(inflight), self.lease
                    )
                    claimed = len(rows)
                    for row in rows:
                        task = asyncio.create_task(self._one(row))
                        kinds[task] = row.kind
                        inflight.add(task)
                if inflight:
                    done, _ = await asyncio.wait(
                        inflight, timeout=self.flush_every, return_when=asyncio.FIRST_COMPLETED
                    )
                    for task in done:
                        inflight.discard(task)
                        results.append(task.result())
                        if self.on_result is not None:
                            self.on_result(kinds.pop(task, "other"), task.result().status)
                now = asyncio.get_running_loop().time()
                if results and (now - last_flush >= self.flush_every or not inflight):
                    await self.outbox.finish(results, self.clock())
                    results.clear()
                    last_flush = now
                if not inflight and not claimed:
                    if stop.is_set() or until_idle:
                        return
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self.idle_sleep)
        finally:
            if inflight:
                for task in inflight:
                    task.cancel()
                outcome = await asyncio.gather(*inflight, return_exceptions=True)
                results += [r for r in outcome if isinstance(r, Result)]
            if results:
                await self.outbox.finish(results, self.clock())
            if self.outbox.dialect == "sqlite":
                await self.outbox.release_lock("sender", self.holder)

    async def _one(self, row: OutboxRow) -> Result:
        try:
            actions = await self.compose(row)
            if not actions:
                return Result(row.id, "skipped", "nothing to send")
            for action in actions:
                await self.spacing.wait(row.chat_id)
                await self.budget.acquire()
                try:
                    await self.deliver(row.chat_id, action)
                finally:
                    self.spacing.sent(row.chat_id)
            self.stats.sent += 1
            return Result(row.id, "sent")
        except SendError as exc:
            return self._after_error(row, exc)
        except asyncio.CancelledError:
            return Result(row.id, "retry", "interrupted", self.clock())
        except Exception as exc:  # a bug must not stop the other messages
            log.exception("outbox row %s could not be sent", row.id)
            self.stats.failed += 1
            return Result(row.id, "failed", f"{type(exc).__name__}: {exc}")

    def _after_error(self, row: OutboxRow, exc: SendError) -> Result:
        now = self.clock()
        if exc.kind == "retry_after":
            self.stats.rate_limited += 1
            self.budget.pause(exc.retry_after)
            return Result(
                row.id, "retry", exc.description, now + timedelta(seconds=exc.retry_after)
            )
        if exc.kind == "unauthorized":
            self.stats.unauthorized += 1
            logged_at, at = self._refusal_logged_at, self.budget.clock()
            if logged_at is None or at - logged_at >= self.unauthorized_pause:
                self._refusal_logged_at = at
                log.error(
                    "Telegram refuses the bot token (%s); sending is paused for %.0f s. "
                    "Check TELEGRAM_BOT_TOKEN against @BotFather.",
                    exc.description,
                    self.unauthorized_pause,
                )
            self.budget.pause(self.unauthorized_pause)
            wait = timedelta(seconds=self.unauthorized_pause)
            return Result(row.id, "retry", exc.description, now + wait)
        if exc.kind == "blocked":
            self.stats.blocked += 1
            return Result(row.id, "blocked", exc.description, learner_id=row.learner_id)
        if exc.kind == "transient" and row.attempts < self.max_attempts:
            self.stats.retried += 1
            wait = min(self.max_backoff, 2.0**row.attempts)
            return Result(row.id, "retry", exc.description, now + timedelta(seconds=wait))
        self.stats.failed += 1
        return Result(row.id, "failed", exc.description)
