"""The database goes away for a moment in webhook mode: the update is answered 500, Telegram
delivers it again, and once the database is back it is handled. Nothing is lost."""

from __future__ import annotations

import asyncio

import pytest

from bot.config import Settings
from tests.conftest import LESSONS, _create_database
from tests.e2e.tg import TOKEN, TgUser, running_tutor


@pytest.mark.postgres
@pytest.mark.parametrize("transport", ["aiogram", "ptb"])
async def test_updates_survive_a_database_outage(pg_cluster, tmp_path, transport):
    url = await _create_database(pg_cluster)
    settings = Settings(database_url=url, lessons_dir=LESSONS, bot_token=TOKEN)
    async with running_tutor(tmp_path, transport, "webhook", settings=settings) as (
        server,
        _service,
    ):
        server.webhook_attempts = 40  # Telegram keeps retrying for hours; a few seconds do here
        server.webhook_retry_delay = 0.25
        user = TgUser(server, 777)
        await user.onboard()
        await asyncio.to_thread(pg_cluster.stop_server)
        try:
            before = len(user.messages())
            update_id = server.user_sends(777, "/progress")
            await server.wait_for(
                lambda: any(
                    d.update_id == update_id and d.status == 500 for d in server.webhook_deliveries
                ),
                15,
            )
        finally:
            await asyncio.to_thread(pg_cluster.start_server)
        said = user.join(await user.settle(before, timeout=20))
        assert "Your progress" in said
        statuses = [d.status for d in server.webhook_deliveries if d.update_id == update_id]
        assert 500 in statuses and statuses[-1] == 200
