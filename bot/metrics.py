"""Prometheus metrics for `restart-tutor run`: what the tutor receives, sends and has waiting.

Each `Metrics` owns its own `CollectorRegistry` instead of prometheus_client's global default, so
a test (or a second service in one process) starts from zero and nothing registers twice.

* `updates_total{type}` (counter): updates handed to the engine, by Bot API type: message,
  callback_query, poll_answer, my_chat_member, inline_query, other.
* `reply_seconds` (histogram): handling one update, the engine's work plus sending its replies
  (buckets from 5 ms to 5 s).
* `messages_sent_total{kind,result}` (counter): kind reply counts Bot API sending calls; kinds
  nudge, reminder and broadcast count outbox rows the sender tried. result: sent, retry, failed,
  blocked.
* `telegram_429_total` (counter): 429 "Too Many Requests" answers from Telegram, on any call.
* `outbox_depth{status}` (gauge): outbox rows per status (pending, sending, sent, failed,
  blocked, cancelled).
* `due_learners` (gauge): learners whose nudge is due and not yet taken by the planner; a high,
  steady value means the planner is falling behind.
* `process_*`: CPU, memory and open files of the process (prometheus_client, on Linux).

Counters and the histogram are updated in process as things happen. The two gauges come from the
database, so every instance reports the same shared figures; `metrics_handler` refreshes them at
most every `REFRESH_EVERY` seconds, in a task of their own, and a scrape never waits more than
`REFRESH_WAIT` seconds for them: a slow or unreachable database gives stale gauges (and a warning
in the log), never a hanging scrape. Labels are fixed sets, pre-created at zero so every series
exists from the first scrape; an unexpected value is counted as "other" (updates) or ignored
(sends), so label cardinality cannot grow.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.transports.telegram import SENDING_METHODS, BotApi, SendError
from storage.models import Learner, OutboxMessage
from storage.schedules import eligible

log = logging.getLogger(__name__)

UPDATE_TYPES = (
    "message",
    "callback_query",
    "poll_answer",
    "my_chat_member",
    "inline_query",
    "other",
)
SEND_KINDS = ("reply", "nudge", "reminder", "broadcast")
SEND_RESULTS = ("sent", "retry", "failed", "blocked")
OUTBOX_STATUSES = ("pending", "sending", "sent", "failed", "blocked", "cancelled")
"""The statuses `storage.outbox` writes; any other found in the table is reported as well."""

REPLY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0)
"""Seconds. A reply is a database transaction plus one to a few Bot API calls: tens of
milliseconds when all is well, seconds when Telegram or the database is slow."""

REFRESH_EVERY = 5.0
"""Seconds between two refreshes of the database gauges, however often Prometheus scrapes."""
REFRESH_WAIT = 2.0
"""Seconds a scrape waits for a refresh in progress before answering with the previous values."""

_RESULT_OF_ROW = {"sent": "sent", "retry": "retry", "failed": "failed", "blocked": "blocked"}
"""`storage.outbox.Result.status` → result label; "skipped" (nothing to send) is not a send."""
_RESULT_OF_ERROR = {"retry_after": "retry", "blocked": "blocked"}
"""`SendError.kind` → result label for a reply; bad_request and transient are "failed" (a
reply is not retried, except once after a short 429 by `BudgetedApi`)."""


def update_type(raw: Mapping[str, Any]) -> str:
    """The Bot API type of an update (its one key beside `update_id`), or "other"."""
    for kind in UPDATE_TYPES[:-1]:
        if raw.get(kind) is not None:
            return kind
    return "other"


class Metrics:
    """The tutor's metric objects, registered in `registry` (a fresh one unless given).

    `engine` is the database whose outbox and learners the gauges describe; without one the
    gauges keep whatever was last set.
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        engine: AsyncEngine | None = None,
        refresh_every: float = REFRESH_EVERY,
        refresh_wait: float = REFRESH_WAIT,
        process: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.registry = registry if registry is not None else CollectorRegistry()
        self.engine = engine
        self.refresh_every = refresh_every
        self.refresh_wait = refresh_wait
        self.clock = clock
        self._refreshed_at: float | None = None
        self._refreshing: asyncio.Task[None] | None = None
        reg = self.registry

        self.updates = Counter(
            "updates", "Telegram updates received, by Bot API update type.", ["type"], registry=reg
        )
        self.reply_seconds = Histogram(
            "reply_seconds",
            "Seconds to handle one update: the engine's work plus sending its replies.",
            buckets=REPLY_BUCKETS,
            registry=reg,
        )
        self.messages_sent = Counter(
            "messages_sent",
            "Messages sent to Telegram by kind (reply, nudge, reminder, broadcast) and result "
            "(sent, retry, failed, blocked). Replies count Bot API sending calls; proactive "
            "kinds count outbox rows the sender tried.",
            ["kind", "result"],
            registry=reg,
        )
        self.unit_conflicts = Counter(
            "unit_conflicts",
            "Updates handled again from the start because another update of the same learner "
            "changed it first (PostgreSQL's optimistic units, storage/optimistic.py).",
            registry=reg,
        )
        self.telegram_429 = Counter(
            "telegram_429", "Telegram answers 429 Too Many Requests (any call).", registry=reg
        )
        self.outbox_depth = Gauge(
            "outbox_depth", "Outbox rows by status (from the database).", ["status"], registry=reg
        )
        self.due_learners = Gauge(
            "due_learners",
            "Learners whose daily nudge is due and not yet taken by the planner "
            "(from the database).",
            registry=reg,
        )
        # Each labelled series made once: `labels()` takes a lock and builds a key on every
        # call, and these are counted on every update and every reply.
        self._updates_of = {kind: self.updates.labels(type=kind) for kind in UPDATE_TYPES}
        self._sent_of = {
            (kind, result): self.messages_sent.labels(kind=kind, result=result)
            for kind in SEND_KINDS
            for result in SEND_RESULTS
        }
        for status in OUTBOX_STATUSES:
            self.outbox_depth.labels(status=status).set(0)
        if process:
            ProcessCollector(registry=reg)  # process_cpu_seconds_total, memory, open fds (Linux)

    # --- updates ---------------------------------------------------------------------------

    def count_update(self, raw: Mapping[str, Any]) -> str:
        kind = update_type(raw)
        self._updates_of[kind].inc()
        return kind

    @contextmanager
    def observe_update(self, raw: Mapping[str, Any]) -> Iterator[None]:
        """Count `raw` and time its handling (failures included) in `reply_seconds`."""
        self.count_update(raw)
        started = time.perf_counter()
        try:
            yield
        finally:
            self.reply_seconds.observe(time.perf_counter() - started)

    # --- sends -----------------------------------------------------------------------------

    def count_send(self, kind: str, result: str) -> None:
        if series := self._sent_of.get((kind, result)):
            series.inc()

    def count_outbox_result(self, kind: str, status: str) -> None:
        """One outbox row tried by the sender (`Result.status`: sent, retry, failed, blocked;
        "skipped" is not counted: nothing was sent)."""
        if result := _RESULT_OF_ROW.get(status):
            self.count_send(kind, result)

    # --- database gauges ---------------------------------------------------------------------

    async def refresh(self, engine: AsyncEngine | None = None) -> None:
        """Read the outbox and due-learner figures and set the gauges."""
        engine = engine or self.engine
        if engine is None:
            return
        depth, due = await read_gauges(engine, datetime.now(UTC))
        for status in {*OUTBOX_STATUSES, *depth}:
            self.outbox_depth.labels(status=status).set(depth.get(status, 0))
        self.due_learners.set(due)
        self._refreshed_at = self.clock()

    async def refresh_if_stale(self) -> None:
        """Refresh at most every `refresh_every` seconds; wait `refresh_wait` at most."""
        if self.engine is None:
            return
        stale = (
            self._refreshed_at is None or self.clock() - self._refreshed_at >= self.refresh_every
        )
        if stale and (self._refreshing is None or self._refreshing.done()):
            self._refreshing = asyncio.create_task(self._refresh_logged())
        if self._refreshing is not None and not self._refreshing.done():
            await asyncio.wait({self._refreshing}, timeout=self.refresh_wait)

    async def _refresh_logged(self) -> None:
        try:
            await self.refresh()
        except Exception as exc:  # the database is down or slow: serve the last values
            log.warning("metrics: database gauges not refreshed: %s", type(exc).__name__)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


