"""Spaced review (FSRS), pre/post tests and boosters, competence mastery, the progress picture,
and certificates."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pypdf
import pytest
from sqlalchemy import select

from bot.content import Rating
from bot.tutor.engine import Tutor
from bot.tutor.events import Document, Photo
from bot.tutor.mastery import area_progress
from bot.tutor.ports import AnswerFact
from storage.db import create_engine
from storage.models import Booster, ReviewCard
from storage.models import TestScore as Score
from storage.repository import SqlRepository, SqlStore
from tests.chat import Chat, answer_reviews, take_lesson
from tests.conftest import LESSONS

ROOT = Path(__file__).parent.parent


async def review_cards(store) -> dict[str, datetime]:
    async with store.sessions() as s:
        return {c.question_id: c.due for c in (await s.scalars(select(ReviewCard))).all()}


async def onboarded(tutor, course: str | None = None, city: str = "Rome") -> Chat:
    chat = Chat(tutor)
    await chat.onboard(city=city)
    if course:
        await chat.command("courses")
        await chat.send(
            __import__("bot.tutor.events", fromlist=["Press"]).Press(f"course:{course}")
        )
    return chat


async def test_a_wrong_answer_comes_back_sooner_than_a_right_one(
    tutor, catalog, sqlite_store, clock
):
    chat = await onboarded(tutor)
    await chat.command("today")
    lesson = catalog.courses["mooc-art"].lessons[0]
    await take_lesson(chat, lesson, right=False)
    await chat.command("today")
    await take_lesson(chat, catalog.courses["mooc-art"].lessons[1], right=True)
    cards = await review_cards(sqlite_store)
    wrong = [cards[q.id] for q in lesson.questions]
    right = [cards[q.id] for q in catalog.courses["mooc-art"].lessons[1].questions]
    assert max(wrong) < min(right)
    assert all(d - clock.now <= timedelta(days=1, minutes=1) for d in wrong)


async def test_reviews_come_first_capped_and_survive_a_restart(catalog, tmp_path, clock):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    engine = create_engine(url)
    from storage.db import upgrade

    await upgrade(engine)
    tutor = Tutor(catalog, SqlStore(engine), clock=clock)
    chat = await onboarded(tutor)
    for lesson in catalog.courses["mooc-art"].lessons[:5]:
        await chat.command("today")
        await take_lesson(chat, lesson, right=False)
    await engine.dispose()
    clock.advance(days=2)
    # A new process: new engine, new tutor, same database file.
    engine = create_engine(url)
    tutor = Tutor(catalog, SqlStore(engine), clock=clock)
    chat = Chat(tutor)
    await chat.command("today")
    served = await answer_reviews(chat, catalog)
    assert served == 10  # the daily cap
    assert "That's all your reviews" in chat.said or "Continue learning" in chat.said
    await chat.command("review")
    assert "today's 10 reviews" in chat.said
    await engine.dispose()


async def test_mastery_needs_the_latest_answer_right():
    from bot.content import load_catalog

    catalog = load_catalog(LESSONS)
    lesson = catalog.courses["mooc-art"].lessons[0]
    q = lesson.questions[0]
    now = datetime(2026, 1, 1, tzinfo=UTC)
    right = AnswerFact(q.id, lesson.id, "0", True, now)
    wrong_review = AnswerFact(q.id, lesson.id, "1", False, now + timedelta(days=2), "review")
    areas = {a.key: a for a in area_progress(catalog, [right], ["mooc-art"])}
    tag = catalog.competences[lesson.tags[0]]
    assert areas[tag.area_key].mastered == 1
    assert areas[tag.area_key].total >= len(lesson.questions)
    areas = {a.key: a for a in area_progress(catalog, [right, wrong_review], ["mooc-art"])}
    assert areas[tag.area_key].mastered == 0


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


async def test_progress_shows_areas_and_sends_a_picture(tutor, catalog):
    chat = await onboarded(tutor)
    await chat.command("today")
    await take_lesson(chat, catalog.courses["mooc-art"].lessons[0])
    await chat.command("progress")
    assert "Competences mastered" in chat.said
    photos = [a for a in chat.last if isinstance(a, Photo)]
    assert len(photos) == 1
    assert png_size(photos[0].content) == (1080, 1350)
    assert "Streak" in photos[0].caption


async def run_course(chat: Chat, catalog, course_id: str, clock, *, rating_good=True) -> None:
    """Take the course's remaining lessons as /today serves them, reviews included."""
    lessons = {les.title: les for les in catalog.courses[course_id].lessons}
    for _ in range(len(lessons) + 5):
        await chat.command("today")
        if await answer_reviews(chat, catalog):
            await chat.command("today")
        said = chat.history[-1] if "📘" in chat.history[-1] else chat.history[-2]
        header = next((les for title, les in lessons.items() if f"\n{title}" in said), None)
        if header is None:
            return
        await take_lesson(chat, header, right=rating_good)
        clock.advance(hours=1)
        if "finished the whole course" in chat.said:
            return
    raise AssertionError("the course never finished")


