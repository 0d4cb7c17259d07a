"""aiogram 3 adapter: updates from aiogram's dispatcher, Bot API calls on aiogram's HTTP session.

Thin on purpose: every update goes to `TelegramGateway`. Calls use the Bot API's own method names
and JSON, like the python-telegram-bot adapter's `do_api_request`. aiogram has no such raw call:
its typed one builds a pydantic method object, posts it as a multipart form and validates the
answer into pydantic objects, which the gateway only reads as JSON. In `bench/interactive.py` that
round trip cost more CPU than the tutor's own work, so `AiogramApi` posts JSON on aiogram's own
aiohttp session (its API server, connector and timeout) and reads the answer with
`bot_api_result` (PTB maps its own typed errors).
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import PRODUCTION, TelegramAPIServer
from aiogram.methods import GetMe, GetUpdates
from aiogram.methods.base import Response
from aiogram.types import Update

from bot.transports.telegram import (
    ALLOWED_UPDATES,
    FileUpload,
    PolledUpdates,
    SendError,
    TelegramGateway,
    bot_api_result,
)

RESPONSE_TYPES = tuple(Response[m.__returning__] for m in (GetUpdates, GetMe))
"""Kept alive on purpose. aiogram reads every answer it decodes as `Response[<result type>]`, a
class pydantic caches only weakly: once the cyclic GC frees it, the next getUpdates builds it
again, about 4 ms of schema building on the event loop each time (87 times in one 1,200-press
round of bench/interactive.py, about a tenth of the bot's CPU)."""


def _body(params: dict[str, Any]) -> dict[str, Any]:
    """JSON, or a multipart form when a file is uploaded (other fields JSON-encoded)."""
    if not any(isinstance(v, FileUpload) for v in params.values()):
        return {"json": params}
    form = aiohttp.FormData(quote_fields=False)
    for key, value in params.items():
        if isinstance(value, FileUpload):
            form.add_field(key, value.content, filename=value.filename)
        else:
            form.add_field(key, value if isinstance(value, str) else json.dumps(value))
    return {"data": form}


class AiogramApi:
    def __init__(self, bot: Bot):
        self.bot = bot

    async def call(self, method: str, params: dict[str, Any]) -> Any:
        session = self.bot.session
        url = session.api.api_url(token=self.bot.token, method=method)
        http = await session.create_session()
        try:
            async with http.post(
                url, **_body(params), timeout=aiohttp.ClientTimeout(total=session.timeout)
            ) as response:
                status, text = response.status, await response.text()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise SendError("transient", f"{type(exc).__name__}: {exc}") from exc
        return bot_api_result(status, text)


class AiogramRunner:
    name = "aiogram"

    def __init__(self, token: str, api_base: str | None, gateway: TelegramGateway):
        self.polled = PolledUpdates()
        server = TelegramAPIServer.from_base(api_base) if api_base else PRODUCTION
        # aiogram decodes every answer it reads (here: getUpdates, getMe) with `json_loads`.
        self.bot = Bot(token, session=AiohttpSession(api=server, json_loads=self._loads))
        self.api = AiogramApi(self.bot)
        self.gateway = gateway
        self.dp = Dispatcher(disable_fsm=True)  # conversation state lives in our database
        for observer in (
            self.dp.message,
            self.dp.callback_query,
            self.dp.poll_answer,
            self.dp.my_chat_member,
            self.dp.inline_query,
            self.dp.edited_message,
            self.dp.channel_post,
        ):
            observer.register(self._on_event)

    def _loads(self, text: str) -> Any:
        answer = json.loads(text)
        self.polled.keep(answer)
        return answer

    async def _on_event(self, _event: Any, event_update: Update) -> None:
        raw = self.polled.claim(event_update.update_id) or event_update.model_dump(
            mode="json", exclude_none=True, by_alias=True
        )
        await self.gateway.handle(raw, self.api)

    async def start(self) -> str:
        me = await self.bot.get_me()
        return me.username or ""

    async def poll(self, polling_timeout: int = 25) -> None:
        await self.dp.start_polling(
            self.bot,
            allowed_updates=ALLOWED_UPDATES,
            polling_timeout=polling_timeout,
            handle_signals=False,
            close_bot_session=False,
        )

    async def stop_polling(self) -> None:
        if self.dp._running_lock.locked():
            await self.dp.stop_polling()

    async def feed(self, raw: dict[str, Any]) -> None:
        await self.dp.feed_raw_update(self.bot, raw)

    async def close(self) -> None:
        await self.bot.session.close()