async def read_gauges(engine: AsyncEngine, now: datetime) -> tuple[dict[str, int], int]:
    """Outbox rows per status, and learners due for a nudge at `now`: two cheap queries
    (`ix_outbox_due` leads with status; `next_nudge_at` is indexed). Due means what the planner
    takes on its next tick: `next_nudge_at <= now` and `storage.schedules.eligible()` (active,
    nudges on, onboarded, a daily time)."""
    by_status = select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
    due = select(func.count()).select_from(Learner).where(Learner.next_nudge_at <= now, eligible())
    async with engine.connect() as conn:
        depth = {status: int(n) for status, n in (await conn.execute(by_status)).all()}
        due_count = int((await conn.execute(due)).scalar_one())
    return depth, due_count


class CountingApi:
    """A `BotApi` wrapper that counts Telegram's 429s and, given a `kind`, every sending call
    (sendMessage, sendPhoto, sendPoll, edits…) in `messages_sent_total{kind,result}`.

    Wrap the raw API once per path so each call passes one wrapper: the interactive path with
    `kind="reply"`; the sender's path without a kind (the sender counts rows, not calls).
    """

    def __init__(self, api: BotApi, metrics: Metrics, kind: str | None = None):
        self.api = api
        self.metrics = metrics
        self.kind = kind

    async def call(self, method: str, params: dict[str, Any]) -> Any:
        counted = self.kind is not None and method in SENDING_METHODS
        try:
            result = await self.api.call(method, params)
        except SendError as exc:
            if exc.kind == "retry_after":
                self.metrics.telegram_429.inc()
            if counted:
                self.metrics.count_send(self.kind, _RESULT_OF_ERROR.get(exc.kind, "failed"))
            raise
        except Exception:
            if counted:
                self.metrics.count_send(self.kind, "failed")
            raise
        if counted:
            self.metrics.count_send(self.kind, "sent")
        return result


METRICS_KEY: web.AppKey[Metrics] = web.AppKey("metrics", Metrics)
"""Where `metrics_handler` finds the `Metrics` (an aiohttp AppKey: plain string keys warn)."""


async def metrics_handler(request: web.Request) -> web.Response:
    """GET /metrics: the Prometheus text format, database gauges refreshed when stale."""
    metrics = request.app[METRICS_KEY]
    await metrics.refresh_if_stale()
    return web.Response(body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})


def add_metrics_route(app: web.Application, metrics: Metrics, path: str = "/metrics") -> None:
    """Serve `metrics` at `path` on `app` (before the application is started)."""
    app[METRICS_KEY] = metrics
    app.router.add_get(path, metrics_handler)
