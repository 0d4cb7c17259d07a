"""A bare echo bot (the benchmark's baseline): answers each button press and sends one message
with one button. `python -m bench.echo_bot aiogram|ptb BASE_URL`, runs until SIGTERM.

Each echo bot runs its framework the way the tutor's adapter does, so that the ratio measures
the tutor's own work and not a setting: the aiogram echo keeps its `Response[...]` classes alive
(`bot.transports.aiogram_adapter.RESPONSE_TYPES` says why; without it pydantic rebuilds one every
few calls and the echo bot runs at less than half its speed), and the python-telegram-bot echo
uses the adapter's update concurrency and HTTP connection pool. Both freeze what start-up made
out of the garbage collector's way, as the tutor does (`bot/runtime.py`)."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import sys
from typing import Any

TOKEN = "123456:TEST-TOKEN"
MARKUP = {"inline_keyboard": [[{"text": "again", "callback_data": "a:echo:0"}]]}


async def aiogram_echo(base: str, stop: asyncio.Event) -> None:
    from aiogram import Bot, Dispatcher
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer
    from aiogram.methods import AnswerCallbackQuery, GetMe, GetUpdates, SendMessage
    from aiogram.methods.base import Response
    from aiogram.types import CallbackQuery, Message

    used = (GetUpdates, GetMe, SendMessage, AnswerCallbackQuery)
    keep_alive = [Response[method.__returning__] for method in used]

    bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(base)))
    dp = Dispatcher()

    @dp.callback_query()
    async def on_press(query: CallbackQuery) -> None:
        await query.answer()
        await bot.send_message(query.from_user.id, "echo", reply_markup=MARKUP)

    @dp.message()
    async def on_text(message: Message) -> None:
        await bot.send_message(message.chat.id, "echo", reply_markup=MARKUP)

    gc.freeze()  # as bot/runtime.py does once the tutor has started
    task = asyncio.create_task(dp.start_polling(bot, handle_signals=False, polling_timeout=25))
    await stop.wait()
    await dp.stop_polling()
    await asyncio.gather(task, return_exceptions=True)
    await bot.session.close()
    del keep_alive  # held until the bot stops


async def ptb_echo(base: str, stop: asyncio.Event) -> None:
    from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
    from telegram.ext import ApplicationBuilder, CallbackQueryHandler, MessageHandler, filters

    from bot.transports.ptb_adapter import CONCURRENT_UPDATES, CONNECTION_POOL

    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("again", callback_data="a:echo:0")]])
    app = (
        ApplicationBuilder()
        .token(TOKEN)
        .base_url(f"{base}/bot")
        .concurrent_updates(CONCURRENT_UPDATES)
        .connection_pool_size(CONNECTION_POOL)
        .build()
    )

    async def press(update: Update, _context: Any) -> None:
        await update.callback_query.answer()
        await app.bot.send_message(update.effective_user.id, "echo", reply_markup=keyboard)

    async def text(update: Update, _context: Any) -> None:
        await app.bot.send_message(update.effective_chat.id, "echo", reply_markup=keyboard)

    app.add_handler(CallbackQueryHandler(press))
    app.add_handler(MessageHandler(filters.TEXT, text))
    async with app:
        await app.start()
        gc.freeze()
        await app.updater.start_polling(timeout=25, poll_interval=0)
        await stop.wait()
        await app.updater.stop()
        await app.stop()


async def main(transport: str, base: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await (aiogram_echo if transport == "aiogram" else ptb_echo)(base, stop)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
    sys.stdout.flush()
    os._exit(0)  # skip the interpreter's teardown of aiogram's models: most of a second per run
