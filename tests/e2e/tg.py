"""End-to-end helpers: the real tutor (aiogram or PTB, polling or webhook) against the loopback
Bot API server, and a Telegram user who reads messages and presses buttons over HTTP."""

from __future__ import annotations

import asyncio
import socket
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from bot.config import Settings
from bot.runtime import RunOptions, TelegramService
from tests.botapi import BotAPIServer
from tests.conftest import LESSONS

TOKEN = "123456:TEST-TOKEN"
CONFIGS = [("aiogram", "polling"), ("ptb", "polling"), ("aiogram", "webhook"), ("ptb", "webhook")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@asynccontextmanager
async def running_tutor(
    tmp_path: Path,
    transport: str,
    mode: str,
    *,
    sender: bool = False,
    secret: str | None = None,
    settings: Settings | None = None,
):
    server = BotAPIServer(token=TOKEN)
    base = await server.start()
    port = free_port()
    settings = settings or Settings(
        database_url=f"sqlite:///{tmp_path / 'tutor.db'}",
        lessons_dir=LESSONS,
        bot_token=TOKEN,
        api_base=base,
    )
    settings = replace(settings, api_base=base, bot_token=TOKEN)
    options = RunOptions(
        transport=transport,
        listen="127.0.0.1",
        port=port,
        polling_timeout=1,
        sender=sender,
        webhook_url=f"http://127.0.0.1:{port}/telegram/hook" if mode == "webhook" else None,
        webhook_secret=secret,
    )
    service = TelegramService(settings, options)
    await service.start()
    try:
        yield server, service
    finally:
        await service.stop()
        await server.stop()


class TgUser:
    """A Telegram user in a private chat with the bot, driven through the test server."""

    def __init__(self, server: BotAPIServer, user_id: int, language_code: str = "en"):
        self.server = server
        self.id = user_id
        self.language_code = language_code
        self.seen = 0

    def messages(self) -> list[dict[str, Any]]:
        return self.server.sent(chat_id=self.id)

    async def settle(self, before: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait for the bot's answer: at least one new message, then quiet for a moment."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.messages()) <= before:
            if loop.time() > deadline:
                raise AssertionError(f"no answer from the bot; last: {self.last_text()!r}")
            await asyncio.sleep(0.01)
        count = len(self.messages())
        while True:
            await asyncio.sleep(0.08)
            if len(self.messages()) == count:
                break
            count = len(self.messages())
        new = self.messages()[before:]
        self.seen = len(self.messages())
        return new

    async def send(self, text: str) -> str:
        before = len(self.messages())
        self.server.user_sends(self.id, text, language_code=self.language_code)
        return self.join(await self.settle(before))

    def last_keyboard_message(self) -> dict[str, Any]:
        for message in reversed(self.messages()):
            if (message.get("reply_markup") or {}).get("inline_keyboard"):
                current = self.server.message(self.id, message["message_id"]) or message
                if (current.get("reply_markup") or {}).get("inline_keyboard"):
                    return current
        raise AssertionError("no message with buttons")

    def button(self, label: str) -> tuple[int, str]:
        found = self._find_button(label)
        if found is None:
            keyboard = self.last_keyboard_message()["reply_markup"]
            raise AssertionError(f"no button {label!r} in {keyboard}")
        return found

    def _find_button(self, label: str) -> tuple[int, str] | None:
        try:
            message = self.last_keyboard_message()
        except AssertionError:  # no keyboard yet
            return None
        for row in message["reply_markup"]["inline_keyboard"]:
            for cell in row:
                if label.lower() in cell["text"].lower():
                    return message["message_id"], cell["callback_data"]
        return None

    async def press(self, label: str, timeout: float = 10.0) -> str:
        """Press the button labelled `label` on the latest keyboard, waiting for it to arrive:
        "settled" only means a quiet moment, and a slow machine can be quiet between two
        messages of one answer."""
        try:
            message_id, data = await self.server.wait_for(lambda: self._find_button(label), timeout)
        except TimeoutError:
            self.button(label)  # raises, naming the keyboard that is there
            raise
        return await self.press_data(data, message_id)

    async def press_data(self, data: str, message_id: int | None = None) -> str:
        if message_id is None:  # a forged press, made to look like it came from our last message
            message_id = self.last_keyboard_message()["message_id"]
        before = len(self.messages())
        answered = len(self.server.answered_callbacks)
        self.server.user_presses(self.id, data, message_id=message_id)
        await self.server.wait_for(lambda: len(self.server.answered_callbacks) > answered, 10)
        return self.join(await self.settle(before))

    def last_text(self) -> str:
        messages = self.messages()
        return self.join(messages[-1:]) if messages else ""

    @staticmethod
    def join(messages: list[dict[str, Any]]) -> str:
        return "\n".join(
            m.get("text") or m.get("caption") or (m.get("poll") or {}).get("question", "")
            for m in messages
        )

    async def onboard(self, language: str = "English") -> None:
        await self.send("/start")
        await self.press(language)
        await self.press("Rome")
        await self.press("09:00")
