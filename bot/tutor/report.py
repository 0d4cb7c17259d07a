"""`/progress`: lessons done per module, accuracy of first answers, streak and freezes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.tutor import habits

if TYPE_CHECKING:
    from bot.tutor.engine import Turn


async def progress(turn: Turn) -> None:
    _ = turn.t._
    t = turn.t
    learner = turn.learner
    done = await turn.repo.completed_lessons(learner.id)
    first: dict[str, bool] = {}
    for fact in await turn.repo.answers(learner.id):
        if fact.correct is not None:
            first.setdefault(fact.question_id, fact.correct)
    streak = await habits.streak(turn)

    lines = [_("📊 Your progress")]
    for course in turn.catalog.courses.values():
        lessons = course.lessons
        if course.id != learner.course_id and not any(les.id in done for les in lessons):
            continue
        lines.append("")
        lines.append(course.title)
        for module in course.modules:
            count = sum(les.id in done for les in module.lessons)
            mark = "✅" if count == len(module.lessons) else "▫️"
            lines.append(
                _("{mark} {module}: {done}/{total} lessons").format(
                    mark=mark,
                    module=module.title,
                    done=count,
                    total=len(module.lessons),
                )
            )
    lines.append("")
    if first:
        right = sum(first.values())
        lines.append(
            _("Accuracy: {percent} ({right} of {total} first answers right)").format(
                percent=t.percent(right / len(first)), right=right, total=len(first)
            )
        )
    else:
        lines.append(_("Accuracy: no answers yet"))
    lines.append(
        t.ngettext("🔥 Streak: {n} day", "🔥 Streak: {n} days", streak.current).format(
            n=streak.current
        )
        + " · "
        + _("best: {best}").format(best=streak.best)
    )
    lines.append(
        t.ngettext(
            "❄️ {n} streak freeze saved", "❄️ {n} streak freezes saved", streak.freezes
        ).format(n=streak.freezes)
    )
    if streak.current and not streak.practised_today:
        lines.append(_("Do a lesson today to keep your streak going: /today"))
    turn.out.say("\n".join(lines))
