"""The lesson flow: present cards and questions one at a time, grade answers, finish lessons.

The learner's place is `(course_id, lesson_id, item_index)` and the item on screen carries a fresh
opaque `pending_token`. Every button names that token, so a button from an earlier item (or a
forged one) is recognised and changes nothing; an answer is stored under its token, so the same
answer pressed twice is recorded once.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from bot import limits
from bot.content import (
    Card,
    Confidence,
    Lesson,
    MultipleChoice,
    Question,
    Rating,
    SingleChoice,
    TrueFalse,
)
from bot.tutor import assessment, habits, review
from bot.tutor.assessment import TEST_ROLES
from bot.tutor.events import Button, EditPressed, Keyboard, Notice, Quiz
from bot.tutor.grading import grade, option_count
from bot.tutor.streaks import local_date

if TYPE_CHECKING:
    from bot.tutor.engine import Turn

SHORT_LABEL = 40
LETTERS = "ABCDEFGHIJKL"


def new_token() -> str:
    return secrets.token_urlsafe(6)


def start_button(turn: Turn) -> Button:
    _ = turn.t._
    return Button(_("Continue learning ▸"), "today")


async def today(turn: Turn) -> None:
    """The daily session, in order: the item on screen; a lesson in progress; a booster due
    today; due reviews (capped per day); then the next new lesson, in the learner's course or,
    when that one is finished, in the next course not finished yet."""
    _ = turn.t._
    learner = turn.learner
    if learner.reviewing and turn.catalog.question(review.question_of(learner.reviewing)):
        await present_question(turn)
        return
    learner.reviewing = None
    if learner.lesson_id and turn.catalog.lesson(learner.lesson_id):
        await present(turn)
        return
    day = local_date(turn.now, turn.zone)
    agenda = await turn.repo.agenda(learner.id, turn.now, day, review.LOOKAHEAD)
    if await review.start_booster(turn, agenda.booster) or await review.next_review(
        turn, agenda.due_reviews
    ):
        return
    done = agenda.completed
    course = turn.catalog.course(learner.course_id or "") or turn.catalog.default_course()
    lesson = turn.catalog.next_lesson(course.id, done)
    if lesson is None:
        unfinished = [
            c
            for c in turn.catalog.courses.values()
            if turn.catalog.next_lesson(c.id, done) is not None
        ]
        if not unfinished:
            turn.out.say(
                _(
                    "You have finished every course. Well done! Your reviews will "
                    "keep it fresh: /review"
                )
            )
            return
        turn.out.say(
            _("You have finished “{course}”. Next: “{other}”.").format(
                course=course.title, other=unfinished[0].title
            )
        )
        course = unfinished[0]
        lesson = turn.catalog.next_lesson(course.id, done)
        assert lesson is not None
    learner.course_id = course.id
    learner.lesson_id, learner.item_index = lesson.id, 0
    place = turn.catalog.place(lesson.id)
    module = place.module.title if place else ""
    turn.out.say(_("📘 {module}\n{lesson}").format(module=module, lesson=lesson.title))
    await present(turn)


async def present(turn: Turn) -> None:
    """Show the item at the learner's place, with a fresh token."""
    learner = turn.learner
    lesson = turn.catalog.lesson(learner.lesson_id or "")
    if lesson is None or learner.item_index >= len(lesson.items):
        await _finish(turn, lesson)
        return
    item = lesson.items[learner.item_index]
    token = _fresh_token(turn)
    learner.pending_selection = None
    if isinstance(item, Card):
        _ = turn.t._
        text = item.text
        if item.link:
            text += "\n\n" + item.link
        buttons: Keyboard = ((Button(_("Continue ▸"), f"go:{token}"),),)
        if lesson.role == "pretest" and learner.item_index == 0:
            buttons += ((Button(_("Skip the starting test"), "skip:test"),),)
        turn.out.say(text, buttons, image=item.image)
        return
    _show(turn, item, token, in_test=lesson.role in TEST_ROLES)


def _show(turn: Turn, item: Question, token: str, *, in_test: bool) -> None:
    review.expect_answer(turn, item, in_test)
    if turn.learner.quiz_mode == "poll" and _fits_quiz(item):
        turn.out.actions.append(_quiz(turn, item, token))
    else:
        turn.out.say(question_text(turn, item), _answer_buttons(turn, item, token, set()))


