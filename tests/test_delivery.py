"""The planner tick, the outbox and the sender, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select

from bot.delivery.budget import Budget, ChatSpacing
from bot.delivery.sender import Sender, SenderLocked
from bot.transports.telegram import SendError
from bot.tutor.events import Reply
from storage.db import create_engine, upgrade
from storage.models import Learner, OutboxMessage
from storage.outbox import Outbox
from storage.schedules import Planner

NOW = datetime(2026, 1, 15, 8, 0, 20, tzinfo=UTC)


async def add_learners(
    store,
    count: int,
    *,
    zone="Europe/Rome",
    daily="09:00",
    due=NOW,
    quiet=None,
    streak=0,
    last_day=None,
    start=1,
) -> list[int]:
    rows = [
        dict(
            external_id=f"tg:{i}",
            chat_id=i,
            language="en",
            onboarding="done",
            nudges_enabled=True,
            active=True,
            role="learner",
            quiz_mode="buttons",
            item_index=0,
            time_zone=zone,
            daily_time=daily,
            next_nudge_at=due,
            quiet_hours=quiet,
            streak_days=streak,
            last_practice_day=last_day,
            created_at=NOW,
        )
        for i in range(start, start + count)
    ]
    async with store.sessions() as s, s.begin():
        await s.execute(insert(Learner), rows)
        return list((await s.scalars(select(Learner.id).order_by(Learner.id))).all())


async def outbox_rows(store, **where):
    async with store.sessions() as s:
        query = select(OutboxMessage)
        for key, value in where.items():
            query = query.where(getattr(OutboxMessage, key) == value)
        return list((await s.scalars(query)).all())


@pytest.fixture
def outbox(store):
    return Outbox(store.engine)


async def test_tick_enqueues_each_due_learner_once_and_moves_them_on(store, outbox):
    await add_learners(store, 12)
    await add_learners(store, 3, due=NOW + timedelta(minutes=5), start=100)
    planner = Planner(store.engine, outbox, batch=5)
    report = await planner.enqueue_due(NOW)
    assert (report.learners, report.enqueued) == (12, 12)
    rows = await outbox_rows(store, kind="nudge")
    assert len(rows) == 12
    assert {r.idempotency_key.rsplit(":", 1)[1] for r in rows} == {"2026-01-15"}
    assert (await planner.enqueue_due(NOW)).enqueued == 0
    async with store.sessions() as s:
        moved = await s.scalar(
            select(func.count()).where(
                Learner.next_nudge_at == datetime(2026, 1, 16, 8, 0, tzinfo=UTC)
            )
        )
    assert moved == 12


async def test_one_nudge_per_local_date_is_a_unique_key(store, outbox):
    await add_learners(store, 1)
    planner = Planner(store.engine, outbox)
    await planner.enqueue_due(NOW)
    async with store.sessions() as s, s.begin():  # someone puts the learner back in the past
        await s.execute(Learner.__table__.update().values(next_nudge_at=NOW))
    await planner.enqueue_due(NOW + timedelta(minutes=1))
    assert len(await outbox_rows(store)) == 1


async def test_catch_up_after_downtime_is_one_nudge_and_none_in_quiet_hours(store, outbox):
    # Down for three days: the 09:00 Rome slot of 12 January is the stored one.
    due = datetime(2026, 1, 12, 8, 0, tzinfo=UTC)
    await add_learners(store, 1, due=due)
    await add_learners(store, 1, due=due, quiet="08:00-10:00", start=50)
    report = await Planner(store.engine, outbox).enqueue_due(NOW)  # 09:00:20 in Rome
    assert (report.enqueued, report.skipped_quiet) == (1, 1)
    async with store.sessions() as s:
        nexts = set((await s.scalars(select(Learner.next_nudge_at))).all())
    assert nexts == {datetime(2026, 1, 16, 8, 0, tzinfo=UTC)}


async def test_on_time_nudge_is_not_held_by_quiet_hours(store, outbox):
    await add_learners(store, 1, quiet="08:00-10:00")
    assert (await Planner(store.engine, outbox).enqueue_due(NOW)).enqueued == 1


async def test_streak_at_risk_reminder_only_for_streaks_of_two_not_done_today(store, outbox):
    evening = datetime(2026, 1, 15, 18, 5, tzinfo=UTC)  # 19:05 in Rome
    yesterday = datetime(2026, 1, 14).date()
    await add_learners(store, 1, streak=3, last_day=yesterday)
    await add_learners(store, 1, streak=1, last_day=yesterday, start=10)
    await add_learners(store, 1, streak=5, last_day=evening.date(), start=20)
    await add_learners(store, 1, streak=5, last_day=yesterday, quiet="19:00-23:00", start=30)
    await add_learners(store, 1, streak=5, last_day=yesterday, zone="Asia/Kolkata", start=40)
    planner = Planner(store.engine, outbox)
    assert await planner.at_risk(evening) == 1
    assert await planner.at_risk(evening) == 0
    (row,) = await outbox_rows(store, kind="reminder")
    assert row.chat_id == 1


class FakeTelegram:
    """Stands in for the Bot API: records deliveries, fails on a script."""

    def __init__(self, script=None):
        self.sent: list[tuple[int, float]] = []
        self.script = list(script or [])
        self.loop = asyncio.get_event_loop()

    async def deliver(self, chat_id, action):
        if self.script:
            error = self.script.pop(0)
            if error:
                raise error
        self.sent.append((chat_id, self.loop.time()))


async def compose(row):
    return [Reply(f"hello {row.chat_id}")]


def sender_for(store, telegram, clock=None, **kw):
    return Sender(
        Outbox(store.engine),
        compose,
        telegram.deliver,
        kw.pop("budget", None) or Budget(kw.pop("rate", 500)),
        ChatSpacing(kw.pop("spacing", 1.0)),
        clock=clock or (lambda: NOW),
        idle_sleep=0.05,
        **kw,
    )


async def enqueue(store, chats, now=NOW, learner_ids=None):
    outbox = Outbox(store.engine)
    rows = [
        {
            "kind": "broadcast",
            "idempotency_key": f"b:{i}:{c}",
            "chat_id": c,
            "learner_id": (learner_ids or {}).get(c),
        }
        for i, c in enumerate(chats)
    ]
    await outbox.enqueue(rows, now)


async def test_sender_delivers_everything_once(store):
    await enqueue(store, range(1, 201))
    telegram = FakeTelegram()
    await sender_for(store, telegram).run(asyncio.Event(), until_idle=True)
    assert sorted(c for c, _ in telegram.sent) == list(range(1, 201))
    assert len(await outbox_rows(store, status="sent")) == 200


async def test_at_most_one_message_per_second_per_chat(store):
    await enqueue(store, [7, 7, 7, 8])
    telegram = FakeTelegram()
    await sender_for(store, telegram, spacing=0.2).run(asyncio.Event(), until_idle=True)
    times = [t for c, t in telegram.sent if c == 7]
    assert len(times) == 3
    assert all(b - a >= 0.19 for a, b in itertools.pairwise(times))


async def test_a_chats_next_turn_counts_from_when_the_last_message_went_out():
    """Telegram counts arrivals: a message that left late pushes the chat's next turn back."""
    spacing = ChatSpacing(0.2)
    await spacing.wait(7)
    await asyncio.sleep(0.1)  # the message waited (budget, event loop) before it went out
    spacing.sent(7)
    went_out = time.monotonic()
    await spacing.wait(7)
    assert time.monotonic() - went_out >= 0.19
    await spacing.wait(8)  # other chats are not held back


