"""`/progress` and `/courses`: lessons done, accuracy, streak and freezes, competence areas
mastered, before/after discernment, and a picture of it all (with the text as its alternative)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.media.progress_card import ProgressPicture, describe_progress, render_progress_png
from bot.tutor import habits
from bot.tutor.events import Button, Later, Photo
from bot.tutor.mastery import AreaProgress, area_progress
from bot.tutor.streaks import local_date

if TYPE_CHECKING:
    from bot.tutor.engine import Turn


async def progress(turn: Turn) -> None:
    _ = turn.t._
    t = turn.t
    learner = turn.learner
    done = await turn.repo.completed_lessons(learner.id)
    answers = await turn.repo.answers(learner.id)
    first: dict[str, bool] = {}
    for fact in answers:
        if fact.correct is not None and fact.context == "lesson":
            first.setdefault(fact.question_id, fact.correct)
    streak = await habits.streak(turn)
    followed = [
        c
        for c in turn.catalog.courses.values()
        if c.id == learner.course_id or any(les.id in done for les in c.lessons)
    ]

    lines = [_("📊 Your progress")]
    for course in followed:
        lines += ["", course.title]
        for module in course.modules:
            count = sum(les.id in done for les in module.lessons)
            mark = "✅" if count == len(module.lessons) else "▫️"
            lines.append(
                _("{mark} {module}: {done}/{total} lessons").format(
                    mark=mark, module=module.title, done=count, total=len(module.lessons)
                )
            )
        scores = await turn.repo.test_scores(learner.id, course.id)
        if scores.get("pre") is not None and scores.get("post") is not None:
            lines.append(
                _("Discernment: {before} before, {after} after").format(
                    before=t.number(round(scores["pre"], 2)),
                    after=t.number(round(scores["post"], 2)),
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
    areas = area_progress(turn.catalog, answers, [c.id for c in followed])
    if areas:
        lines += ["", _("Competences mastered:")]
        lines += [
            f"{area_label(turn, a)}: {t.percent(a.share)} ({a.mastered}/{a.total})" for a in areas
        ]
    if streak.current and not streak.practised_today:
        lines += ["", _("Do a lesson today to keep your streak going: /today")]
    turn.out.say("\n".join(lines))

    picture = ProgressPicture(
        title=_("Your progress"),
        practice_days=frozenset(await turn.repo.practice_days(learner.id)),
        today=local_date(turn.now, turn.zone),
        areas=[(area_label(turn, a), a.share) for a in areas],
        courses=[
            (c.title, sum(les.id in done for les in c.lessons) / len(c.lessons)) for c in followed
        ],
        labels={
            "practice": _("Practice days"),
            "areas": _("Competence areas mastered"),
            "courses": _("Courses completed"),
            "streak": _("Streak: {n}"),
            "weekdays": _("Mon,Tue,Wed,Thu,Fri,Sat,Sun"),
            "none": _("Nothing yet: your first lesson starts it."),
            "percent": _("{n}%"),
            "practice_summary": _("{n} practice days in the last {total}"),
        },
        streak=streak.current,
    )
    turn.out.actions.append(
        Later(
            lambda: Photo(
                render_progress_png(picture), describe_progress(picture)[:1024], "progress.png"
            ),
            optional=True,
        )
    )


def area_label(turn: Turn, area: AreaProgress) -> str:
    framework, _sep, name = area.label.partition(": ")
    return f"{framework}: {turn.t.content(f'area:{area.key}', name)}"


async def courses(turn: Turn) -> None:
    _ = turn.t._
    done = await turn.repo.completed_lessons(turn.learner.id)
    lines = [_("The courses:")]
    buttons = []
    for course in turn.catalog.courses.values():
        count = sum(les.id in done for les in course.lessons)
        current = " ◀" if course.id == (turn.learner.course_id or "") else ""
        lines.append(
            f"• {course.title}: {count}/{len(course.lessons)}{current}\n  {course.summary.strip()}"
        )
        buttons.append((Button(course.title[:60], f"course:{course.id}"),))
    lines.append(_("Tap a course to follow it in /today."))
    turn.out.say("\n".join(lines), tuple(buttons))


async def choose_course(turn: Turn, course_id: str) -> None:
    _ = turn.t._
    course = turn.catalog.course(course_id)
    if course is None:
        turn.out.say(_("That button no longer works. Type /courses to choose again."))
        return
    learner = turn.learner
    place = turn.catalog.place(learner.lesson_id or "")
    if place is not None and place.course.id != course.id:
        learner.lesson_id, learner.item_index, learner.pending_token = None, 0, None
    learner.course_id = course.id
    turn.out.say(
        _("You are now following “{course}”.").format(course=course.title),
        ((Button(_("Start ▸"), "today"),),),
    )