async def present_question(turn: Turn) -> None:
    """Show the review or booster question named by `learner.reviewing`."""
    found = turn.catalog.question(review.question_of(turn.learner.reviewing or ""))
    if found is None:
        turn.learner.reviewing = None
        await today(turn)
        return
    turn.learner.pending_selection = None
    _show(turn, found[1], _fresh_token(turn), in_test=False)  # a review, not the test itself


def _fresh_token(turn: Turn) -> str:
    turn.learner.pending_token = new_token()
    return turn.learner.pending_token


def _fits_quiz(item: Question) -> bool:
    if not isinstance(item, (SingleChoice, TrueFalse)):
        return False
    if len(item.prompt) > limits.POLL_QUESTION_MAX:
        return False
    expl = item.explanation
    return (
        len(expl) <= limits.POLL_EXPLANATION_MAX
        and expl.count("\n") <= limits.POLL_EXPLANATION_MAX_LINE_FEEDS
    )


def _quiz(turn: Turn, item: SingleChoice | TrueFalse, token: str) -> Quiz:
    _ = turn.t._
    options = (
        tuple(o.text for i, o in enumerate(item.options))
        if isinstance(item, SingleChoice)
        else (_("True"), _("False"))
    )
    return Quiz(
        token=token,
        question=item.prompt,
        options=options,
        correct_ids=item.correct_ids,
        explanation=item.explanation,
        preface=item.post if item.post else None,
    )


def question_text(turn: Turn, item: Question) -> str:
    _ = turn.t._
    parts = []
    post = getattr(item, "post", None)
    if post:
        parts.append("«" + post + "»")
    match item:
        case Rating():
            parts.append(
                _("How reliable is this post? 1 = not reliable at all, 5 = very reliable.")
            )
        case Confidence():
            parts.append(item.prompt + "\n" + _("1 = not sure at all, 5 = very sure."))
        case SingleChoice() | MultipleChoice():
            parts.append(item.prompt)
            if not _short_options(item):
                parts.append(
                    "\n".join(f"{LETTERS[i]}. {o.text}" for i, o in enumerate(item.options))
                )
            if isinstance(item, MultipleChoice):
                parts.append(_("Choose {n}, then press Check.").format(n=item.choose))
        case TrueFalse():
            parts.append(item.prompt)
    return "\n\n".join(parts)


def _short_options(item: SingleChoice | MultipleChoice) -> bool:
    return all(len(o.text) <= SHORT_LABEL for o in item.options)


def _answer_buttons(turn: Turn, item: Question, token: str, selected: set[int]) -> Keyboard:
    _ = turn.t._
    match item:
        case TrueFalse():
            return ((Button(_("True"), f"a:{token}:0"), Button(_("False"), f"a:{token}:1")),)
        case Rating() | Confidence():
            return (tuple(Button(str(i + 1), f"a:{token}:{i}") for i in range(5)),)
        case MultipleChoice():
            short = _short_options(item)
            rows = []
            for i, o in enumerate(item.options):
                label = o.text if short else LETTERS[i]
                mark = "☑" if i in selected else "☐"
                rows.append((Button(f"{mark} {label}", f"t:{token}:{i}"),))
            rows.append((Button(_("Check ✓"), f"ok:{token}"),))
            return tuple(rows)
        case SingleChoice():
            if _short_options(item):
                return tuple(
                    (Button(o.text, f"a:{token}:{i}"),) for i, o in enumerate(item.options)
                )
            letters = [Button(LETTERS[i], f"a:{token}:{i}") for i in range(len(item.options))]
            return (tuple(letters),)
    return ()


def _current(turn: Turn) -> tuple[Lesson, Card | Question] | None:
    """The lesson and item on screen: a review or booster item first, else the lesson's."""
    learner = turn.learner
    if learner.reviewing:
        found = turn.catalog.question(review.question_of(learner.reviewing))
        return (found[0].lesson, found[1]) if found else None
    lesson = turn.catalog.lesson(learner.lesson_id or "")
    if lesson is None or learner.item_index >= len(lesson.items):
        return None
    return lesson, lesson.items[learner.item_index]