async def test_disinformation_pre_post_discernment_and_boosters(
    tutor, catalog, sqlite_store, clock
):
    chat = await onboarded(tutor, "disinformation", city="Athens")
    course = catalog.courses["disinformation"]
    pretest = course.lessons[0]
    assert pretest.role == "pretest"
    await chat.command("today")
    # Pre-test: a poor eye (everything rated 3, in the middle).
    for item in pretest.items:
        if item.type == "card":
            await chat.press("Continue")
        else:
            await chat.press("3")
            assert "Noted" in chat.said and "Right" not in chat.said  # no feedback in a test
    assert "starting discernment: 0" in chat.said
    assert "invented" in chat.said  # every post labelled at the end
    await run_course(chat, catalog, "disinformation", clock)
    async with sqlite_store.sessions() as s:
        scores = {t.kind: t.discernment for t in (await s.scalars(select(Score))).all()}
    assert scores["pre"] == 0
    assert scores["post"] == 4  # manipulative rated 1, neutral rated 5
    assert "Change: +4.00" in chat.said
    # Boosters at +7 and +30 local days.
    async with sqlite_store.sessions() as s:
        boosters = sorted(b.due_on for b in (await s.scalars(select(Booster))).all())
    finished_day = clock.now.date()
    assert boosters == [finished_day + timedelta(days=7), finished_day + timedelta(days=30)]
    # Answering the post-test again does not make a second score.
    async with sqlite_store.unit() as repo:
        assert not await repo.save_test_score(1, "disinformation", "post", 0.0, 1.0, clock.now)
    clock.advance(days=7)
    await chat.command("today")
    assert "Booster" in chat.said
    assert await answer_reviews(chat, catalog) == 3
    assert "Booster done" in chat.said


async def test_only_questions_that_keep_a_card_ask_the_store_to_read_it(
    tutor, catalog, clock, monkeypatch
):
    """The hint that lets a PostgreSQL store read a question's card with the write that shows
    it (storage/optimistic.py) is for questions whose answer schedules a card: a test's
    questions, answered inside the test, never get one, so reading it would be wasted."""
    hinted: list[str] = []
    original = SqlRepository.prefetch_review_card

    def spy(self, learner_id: int, question_id: str) -> None:
        hinted.append(question_id)
        original(self, learner_id, question_id)

    monkeypatch.setattr(SqlRepository, "prefetch_review_card", spy)
    chat = await onboarded(tutor, "disinformation", city="Athens")
    pretest, first = catalog.courses["disinformation"].lessons[:2]
    await chat.command("today")
    for item in pretest.items:
        await chat.press("Continue" if item.type == "card" else "3")
    assert "starting discernment" in chat.said
    assert not hinted
    await chat.command("today")
    await take_lesson(chat, first)
    graded = [q.id for q in first.questions if q.type != "confidence"]
    assert graded and hinted == graded
    async with tutor.store.unit() as repo:  # the cards the hint was for exist now
        learner = await repo.learner(chat.who, clock.now)
        assert all([await repo.review_card(learner.id, q) for q in graded])


async def test_skipping_the_pretest_gives_no_fake_improvement(tutor, catalog, sqlite_store, clock):
    chat = await onboarded(tutor, "disinformation")
    await chat.command("today")
    await chat.press("Skip the starting test")
    assert "skip the starting test" in chat.said
    await run_course(chat, catalog, "disinformation", clock)
    assert "no before-and-after comparison" in chat.said
    async with sqlite_store.sessions() as s:
        kinds = {t.kind for t in (await s.scalars(select(Score))).all()}
    assert kinds == {"post"}


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(data)).pages)


