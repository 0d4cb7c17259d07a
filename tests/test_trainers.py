"""Trainers: roles, cohorts and deep links, broadcasts (validation, preview, scheduling,
cancelling), statistics, CSV export and the toolkit, at the engine level on a real database."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from bot.trainers.stats import CSV_COLUMNS, answers_csv, cohort_figures, pseudonym
from bot.tutor.engine import Tutor
from bot.tutor.events import Attachment, InlineAnswer, InlineQuery, Media, Press, Who
from storage.models import Broadcast, Cohort, CohortMember, OutboxMessage
from tests.chat import Chat

ADMIN = "tg:1"


@pytest.fixture
def tutor(catalog, sqlite_store, clock):
    return Tutor(
        catalog, sqlite_store, clock=clock, admins=frozenset({ADMIN}), bot_username="tutor_bot"
    )


def person(tutor, user_id: int, name: str = "x") -> Chat:
    chat = Chat(tutor, name)
    chat.who = Who(f"tg:{user_id}", chat_id=user_id, display_name=name, language_code="en")
    return chat


async def make_trainer(tutor) -> Chat:
    admin = person(tutor, 1, "admin")
    await admin.onboard()
    await admin.command("grant")
    link = next(w for w in admin.said.split() if w.startswith("https://t.me/tutor_bot?start=t-"))
    trainer = person(tutor, 2, "trainer")
    await trainer.command("start", link.split("start=")[1])
    assert "You are now a trainer" in trainer.said
    await trainer.press("English")
    await trainer.press("Rome")
    await trainer.press("09:00")
    # The invitation works once only.
    other = person(tutor, 3, "other")
    await other.command("start", link.split("start=")[1])
    assert "not valid any more" in other.said
    return trainer


async def make_cohort(trainer: Chat, name: str = "Palermo dancers") -> str:
    await trainer.command("newcohort", name)
    await trainer.press("MOOC-ART")
    await trainer.press("18:00")
    return next(w for w in trainer.said.split() if "start=c-" in w).split("start=")[1]


async def test_learners_cannot_use_trainer_or_admin_commands(tutor, sqlite_store):
    learner = person(tutor, 50)
    await learner.onboard()
    for command in ("broadcast", "newcohort", "cohorts", "stats", "export", "broadcasts"):
        await learner.command(command)
        assert "for trainers" in learner.said, command
    await learner.command("grant", "50")
    assert "only an admin" in learner.said
    for data in ("ba:all", "bs:1", "bx:1", "cc:1:mooc-art", "st:1", "ex:1", "cr:1"):
        await learner.send(Press(data))
        assert "for trainers" in learner.said, data
    async with sqlite_store.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Cohort)) == 0


async def test_cohort_deep_link_joins_and_applies_defaults(tutor, sqlite_store):
    trainer = await make_trainer(tutor)
    payload = await make_cohort(trainer)
    learner = person(tutor, 60, "Lea")
    await learner.command("start", payload)
    assert "joined the group “Palermo dancers”" in learner.said
    assert "Which language" in learner.said  # a new learner is onboarded next
    await learner.command("start", "c-doesnotexist")
    assert "not valid" in learner.said
    await trainer.command("cohorts")
    assert "1 learners" in trainer.said or "1 learner" in trainer.said
    cohort_id = next(b.data for b in trainer.keyboard if b.data.startswith("cr:"))
    await trainer.send(Press(cohort_id))
    late = person(tutor, 61)
    await late.command("start", payload)
    assert "not valid" in late.said
    async with sqlite_store.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(CohortMember)) == 1


async def test_other_trainers_cannot_touch_my_cohort(tutor):
    trainer = await make_trainer(tutor)
    await make_cohort(trainer)
    await trainer.command("cohorts")
    stats_button = next(b.data for b in trainer.keyboard if b.data.startswith("st:"))
    admin = person(tutor, 1)
    await admin.command("grant", "77")
    rival = person(tutor, 77, "rival")
    await rival.onboard()
    await rival.send(Press(stats_button))
    assert "not yours" in rival.said


async def test_broadcast_validation_preview_schedule_and_cancel(tutor, sqlite_store, clock):
    trainer = await make_trainer(tutor)
    payload = await make_cohort(trainer)
    for uid in (70, 71):
        await person(tutor, uid).command("start", payload)
    await trainer.command("broadcast")
    await trainer.press("Palermo dancers")
    await trainer.text("   ")
    assert "empty" in trainer.said
    await trainer.text("x" * 10_000)
    assert "10,000 characters" in trainer.said and "Nothing was sent" in trainer.said
    await trainer.send(Media("photo", "PHOTO_FILE_ID", "c" * 2000))
    assert "1,024" in trainer.said
    await trainer.send(Media("photo", "PHOTO_FILE_ID", "Rehearsal moved to Friday!"))
    attachments = [a for a in trainer.last if isinstance(a, Attachment)]
    assert attachments and attachments[0].file_id == "PHOTO_FILE_ID"  # the preview
    assert "Send it to 2 learners?" in trainer.said
    await trainer.press("Schedule")
    await trainer.text("2020-01-01 10:00")
    assert "in the past" in trainer.said
    await trainer.text("tomorrow-ish")
    assert "could not read" in trainer.said
    when = (clock.now + timedelta(days=1)).strftime("%Y-%m-%d %H:%M")
    await trainer.text(when)
    assert "Scheduled for" in trainer.said
    await trainer.command("broadcasts")
    await trainer.press("Cancel #")
    assert "Cancelled" in trainer.said
    async with sqlite_store.sessions() as s:
        statuses = (await s.scalars(select(Broadcast.status))).all()
        assert statuses == ["cancelled"]
        assert await s.scalar(select(func.count()).select_from(OutboxMessage)) == 0


async def test_send_now_enqueues_each_member_once_and_blocked_ones_as_blocked(tutor, sqlite_store):
    trainer = await make_trainer(tutor)
    first = await make_cohort(trainer, "A")
    second = await make_cohort(trainer, "B")
    for uid in range(100, 110):
        await person(tutor, uid).command("start", first)
    for uid in range(105, 115):  # five learners are in both groups
        await person(tutor, uid).command("start", second)
    blocked = person(tutor, 114)
    from bot.tutor.events import ChatStatus

    await blocked.send(ChatStatus(blocked=True))
    await trainer.command("broadcast")
    await trainer.press("All my groups")
    await trainer.text("Hello everyone")
    await trainer.press("Send now")
    assert "Sending to 15 learners" in trainer.said
    await trainer.press("Send now")  # a replayed button
    assert "already been handled" in trainer.said
    async with sqlite_store.sessions() as s:
        rows = (await s.execute(select(OutboxMessage.chat_id, OutboxMessage.status))).all()
    assert len(rows) == 15 and len({c for c, _ in rows}) == 15
    assert [c for c, st in rows if st == "blocked"] == [114]


def test_cohort_figures_from_known_rows(catalog):
    now = datetime(2026, 3, 10, tzinfo=UTC)
    lesson = catalog.courses["mooc-art"].lessons[0]
    q1, q2 = lesson.questions[0].id, lesson.questions[1].id
    answer = SimpleNamespace
    learners = [(1, "Ana", True, 3, None), (2, "Bo", False, 0, None), (3, None, False, 15, None)]
    answers = [
        answer(
            learner_id=1,
            question_id=q1,
            lesson_id=lesson.id,
            choice="0",
            correct=True,
            answered_at=now - timedelta(days=1),
            context="lesson",
        ),
        answer(
            learner_id=2,
            question_id=q1,
            lesson_id=lesson.id,
            choice="1",
            correct=False,
            answered_at=now - timedelta(days=10),
            context="lesson",
        ),
        answer(
            learner_id=3,
            question_id=q1,
            lesson_id=lesson.id,
            choice="1",
            correct=False,
            answered_at=now - timedelta(days=2),
            context="lesson",
        ),
        answer(
            learner_id=1,
            question_id=q2,
            lesson_id=lesson.id,
            choice="0",
            correct=True,
            answered_at=now - timedelta(days=1),
            context="lesson",
        ),
        answer(
            learner_id=2,
            question_id=q1,
            lesson_id=lesson.id,
            choice="0",
            correct=True,
            answered_at=now - timedelta(days=1),
            context="review",
        ),
    ]
    module = catalog.courses["mooc-art"].modules[0]
    completions = [(1, les.id) for les in module.lessons]
    scores = [
        (1, "disinformation", "pre", 0.5),
        (1, "disinformation", "post", 2.0),
        (2, "disinformation", "post", 1.0),
    ]
    f = cohort_figures(catalog, learners, answers, completions, scores, now, min_answers=3)
    assert (f.learners, f.active_7_days) == (3, 3)  # Bo reviewed yesterday
    assert f.accuracy == pytest.approx(2 / 4)
    first_module = next(share for _c, m, share in f.completion if m == module.title)
    assert first_module == pytest.approx(1 / 3)
    assert f.hardest == [(lesson.questions[0].prompt, pytest.approx(1 / 3), 3)]
    assert f.streaks == {"0": 1, "1–2": 0, "3–6": 1, "7–13": 0, "14+": 1}
    assert f.discernment_change == pytest.approx(1.5) and f.discernment_pairs == 1


def test_csv_has_the_columns_and_pseudonyms_unless_consented(catalog):
    lesson = catalog.courses["mooc-art"].lessons[0]
    learners = [(1, "Ana Real", True, 0, None), (2, "Bo Hidden", False, 0, None)]
    answers = [
        SimpleNamespace(
            learner_id=i,
            question_id=lesson.questions[0].id,
            lesson_id=lesson.id,
            choice="0",
            correct=True,
            context="lesson",
            answered_at=datetime(2026, 1, 1, tzinfo=UTC),
        )
        for i in (1, 2)
    ]
    rows = list(csv.reader(io.StringIO(answers_csv(catalog, "abc", learners, answers).decode())))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert rows[1][0] == "Ana Real"
    assert rows[2][0] == pseudonym("abc", 2) and "Bo" not in rows[2][0]
    assert pseudonym("abc", 2) != pseudonym("xyz", 2)  # not linkable across cohorts


async def test_inline_mode_and_toolkit_search(tutor):
    actions = await tutor.handle(Who("tg:9", chat_id=9), InlineQuery("q1", "copyright"))
    (answer,) = actions
    assert isinstance(answer, InlineAnswer)
    assert "Creative Commons" in answer.results[0].title
    assert "https://" in answer.results[0].text
    chat = person(tutor, 9)
    await chat.onboard()
    await chat.command("toolkit", "licenze")
    assert "Creative Commons" in chat.said.split("\n\n")[0]
    await chat.command("toolkit")
    await chat.send(Press(chat.keyboard[0].data))
    assert "https://" in chat.said
    await chat.command("toolkit", "zzzqqq")
    assert "Nothing found" in chat.said


async def test_a_lesson_names_its_related_toolkit_resources(tutor, catalog):
    from tests.chat import take_lesson

    chat = person(tutor, 90)
    await chat.onboard()
    lessons = catalog.courses["mooc-art"].lessons
    await chat.command("today")
    await take_lesson(chat, lessons[0])
    await chat.command("today")
    await take_lesson(chat, lessons[1])  # ma-m1-l2 links the Europass self-test and DigComp
    assert "📚 " in chat.said and "https://europa.eu/europass/digitalskills" in chat.said