async def _stale(turn: Turn, token: str) -> None:
    _ = turn.t._
    if await turn.repo.answered(turn.learner.id, token):
        text = _("You already answered this one. Type /today to carry on.")
    else:
        text = _("That button is from an earlier step. Type /today to continue where you are.")
    turn.out.actions.append(Notice(text[: limits.CALLBACK_ANSWER_MAX]))
    turn.out.say(text)


async def go(turn: Turn, token: str) -> None:
    """'Continue' on a card."""
    current = _current(turn)
    if current is None or token != turn.learner.pending_token or not isinstance(current[1], Card):
        await _stale(turn, token)
        return
    turn.learner.item_index += 1
    await present(turn)


def _parse_choice(rest: str) -> tuple[str, int] | None:
    token, _sep, index = rest.rpartition(":")
    if not token or not index.isdecimal() or len(index) > 2:
        return None
    return token, int(index)


async def press_answer(turn: Turn, rest: str) -> None:
    parsed = _parse_choice(rest)
    if parsed is None:
        await _stale(turn, rest)
        return
    await answer(turn, parsed[0], (parsed[1],))


async def toggle(turn: Turn, rest: str) -> None:
    parsed = _parse_choice(rest)
    current = _current(turn)
    if (
        parsed is None
        or current is None
        or parsed[0] != turn.learner.pending_token
        or not isinstance(current[1], MultipleChoice)
        or parsed[1] >= len(current[1].options)
    ):
        await _stale(turn, parsed[0] if parsed else rest)
        return
    item = current[1]
    selected = _selection(turn)
    selected ^= {parsed[1]}
    turn.learner.pending_selection = ",".join(str(i) for i in sorted(selected))
    turn.out.actions.append(
        EditPressed(question_text(turn, item), _answer_buttons(turn, item, parsed[0], selected))
    )


def _selection(turn: Turn) -> set[int]:
    raw = turn.learner.pending_selection or ""
    return {int(i) for i in raw.split(",") if i.isdecimal()}


async def submit(turn: Turn, token: str) -> None:
    current = _current(turn)
    if current is None or token != turn.learner.pending_token:
        await _stale(turn, token)
        return
    item = current[1]
    selected = _selection(turn)
    if isinstance(item, MultipleChoice) and len(selected) != item.choose:
        _ = turn.t._
        text = _("Please choose exactly {n} options first.").format(n=item.choose)
        turn.out.actions.append(Notice(text))
        turn.out.say(text)
        return
    await answer(turn, token, tuple(sorted(selected)))


async def answer(turn: Turn, token: str, chosen: tuple[int, ...], from_poll: bool = False) -> None:
    """Grade and store an answer to the question on screen, then move on."""
    _ = turn.t._
    current = _current(turn)
    learner = turn.learner
    if current is None or token != learner.pending_token or isinstance(current[1], Card):
        await _stale(turn, token)
        return
    lesson, item = current
    if not chosen or any(not 0 <= i < option_count(item) for i in chosen):
        await _stale(turn, token)
        return
    result = grade(item, chosen)
    context = review.context_of(learner.reviewing) if learner.reviewing else "lesson"
    await turn.repo.record_answer(
        learner.id,
        question_id=item.id,
        lesson_id=lesson.id,
        token=token,
        choice=result.choice,
        correct=result.correct,
        at=turn.now,
        context=context,
    )
    learner.pending_token = None
    learner.pending_selection = None
    in_test = context == "lesson" and lesson.role in TEST_ROLES
    await review.schedule(turn, item, result.correct, in_test)
    feedback = (
        _("Noted. The answers come at the end of the test.")
        if in_test
        else feedback_text(turn, item, result.correct, result.feedback)
    )
    answered = "\n\n".join(
        (
            question_text(turn, item),
            _("Your answer: {answer}").format(answer=_chosen_label(turn, item, chosen)),
            feedback,
        )
    )
    if not from_poll and len(answered) <= limits.MESSAGE_TEXT_MAX:
        # The question message now shows the answer and, below it, the feedback: one edit
        # instead of an edit and a message, and the feedback stays beside its question.
        turn.out.actions.append(EditPressed(answered))
    else:
        turn.out.say(feedback)
    if context != "lesson":
        await review.after_answer(turn)
        return
    learner.item_index += 1
    await present(turn)


