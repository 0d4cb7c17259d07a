"""Engine journeys on a real SQLite database with a fake clock: what a learner does and sees."""

from __future__ import annotations

from bot.tutor.events import EditPressed, Notice, PollAnswer, Press, Reply
from storage.models import Answer
from tests.chat import Chat, answer_reviews, take_lesson


def first_lesson(catalog):
    return catalog.courses["mooc-art"].lessons[0]


async def at_first_question(chat, catalog):
    """Onboard, start the first lesson and read its cards: its first question is on screen."""
    await chat.onboard()
    await chat.command("today")
    lesson = first_lesson(catalog)
    for _ in [i for i in lesson.items if i.type == "card"]:
        await chat.press("Continue")
    return lesson


async def count_answers(store) -> int:
    from sqlalchemy import func, select

    async with store.sessions() as s:
        return await s.scalar(select(func.count()).select_from(Answer))


async def test_onboarding_asks_language_zone_and_time(tutor):
    chat = Chat(tutor)
    await chat.command("start")
    assert "Privacy" in chat.said
    await chat.press("Italiano")
    assert "fuso orario" in chat.said.lower() or "time zone" in chat.said.lower()
    await chat.command("language")
    await chat.press("English")
    await chat.press("Athens")
    assert "time of day" in chat.said
    await chat.text("25:99")
    assert "not a time of day" in chat.said
    await chat.text("7.45")
    assert "All set" in chat.said and "07:45" in chat.said and "Europe/Athens" in chat.said


async def test_zone_typed_by_city_or_offset_and_unknown_zone_stores_nothing(tutor):
    chat = Chat(tutor)
    await chat.command("start")
    await chat.press("English")
    await chat.text("Atlantis/Lost_City")
    assert "could not find the time zone" in chat.said
    await chat.text("new york")
    assert "time of day" in chat.said
    await chat.command("settings")
    await chat.press("Time zone")
    await chat.text("UTC+5:30")
    assert "UTC+05:30" in chat.said


async def test_a_lesson_end_to_end_gives_feedback_and_streak_one(tutor, catalog, clock):
    chat = Chat(tutor)
    await chat.onboard()
    await chat.press("Start the first lesson")
    lesson = first_lesson(catalog)
    assert lesson.title in chat.said
    await take_lesson(chat, lesson, right=True)
    assert "Lesson complete" in chat.said
    assert "Streak: 1 day" in chat.said
    await chat.command("progress")
    assert "Streak: 1 day" in chat.said
    assert "1/5 lessons" in chat.said
    assert "100%" in chat.said


async def test_wrong_answer_shows_the_right_one_and_explanation(tutor, catalog):
    chat = Chat(tutor)
    await chat.onboard()
    await chat.command("today")
    lesson = first_lesson(catalog)
    cards = [i for i in lesson.items if i.type == "card"]
    for _ in cards:
        await chat.press("Continue")
    question = lesson.items[len(cards)]
    await take_lesson_item_wrong(chat, question)
    assert "Not quite" in chat.said
    assert question.explanation.strip()[:40] in chat.said
    edits = [a for a in chat.last if isinstance(a, EditPressed)]
    assert edits and "Your answer" in edits[0].text


async def take_lesson_item_wrong(chat, question):
    if question.type == "truefalse":
        await chat.press("False" if question.answer else "True")
    elif question.type == "single":
        wrong = (question.correct_ids[0] + 1) % len(question.options)
        await chat.send(Press(chat.keyboard[wrong].data))
    else:
        raise AssertionError(question.type)


async def test_same_answer_pressed_twice_is_recorded_once(tutor, catalog, sqlite_store):
    chat = Chat(tutor)
    await at_first_question(chat, catalog)
    button = chat.keyboard[0]
    await chat.send(Press(button.data))
    assert await count_answers(sqlite_store) == 1
    await chat.send(Press(button.data))
    assert await count_answers(sqlite_store) == 1
    assert "already answered" in chat.said
    assert any(isinstance(a, Notice) for a in chat.last)


async def test_stale_and_forged_buttons_change_nothing(tutor, catalog, sqlite_store):
    chat = Chat(tutor)
    await chat.onboard()
    await chat.command("today")
    old_continue = chat.button("Continue").data
    await chat.press("Continue")
    await chat.send(Press(old_continue))
    assert "earlier step" in chat.said
    for forged in (
        "a:AAAAAAAA:0",
        "a:zz",
        "ok:nope",
        "t:x:99",
        "zzz:1",
        "tz:999",
        "tm:25:99",
        "lang:xx",
        "set:bogus",
        "a::",
        "",
    ):
        await chat.send(Press(forged))
        assert chat.last, forged
        assert all(isinstance(a, (Reply, Notice)) for a in chat.last), forged
    assert await count_answers(sqlite_store) == 0


async def test_unknown_command_and_free_text_get_help(tutor):
    chat = Chat(tutor)
    await chat.onboard()
    await chat.command("dance")
    assert "don't know the command /dance" in chat.said
    await chat.text("hello there")
    assert "/today" in chat.said
    await chat.command("today")
    await chat.press("Continue")
    while "Continue" in [b.label.split()[0] for b in chat.keyboard]:
        await chat.press("Continue")
    await chat.text("what?")
    assert "buttons under the question" in chat.said


async def test_typed_option_number_answers_the_question(tutor, catalog, sqlite_store):
    chat = Chat(tutor)
    await at_first_question(chat, catalog)
    await chat.text("1")
    assert await count_answers(sqlite_store) == 1