async def test_429_pauses_every_send_and_retries_after_the_wait(store):
    await enqueue(store, range(1, 11))
    clock_now = [NOW]
    telegram = FakeTelegram([SendError("retry_after", "Too Many Requests", 0.3)])
    sender = sender_for(store, telegram, clock=lambda: clock_now[0], concurrency=1)
    started = asyncio.get_event_loop().time()
    task = asyncio.create_task(sender.run(asyncio.Event(), until_idle=False))
    await asyncio.sleep(0.1)
    assert telegram.sent == []  # nothing during the retry_after window
    clock_now[0] = NOW + timedelta(seconds=1)  # the row becomes due again
    for _ in range(100):
        if len(telegram.sent) == 10:
            break
        await asyncio.sleep(0.05)
    task.cancel()
    assert sorted(c for c, _ in telegram.sent) == list(range(1, 11))
    assert min(t for _, t in telegram.sent) - started >= 0.29
    assert sender.stats.rate_limited == 1


async def test_5xx_retries_with_backoff_then_fails_with_the_reason(store):
    await enqueue(store, [1])
    boom = SendError("transient", "Internal Server Error")
    telegram = FakeTelegram([boom] * 10)
    clock_now = [NOW]
    sender = sender_for(store, telegram, clock=lambda: clock_now[0], max_attempts=3)
    for _ in range(3):
        await sender.run(asyncio.Event(), until_idle=True)
        clock_now[0] += timedelta(minutes=10)
    (row,) = await outbox_rows(store)
    assert (row.status, row.attempts, row.last_error) == ("failed", 3, "Internal Server Error")


async def test_403_marks_the_learner_blocked_and_cancels_their_rows(store):
    ids = await add_learners(store, 2, due=None)
    await enqueue(store, [1], learner_ids={1: ids[0]})
    await Outbox(store.engine).enqueue(
        [
            {
                "kind": "nudge",
                "idempotency_key": "later",
                "chat_id": 1,
                "learner_id": ids[0],
                "not_before": NOW + timedelta(hours=1),
            }
        ],
        NOW,
    )
    telegram = FakeTelegram([SendError("blocked", "Forbidden: bot was blocked by the user")])
    await sender_for(store, telegram).run(asyncio.Event(), until_idle=True)
    statuses = sorted(r.status for r in await outbox_rows(store))
    assert statuses == ["blocked", "cancelled"]
    async with store.sessions() as s:
        assert await s.scalar(select(Learner.active).where(Learner.id == ids[0])) is False
        assert await s.scalar(select(Learner.active).where(Learner.id == ids[1])) is True


