"""The Bot API server disappears for 30 seconds while messages wait to be sent: the tutor keeps
its rows, backs off, and delivers every one when the server is back."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from tests.faults.procs import ApiServerProcess, TutorProcess, wait_until
from tests.faults.test_kill_sender import prepare, statuses

MESSAGES = 40


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_a_bot_api_outage_of_30_seconds_loses_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 'tutor.db'}"
    asyncio.run(prepare(url, MESSAGES))
    port = str(free_port())
    server = ApiServerProcess("--port", port)
    tutor = TutorProcess(url, server.base, tmp_path / "tutor.log", TUTOR_SEND_RATE="5")
    try:
        wait_until(lambda: len(server.sent_chats()) >= 3, 60, "the first messages")
        server.stop()  # the server is gone: sends fail with connection errors
        down_since = time.monotonic()
        time.sleep(30)
        server = ApiServerProcess("--port", port)
        wait_until(
            lambda: asyncio.run(statuses(url)).get("sent") == MESSAGES,
            150,
            "every message after the outage",
        )
        assert time.monotonic() - down_since >= 30
        counts = asyncio.run(statuses(url))
        assert counts == {"sent": MESSAGES}
        assert server.sent_chats()  # the new server received the rest
    finally:
        tutor.stop()
        server.stop()