async def test_commands_before_onboarding_resume_it(tutor):
    chat = Chat(tutor)
    await chat.command("today")
    assert "Which language" in chat.said
    await chat.command("start")
    await chat.press("English")
    await chat.command("progress")
    assert "Which time zone" in chat.said


async def test_stop_and_resume_reminders(tutor):
    chat = Chat(tutor)
    await chat.onboard()
    await chat.command("stop")
    assert "reminders are off" in chat.said
    await chat.command("settings")
    assert "Daily reminders: off" in chat.said
    await chat.command("resume")
    assert "on again" in chat.said


async def test_quiz_poll_mode_records_answers_from_poll(tutor, catalog, sqlite_store):
    chat = Chat(tutor)
    await chat.onboard()
    await chat.command("settings")
    await chat.press("Question style")
    assert "quiz polls" in chat.said
    await chat.command("today")
    lesson = first_lesson(catalog)
    for _ in [i for i in lesson.items if i.type == "card"]:
        await chat.press("Continue")
    question = lesson.questions[0]
    assert chat.quiz is not None and chat.quiz.question == question.prompt
    first_poll = f"poll-{chat.quiz.token}"
    await chat.answer_poll(question.correct_ids[0])
    assert "Right" in chat.said
    assert await count_answers(sqlite_store) == 1
    await chat.send(PollAnswer(first_poll, (0,)))  # the same poll again: recorded once
    assert await count_answers(sqlite_store) == 1
    await chat.send(PollAnswer("never-sent", (0,)))  # unknown poll: ignored on purpose
    assert chat.last == []


async def test_streak_grows_over_days_and_progress_shows_it(tutor, catalog, clock):
    chat = Chat(tutor)
    await chat.onboard()
    lessons = catalog.courses["mooc-art"].lessons
    for day, lesson in enumerate(lessons[:3]):
        await chat.command("today")
        if await answer_reviews(chat, catalog):
            await chat.command("today")
        await take_lesson(chat, lesson)
        assert f"Streak: {day + 1} day" in chat.said
        clock.advance(days=1)
    await chat.command("progress")
    assert "Streak: 3 days" in chat.said
    clock.advance(days=2)
    await chat.command("progress")
    assert "Streak: 0 days" in chat.said and "best: 3" in chat.said


async def test_learners_are_separate(tutor, catalog):
    ada, bo = Chat(tutor, "ada"), Chat(tutor, "bo")
    await ada.onboard()
    await bo.onboard(city="Madrid")
    await ada.command("today")
    await take_lesson(ada, first_lesson(catalog))
    await bo.command("progress")
    assert "0/5 lessons" in bo.said


async def test_pause_validates_and_freezes_the_streak(tutor, catalog, clock, sqlite_store):
    chat = Chat(tutor)
    await chat.onboard()
    for bad, words in (
        ("-3d", "did not understand"),
        ("10y", "did not understand"),
        ("3650d", "at most 90 days"),
        ("2020-01-01", "in the past"),
        ("soon", "did not understand"),
    ):
        await chat.command("pause", bad)
        assert words in chat.said, bad
    async with sqlite_store.unit() as repo:
        assert (await repo.streak_history(1))[1] == []
    lessons = catalog.courses["mooc-art"].lessons
    for lesson in lessons[:2]:  # two practice days
        await chat.command("today")
        await take_lesson(chat, lesson)
        clock.advance(days=1)
    await chat.command("pause", "7d")
    assert "Paused until" in chat.said
    clock.advance(days=7)
    await chat.command("progress")
    assert "Streak: 2 days" in chat.said
    await chat.command("pause", "off")
    assert "Welcome back" in chat.said


async def test_quiet_hours_and_days(tutor):
    chat = Chat(tutor)
    await chat.onboard()
    await chat.command("quiet", "25:99-07:00")
    assert "two times" in chat.said
    await chat.command("quiet", "22:00-07:00")
    assert "22:00-07:00" in chat.said
    await chat.command("days")
    await chat.press("Sat")
    await chat.press("Sun")
    labels = [b.label for b in chat.keyboard]
    assert "▫️ Sat" in labels and "▫️ Sun" in labels and "✅ Mon" in labels
    await chat.command("settings")
    assert "Quiet hours: 22:00-07:00" in chat.said


async def test_nudge_says_what_is_waiting_and_starts_it(tutor, catalog, clock):
    chat = Chat(tutor)
    await chat.onboard()
    learner_id = 1
    actions = await tutor.compose(learner_id, "nudge", {})
    first = catalog.courses["mooc-art"].lessons[0]
    assert first.title in actions[0].text
    assert actions[0].buttons[0][0].data == "today"
    await chat.send(Press(actions[0].buttons[0][0].data))
    assert first.title in chat.said


async def test_next_nudge_follows_settings(tutor, sqlite_store, clock):
    from datetime import UTC, datetime

    chat = Chat(tutor)
    await chat.onboard(city="Athens", time="07:30")  # clock: 2 March 09:00 UTC = 11:00 Athens
    async with sqlite_store.unit() as repo:
        learner = await repo.learner(chat.who, clock.now)
        assert learner.next_nudge_at == datetime(2026, 3, 3, 5, 30, tzinfo=UTC)
    await chat.command("stop")
    async with sqlite_store.unit() as repo:
        assert (await repo.learner(chat.who, clock.now)).next_nudge_at is None
    await chat.command("resume")
    async with sqlite_store.unit() as repo:
        assert (await repo.learner(chat.who, clock.now)).next_nudge_at is not None
