"""Pre- and post-tests: discernment before and after a course, from the stored answers.

Discernment is how much less reliable the learner rates manipulative posts than neutral ones:
mean rating of the neutral posts minus mean rating of the manipulative posts (1–5 scale, so from
-4 to +4; higher is better). Feedback is held back during a test (it would teach the answers) and
every post is labelled at the end, so no false item is left unlabelled. The first completed test
is the score (a unique key); a learner who skipped the pre-test gets no "improvement" figure.
"""

from __future__ import annotations

from statistics import mean
from typing import TYPE_CHECKING

from bot.content import Confidence, Lesson, Rating
from bot.i18n import N_
from bot.tutor.ports import AnswerFact

if TYPE_CHECKING:
    from bot.tutor.engine import Turn

TEST_ROLES = ("pretest", "posttest")
TECHNIQUE_NAMES = {
    "impersonation": N_("impersonation"),
    "emotion": N_("emotion"),
    "polarisation": N_("polarisation"),
    "conspiracy": N_("conspiracy"),
    "discrediting": N_("discrediting"),
    "trolling": N_("trolling"),
}
KIND = {"pretest": "pre", "posttest": "post"}


def discernment(lesson: Lesson, answers: list[AnswerFact]) -> tuple[float | None, float | None]:
    """(discernment, confidence) from the learner's latest answers to this test's items."""
    latest: dict[str, str] = {}
    for fact in answers:
        if fact.lesson_id == lesson.id:
            latest[fact.question_id] = fact.choice
    neutral, manipulative, confidence = [], [], []
    for item in lesson.items:
        choice = latest.get(getattr(item, "id", ""))
        if choice is None or not choice.isdecimal():
            continue
        if isinstance(item, Rating):
            (manipulative if item.manipulative else neutral).append(int(choice))
        elif isinstance(item, Confidence):
            confidence.append(int(choice))
    score = mean(neutral) - mean(manipulative) if neutral and manipulative else None
    return score, (mean(confidence) if confidence else None)


def labels(turn: Turn, lesson: Lesson) -> list[str]:
    """Every post of the test, labelled: manipulative (and how) or neutral."""
    _ = turn.t._
    lines = []
    for number, item in enumerate((i for i in lesson.items if isinstance(i, Rating)), 1):
        verdict = (
            _("manipulative ({technique})").format(
                technique=_(TECHNIQUE_NAMES.get(item.technique or "", item.technique or ""))
            )
            if item.manipulative
            else _("neutral")
        )
        lines.append(f"{number}. {verdict}: {item.feedback}")
    return lines


async def finish(
    turn: Turn, lesson: Lesson, course_id: str, answers: list[AnswerFact]
) -> list[str]:
    """Store the score (first time only) and return the lines to show. `answers`: the
    learner's answers to the test's questions, oldest first."""
    _ = turn.t._
    score, confidence = discernment(lesson, answers)
    kind = KIND[lesson.role]
    await turn.repo.save_test_score(turn.learner.id, course_id, kind, score, confidence, turn.now)
    scores = await turn.repo.test_scores(turn.learner.id, course_id)
    lines = [
        _("All the posts in this test were invented. Here is what each one was:"),
        *labels(turn, lesson),
        "",
    ]
    if kind == "pre":
        if scores.get("pre") is not None:
            lines.append(
                _(
                    "Your starting discernment: {score} (neutral posts rated that many "
                    "points more reliable than manipulative ones)."
                ).format(score=turn.t.number(round(scores["pre"], 2)))
            )
        return lines
    before, after = scores.get("pre"), scores.get("post")
    if after is not None:
        lines.append(
            _("Your discernment now: {score}.").format(score=turn.t.number(round(after, 2)))
        )
    if before is not None and after is not None:
        lines.append(
            _("Before the course: {before}. Change: {change}.").format(
                before=turn.t.number(round(before, 2)), change=f"{after - before:+.2f}"
            )
        )
    elif after is not None:
        lines.append(
            _("You skipped the starting test, so there is no before-and-after comparison.")
        )
    return lines


async def skip_pretest(turn: Turn) -> None:
    """The learner does not want the starting test: the course goes on without a pre score."""
    from bot.tutor import flow

    _ = turn.t._
    lesson = turn.catalog.lesson(turn.learner.lesson_id or "")
    if lesson is None or lesson.role != "pretest":
        turn.out.say(_("That button no longer works. Type /today to carry on."))
        return
    place = turn.catalog.place(lesson.id)
    await turn.repo.complete_lesson(
        turn.learner.id, lesson.id, place.course.id if place else "", turn.now
    )
    turn.learner.lesson_id, turn.learner.item_index = None, 0
    turn.learner.pending_token = None
    turn.out.say(_("No problem: we skip the starting test."))
    await flow.today(turn)
