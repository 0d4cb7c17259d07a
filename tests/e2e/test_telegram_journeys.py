"""The journey suite over real HTTP: aiogram and python-telegram-bot, polling and webhook."""

from __future__ import annotations

import io
import logging

import pytest
from sqlalchemy import select

from bot.config import Settings
from bot.content import Card, MultipleChoice, SingleChoice, TrueFalse
from bot.logs import configure_logging
from storage.models import Answer, Learner
from tests.e2e.tg import CONFIGS, TOKEN, TgUser, running_tutor

pytestmark = pytest.mark.parametrize(
    ("transport", "mode"), CONFIGS, ids=[f"{t}-{m}" for t, m in CONFIGS]
)


async def take_lesson_over_telegram(user: TgUser, lesson) -> str:
    said = ""
    for item in lesson.items:
        if isinstance(item, Card):
            said = await user.press("Continue")
        elif isinstance(item, TrueFalse):
            said = await user.press("True" if item.answer else "False")
        elif isinstance(item, SingleChoice):
            message = user.last_keyboard_message()
            cells = [c for row in message["reply_markup"]["inline_keyboard"] for c in row]
            said = await user.press_data(
                cells[item.correct_ids[0]]["callback_data"], message["message_id"]
            )
        elif isinstance(item, MultipleChoice):
            for i in item.correct_ids:
                message = user.last_keyboard_message()
                cells = [c for row in message["reply_markup"]["inline_keyboard"] for c in row]
                before = len(user.server.answered_callbacks)
                user.server.user_presses(
                    user.id, cells[i]["callback_data"], message_id=message["message_id"]
                )
                await user.server.wait_for(lambda b=before: len(user.server.answered_callbacks) > b)
            said = await user.press("Check")
    return said


async def test_onboarding_lesson_progress_settings(transport, mode, tmp_path, catalog):
    log = io.StringIO()
    configure_logging(Settings(bot_token=TOKEN), logging.DEBUG, log, quiet_libraries=False)
    async with running_tutor(tmp_path, transport, mode) as (server, _service):
        user = TgUser(server, 1001)
        said = await user.send("/start")
        assert "Privacy" in said and "Which language" in said
        said = await user.press("English")
        assert "time zone" in said
        await user.press("Rome")
        said = await user.press("09:00")
        assert "All set" in said
        said = await user.press("Start the first lesson")
        lesson = catalog.courses["mooc-art"].lessons[0]
        assert lesson.title in said
        said = await take_lesson_over_telegram(user, lesson)
        assert "Lesson complete" in said and "Streak: 1 day" in said
        # After an answer the question message was edited to show the result.
        edits = server.sent(chat_id=1001, method="editMessageText")
        assert any("Your answer" in (e.get("text") or "") for e in edits)
        said = await user.send("/progress")
        assert "Streak: 1 day" in said and "1/5 lessons" in said
        said = await user.send("/settings")
        assert "Time zone: Europe/Rome" in said
        # Every callback query was answered.
        presses = [r for r in server.requests if r.method == "answerCallbackQuery"]
        assert len(presses) == len(server.answered_callbacks) > 5
        # The command menu exists for every shipped language.
        for code in ("", "it", "es", "el"):
            assert server.commands(language_code=code), code
    logging.getLogger().handlers.clear()
    text = log.getvalue()
    assert "sendMessage" in text or "update" in text  # the libraries did log at DEBUG
    assert TOKEN not in text and TOKEN.split(":")[1] not in text


async def test_quiz_polls_record_answers(transport, mode, tmp_path, catalog):
    async with running_tutor(tmp_path, transport, mode) as (server, service):
        user = TgUser(server, 1002)
        await user.onboard()
        await user.send("/settings")
        said = await user.press("Question style")
        assert "quiz polls" in said
        await user.send("/today")
        lesson = catalog.courses["mooc-art"].lessons[0]
        for _ in [i for i in lesson.items if isinstance(i, Card)]:
            said = await user.press("Continue")
        polls = server.sent(chat_id=1002, method="sendPoll")
        assert polls, said
        poll = polls[-1]["poll"]
        assert poll["type"] == "quiz" and poll["is_anonymous"] is False
        question = lesson.questions[0]
        before = len(user.messages())
        server.user_answers_poll(1002, poll["id"], [question.correct_ids[0]])
        said = user.join(await user.settle(before))
        assert "Right" in said
        async with service.app.store.sessions() as s:
            answers = (await s.scalars(select(Answer))).all()
        assert [(a.question_id, a.correct) for a in answers] == [(question.id, True)]


async def test_forged_and_stale_buttons_change_nothing(transport, mode, tmp_path):
    async with running_tutor(tmp_path, transport, mode) as (server, service):
        user = TgUser(server, 1003)
        await user.onboard()
        said = await user.press_data("a:FORGED:0")
        assert "earlier step" in said
        said = await user.press_data("x" * 64)
        assert "no longer works" in said
        async with service.app.store.sessions() as s:
            assert (await s.scalars(select(Answer))).all() == []


async def test_blocking_and_unblocking_flip_the_active_flag(transport, mode, tmp_path):
    async with running_tutor(tmp_path, transport, mode) as (server, service):
        user = TgUser(server, 1004)
        await user.onboard()
        server.user_blocks(1004)

        async def active() -> bool:
            async with service.app.store.sessions() as s:
                return await s.scalar(
                    select(Learner.active).where(Learner.external_id == "tg:1004")
                )

        for _ in range(200):
            if await active() is False:
                break
            await __import__("asyncio").sleep(0.02)
        assert await active() is False
        said = await user.send("/progress")  # writing again unblocks
        assert "progress" in said.lower()
        assert await active() is True


async def test_odd_updates_are_answered_or_ignored_on_purpose(transport, mode, tmp_path):
    async with running_tutor(tmp_path, transport, mode) as (server, _service):
        user = TgUser(server, 1005)
        await user.onboard()
        base = {
            "message_id": 999,
            "date": 1767225600,
            "chat": {"id": 1005, "type": "private", "first_name": "Ada"},
            "from": {"id": 1005, "is_bot": False, "first_name": "Ada"},
        }
        before = len(user.messages())
        server.put_update(
            {
                "message": {
                    **base,
                    "sticker": {
                        "file_id": "s1",
                        "file_unique_id": "u1",
                        "type": "regular",
                        "width": 512,
                        "height": 512,
                        "is_animated": False,
                        "is_video": False,
                    },
                }
            }
        )
        said = user.join(await user.settle(before))
        assert "only read text" in said
        server.put_update({"edited_message": {**base, "text": "edited", "edit_date": 1}})
        said = await user.send("x" * 4000)
        assert "/today" in said
        before_group = len(server.sent(chat_id=-100))
        server.user_sends(1005, "/today", chat_type="group", chat_id=-100)
        await server.wait_for(lambda: len(server.sent(chat_id=-100)) > before_group)
        assert "private chats" in server.sent(chat_id=-100)[-1]["text"]
        server.user_sends(1005, "just chatting", chat_type="group", chat_id=-100)
        server.user_answers_poll(1005, "no-such-poll", [0])
        said = await user.send("/help")
        assert "/today" in said
        assert len(server.sent(chat_id=-100)) == before_group + 1
