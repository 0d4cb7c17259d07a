"""Cohort analytics for trainers: `/stats`, `/export` and `restart-tutor stats`.

`cohort_figures` is a pure function of the stored rows (learners, answers, lessons done, test
scores), so the same numbers reach the chat, the chart, the CSV and the terminal, and tests can
check them against fixtures.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from statistics import mean
from typing import TYPE_CHECKING, Any

from bot.content import Catalog
from bot.i18n import Translator
from bot.trainers.cohorts import owned
from bot.trainers.roles import is_admin, trainer_only
from bot.tutor.events import Document, Later, Photo

if TYPE_CHECKING:
    from bot.tutor.engine import Turn

STREAK_BUCKETS = ((0, 0, "0"), (1, 2, "1–2"), (3, 6, "3–6"), (7, 13, "7–13"), (14, 10**6, "14+"))


@dataclass
class CohortFigures:
    learners: int = 0
    active_7_days: int = 0
    accuracy: float | None = None
    completion: list[tuple[str, str, float]] = field(default_factory=list)
    """(course title, module title, share of members who finished the module)"""
    hardest: list[tuple[str, float, int]] = field(default_factory=list)
    """(question prompt, first-answer accuracy, answers)"""
    streaks: dict[str, int] = field(default_factory=dict)
    discernment_change: float | None = None
    discernment_pairs: int = 0


def cohort_figures(
    catalog: Catalog,
    learners: list[Any],
    answers: list[Any],
    completions: list[tuple[int, str]],
    scores: list[tuple],
    now: datetime,
    min_answers: int = 3,
) -> CohortFigures:
    figures = CohortFigures(learners=len(learners))
    ids = {row[0] for row in learners}
    week_ago = now - timedelta(days=7)
    figures.active_7_days = len({a.learner_id for a in answers if a.answered_at >= week_ago})
    first: dict[tuple[int, str], bool] = {}
    for a in answers:
        if a.correct is not None and a.context == "lesson":
            first.setdefault((a.learner_id, a.question_id), a.correct)
    if first:
        figures.accuracy = sum(first.values()) / len(first)
    done: dict[int, set[str]] = defaultdict(set)
    for learner_id, lesson_id in completions:
        done[learner_id].add(lesson_id)
    for course in catalog.courses.values():
        for module in course.modules:
            lessons = {les.id for les in module.lessons}
            finished = sum(1 for lid in ids if lessons <= done[lid])
            figures.completion.append(
                (course.title, module.title, finished / len(ids) if ids else 0.0)
            )
    per_question: dict[str, list[bool]] = defaultdict(list)
    for (_learner, qid), right in first.items():
        per_question[qid].append(right)
    hardest = []
    for qid, results in per_question.items():
        found = catalog.question(qid)
        if found and len(results) >= min_answers:
            prompt = getattr(found[1], "prompt", None) or getattr(found[1], "post", qid)
            hardest.append((prompt, sum(results) / len(results), len(results)))
    figures.hardest = sorted(hardest, key=lambda h: (h[1], -h[2], h[0]))[:5]
    counts = Counter()
    for row in learners:
        streak = row[3] or 0
        label = next(lb for low, high, lb in STREAK_BUCKETS if low <= streak <= high)
        counts[label] += 1
    figures.streaks = {label: counts.get(label, 0) for _lo, _hi, label in STREAK_BUCKETS}
    by_learner: dict[tuple[int, str], dict[str, float]] = defaultdict(dict)
    for learner_id, course_id, kind, value in scores:
        by_learner[(learner_id, course_id)][kind] = value
    changes = [s["post"] - s["pre"] for s in by_learner.values() if "pre" in s and "post" in s]
    if changes:
        figures.discernment_change = mean(changes)
        figures.discernment_pairs = len(changes)
    return figures


def pseudonym(cohort_code: str, learner_id: int) -> str:
    digest = hashlib.sha256(f"{cohort_code}:{learner_id}".encode()).hexdigest()
    return f"L-{digest[:8]}"


CSV_COLUMNS = (
    "learner",
    "course",
    "module",
    "lesson",
    "question",
    "context",
    "choice",
    "correct",
    "answered_at",
)


def answers_csv(
    catalog: Catalog, cohort_code: str, learners: list[Any], answers: list[Any]
) -> bytes:
    """Answers as CSV; a learner appears by name only if they agreed (`share_name`)."""
    names = {
        row[0]: (row[1] if row[2] and row[1] else pseudonym(cohort_code, row[0]))
        for row in learners
    }
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for a in answers:
        found = catalog.question(a.question_id)
        place = found[0] if found else None
        writer.writerow(
            [
                names.get(a.learner_id, pseudonym(cohort_code, a.learner_id)),
                place.course.id if place else "",
                place.module.id if place else "",
                a.lesson_id,
                a.question_id,
                a.context,
                a.choice,
                "" if a.correct is None else int(a.correct),
                a.answered_at.isoformat(),
            ]
        )
    return out.getvalue().encode("utf-8")


def figures_text(t: Translator, name: str, f: CohortFigures) -> str:
    _ = t.gettext
    lines = [
        _("📊 Group “{name}”").format(name=name),
        _("Learners: {n} · active in the last 7 days: {active}").format(
            n=f.learners, active=f.active_7_days
        ),
        _("Average accuracy (first answers): {value}").format(
            value=t.percent(f.accuracy) if f.accuracy is not None else "—"
        ),
    ]
    lines.append(_("Modules completed:"))
    lines += [
        f"• {module}: {t.percent(share)}" for _course, module, share in f.completion if share > 0
    ] or [_("• none yet")]
    if f.hardest:
        lines.append(_("Hardest questions:"))
        lines += [f"• {t.percent(acc)} ({n}) {prompt[:80]}" for prompt, acc, n in f.hardest]
    lines.append(
        _("Streaks: {buckets}").format(buckets=", ".join(f"{k}: {v}" for k, v in f.streaks.items()))
    )
    if f.discernment_change is not None:
        lines.append(
            _(
                "Disinformation course: average discernment change {change} "
                "({n} learners with both tests)"
            ).format(change=f"{f.discernment_change:+.2f}", n=f.discernment_pairs)
        )
    return "\n".join(lines)


async def _load(turn: Turn, cohort_ids: list[int]) -> tuple[list, list, list, list]:
    repo = turn.repo
    return (
        await repo.cohort_learners(cohort_ids),
        await repo.cohort_answers(cohort_ids),
        await repo.cohort_completions(cohort_ids),
        await repo.cohort_scores(cohort_ids),
    )


@trainer_only
async def stats(turn: Turn, args: str = "") -> None:
    _ = turn.t._
    cohorts = await turn.repo.cohorts(None if is_admin(turn) else turn.learner.id)
    if not cohorts:
        turn.out.say(_("You have no group yet: /newcohort creates one."))
        return
    chosen = [c for c in cohorts if args.strip() in (c.code, c.name, str(c.id))] or cohorts[:1]
    await _stats_of(turn, chosen[0].id)


@trainer_only
async def stats_press(turn: Turn, value: str) -> None:
    cohort = await owned(turn, value)
    if cohort:
        await _stats_of(turn, cohort.id)


async def _stats_of(turn: Turn, cohort_id: int) -> None:
    from bot.media.charts import cohort_chart

    cohort = await turn.repo.cohort(cohort_id)
    learners, answers, completions, scores = await _load(turn, [cohort_id])
    figures = cohort_figures(turn.catalog, learners, answers, completions, scores, turn.now)
    text = figures_text(turn.t, cohort.name, figures)
    turn.out.say(text)
    t = turn.t
    turn.out.actions.append(
        Later(lambda: Photo(cohort_chart(figures, t), text[:1024], "cohort.png"), optional=True)
    )


@trainer_only
async def export_press(turn: Turn, value: str) -> None:
    _ = turn.t._
    cohort = await owned(turn, value)
    if cohort is None:
        return
    learners, answers, _done, _scores = await _load(turn, [cohort.id])
    data = answers_csv(turn.catalog, cohort.code, learners, answers)
    turn.out.actions.append(
        Document(
            f"answers-{cohort.code}.csv",
            data,
            _(
                "Answers of “{name}”. Learners appear under a pseudonym unless they agreed to show "
                "their name (/sharename)."
            ).format(name=cohort.name),
        )
    )


@trainer_only
async def export(turn: Turn, args: str = "") -> None:
    cohorts = await turn.repo.cohorts(None if is_admin(turn) else turn.learner.id)
    chosen = [c for c in cohorts if args.strip() in (c.code, c.name, str(c.id))] or cohorts[:1]
    if chosen:
        await export_press(turn, str(chosen[0].id))
    else:
        await stats(turn, args)


async def share_name(turn: Turn, args: str = "") -> None:
    """A learner's consent to appear by name in their trainer's export."""
    _ = turn.t._
    value = args.strip().lower()
    if value in ("on", "yes", "si", "sí", "ναι"):
        turn.learner.share_name = True
    elif value in ("off", "no", "όχι"):
        turn.learner.share_name = False
    turn.out.say(
        _(
            "Your trainer sees your name in exports: {state}. Change it with "
            "/sharename on or /sharename off."
        ).format(state=_("yes") if turn.learner.share_name else _("no, a pseudonym"))
    )
