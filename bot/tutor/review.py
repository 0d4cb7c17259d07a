"""Spaced review with FSRS, and the disinformation boosters.

Every graded answer updates the question's FSRS card (the `fsrs` package): a wrong answer is rated
"Again", a right one "Good", so a miss comes back sooner. The scheduler runs without same-day
learning steps: this is a daily tutor, and the shortest gap is a day. Due reviews come first in
`/today` and `/review`, at most `DAILY_REVIEW_CAP` a day, then new material.

Boosters bring a finished course's techniques back at about +7 and +30 days: three mixed items,
chosen per learner, served before anything else on their day.

While a review or booster item is on screen, `learner.reviewing` names it:
`r|<question id>` or `b<number>.<index>|<question id>`.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING

from fsrs import Card, Rating, Scheduler

from bot.content import Confidence, Course, Question
from bot.tutor.streaks import local_date

if TYPE_CHECKING:
    from bot.tutor.engine import Turn

SCHEDULER = Scheduler(learning_steps=(), relearning_steps=(), enable_fuzzing=False)
DAILY_REVIEW_CAP = 10
LOOKAHEAD = 5
"""Due reviews read at once: the first whose question still exists goes on screen."""
BOOSTER_DAYS = (7, 30)
BOOSTER_ITEMS = 3


def question_of(reviewing: str) -> str:
    return reviewing.split("|", 1)[1] if "|" in reviewing else reviewing


def context_of(reviewing: str) -> str:
    return "booster" if reviewing.startswith("b") else "review"


def _new_card(turn: Turn) -> Card:
    """A first card, stamped with our clock. Left to itself, fsrs's `Card()` takes its id from the
    wall clock and then sleeps a millisecond, on the event loop, so the next id differs; our
    cards are keyed by learner and question, so the id only has to be there."""
    return Card(card_id=int(turn.now.timestamp() * 1000), due=turn.now)


def keeps_card(item: Question, in_test: bool) -> bool:
    """Whether answering `item` schedules its review card: not for a confidence rating, which
    is not graded, nor in a test taken as a lesson, whose answers measure and are not practice."""
    return not in_test and not isinstance(item, Confidence)


def expect_answer(turn: Turn, item: Question, in_test: bool) -> None:
    """`item` is on screen: the learner's next update will likely grade it and read its card
    (`schedule`), which the store may read now, with this update's write."""
    if keeps_card(item, in_test):
        turn.repo.prefetch_review_card(turn.learner.id, item.id)


async def schedule(turn: Turn, item: Question, correct: bool | None, in_test: bool) -> None:
    """Update (or create) the learner's FSRS card for `item` after a graded answer."""
    if correct is None or not keeps_card(item, in_test):
        return
    stored = await turn.repo.review_card(turn.learner.id, item.id)
    card = Card.from_dict(stored) if stored else _new_card(turn)
    card, _log = SCHEDULER.review_card(
        card, Rating.Good if correct else Rating.Again, review_datetime=turn.now
    )
    await turn.repo.save_review_card(turn.learner.id, item.id, card.due, card.to_dict())


def _local_midnight(turn: Turn) -> datetime:
    day = local_date(turn.now, turn.zone)
    return datetime.combine(day, time(0), tzinfo=turn.zone)


async def reviews_left_today(turn: Turn) -> int:
    done = await turn.repo.answers_since(turn.learner.id, _local_midnight(turn), "review")
    return max(0, DAILY_REVIEW_CAP - done)


async def due_count(turn: Turn) -> int:
    left = await reviews_left_today(turn)
    if not left:
        return 0
    return len(await turn.repo.due_reviews(turn.learner.id, turn.now, left))


async def next_review(turn: Turn, due: list[str] | None = None) -> bool:
    """Put the next due review on screen; False when there is none (or the cap is reached).
    `due`: the first `LOOKAHEAD` reviews due, if the caller has read them."""
    from bot.tutor import flow

    if due is None:
        due = await turn.repo.due_reviews(turn.learner.id, turn.now, LOOKAHEAD)
    if not due or not await reviews_left_today(turn):  # the cap's count only when one is due
        return False
    for question_id in due:
        if turn.catalog.question(question_id):  # content may have changed since
            turn.learner.reviewing = f"r|{question_id}"
            await flow.present_question(turn)
            return True
    return False


def booster_items(course: Course, learner_id: int, number: int) -> list[str]:
    """Three mixed items from the course's exercises, different per learner and booster."""
    pool = [
        q.id
        for lesson in course.lessons
        if lesson.role == "lesson"
        for q in lesson.questions
        if not isinstance(q, Confidence)
    ]
    if not pool:
        return []

    def key(qid: str) -> str:
        return hashlib.sha256(f"{learner_id}:{number}:{qid}".encode()).hexdigest()

    return sorted(pool, key=key)[:BOOSTER_ITEMS]


async def add_boosters(turn: Turn, course: Course) -> list[datetime]:
    today = local_date(turn.now, turn.zone)
    days = [today + timedelta(days=n) for n in BOOSTER_DAYS]
    await turn.repo.add_boosters(turn.learner.id, course.id, days)
    return [datetime.combine(d, time(0), tzinfo=turn.zone) for d in days]


async def start_booster(turn: Turn, due: tuple[str, int] | None) -> bool:
    """Serve the booster due today (`Agenda.booster`), if any."""
    from bot.tutor import flow

    if due is None:
        return False
    course_id, number = due
    course = turn.catalog.course(course_id)
    items = booster_items(course, turn.learner.id, number) if course else []
    if not items:
        await turn.repo.finish_booster(turn.learner.id, course_id, number, turn.now)
        return False
    _ = turn.t._
    turn.out.say(_("🧠 Booster: three quick questions to keep your eye sharp."))
    turn.learner.reviewing = f"b{number}.0|{items[0]}"
    await flow.present_question(turn)
    return True


async def after_answer(turn: Turn) -> None:
    """After a review or booster answer: the next one, or a word on what comes next."""
    from bot.tutor import flow

    _ = turn.t._
    learner = turn.learner
    reviewing, learner.reviewing = learner.reviewing or "", None
    if reviewing.startswith("b"):
        head = reviewing.split("|", 1)[0][1:]
        number, index = (int(x) for x in head.split("."))
        found = turn.catalog.question(question_of(reviewing))
        course = found[0].course if found else None
        items = booster_items(course, learner.id, number) if course else []
        if index + 1 < len(items):
            learner.reviewing = f"b{number}.{index + 1}|{items[index + 1]}"
            await flow.present_question(turn)
            return
        if course:
            await turn.repo.finish_booster(learner.id, course.id, number, turn.now)
        turn.out.say(_("Booster done. Well remembered!"), ((flow.start_button(turn),),))
        return
    if await next_review(turn):
        return
    turn.out.say(_("That's all your reviews for now."), ((flow.start_button(turn),),))
