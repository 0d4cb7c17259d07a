"""An Italian learner's journey over real HTTP: onboarding, a lesson with its feedback,
progress and a daily nudge, all in Italian (checked against the Italian catalogs)."""

from __future__ import annotations

from bot.content import Card, MultipleChoice, SingleChoice, TrueFalse
from bot.i18n import Translator
from tests.e2e.tg import TgUser, running_tutor

IT = Translator("it")


def cells(user: TgUser) -> tuple[int, list[str]]:
    message = user.last_keyboard_message()
    data = [c["callback_data"] for row in message["reply_markup"]["inline_keyboard"] for c in row]
    return message["message_id"], data


async def test_italian_journey(tmp_path, catalog):
    lesson = catalog.localized(IT.content).courses["mooc-art"].lessons[0]
    async with running_tutor(tmp_path, "aiogram", "polling") as (server, service):
        user = TgUser(server, 4242, language_code="it")
        said = await user.send("/start")
        assert IT.gettext("Which language would you like?") in said
        assert "Privacy" in said or IT.gettext("Privacy") in said
        await user.press("Italiano")
        said = await user.press(IT.gettext("Rome"))
        assert (
            IT.gettext(
                "At what time of day shall I send your daily lesson? Pick one or "
                "type a time such as 08:15."
            )
            in said
        )
        await user.press("09:00")
        said = await user.press(IT.gettext("Start the first lesson"))
        assert lesson.title in said and lesson.title != "What the pandemic did to culture"
        for item in lesson.items:
            message_id, data = cells(user)
            if isinstance(item, Card):
                said = await user.press_data(
                    next(d for d in data if d.startswith("go:")), message_id
                )
            elif isinstance(item, TrueFalse):
                said = await user.press_data(data[0 if item.answer else 1], message_id)
            elif isinstance(item, SingleChoice):
                said = await user.press_data(data[item.correct_ids[0]], message_id)
            elif isinstance(item, MultipleChoice):
                for i in item.correct_ids:
                    message_id, data = cells(user)
                    await user.press_data(data[i], message_id)
                message_id, data = cells(user)
                said = await user.press_data(
                    next(d for d in data if d.startswith("ok:")), message_id
                )
        edits = " ".join(
            m.get("text") or "" for m in server.sent(chat_id=4242, method="editMessageText")
        )
        assert IT.gettext("✅ Right!") in edits and "✅ Right!" not in edits
        assert lesson.questions[0].explanation[:40] in edits
        assert IT.gettext("🎉 Lesson complete: {title}").format(title=lesson.title) in said
        said = await user.send("/progress")
        assert IT.gettext("📊 Your progress") in said
        assert IT.ngettext("🔥 Streak: {n} day", "🔥 Streak: {n} days", 1).format(n=1) in said
        nudge = await service.app.tutor.compose(1, "nudge", {})
        next_title = catalog.localized(IT.content).courses["mooc-art"].lessons[1].title
        assert (
            IT.gettext("☀️ Your daily lesson is ready: {title}").format(title=next_title)
            in nudge[0].text
        )
        assert nudge[0].buttons[0][0].label == IT.gettext("Start now ▸")