async def test_401_pauses_sending_keeps_the_learner_and_says_why(store, caplog):
    """Telegram refusing the token is the operator's problem: no learner is marked blocked, no
    message is lost, the log says what to check, and sending resumes after the pause."""
    ids = await add_learners(store, 1, due=None)
    await enqueue(store, [1, 2], learner_ids={1: ids[0]})
    clock_now = [NOW]
    telegram = FakeTelegram([SendError("unauthorized", "Unauthorized")])
    sender = sender_for(
        store, telegram, clock=lambda: clock_now[0], concurrency=1, unauthorized_pause=0.3
    )
    started = asyncio.get_event_loop().time()
    with caplog.at_level(logging.ERROR, logger="bot.delivery.sender"):
        task = asyncio.create_task(sender.run(asyncio.Event(), until_idle=False))
        await asyncio.sleep(0.15)
        assert telegram.sent == [] and sender.stats.unauthorized == 1
        assert sum("TELEGRAM_BOT_TOKEN" in r.message for r in caplog.records) == 1
        async with store.sessions() as s:
            assert await s.scalar(select(Learner.active).where(Learner.id == ids[0])) is True
        clock_now[0] = NOW + timedelta(seconds=1)  # the refused row becomes due again
        for _ in range(100):
            if len(telegram.sent) == 2:
                break
            await asyncio.sleep(0.05)
        task.cancel()
    assert sorted(c for c, _ in telegram.sent) == [1, 2]
    assert min(t for _, t in telegram.sent) - started >= 0.29


async def test_a_refused_token_is_logged_even_during_a_429_pause(store, caplog):
    """Telegram often answers a burst with 429s and, once the token is revoked, 401s: the
    refused-token error must still be logged while the 429's pause runs."""
    await enqueue(store, [1, 2])

    class Revoked:
        async def deliver(self, chat_id, _action):
            if chat_id == 1:
                await asyncio.sleep(0.01)
                raise SendError("retry_after", "Too Many Requests", retry_after=30)
            await asyncio.sleep(0.05)  # in flight when the 429 arrives
            raise SendError("unauthorized", "Unauthorized")

    sender = sender_for(store, Revoked(), concurrency=2)
    with caplog.at_level(logging.ERROR, logger="bot.delivery.sender"):
        task = asyncio.create_task(sender.run(asyncio.Event(), until_idle=False))
        for _ in range(100):
            if sender.stats.unauthorized:
                break
            await asyncio.sleep(0.02)
        task.cancel()
    assert sender.stats.rate_limited == 1 and sender.stats.unauthorized == 1
    assert sum("TELEGRAM_BOT_TOKEN" in r.message for r in caplog.records) == 1


async def test_an_expired_lease_is_claimed_again(store):
    await enqueue(store, [1, 2])
    outbox = Outbox(store.engine)
    claimed = await outbox.claim(NOW, 10, timedelta(seconds=30))  # then the process "dies"
    assert len(claimed) == 2
    assert await outbox.claim(NOW + timedelta(seconds=10), 10, timedelta(seconds=30)) == []
    again = await outbox.claim(NOW + timedelta(seconds=31), 10, timedelta(seconds=30))
    assert [r.id for r in again] == [r.id for r in claimed]
    assert all(r.attempts == 2 for r in again)


async def test_a_second_sqlite_sender_refuses_to_start(sqlite_store):
    first = sender_for(sqlite_store, FakeTelegram())
    second = sender_for(sqlite_store, FakeTelegram())
    await first.ensure_lock()
    with pytest.raises(SenderLocked, match="single instance"):
        await second.ensure_lock()


@pytest.mark.postgres
async def test_three_postgres_workers_deliver_exactly_once(pg_cluster, tmp_path):
    from tests.conftest import _create_database

    url = await _create_database(pg_cluster)
    engines = [create_engine(url) for _ in range(3)]
    await upgrade(engines[0])
    outbox = Outbox(engines[0])
    await outbox.enqueue(
        [{"kind": "nudge", "idempotency_key": f"k{i}", "chat_id": i} for i in range(600)], NOW
    )
    telegram = FakeTelegram()
    senders = [
        Sender(
            Outbox(e),
            compose,
            telegram.deliver,
            Budget(2000),
            ChatSpacing(),
            clock=lambda: NOW,
            concurrency=16,
            idle_sleep=0.01,
        )
        for e in engines
    ]
    await asyncio.gather(*(s.run(asyncio.Event(), until_idle=True) for s in senders))
    chats = [c for c, _ in telegram.sent]
    assert sorted(chats) == list(range(600))
    assert all(s.stats.sent > 0 for s in senders), [s.stats.sent for s in senders]
    for engine in engines:
        await engine.dispose()
