"""aiogram 3 adapter: updates from aiogram's dispatcher, Bot API calls through aiogram's Bot.

Thin on purpose: every update goes to `TelegramGateway`; aiogram's typed errors are mapped to
`SendError` in one function.
"""

from __future__ import annotations

from typing import Any

import aiogram.methods
from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.types import BufferedInputFile, Update

from bot.transports.telegram import ALLOWED_UPDATES, FileUpload, SendError, TelegramGateway


def _method(name: str, params: dict[str, Any]) -> aiogram.methods.TelegramMethod:
    cls = getattr(aiogram.methods, name[0].upper() + name[1:])
    values = {
        k: BufferedInputFile(v.content, v.filename) if isinstance(v, FileUpload) else v
        for k, v in params.items()
    }
    return cls(**values)


class AiogramApi:
    def __init__(self, bot: Bot):
        self.bot = bot

    async def call(self, method: str, params: dict[str, Any]) -> Any:
        try:
            return await self.bot(_method(method, params))
        except TelegramRetryAfter as exc:
            raise SendError("retry_after", exc.message, float(exc.retry_after)) from exc
        except (TelegramForbiddenError, TelegramUnauthorizedError) as exc:
            raise SendError("blocked", exc.message) from exc
        except TelegramBadRequest as exc:
            raise SendError("bad_request", exc.message) from exc
        except (TimeoutError, TelegramServerError, TelegramNetworkError) as exc:
            raise SendError("transient", str(exc)) from exc


class AiogramRunner:
    name = "aiogram"

    def __init__(self, token: str, api_base: str | None, gateway: TelegramGateway):
        session = AiohttpSession(api=TelegramAPIServer.from_base(api_base)) if api_base else None
        self.bot = Bot(token, session=session) if session else Bot(token)
        self.api = AiogramApi(self.bot)
        self.gateway = gateway
        self.dp = Dispatcher()
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

    async def _on_event(self, _event: Any, event_update: Update) -> None:
        raw = event_update.model_dump(mode="json", exclude_none=True, by_alias=True)
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
