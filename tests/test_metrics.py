"""Metrics: counters move when things happen, /metrics speaks Prometheus, and the database gauges
report real counts from a real database (SQLite here, PostgreSQL too where its binaries are)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.metrics import (
    OUTBOX_STATUSES,
    SEND_KINDS,
    SEND_RESULTS,
    UPDATE_TYPES,
    CountingApi,
    Metrics,
    add_metrics_route,
    read_gauges,
    update_type,
)
from bot.transports.telegram import SendError
from storage.db import create_engine, upgrade
from storage.models import Learner, OutboxMessage

NOW = datetime.now(UTC)


def value(metrics: Metrics, name: str, **labels: str) -> float:
    found = metrics.registry.get_sample_value(name, labels)
    assert found is not None, f"no sample {name}{labels}"
    return found


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(db_url)
    await upgrade(engine)
    yield engine
    await engine.dispose()


async def add_learners(engine: AsyncEngine, rows: list[dict[str, Any]]) -> None:
    base = {"onboarding": "done", "active": True, "nudges_enabled": True, "daily_time": "09:00"}
    values = [
        {**base, "external_id": f"tg:{i}", "chat_id": i, "created_at": NOW, **row}
        for i, row in enumerate(rows, start=1)
    ]
    async with engine.begin() as conn:
        await conn.execute(insert(Learner), values)


async def add_outbox(
    engine: AsyncEngine, statuses: list[str], kind: str = "nudge", key: str = "k"
) -> None:
    values = [
        {
            "kind": kind,
            "idempotency_key": f"{key}{i}",
            "chat_id": i,
            "status": status,
            "attempts": 0,
            "not_before": NOW,
            "created_at": NOW,
        }
        for i, status in enumerate(statuses)
    ]
    async with engine.begin() as conn:
        await conn.execute(insert(OutboxMessage), values)


# --- counters ------------------------------------------------------------------------------


def test_each_update_type_is_counted_under_its_own_label():
    metrics = Metrics()
    raws = [
        {"update_id": 1, "message": {"text": "hi"}},
        {"update_id": 2, "callback_query": {"id": "q"}},
        {"update_id": 3, "poll_answer": {"poll_id": "p"}},
        {"update_id": 4, "my_chat_member": {}},
        {"update_id": 5, "inline_query": {"id": "i"}},
        {"update_id": 6, "edited_message": {"text": "hi"}},
        {"update_id": 7, "message": {"text": "again"}},
    ]
    for raw in raws:
        metrics.count_update(raw)
    assert value(metrics, "updates_total", type="message") == 2
    for kind in ("callback_query", "poll_answer", "my_chat_member", "inline_query", "other"):
        assert value(metrics, "updates_total", type=kind) == 1
    assert update_type({"update_id": 8}) == "other"


def test_observe_update_counts_and_times_even_when_handling_fails():
    metrics = Metrics()
    with metrics.observe_update({"update_id": 1, "message": {}}):
        pass
    with pytest.raises(RuntimeError), metrics.observe_update({"update_id": 2, "message": {}}):
        raise RuntimeError("database down")
    assert value(metrics, "updates_total", type="message") == 2
    assert value(metrics, "reply_seconds_count") == 2
    assert value(metrics, "reply_seconds_bucket", le="5.0") == 2
    assert 0 <= value(metrics, "reply_seconds_sum") < 1


def test_outbox_results_are_counted_by_kind_and_skips_are_not_sends():
    metrics = Metrics()
    for status in ("sent", "sent", "retry", "failed", "blocked", "skipped"):
        metrics.count_outbox_result("nudge", status)
    metrics.count_outbox_result("broadcast", "sent")
    metrics.count_outbox_result("mystery", "sent")  # unknown kind: no new series
    assert value(metrics, "messages_sent_total", kind="nudge", result="sent") == 2
    for result in ("retry", "failed", "blocked"):
        assert value(metrics, "messages_sent_total", kind="nudge", result=result) == 1
    assert value(metrics, "messages_sent_total", kind="broadcast", result="sent") == 1
    assert (
        metrics.registry.get_sample_value(
            "messages_sent_total", {"kind": "mystery", "result": "sent"}
        )
        is None
    )


class ScriptedApi:
    """Answers each call with the next scripted outcome: a value, or a SendError to raise."""

    def __init__(self, *outcomes: Any):
        self.outcomes = list(outcomes)
        self.calls: list[str] = []

    async def call(self, method: str, params: dict[str, Any]) -> Any:
        self.calls.append(method)
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


async def test_counting_api_counts_replies_by_result_and_every_429():
    metrics = Metrics()
    api = CountingApi(
        ScriptedApi(
            {"message_id": 1},
            SendError("retry_after", "Too Many Requests: retry after 3", 3),
            SendError("blocked", "Forbidden: bot was blocked by the user"),
            SendError("bad_request", "Bad Request: message is too long"),
            SendError("transient", "Bad Gateway"),
            True,
        ),
        metrics,
        kind="reply",
    )
    await api.call("sendMessage", {"chat_id": 1, "text": "hi"})
    for _ in range(4):
        with pytest.raises(SendError):
            await api.call("sendMessage", {"chat_id": 1, "text": "hi"})
    await api.call("setMyCommands", {"commands": []})  # not a message: not counted as a send
    assert value(metrics, "messages_sent_total", kind="reply", result="sent") == 1
    assert value(metrics, "messages_sent_total", kind="reply", result="retry") == 1
    assert value(metrics, "messages_sent_total", kind="reply", result="blocked") == 1
    assert value(metrics, "messages_sent_total", kind="reply", result="failed") == 2
    assert value(metrics, "telegram_429_total") == 1


async def test_counting_api_without_a_kind_counts_only_429s():
    metrics = Metrics()
    api = CountingApi(ScriptedApi(SendError("retry_after", "wait", 5), {"message_id": 2}), metrics)
    with pytest.raises(SendError):
        await api.call("sendMessage", {"chat_id": 1, "text": "nudge"})
    await api.call("sendMessage", {"chat_id": 1, "text": "nudge"})
    assert value(metrics, "telegram_429_total") == 1
    for kind in SEND_KINDS:
        for result in SEND_RESULTS:
            assert value(metrics, "messages_sent_total", kind=kind, result=result) == 0


def test_each_metrics_has_its_own_registry():
    first, second = Metrics(), Metrics()
    first.telegram_429.inc()
    assert value(first, "telegram_429_total") == 1
    assert value(second, "telegram_429_total") == 0
    shared = CollectorRegistry()
    assert Metrics(shared, process=False).registry is shared


# --- the database gauges ---------------------------------------------------------------------


async def test_refresh_reports_real_counts_from_the_database(engine: AsyncEngine):
    past, future = NOW - timedelta(minutes=3), NOW + timedelta(hours=5)
    await add_learners(
        engine,
        [
            {"next_nudge_at": past},  # due
            {"next_nudge_at": past},  # due
            {"next_nudge_at": NOW - timedelta(days=2)},  # due (late: a catch-up)
            {"next_nudge_at": future},  # not yet
            {"next_nudge_at": None, "daily_time": None},  # no schedule
            {"next_nudge_at": past, "active": False},  # blocked the bot
            {"next_nudge_at": past, "nudges_enabled": False},  # said /stop
            {"next_nudge_at": past, "onboarding": "language"},  # still onboarding
        ],
    )
    await add_outbox(engine, ["pending"] * 4 + ["sending"] * 2 + ["sent"] * 3 + ["failed"])

    metrics = Metrics(engine=engine)
    await metrics.refresh()

    assert value(metrics, "due_learners") == 3
    expected = {"pending": 4, "sending": 2, "sent": 3, "failed": 1, "blocked": 0, "cancelled": 0}
    for status in OUTBOX_STATUSES:
        assert value(metrics, "outbox_depth", status=status) == expected[status], status

    # A status whose rows are gone drops back to zero on the next refresh.
    async with engine.begin() as conn:
        await conn.execute(OutboxMessage.__table__.delete().where(OutboxMessage.status == "failed"))
    await metrics.refresh()
    assert value(metrics, "outbox_depth", status="failed") == 0


async def test_read_gauges_on_an_empty_database(engine: AsyncEngine):
    assert await read_gauges(engine, NOW) == ({}, 0)


# --- the /metrics endpoint -------------------------------------------------------------------


async def scrape(metrics: Metrics) -> tuple[int, str, str]:
    app = web.Application()
    add_metrics_route(app, metrics)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/metrics")
        return response.status, response.headers["Content-Type"], await response.text()


async def test_metrics_endpoint_serves_prometheus_text(tmp_path: Path):
    engine = create_engine(f"sqlite:///{tmp_path / 'tutor.db'}")
    await upgrade(engine)
    try:
        await add_outbox(engine, ["pending", "pending"])
        metrics = Metrics(engine=engine)
        metrics.count_update({"update_id": 1, "message": {}})
        with metrics.observe_update({"update_id": 2, "callback_query": {}}):
            pass
        metrics.count_outbox_result("reminder", "sent")
        metrics.telegram_429.inc()

        status, content_type, body = await scrape(metrics)
    finally:
        await engine.dispose()

    assert status == 200
    assert content_type.startswith("text/plain")
    for line in (
        "# TYPE updates_total counter",
        'updates_total{type="message"} 1.0',
        'updates_total{type="callback_query"} 1.0',
        "# TYPE reply_seconds histogram",
        'reply_seconds_bucket{le="0.005"}',
        "reply_seconds_count 1.0",
        'messages_sent_total{kind="reminder",result="sent"} 1.0',
        "telegram_429_total 1.0",
        'outbox_depth{status="pending"} 2.0',
        "due_learners 0.0",
    ):
        assert line in body, line
    for kind in UPDATE_TYPES:
        assert f'updates_total{{type="{kind}"}}' in body


async def test_gauges_refresh_at_most_every_few_seconds(tmp_path: Path):
    engine = create_engine(f"sqlite:///{tmp_path / 'tutor.db'}")
    await upgrade(engine)
    clock = Clock()
    metrics = Metrics(engine=engine, refresh_every=5.0, clock=clock)
    app = web.Application()
    add_metrics_route(app, metrics)
    try:
        async with TestClient(TestServer(app)) as client:

            async def pending() -> str:
                body = await (await client.get("/metrics")).text()
                return next(line for line in body.splitlines() if 'status="pending"' in line)

            await add_outbox(engine, ["pending"])
            assert await pending() == 'outbox_depth{status="pending"} 1.0'

            await add_outbox(engine, ["pending", "pending"], kind="broadcast", key="more")
            clock.now += 4.9  # too soon: the previous figures
            assert await pending() == 'outbox_depth{status="pending"} 1.0'

            clock.now += 0.2  # stale now: read again
            assert await pending() == 'outbox_depth{status="pending"} 3.0'
    finally:
        await engine.dispose()


DOWN = "postgresql://tutor@127.0.0.1:1/tutor"
"""A database server that is not there: connecting is refused at once."""


async def test_an_unreachable_database_still_gives_a_scrape(caplog):
    engine = create_engine(DOWN)
    metrics = Metrics(engine=engine)
    metrics.telegram_429.inc()
    try:
        with caplog.at_level(logging.WARNING, logger="bot.metrics"):
            status, _type, body = await scrape(metrics)
    finally:
        await engine.dispose()
    assert status == 200
    assert "telegram_429_total 1.0" in body
    assert 'outbox_depth{status="pending"} 0.0' in body
    assert any("not refreshed" in r.getMessage() for r in caplog.records)


async def test_a_slow_database_does_not_hold_the_scrape():
    class SlowMetrics(Metrics):
        async def refresh(self, engine=None) -> None:
            await asyncio.sleep(30)

    metrics = SlowMetrics(engine=create_engine(DOWN), refresh_wait=0.05)
    started = time.monotonic()
    status, _type, body = await scrape(metrics)
    assert status == 200 and "due_learners 0.0" in body
    assert time.monotonic() - started < 5
    assert metrics._refreshing is not None and not metrics._refreshing.done()
    metrics._refreshing.cancel()
    await metrics.engine.dispose()
