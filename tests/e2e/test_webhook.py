"""Webhook mode: the secret token is checked on every request; a mismatch is never handled."""

from __future__ import annotations

import json

import aiohttp
import pytest
from sqlalchemy import select

from storage.models import Learner
from tests.e2e.tg import running_tutor


@pytest.mark.parametrize("transport", ["aiogram", "ptb"])
async def test_wrong_webhook_secret_is_refused(transport, tmp_path):
    async with running_tutor(tmp_path, transport, "webhook", secret="right-secret") as (
        server,
        service,
    ):
        update = {
            "update_id": 1,
            "message": {
                "message_id": 1,
                "date": 1767225600,
                "text": "/start",
                "chat": {"id": 77, "type": "private"},
                "from": {"id": 77, "is_bot": False, "first_name": "Eve"},
            },
        }
        url = f"http://127.0.0.1:{service.port}/telegram/hook"
        async with aiohttp.ClientSession() as http:
            for secret in ("wrong", "", "right-secret-but-longer"):
                headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret else {}
                async with http.post(url, data=json.dumps(update), headers=headers) as r:
                    assert r.status == 401
            async with http.get(f"http://127.0.0.1:{service.port}/healthz") as r:
                assert r.status == 200
        async with service.app.store.sessions() as s:
            assert (await s.scalars(select(Learner))).all() == []
        assert server.sent(chat_id=77) == []


async def test_run_without_a_token_says_how_to_get_one():
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "run"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2
    assert "@BotFather" in result.stderr and "restart-tutor chat" in result.stderr


async def test_metrics_count_updates_and_replies(tmp_path):
    from tests.e2e.tg import TgUser

    async with running_tutor(tmp_path, "aiogram", "polling") as (server, service):
        user = TgUser(server, 321)
        await user.send("/start")
        await user.press("English")
        service.app.store.on_conflict()  # as `SqlStore.run` does when it runs a unit again
        url = f"http://127.0.0.1:{service.port}/metrics"
        async with aiohttp.ClientSession() as http, http.get(url) as r:
            assert r.status == 200
            text = await r.text()
    assert 'updates_total{type="message"} 1.0' in text
    assert 'updates_total{type="callback_query"} 1.0' in text
    assert 'messages_sent_total{kind="reply",result="sent"}' in text
    assert "reply_seconds_count" in text and "due_learners" in text
    assert "unit_conflicts_total 1.0" in text
