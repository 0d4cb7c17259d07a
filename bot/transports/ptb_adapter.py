"""python-telegram-bot 22 adapter: updates from PTB's Application, calls through PTB's Bot.

PTB processes updates one at a time by default; the engine is safe under concurrency (each
update is one database transaction with the learner row locked), so we let PTB run them
concurrently like aiogram does.
"""

from __future__ import annotations

import asyncio
import warnings
from datetime import timedelta
from typing import Any

from telegram import InputFile, Update
from telegram.error import (
    BadRequest,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
)
from telegram.ext import Application, ApplicationBuilder, ContextTypes, TypeHandler
from telegram.request import HTTPXRequest
from telegram.warnings import PTBDeprecationWarning, PTBUserWarning

from bot.transports.telegram import (
    ALLOWED_UPDATES,
    FileUpload,
    PolledUpdates,
    SendError,
    TelegramGateway,
)

CONCURRENT_UPDATES = 64
# httpcore checks every idle pooled connection on each request, so PTB's default pool of 256 made
# each Bot API call cost more as connections piled up (bench/interactive.py). 16 connections carry
# far more than Telegram's ~30 messages a second at a real round trip of ~100 ms.
CONNECTION_POOL = 16

# We call every method through do_api_request with the Bot API's own names and JSON shapes (the
# same payloads the aiogram adapter sends); PTB warns when a method it knows is called that way.
warnings.filterwarnings("ignore", message=r"Please use 'Bot\.", category=PTBUserWarning)
# `RetryAfter.retry_after` becomes a timedelta in a later PTB; `PtbApi.call` reads either form.
warnings.filterwarnings(
    "ignore", message=r".*attribute `retry_after`", category=PTBDeprecationWarning
)


class PtbApi:
    def __init__(self, application: Application):
        self.bot = application.bot

    async def call(self, method: str, params: dict[str, Any]) -> Any:
        values = {
            k: InputFile(v.content, filename=v.filename) if isinstance(v, FileUpload) else v
            for k, v in params.items()
        }
        try:
            return await self.bot.do_api_request(method, api_kwargs=values)
        except RetryAfter as exc:
            wait = exc.retry_after
            seconds = wait.total_seconds() if isinstance(wait, timedelta) else float(wait)
            raise SendError("retry_after", exc.message, seconds) from exc
        except InvalidToken as exc:
            raise SendError("unauthorized", exc.message) from exc
        except EndPointNotFound as exc:
            # Once the bot is initialised, do_api_request turns PTB's InvalidToken (HTTP 401 or
            # 404, which PTB does not tell apart) into this; Telegram's description does.
            cause = exc.__cause__
            if isinstance(cause, InvalidToken) and not cause.message.startswith("Not Found"):
                raise SendError("unauthorized", cause.message) from exc
            raise SendError("bad_request", exc.message) from exc
        except Forbidden as exc:
            raise SendError("blocked", exc.message) from exc
        except BadRequest as exc:  # a subclass of NetworkError: must come first
            raise SendError("bad_request", exc.message) from exc
        except (TimeoutError, NetworkError) as exc:
            raise SendError("transient", str(exc)) from exc


class PolledRequest(HTTPXRequest):
    """PTB's getUpdates request, whose documented `parse_json_payload` hook feeds
    `PolledUpdates` (only getUpdates uses this request, so no other answer is kept)."""

    def __init__(self, polled: PolledUpdates) -> None:
        super().__init__(connection_pool_size=1)  # PTB's own choice for getUpdates
        self.polled = polled

    def parse_json_payload(self, payload: bytes) -> dict[str, Any]:
        data = super().parse_json_payload(payload)
        self.polled.keep(data)
        return data


class PtbRunner:
    name = "ptb"

    def __init__(self, token: str, api_base: str | None, gateway: TelegramGateway):
        self.polled = PolledUpdates()
        builder = (
            ApplicationBuilder()
            .token(token)
            .concurrent_updates(CONCURRENT_UPDATES)
            .connection_pool_size(CONNECTION_POOL)
            .get_updates_request(PolledRequest(self.polled))
        )
        if api_base:
            builder = builder.base_url(f"{api_base.rstrip('/')}/bot")
        self.app = builder.build()
        self.api = PtbApi(self.app)
        self.gateway = gateway
        self.app.add_handler(TypeHandler(Update, self._on_update))
        self._started = False

    async def _on_update(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        raw = self.polled.claim(update.update_id) or update.to_dict()
        await self.gateway.handle(raw, self.api)

    async def start(self) -> str:
        await self.app.initialize()
        await self.app.start()
        self._started = True
        return self.app.bot.username or ""

    async def poll(self, polling_timeout: int = 25) -> None:
        assert self.app.updater is not None
        await self.app.updater.start_polling(
            allowed_updates=ALLOWED_UPDATES, timeout=polling_timeout, poll_interval=0
        )
        await asyncio.Event().wait()  # until cancelled

    async def stop_polling(self) -> None:
        if self.app.updater and self.app.updater.running:
            await self.app.updater.stop()

    async def feed(self, raw: dict[str, Any]) -> None:
        # Straight to the gateway, not through Application.process_update: PTB hands a
        # handler's exception to its error handlers and returns normally, so the webhook would
        # answer 200 and Telegram would never deliver the failed update again.
        await self.gateway.handle(raw, self.api)

    async def close(self) -> None:
        await self.stop_polling()
        if self._started:
            await self.app.stop()
            await self.app.shutdown()
