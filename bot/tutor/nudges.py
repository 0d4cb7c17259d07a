"""Proactive messages, composed at send time: the daily nudge and the "streak at risk" reminder.

A nudge says what is waiting (the lesson that comes next) and carries a button that starts it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.tutor import habits
from bot.tutor.events import Button

if TYPE_CHECKING:
    from bot.tutor.engine import Turn


async def compose(turn: Turn, kind: str, payload: dict[str, Any]) -> None:
    _ = turn.t._
    learner = turn.learner
    start = ((Button(_("Start now ▸"), "today"),),)
    if kind == "nudge":
        lesson = None
        if learner.lesson_id:
            lesson = turn.catalog.lesson(learner.lesson_id)
        else:
            course = turn.catalog.course(learner.course_id or "") or turn.catalog.default_course()
            done = await turn.repo.completed_lessons(learner.id)
            lesson = turn.catalog.next_lesson(course.id, done)
        if lesson is None:
            return  # everything done: no empty nudges
        lines = [
            _("☀️ Your daily lesson is ready: {title}").format(title=lesson.title),
            _("About three minutes."),
        ]
        summary = await habits.streak(turn)
        if summary.current:
            lines.append(
                turn.t.ngettext(
                    "🔥 Keep your {n}-day streak going.",
                    "🔥 Keep your {n}-day streak going.",
                    summary.current,
                ).format(n=summary.current)
            )
        turn.out.say("\n".join(lines), start)
    elif kind == "reminder":
        summary = await habits.streak(turn)
        if summary.practised_today or summary.current < 2:
            return
        turn.out.say(
            turn.t.ngettext(
                "🔥 Your {n}-day streak is waiting: one short lesson today keeps it alive.",
                "🔥 Your {n}-day streak is waiting: one short lesson today keeps it alive.",
                summary.current,
            ).format(n=summary.current),
            start,
        )
