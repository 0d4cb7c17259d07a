"""Broadcast benchmark: one announcement to a 50,000-learner group at the 1,000/s paid limit.

    python -m bench.broadcast [--learners 50000] [--rate 1000]

Seeds a group of learners, then times the trainer's "Send now" (one INSERT … SELECT into the
outbox) and the delivery through the real sender and aiogram into the loopback Bot API server
(its own process). The figure is the achieved rate as a share of the limit; the server counts
deliveries, so lost and duplicated messages are checked too.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import sqlite3
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from bench.common import record
from bot.content import load_catalog
from bot.delivery.budget import Budget, ChatSpacing
from bot.delivery.sender import Sender
from bot.delivery.service import composer
from bot.transports.aiogram_adapter import AiogramApi
from bot.transports.telegram import TelegramGateway
from bot.tutor.engine import Tutor
from storage.db import create_engine, upgrade
from storage.outbox import Outbox
from storage.repository import SqlStore
from tests.conftest import LESSONS
from tests.faults.procs import TOKEN, ApiServerProcess

NOW = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)


def seed(path: Path, learners: int) -> None:
    conn = sqlite3.connect(path)
    stamp = NOW.replace(tzinfo=None).isoformat(" ")
    with conn:
        conn.executemany(
            "INSERT INTO learners (id, external_id, chat_id, language, onboarding, "
            "nudges_enabled, active, role, quiz_mode, item_index, streak_days, share_name, "
            "created_at) VALUES (?, ?, ?, 'en', 'done', 1, 1, 'learner', 'buttons', 0, 0, 0, ?)",
            ((i, f"tg:{i}", i, stamp) for i in range(1, learners + 2)),
        )
        conn.execute(
            "INSERT INTO cohorts (id, code, name, owner_id, revoked, created_at) "
            "VALUES (1, 'BENCH', 'Bench', 1, 0, ?)",
            (stamp,),
        )
        conn.executemany(
            "INSERT INTO cohort_members (cohort_id, learner_id, joined_at) VALUES (1, ?, ?)",
            ((i, stamp) for i in range(2, learners + 2)),
        )
    conn.close()


async def run(url: str, base: str, rate: float) -> tuple[float, float, int]:
    engine = create_engine(url)
    store = SqlStore(engine)
    tutor = Tutor(load_catalog(LESSONS), store)
    started = time.perf_counter()
    async with store.unit() as repo:
        broadcast_id = await repo.create_broadcast(1, 1, 1, NOW)
        await repo.update_broadcast(broadcast_id, text="Rehearsal moved to Friday.")
        total = await repo.enqueue_broadcast(broadcast_id, [1], NOW)
        await repo.update_broadcast(broadcast_id, status="sending", total=total)
    enqueue_seconds = time.perf_counter() - started
    bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(base)))
    gateway = TelegramGateway(tutor, LESSONS)
    api = AiogramApi(bot)

    async def deliver(chat_id, action):
        await gateway.render(api, chat_id, action)

    sender = Sender(
        Outbox(engine),
        composer(tutor),
        deliver,
        Budget(rate),
        ChatSpacing(),
        clock=lambda: NOW,
        idle_sleep=0.05,
    )
    started = time.perf_counter()
    await sender.run(asyncio.Event(), until_idle=True)
    send_seconds = time.perf_counter() - started
    await bot.session.close()
    await engine.dispose()
    return enqueue_seconds, send_seconds, total


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--learners", type=int, default=50_000)
    parser.add_argument("--rate", type=float, default=1000.0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "broadcast.db"
        url = f"sqlite:///{path}"

        async def migrate() -> None:
            engine = create_engine(url)
            await upgrade(engine)
            await engine.dispose()

        asyncio.run(migrate())
        seed(path, args.learners)
        server = ApiServerProcess()
        try:
            enqueue_s, send_s, total = asyncio.run(run(url, server.base, args.rate))
            chats = collections.Counter(server.sent_chats())
        finally:
            server.stop()
    figures = {
        "broadcast_learners": total,
        "broadcast_limit_per_s": args.rate,
        "broadcast_enqueue_s": enqueue_s,
        "broadcast_send_s": send_s,
        "broadcast_achieved_per_s": total / send_s,
        "broadcast_share_of_limit": total / send_s / args.rate,
        "broadcast_lost": total - len(chats),
        "broadcast_duplicated": sum(chats.values()) - len(chats),
    }
    for name, value in figures.items():
        print(f"  {name} = {value:,.3f}")
    record(figures)
    return figures


if __name__ == "__main__":
    main()
