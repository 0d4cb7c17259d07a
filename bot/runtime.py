"""`restart-tutor run`: the tutor on Telegram, by long polling or by webhook.

One HTTP server (aiohttp) serves `/healthz` and `/metrics` (Prometheus) in both modes and, with
`--webhook-url`, the webhook path. The webhook's secret token is set with `setWebhook` and
compared in constant time on every request: a mismatch is answered 401 and the update is never
processed. An update is acknowledged (200) only after the engine handled it, so if the database
is down Telegram gets a 500 and delivers the update again later; nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hmac
import json
import logging
import secrets
import signal
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol
from urllib.parse import urlparse

from aiohttp import web

from bot.app import App, build_app
from bot.config import Settings
from bot.delivery.budget import Budget
from bot.delivery.service import DeliveryService
from bot.metrics import CountingApi, Metrics, add_metrics_route
from bot.transports.telegram import (
    ALLOWED_UPDATES,
    BotApi,
    BudgetedApi,
    TelegramGateway,
    command_menus,
)
from bot.tutor.events import Action
from storage.outbox import Outbox

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
TRANSPORTS = ("aiogram", "ptb")


class Runner(Protocol):
    name: str
    api: BotApi

    async def start(self) -> str: ...
    async def poll(self, polling_timeout: int = 25) -> None: ...
    async def stop_polling(self) -> None: ...
    async def feed(self, raw: dict[str, Any]) -> None: ...
    async def close(self) -> None: ...


def make_runner(
    transport: str, token: str, api_base: str | None, gateway: TelegramGateway
) -> Runner:
    if transport == "ptb":
        from bot.transports.ptb_adapter import PtbRunner

        return PtbRunner(token, api_base, gateway)
    if transport == "aiogram":
        from bot.transports.aiogram_adapter import AiogramRunner

        return AiogramRunner(token, api_base, gateway)
    raise ValueError(f"unknown transport {transport!r}: choose one of {', '.join(TRANSPORTS)}")


@dataclass
class RunOptions:
    transport: str = "aiogram"
    webhook_url: str | None = None
    webhook_secret: str | None = None
    listen: str = "0.0.0.0"
    port: int = 8080
    polling_timeout: int = 25
    sender: bool = True
    """Run the planner tick and the outbox sender in this process."""


def webhook_app(runner: Runner, path: str, secret: str) -> web.Application:
    async def webhook(request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), secret.encode()):
            log.warning("webhook request with a wrong secret token refused")
            return web.Response(status=401, text="unauthorized")
        try:
            raw = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return web.Response(status=400, text="bad request")
        if not isinstance(raw, dict):
            return web.Response(status=400, text="bad request")
        try:
            await runner.feed(raw)
        except Exception:
            log.exception("update %s failed; Telegram will deliver it again", raw.get("update_id"))
            return web.Response(status=500, text="retry later")
        return web.Response(text="ok")

    app = health_app()
    app.router.add_post(path, webhook)
    return app


def health_app() -> web.Application:
    async def healthz(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    return app


class TelegramService:
    """Starts and stops everything `run` needs; tests drive it directly."""

    def __init__(self, settings: Settings, options: RunOptions, app: App | None = None):
        self.settings = settings
        self.options = options
        self.app = app
        self.runner: Runner | None = None
        self.site: web.TCPSite | None = None
        self._web: web.AppRunner | None = None
        self._poller: asyncio.Task[None] | None = None
        self.port: int | None = None
        self.delivery: DeliveryService | None = None
        self.metrics: Metrics | None = None

    async def start(self) -> None:
        if not self.settings.bot_token:
            raise ValueError("no token")
        self.app = self.app or await build_app(self.settings, serving=True)
        self.metrics = Metrics(engine=self.app.engine)
        self.app.store.on_conflict = self.metrics.unit_conflicts.inc
        gateway = TelegramGateway(self.app.tutor, self.settings.lessons_dir, metrics=self.metrics)
        self.runner = make_runner(
            self.options.transport, self.settings.bot_token, self.settings.api_base, gateway
        )
        gateway.bot_username = await self.runner.start()
        self.app.tutor.bot_username = gateway.bot_username or self.app.tutor.bot_username
        budget = Budget(self.settings.send_rate)
        raw_api = CountingApi(self.runner.api, self.metrics)  # counts 429s on every path
        self.runner.api = BudgetedApi(CountingApi(self.runner.api, self.metrics, "reply"), budget)

        async def deliver(chat_id: int, action: Action) -> None:
            await gateway.render(raw_api, chat_id, action)

        if self.options.sender:
            self.delivery = DeliveryService.build(
                self.app.tutor,
                Outbox(self.app.engine),
                deliver,
                budget,
                lease=timedelta(seconds=self.settings.sender_lease),
                api=self.runner.api,
            )
            self.delivery.sender.on_result = self.metrics.count_outbox_result
            await self.delivery.start()
        for menu in command_menus():
            await self.runner.api.call("setMyCommands", menu)
        if self.options.webhook_url:
            secret = self.options.webhook_secret or secrets.token_urlsafe(32)
            path = urlparse(self.options.webhook_url).path or "/"
            web_app = webhook_app(self.runner, path, secret)
            add_metrics_route(web_app, self.metrics)
            await self._serve(web_app)
            await self.runner.api.call(
                "setWebhook",
                {
                    "url": self.options.webhook_url,
                    "secret_token": secret,
                    "allowed_updates": ALLOWED_UPDATES,
                },
            )
        else:
            web_app = health_app()
            add_metrics_route(web_app, self.metrics)
            await self._serve(web_app)
            await self.runner.api.call("deleteWebhook", {})
            self._poller = asyncio.create_task(self.runner.poll(self.options.polling_timeout))

    async def _serve(self, web_app: web.Application) -> None:
        self._web = web.AppRunner(web_app, access_log=None)
        await self._web.setup()
        self.site = web.TCPSite(self._web, self.options.listen, self.options.port)
        await self.site.start()
        server = self.site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self.options.port

    async def stop(self) -> None:
        if self.delivery:
            await self.delivery.stop()
        if self.runner:
            await self.runner.stop_polling()
        if self._poller:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._poller
        if self._web:
            await self._web.cleanup()
        if self.runner:
            await self.runner.close()
        if self.app:
            await self.app.close()


async def run(settings: Settings, options: RunOptions) -> None:
    service = TelegramService(settings, options)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await service.start()  # inside: a failed start (SenderLocked) still closes what it opened
        # What start-up loaded (content, translations, the frameworks' types) lives as long as
        # the process: keep it out of the collector's full passes, which otherwise stall the loop.
        gc.freeze()
        mode = f"webhook {options.webhook_url}" if options.webhook_url else "long polling"
        log.info(
            "RestART Tutor running on %s (%s), health on port %s",
            options.transport,
            mode,
            service.port,
        )
        await stop.wait()
    finally:
        await service.stop()
