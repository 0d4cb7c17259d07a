"""Sender benchmark: the outbox drained through aiogram into the loopback Bot API server.

    python -m bench.sender [--messages 20000] [--rate 1000]

The server runs in its own process with its flood guard on (a chat getting two messages within a
second is a violation, answered 429). We time the durable sender (claim → compose → pace → send
→ record) against a baseline measured in the same run: the same client sending the same number of
messages paced by the same budget, with no database at all. A second run injects 429s and checks
that everything is still delivered and nothing is sent while a `retry_after` is running.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from bench.common import record
from bot.delivery.budget import Budget, ChatSpacing
from bot.delivery.sender import Sender
from bot.transports.aiogram_adapter import AiogramApi
from bot.transports.telegram import SendError
from bot.tutor.events import Reply
from storage.db import create_engine, upgrade
from storage.outbox import Outbox
from tests.faults.procs import TOKEN, ApiServerProcess

CHATS = 4000


def control(server: ApiServerProcess, path: str, body: dict | None = None):
    return server.post(path, body) if body is not None else server.get(path)


def sent_by_chat(server: ApiServerProcess) -> collections.Counter[int]:
    return collections.Counter(server.sent_chats())


def requests(server: ApiServerProcess) -> list[dict]:
    data = control(server, "requests?method=sendMessage")
    return data.get("result", data)["requests"]


def violations(server: ApiServerProcess) -> int:
    state = control(server, "state")
    return int(state.get("result", state).get("violations", 0))


async def drain(url: str, base: str, count: int, rate: float) -> float:
    engine = create_engine(url)
    await upgrade(engine)
    outbox = Outbox(engine)
    now = datetime.now(UTC)
    await outbox.enqueue(
        [
            {
                "kind": "broadcast",
                "idempotency_key": f"bench:{url}:{i}",
                "chat_id": 1 + i % CHATS,
                "payload": {"text": f"Message {i}"},
            }
            for i in range(count)
        ],
        now,
    )
    bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(base)))
    api = AiogramApi(bot)

    async def compose(row):
        return [Reply(row.payload["text"])]

    async def deliver(chat_id: int, action: Reply) -> None:
        await api.call("sendMessage", {"chat_id": chat_id, "text": action.text})

    sender = Sender(outbox, compose, deliver, Budget(rate), ChatSpacing(), idle_sleep=0.05)
    started = time.perf_counter()
    await sender.run(asyncio.Event(), until_idle=True)
    elapsed = time.perf_counter() - started
    await bot.session.close()
    await engine.dispose()
    return elapsed


async def baseline(base: str, count: int, rate: float, concurrency: int = 64) -> float:
    """No database: the same client and pacing, sending `count` messages."""
    bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(base)))
    api = AiogramApi(bot)
    budget, spacing = Budget(rate), ChatSpacing()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)

    async def worker() -> None:
        while not queue.empty():
            i = queue.get_nowait()
            chat = 100_000 + i % CHATS
            await spacing.wait(chat)
            await budget.acquire()
            try:
                await api.call("sendMessage", {"chat_id": chat, "text": f"Baseline {i}"})
            except SendError as exc:  # the baseline obeys a 429 too, then sends again
                budget.pause(exc.retry_after)
                await budget.acquire()
                await api.call("sendMessage", {"chat_id": chat, "text": f"Baseline {i}"})
            finally:
                spacing.sent(chat)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    await bot.session.close()
    return elapsed


async def inject_429s(server: ApiServerProcess, times: int, every: float) -> None:
    for _ in range(times):
        await asyncio.sleep(every)
        await asyncio.to_thread(
            control,
            server,
            "fail",
            {"method": "sendMessage", "status": 429, "retry_after": 1, "times": 1},
        )


def sends_during_pauses(log: list[dict], slack: float = 0.05) -> tuple[int, int]:
    """(number of 429s, sends that arrived inside a retry_after window after the slack)."""
    pauses = [r["time"] for r in log if r["status"] == 429]
    inside = sum(1 for r in log for t in pauses if t + slack < r["time"] < t + 1.0)
    return len(pauses), inside


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--storm-messages", type=int, default=5_000)
    args = parser.parse_args(argv)
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        server = ApiServerProcess("--per-chat-limit", "1")
        try:
            base_elapsed = asyncio.run(baseline(server.base, args.messages, args.rate))
            before = violations(server)
            elapsed = asyncio.run(
                drain(f"sqlite:///{Path(tmp) / 's.db'}", server.base, args.messages, args.rate)
            )
            chats = sent_by_chat(server)
            ours = {c: n for c, n in chats.items() if c < 100_000}
            delivered = sum(ours.values())
            expected = args.messages // CHATS
            figures |= {
                "sender_messages": args.messages,
                "sender_limit_per_s": args.rate,
                "sender_achieved_per_s": args.messages / elapsed,
                "sender_share_of_limit": args.messages / elapsed / args.rate,
                "sender_baseline_share_of_limit": args.messages / base_elapsed / args.rate,
                "sender_vs_baseline_ratio": base_elapsed / elapsed,
                "sender_per_chat_violations": violations(server) - before,
                "sender_baseline_per_chat_violations": before,
                "sender_lost": sum(max(0, expected - ours.get(c, 0)) for c in range(1, CHATS + 1)),
                "sender_duplicated": max(0, delivered - args.messages),
            }
        finally:
            server.stop()
        server = ApiServerProcess()
        try:

            async def storm() -> float:
                injector = asyncio.create_task(inject_429s(server, 3, 1.5))
                url = f"sqlite:///{Path(tmp) / 'storm.db'}"
                elapsed = await drain(url, server.base, args.storm_messages, args.rate)
                injector.cancel()
                return elapsed

            asyncio.run(storm())
            chats = sent_by_chat(server)
            count429, inside = sends_during_pauses(requests(server))
            figures |= {
                "sender_429_messages": args.storm_messages,
                "sender_429_injected": count429,
                "sender_429_delivered": sum(chats.values()),
                "sender_429_all_delivered": float(sum(chats.values()) == args.storm_messages),
                "sender_429_sends_during_retry_after": inside,
            }
        finally:
            server.stop()
    for name, value in figures.items():
        print(f"  {name} = {value:,.3f}")
    record(figures)
    return figures


if __name__ == "__main__":
    main()