def _chosen_label(turn: Turn, item: Question, chosen: tuple[int, ...]) -> str:
    _ = turn.t._
    match item:
        case TrueFalse():
            return _("True") if chosen == (0,) else _("False")
        case SingleChoice() | MultipleChoice():
            return "; ".join(item.options[i].text for i in chosen)
    return str(chosen[0] + 1)


def feedback_text(
    turn: Turn, item: Question, correct: bool | None, feedback: tuple[str, ...]
) -> str:
    _ = turn.t._
    if correct is None:
        return _("Thanks, noted.")
    head = _("✅ Right!") if correct else _("❌ Not quite.")
    lines = [head]
    lines += feedback
    if isinstance(item, (SingleChoice, MultipleChoice)) and not correct:
        right = "; ".join(item.options[i].text for i in item.correct_ids)
        lines.append(_("The right answer: {answer}").format(answer=right))
    if not isinstance(item, Rating):
        lines.append(item.explanation)
    return "\n\n".join(lines)


async def typed_while_question(turn: Turn, text: str) -> None:
    """Free text while a question waits: accept an option number, else explain."""
    _ = turn.t._
    current = _current(turn)
    token = turn.learner.pending_token or ""
    if current is not None and not isinstance(current[1], Card):
        stripped = text.strip().upper()
        count = option_count(current[1])
        if stripped.isdecimal() and 1 <= int(stripped) <= count:
            await answer(turn, token, (int(stripped) - 1,))
            return
        if (
            len(stripped) == 1
            and stripped in LETTERS[:count]
            and not isinstance(current[1], (Rating, Confidence, MultipleChoice))
        ):
            await answer(turn, token, (LETTERS.index(stripped),))
            return
    turn.out.say(
        _("Please answer with the buttons under the question. Type /today to see it again.")
    )


async def _finish(turn: Turn, lesson: Lesson | None) -> None:
    """The lesson is over: record it, count the streak day, offer what comes next."""
    _ = turn.t._
    learner = turn.learner
    learner.lesson_id, learner.item_index, learner.pending_token = None, 0, None
    if lesson is None:
        await today(turn)
        return
    place = turn.catalog.place(lesson.id)
    course_id = place.course.id if place else (learner.course_id or "")
    await turn.repo.complete_lesson(learner.id, lesson.id, course_id, turn.now)
    day = local_date(turn.now, turn.zone)
    if learner.last_practice_day != day:  # set only here, beside the day's row
        await turn.repo.add_practice_day(learner.id, day)
    ids = {q.id for q in lesson.questions}
    record = await turn.repo.history(learner.id, ids)  # one read: streak, grades, lessons done
    streak = habits.summarize(turn, record.days, record.pauses)
    learner.streak_days = streak.current
    learner.last_practice_day = day
    from bot.tutor import certify

    graded = {}
    for fact in record.answers:
        if fact.correct is not None:
            graded[fact.question_id] = fact.correct  # the latest answer counts here
    right = sum(graded.values())
    lines = [_("🎉 Lesson complete: {title}").format(title=lesson.title)]
    if graded and lesson.role not in TEST_ROLES:
        lines.append(_("{right} of {total} answers right.").format(right=right, total=len(graded)))
    lines.append(
        turn.t.ngettext("🔥 Streak: {n} day", "🔥 Streak: {n} days", streak.current).format(
            n=streak.current
        )
    )
    if lesson.role in TEST_ROLES:
        turn.out.say("\n".join(await assessment.finish(turn, lesson, course_id, record.answers)))
    done = record.completed
    following = turn.catalog.next_lesson(course_id, done)
    if following is None and place is not None:
        lines.append(_("You have finished the whole course. Congratulations!"))
        if any(les.role == "posttest" for les in place.course.lessons):
            await review.add_boosters(turn, place.course)
            lines.append(
                _(
                    "Short boosters will come back in a week and in a month: they keep "
                    "the effect from fading."
                )
            )
        lines += await certify.course_completed(turn, place.course)
        buttons: Keyboard = (
            (certify.name_button(turn),) if learner.awaiting else ((start_button(turn),),)
        )
        turn.out.say("\n".join(lines), buttons)
        return
    from bot.trainers.toolkit import related

    lines += related(turn, lesson.resources)
    if following is None:
        turn.out.say("\n".join(lines))
        return
    lines.append(_("Next: {title}").format(title=following.title))
    turn.out.say("\n".join(lines), ((Button(_("Start the next lesson"), "today"),),))
