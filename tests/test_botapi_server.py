"""The loopback Bot API server, exercised with the real aiogram and python-telegram-bot clients."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import struct
import sys
import time
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import telegram
import telegram.error
from aiogram import Bot, Dispatcher, F
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.filters import CommandStart
from aiogram.types import (
    BotCommand,
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)
from aiohttp import ClientSession, web
from telegram.ext import ApplicationBuilder, CommandHandler, ContextTypes

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `tests` is not a package: make `tests.botapi` importable
    sys.path.insert(0, str(ROOT))

from tests.botapi import BotAPIServer, UploadedFile  # noqa: E402

USER = 4242


def _keyboard(*data: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=d.title(), callback_data=d)] for d in data]
    )


def _png(width: int, height: int) -> bytes:
    header = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR"
    return header + struct.pack(">II", width, height) + b"\x08\x02\x00\x00\x00" + b"\0" * 200


def _retry_after_seconds(exc: telegram.error.RetryAfter) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


@pytest.fixture
async def server() -> AsyncIterator[BotAPIServer]:
    async with BotAPIServer() as srv:
        yield srv
    assert srv.internal_errors == []


@pytest.fixture
async def abot(server: BotAPIServer) -> AsyncIterator[Bot]:
    session = AiohttpSession(api=TelegramAPIServer.from_base(server.base_url))
    bot = Bot(server.token, session=session)
    yield bot
    await session.close()


@pytest.fixture
async def pbot(server: BotAPIServer) -> AsyncIterator[telegram.Bot]:
    bot = telegram.Bot(server.token, base_url=server.ptb_base_url)
    async with bot:
        yield bot


async def test_get_me_in_both_clients(server: BotAPIServer, abot: Bot, pbot: telegram.Bot) -> None:
    me = await abot.get_me()
    assert (me.id, me.is_bot, me.username) == (123456, True, "restart_tutor_bot")
    assert me.can_join_groups is True and me.supports_inline_queries is True
    # PTB called getMe while initialising and exposes the bot-only fields.
    assert pbot.username == "restart_tutor_bot"
    assert pbot.can_join_groups is True
    assert pbot.can_read_all_group_messages is False
    assert pbot.supports_inline_queries is True
    calls = server.calls("getMe")
    assert len(calls) == 2 and all(c.status == 200 for c in calls)


async def test_send_message_keyboard_press_and_edit(server: BotAPIServer, abot: Bot) -> None:
    sent = await abot.send_message(
        USER,
        "<b>Lesson 1</b>\nRead &amp; answer",
        parse_mode="HTML",
        reply_markup=_keyboard("lesson:1:next"),
    )
    assert sent.text == "Lesson 1\nRead & answer"
    assert [(e.type, e.offset, e.length) for e in sent.entities or []] == [("bold", 0, 8)]
    assert sent.reply_markup is not None
    assert sent.reply_markup.inline_keyboard[0][0].callback_data == "lesson:1:next"

    record = server.requests[-1]
    assert (record.method, record.status) == ("sendMessage", 200)
    assert record.params["chat_id"] == USER
    assert record.params["reply_markup"] == {
        "inline_keyboard": [[{"text": "Lesson:1:Next", "callback_data": "lesson:1:next"}]]
    }
    [as_sent] = server.sent(USER)
    assert as_sent["message_id"] == sent.message_id
    assert as_sent["reply_markup"] == record.params["reply_markup"]

    # message_ids increase per chat
    second = await abot.send_message(USER, "second")
    other = await abot.send_message(USER + 1, "other chat")
    assert second.message_id == sent.message_id + 1
    assert other.message_id == 1

    query_id = server.user_presses(USER, "lesson:1:next")
    [update] = await abot.get_updates(timeout=0)
    assert update.callback_query is not None
    assert update.callback_query.id == query_id
    assert update.callback_query.data == "lesson:1:next"
    assert update.callback_query.from_user.id == USER
    assert isinstance(update.callback_query.message, Message)
    assert update.callback_query.message.message_id == sent.message_id

    assert await abot.answer_callback_query(query_id, text="Saved") is True
    assert server.answered_callbacks[-1]["text"] == "Saved"
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await abot.answer_callback_query(query_id)

    edited = await abot.edit_message_text("Done", chat_id=USER, message_id=sent.message_id)
    assert isinstance(edited, Message)
    assert edited.text == "Done" and edited.edit_date is not None
    assert edited.reply_markup is None  # editing text without reply_markup drops the keyboard
    assert [m["text"] for m in server.sent(USER, method="editMessageText")] == ["Done"]
    assert server.message(USER, sent.message_id)["text"] == "Done"
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await abot.edit_message_text("Done", chat_id=USER, message_id=sent.message_id)
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await abot.edit_message_text("x", chat_id=USER, message_id=999)

    restored = await abot.edit_message_reply_markup(
        chat_id=USER, message_id=sent.message_id, reply_markup=_keyboard("again")
    )
    assert isinstance(restored, Message) and restored.reply_markup is not None
    assert server.user_presses(USER, "again")
    with pytest.raises(LookupError):
        server.user_presses(USER, "lesson:1:next")  # that button is gone


async def test_formatting_and_validation_errors(
    server: BotAPIServer, abot: Bot, pbot: telegram.Bot
) -> None:
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await abot.send_message(USER, "line<br>break", parse_mode="HTML")
    with pytest.raises(telegram.error.BadRequest, match="is reserved"):
        await pbot.send_message(USER, "Well done.", parse_mode="MarkdownV2")
    ok = await pbot.send_message(USER, "*Well* done\\.", parse_mode="MarkdownV2")
    assert ok.text == "Well done."
    assert [(e.type, e.offset, e.length) for e in ok.entities] == [("bold", 0, 4)]
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await abot.send_message(USER, "x" * 4097)
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await abot.send_message(USER, "   ")
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await abot.send_message(USER, "too long data", reply_markup=_keyboard("d" * 65))
    assert len(server.sent(USER)) == 1
    assert [r.status for r in server.requests[-6:]] == [400, 400, 200, 400, 400, 400]


async def test_quiz_poll_and_poll_answer(
    server: BotAPIServer, abot: Bot, pbot: telegram.Bot
) -> None:
    quiz = await abot.send_poll(
        USER,
        "Capital of France?",
        ["Berlin", "Paris", "Rome"],
        type="quiz",
        is_anonymous=False,
        correct_option_ids=[1],
        explanation="Paris it is",
    )
    assert quiz.poll is not None
    poll = quiz.poll
    assert (poll.type, poll.is_anonymous, poll.correct_option_ids) == ("quiz", False, [1])
    assert [o.text for o in poll.options] == ["Berlin", "Paris", "Rome"]
    assert poll.total_voter_count == 0 and poll.explanation == "Paris it is"
    assert server.sent(USER, method="sendPoll")[0]["poll"]["question"] == "Capital of France?"

    server.user_answers_poll(USER, poll.id, [1])
    [update] = await pbot.get_updates(timeout=0)
    assert update.poll_answer is not None
    assert update.poll_answer.poll_id == poll.id
    assert update.poll_answer.option_ids == (1,)
    assert update.poll_answer.user is not None and update.poll_answer.user.id == USER
    [same] = await abot.get_updates(timeout=0)  # not confirmed yet: aiogram parses it too
    assert same.poll_answer is not None and same.poll_answer.option_ids == [1]
    current = server.poll(poll.id)
    assert current is not None
    assert [o["voter_count"] for o in current["options"]] == [0, 1, 0]
    assert current["total_voter_count"] == 1

    regular = await pbot.send_poll(USER, "Favourite?", ["Tea", "Coffee"])
    assert regular.poll.is_anonymous is True and regular.poll.type == "regular"
    with pytest.raises(ValueError, match="anonymous"):
        server.user_answers_poll(USER, regular.poll.id, [0])
    with pytest.raises(TelegramBadRequest):
        await abot.send_poll(USER, "No answer?", ["a", "b"], type="quiz")


async def test_get_updates_offset_and_long_poll(
    server: BotAPIServer, abot: Bot, pbot: telegram.Bot
) -> None:
    ids = [server.user_sends(USER, f"m{i}") for i in range(3)]
    assert [u.update_id for u in await abot.get_updates(timeout=0)] == ids
    assert [u.update_id for u in await abot.get_updates(timeout=0)] == ids  # not confirmed yet
    assert [u.update_id for u in await abot.get_updates(offset=ids[1], timeout=0)] == ids[1:]
    assert [u["update_id"] for u in server.pending_updates] == ids[1:]
    assert [u.update_id for u in await pbot.get_updates(offset=ids[1], limit=1)] == [ids[1]]
    assert await pbot.get_updates(offset=ids[2] + 1, timeout=0) == ()
    assert server.pending_updates == []

    started = time.monotonic()
    assert await abot.get_updates(offset=ids[2] + 1, timeout=1) == []
    assert 0.9 <= time.monotonic() - started < 2.5

    asyncio.get_running_loop().call_later(0.2, server.user_sends, USER, "late")
    started = time.monotonic()
    [late] = await pbot.get_updates(offset=ids[2] + 1, timeout=5)
    assert time.monotonic() - started < 2.0
    assert late.message is not None and late.message.text == "late"

    # allowed_updates persists and filters updates created afterwards
    await abot.get_updates(offset=late.update_id + 1, timeout=0, allowed_updates=["message"])
    server.user_blocks(USER)
    kept = server.user_sends(USER, "still delivered")
    assert [u.update_id for u in await abot.get_updates(timeout=0)] == [kept]
    # blocking and the implicit unblock (my_chat_member) were filtered out
    assert [u["update_id"] for u in server.filtered_updates] == [kept - 2, kept - 1]


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_retry_after_and_server_errors(
    server: BotAPIServer, abot: Bot, pbot: telegram.Bot
) -> None:
    server.fail("sendMessage", status=429, retry_after=3)
    with pytest.raises(TelegramRetryAfter) as aiogram_error:
        await abot.send_message(USER, "first")
    assert aiogram_error.value.retry_after == 3
    assert "Too Many Requests: retry after 3" in aiogram_error.value.message
    await abot.send_message(USER, "second")  # the fault was used up

    server.fail("sendMessage", status=429, retry_after=2, chat_id=7)
    await pbot.send_message(8, "other chat is fine")
    with pytest.raises(telegram.error.RetryAfter) as ptb_error:
        await pbot.send_message(7, "limited")
    assert _retry_after_seconds(ptb_error.value) == 2
    assert [r.status for r in server.calls("sendMessage")] == [429, 200, 200, 429]

    server.fail(status=500)
    with pytest.raises(TelegramServerError, match="Internal Server Error"):
        await abot.send_chat_action(USER, "typing")
    server.fail("sendMessage", status=0)
    with pytest.raises(TelegramNetworkError):
        await abot.send_message(USER, "connection dropped")
    assert len(server.sent(USER)) == 1

    server.slow("sendMessage", seconds=0.3)
    started = time.monotonic()
    await abot.send_message(USER, "slow")
    assert time.monotonic() - started >= 0.29


async def test_flood_guard(server: BotAPIServer, abot: Bot) -> None:
    await abot.send_message(1, "a")
    await abot.send_message(1, "b")  # off by default
    server.enforce_limits(per_chat_per_second=1)
    await abot.send_message(1, "c")
    with pytest.raises(TelegramRetryAfter) as error:
        await abot.send_message(1, "d")
    assert error.value.retry_after == 1
    await abot.send_message(2, "other chat")
    assert server.violations == 1
    server.disable_limits()
    await abot.send_message(1, "e")
    assert [m["text"] for m in server.sent(1)] == ["a", "b", "c", "e"]


async def test_blocked_user_gets_forbidden(
    server: BotAPIServer, abot: Bot, pbot: telegram.Bot
) -> None:
    server.user_blocks(USER)
    [update] = await abot.get_updates(timeout=0)
    assert update.my_chat_member is not None
    assert update.my_chat_member.new_chat_member.status == "kicked"
    assert update.my_chat_member.old_chat_member.status == "member"
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await abot.send_message(USER, "hello?")
    with pytest.raises(telegram.error.Forbidden, match="bot was blocked by the user"):
        await pbot.send_message(USER, "hello?")
    await abot.send_message(USER + 1, "others still reachable")

    server.user_sends(USER, "/start")  # pressing "Restart" unblocks first
    updates = await pbot.get_updates(offset=update.update_id + 1, timeout=0)
    assert [u.my_chat_member is not None for u in updates] == [True, False]
    assert updates[0].my_chat_member.new_chat_member.status == "member"
    assert updates[1].message.text == "/start"
    assert updates[1].message.entities[0].type == "bot_command"
    assert (await pbot.send_message(USER, "welcome back")).text == "welcome back"


async def test_wrong_token_and_raw_http(server: BotAPIServer) -> None:
    session = AiohttpSession(api=TelegramAPIServer.from_base(server.base_url))
    try:
        with pytest.raises(TelegramUnauthorizedError):
            await Bot("999:WRONG", session=session).get_me()
    finally:
        await session.close()
    with pytest.raises(telegram.error.InvalidToken):
        async with telegram.Bot("999:WRONG", base_url=server.ptb_base_url):
            pass

    base = f"{server.base_url}/bot{server.token}"
    async with ClientSession() as http:
        async with http.post(f"{server.base_url}/bot999:WRONG/getMe") as response:
            assert response.status == 401
            assert await response.json() == {
                "ok": False,
                "error_code": 401,
                "description": "Unauthorized",
            }
        async with http.post(f"{base}/fooBar") as response:
            assert response.status == 404
            assert await response.json() == {
                "ok": False,
                "error_code": 404,
                "description": "Not Found: method not found",
            }
        async with http.get(f"{base}/getme") as response:  # method names are case-insensitive
            assert (await response.json())["result"]["username"] == "restart_tutor_bot"
        async with http.get(f"{base}/sendMessage", params={"chat_id": "5", "text": "q"}) as r:
            assert (await r.json())["result"]["text"] == "q"
        payload = {"chat_id": 5, "text": "json", "reply_markup": '{"inline_keyboard": []}'}
        async with http.post(f"{base}/sendMessage", json=payload) as response:
            body = await response.json()
            assert body["ok"] is True and body["result"]["message_id"] == 2
    assert server.requests[-1].params["reply_markup"] == {"inline_keyboard": []}
    assert [r.status for r in server.requests] == [401, 401, 401, 404, 200, 200, 200]


async def test_webhook_delivery_with_secret(server: BotAPIServer, abot: Bot) -> None:
    received: list[tuple[str | None, dict[str, Any]]] = []

    async def receive(request: web.Request) -> web.Response:
        update = await request.json()
        received.append((request.headers.get("X-Telegram-Bot-Api-Secret-Token"), update))
        if len(received) == 1:
            return web.Response(status=500)
        if update.get("message", {}).get("text") == "/ping":
            chat_id = update["message"]["chat"]["id"]
            return web.json_response({"method": "sendMessage", "chat_id": chat_id, "text": "pong"})
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/hook", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        url = f"http://127.0.0.1:{port}/hook"
        first = server.user_sends(USER, "queued before setWebhook")
        assert await abot.set_webhook(url, secret_token="s3cr3t", allowed_updates=["message"])
        second = server.user_sends(USER, "/ping")
        await server.wait_for(lambda: len(received) >= 3)
        assert [secret for secret, _ in received] == ["s3cr3t"] * 3
        assert [update["update_id"] for _, update in received] == [first, first, second]
        deliveries = [(d.update_id, d.status, d.attempt) for d in server.webhook_deliveries]
        assert deliveries == [(first, 500, 1), (first, 200, 2), (second, 200, 1)]

        [pong] = await server.wait_sent(USER, 1)
        assert pong["text"] == "pong"
        assert server.calls("sendMessage")[-1].via == "webhook-reply"

        with pytest.raises(TelegramConflictError, match="webhook is active"):
            await abot.get_updates(timeout=0)
        info = await abot.get_webhook_info()
        assert info.url == url and info.pending_update_count == 0
        assert info.last_error_message is not None and "500" in info.last_error_message

        assert await abot.delete_webhook()
        assert await abot.get_updates(timeout=0) == []
        assert (await abot.get_webhook_info()).url == ""
    finally:
        await runner.cleanup()


async def test_photo_and_document_uploads(
    server: BotAPIServer, abot: Bot, pbot: telegram.Bot
) -> None:
    png = _png(64, 32)
    message = await abot.send_photo(
        USER,
        BufferedInputFile(png, filename="lesson.png"),
        caption="<i>Figure 1</i>",
        parse_mode="HTML",
    )
    assert message.photo is not None
    assert (message.photo[-1].width, message.photo[-1].height) == (64, 32)
    assert message.caption == "Figure 1"
    assert [(e.type, e.length) for e in message.caption_entities or []] == [("italic", 8)]
    params = server.requests[-1].params
    upload = params["photo"]
    assert isinstance(upload, UploadedFile)
    assert (upload.filename, upload.size, upload.head) == ("lesson.png", len(png), png[:64])
    assert set(params) == {"chat_id", "photo", "caption", "parse_mode"}

    again = await abot.send_photo(USER, message.photo[-1].file_id)  # a str is a file_id
    assert again.photo is not None and again.photo[-1].file_id == message.photo[-1].file_id

    document = await pbot.send_document(USER, b"notes for lesson 1", filename="notes.txt")
    assert document.document is not None
    assert (document.document.file_name, document.document.file_size) == ("notes.txt", 18)
    upload = server.requests[-1].params["document"]
    assert isinstance(upload, UploadedFile) and upload.head == b"notes for lesson 1"
    assert [m["message_id"] for m in server.sent(USER)] == [1, 2, 3]


async def test_commands_inline_queries_and_update_shapes(
    server: BotAPIServer, abot: Bot, pbot: telegram.Bot
) -> None:
    commands = [
        BotCommand(command="start", description="Start"),
        BotCommand(command="help", description="Help"),
    ]
    assert await abot.set_my_commands(commands)
    assert await abot.set_my_commands(commands[:1], language_code="de")
    assert [c.command for c in await pbot.get_my_commands()] == ["start", "help"]
    assert [c.command for c in await pbot.get_my_commands(language_code="de")] == ["start"]
    assert await pbot.delete_my_commands(language_code="de")
    assert await abot.get_my_commands(language_code="de") == []
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await abot.set_my_commands([BotCommand(command="Bad Command", description="x")])
    assert await abot.set_my_description("Microlearning for the cultural sector")
    assert (await pbot.get_my_description()).description.startswith("Microlearning")
    assert await pbot.send_chat_action(USER, "typing")

    query_id = server.user_sends_inline_query(USER, "lesson")
    server.user_sends(USER, "/start@restart_tutor_bot", chat_type="supergroup", chat_id=-1001)
    server.put_update(
        {
            "edited_message": {
                "message_id": 1,
                "date": 1_700_000_000,
                "edit_date": 1_700_000_100,
                "chat": {"id": USER, "type": "private", "first_name": "Ada"},
                "from": {"id": USER, "is_bot": False, "first_name": "Ada"},
                "text": "edited",
            }
        }
    )
    server.user_blocks(USER)
    ptb_updates = await pbot.get_updates(timeout=0)
    aiogram_updates = await abot.get_updates(timeout=0)
    assert len(ptb_updates) == len(aiogram_updates) == 4
    assert [u.event_type for u in aiogram_updates] == [
        "inline_query",
        "message",
        "edited_message",
        "my_chat_member",
    ]
    group_message = ptb_updates[1].message
    assert group_message.chat.type == "supergroup" and group_message.chat.id == -1001
    assert group_message.entities[0].length == len("/start@restart_tutor_bot")

    article = telegram.InlineQueryResultArticle(
        "1", "Lesson 1", telegram.InputTextMessageContent("Lesson 1")
    )
    assert await pbot.answer_inline_query(query_id, [article])
    assert server.answered_inline_queries[0]["results"][0]["title"] == "Lesson 1"


async def test_aiogram_dispatcher_polling(server: BotAPIServer) -> None:
    dp = Dispatcher()

    @dp.message(CommandStart())
    async def start(message: Message) -> None:
        await message.answer("Welcome!", reply_markup=_keyboard("begin"))

    @dp.callback_query(F.data == "begin")
    async def begin(query: CallbackQuery) -> None:
        await query.answer("Let's go")
        assert isinstance(query.message, Message)
        await query.message.edit_text("Lesson 1")

    bot = Bot(
        server.token, session=AiohttpSession(api=TelegramAPIServer.from_base(server.base_url))
    )
    polling = asyncio.create_task(dp.start_polling(bot, polling_timeout=1, handle_signals=False))
    try:
        server.user_sends(USER, "/start")
        [welcome] = await server.wait_sent(USER, 1)
        assert welcome["text"] == "Welcome!"
        server.user_presses(USER, "begin")
        sent = await server.wait_sent(USER, 2)
        assert sent[-1]["text"] == "Lesson 1"
        assert server.answered_callbacks[-1]["text"] == "Let's go"
    finally:
        await dp.stop_polling()
        await polling


async def test_ptb_application_polling(server: BotAPIServer) -> None:
    async def start(update: telegram.Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text(
            "Welcome!",
            do_quote=True,
            reply_markup=telegram.InlineKeyboardMarkup(
                [[telegram.InlineKeyboardButton("Begin", callback_data="begin")]]
            ),
        )

    app = ApplicationBuilder().token(server.token).base_url(server.ptb_base_url).build()
    app.add_handler(CommandHandler("start", start))
    async with app:
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=1)
        await app.start()
        try:
            server.user_sends(USER, "/start", language_code="de")
            [welcome] = await server.wait_sent(USER, 1)
            assert welcome["text"] == "Welcome!"
            assert welcome["reply_to_message"]["text"] == "/start"
            assert server.user_presses(USER, "begin")
        finally:
            await app.updater.stop()
            await app.stop()


async def test_standalone_process_and_control_interface() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.botapi",
        "--port",
        "0",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        base = (await asyncio.wait_for(process.stdout.readline(), 15)).decode().strip()
        assert base.startswith("http://127.0.0.1:")
        api = f"{base}/bot123456:TEST-TOKEN"
        async with ClientSession() as http:

            async def control(path: str, **body: Any) -> Any:
                async with http.post(f"{base}/_test/{path}", json=body) as response:
                    assert response.status == 200, await response.text()
                    return await response.json()

            update_id = (await control("user_sends", user_id=9, text="/start"))["update_id"]
            async with http.get(f"{api}/getUpdates") as response:
                [update] = (await response.json())["result"]
            assert update["update_id"] == update_id and update["message"]["text"] == "/start"

            await control("fail", method="sendMessage", status=500)
            keyboard = json.dumps({"inline_keyboard": [[{"text": "Go", "callback_data": "go"}]]})
            form = {"chat_id": "9", "text": "hi", "reply_markup": keyboard}
            statuses = []
            for _ in range(2):
                async with http.post(f"{api}/sendMessage", data=form) as response:
                    statuses.append(response.status)
            assert statuses == [500, 200]
            async with http.get(f"{base}/_test/sent", params={"chat_id": "9"}) as response:
                [message] = (await response.json())["sent"]
            assert message["text"] == "hi" and message["message_id"] == 2

            query = await control("press", user_id=9, callback_data="go")
            assert query["callback_query_id"]
            await control("block", user_id=9, blocked=True)
            async with http.post(f"{api}/sendMessage", data=form) as response:
                assert response.status == 403
            async with http.get(f"{base}/_test/state") as response:
                state = await response.json()
            assert state["blocked"] == [9] and state["pending_updates"] == 3
    finally:
        process.terminate()
        assert await asyncio.wait_for(process.wait(), 10) == 0  # clean shutdown on SIGTERM
