"""The tutor process killed with SIGKILL in the middle of sending, then restarted: nothing is
lost, and only messages that were in flight at the kill may arrive twice."""

from __future__ import annotations

import asyncio
import collections
import time
from datetime import UTC, datetime

import pytest

from storage.db import create_engine, upgrade
from storage.outbox import Outbox
from tests.faults.procs import ApiServerProcess, TutorProcess, wait_until

MESSAGES = 400
RATE = 100  # messages per second, so the kill lands mid-way
CONCURRENCY_BOUND = 64 + 20  # the sender's rows in flight plus one flush window


async def prepare(url: str, messages: int = MESSAGES) -> None:
    engine = create_engine(url)
    await upgrade(engine)
    now = datetime.now(UTC)
    await Outbox(engine).enqueue(
        [
            {
                "kind": "broadcast",
                "idempotency_key": f"kill:{i}",
                "chat_id": i,
                "payload": {"text": f"Announcement for chat {i}"},
            }
            for i in range(1, messages + 1)
        ],
        now,
    )
    await engine.dispose()


async def statuses(url: str) -> dict[str, int]:
    engine = create_engine(url)
    counts = await Outbox(engine).counts()
    await engine.dispose()
    return counts


@pytest.mark.slow
def test_sigkill_mid_broadcast_loses_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 'tutor.db'}"
    asyncio.run(prepare(url))
    server = ApiServerProcess()
    env = {"TUTOR_SEND_RATE": str(RATE), "TUTOR_SENDER_LEASE_SECONDS": "3"}
    try:
        tutor = TutorProcess(url, server.base, tmp_path / "tutor.log", **env)
        wait_until(lambda: len(server.sent_chats()) >= 120, 60, "the first messages")
        tutor.kill()
        at_kill = len(server.sent_chats())
        assert at_kill < MESSAGES, "the kill came too late to test anything"
        time.sleep(3.5)  # the dead process's leases expire
        tutor = TutorProcess(url, server.base, tmp_path / "tutor.log", **env)
        wait_until(
            lambda: set(server.sent_chats()) >= set(range(1, MESSAGES + 1)),
            90,
            "every message after the restart",
        )
        wait_until(
            lambda: asyncio.run(statuses(url)).get("sent") == MESSAGES, 30, "every row marked sent"
        )
        tutor.stop()
        chats = collections.Counter(server.sent_chats())
    finally:
        server.stop()
    assert set(chats) == set(range(1, MESSAGES + 1))  # nothing lost
    duplicates = sum(chats.values()) - MESSAGES
    assert duplicates <= CONCURRENCY_BOUND, duplicates