async def earn_mooc_certificate(tutor, catalog, clock, name: str) -> tuple[Chat, str]:
    chat = await onboarded(tutor)
    await run_course(chat, catalog, "mooc-art", clock)
    assert "earned the certificate" in chat.said
    await chat.text(name)
    docs = [a for a in chat.last if isinstance(a, Document)]
    assert [d.filename.rsplit(".", 1)[1] for d in docs] == ["pdf", "json"]
    code = docs[0].filename.removeprefix("certificate-").removesuffix(".pdf")
    return chat, code


async def test_certificate_pdf_holds_the_name_and_code_and_verifies(tutor, catalog, clock):
    chat, code = await earn_mooc_certificate(tutor, catalog, clock, "Ada Lovelace")
    pdf = next(a for a in chat.last if isinstance(a, Document)).content
    text = pdf_text(pdf)
    assert "Ada Lovelace" in text and code in text
    await chat.command("verify", code.lower().replace("-", " "))
    assert "Valid certificate: Ada Lovelace" in chat.said
    await chat.command("verify", "ABCD-EFGH-JKMN")
    assert "No certificate has this code" in chat.said
    await chat.command("verify", "DROP TABLE certificates")
    assert "Please give a code" in chat.said


@pytest.mark.parametrize(
    "name", ["A" * 500, "🎭🎻🎨" * 40, "مريم الفنانة", "‮Evil‬ Name", "Zoë\u200d\u200dÅsa"]
)
async def test_odd_names_still_make_a_valid_certificate(tutor, catalog, clock, name):
    chat, code = await earn_mooc_certificate(tutor, catalog, clock, name)
    pdf = next(a for a in chat.last if isinstance(a, Document)).content
    assert code in pdf_text(pdf)


async def test_failing_the_pass_mark_gives_no_certificate(tutor, catalog, clock):
    chat = await onboarded(tutor)
    await run_course(chat, catalog, "mooc-art", clock, rating_good=False)
    assert "the certificate needs 70%" in chat.said
    await chat.command("certificate")
    assert "no certificate yet" in chat.said


def test_verify_cli_rejects_a_wrong_code(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bot.cli",
            "--db",
            f"sqlite:///{tmp_path / 'v.db'}",
            "verify",
            "K7QF-9XWA-3MTP",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 1
    assert "No certificate has this code" in result.stdout


def test_course_stats_meet_the_content_targets():
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "lessons", "stats", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    import json

    courses = json.loads(result.stdout)["courses"]
    mooc, dis = courses["mooc-art"], courses["disinformation"]
    assert (mooc["modules"], mooc["lessons"]) == (6, 30)
    assert mooc["questions"] >= 60 and mooc["tagged_lessons_share"] == 1.0
    assert mooc["unknown_tags"] == [] and dis["unknown_tags"] == []
    assert dis["exercises"] >= 30 and dis["tagged_lessons_share"] == 1.0
    assert dis["with_feedback"] == dis["questions"] - dis["confidence"]
    assert dis["ratings"] >= 12


def test_rating_items_label_the_fictional_posts(catalog):
    for lesson in catalog.courses["disinformation"].lessons:
        for item in lesson.items:
            if isinstance(item, Rating) and item.manipulative:
                assert item.technique and item.feedback.strip()


async def test_a_first_review_card_never_sleeps_on_the_event_loop(
    tutor, catalog, sqlite_store, clock, monkeypatch
):
    """fsrs's Card() sleeps a millisecond for a unique id; every update would wait for it."""
    import fsrs.card

    def no_sleep(_seconds: float) -> None:
        raise AssertionError("time.sleep called on the event loop")

    monkeypatch.setattr(fsrs.card.time, "sleep", no_sleep)
    chat = await onboarded(tutor)
    await chat.command("today")
    lesson = catalog.courses["mooc-art"].lessons[0]
    await take_lesson(chat, lesson)
    cards = await review_cards(sqlite_store)
    assert {q.id for q in lesson.questions} <= set(cards)
    assert all(due > clock.now for due in cards.values())
