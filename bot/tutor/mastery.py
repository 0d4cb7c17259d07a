"""Competence progress: how much of each framework area's material the learner has mastered.

A question is mastered when its latest graded answer is right: answered right in the lesson and
still right when it came back in review (a wrong review answer un-masters it). A question counts
for every competence area its lesson is tagged with.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bot.content import Catalog, Confidence
from bot.tutor.ports import AnswerFact

FRAMEWORK_NAMES = {"digcomp": "DigComp", "entrecomp": "EntreComp", "lifecomp": "LifeComp"}


@dataclass(frozen=True)
class AreaProgress:
    key: str
    label: str
    mastered: int
    total: int

    @property
    def share(self) -> float:
        return self.mastered / self.total if self.total else 0.0


def mastered_questions(answers: Iterable[AnswerFact]) -> set[str]:
    latest: dict[str, bool] = {}
    for fact in answers:  # in answer order: the last one wins
        if fact.correct is not None:
            latest[fact.question_id] = fact.correct
    return {qid for qid, right in latest.items() if right}


def area_progress(
    catalog: Catalog, answers: Iterable[AnswerFact], course_ids: Iterable[str] | None = None
) -> list[AreaProgress]:
    mastered = mastered_questions(answers)
    totals: dict[str, set[str]] = {}
    labels: dict[str, str] = {}
    wanted = set(course_ids) if course_ids is not None else None
    for course in catalog.courses.values():
        if wanted is not None and course.id not in wanted:
            continue
        for lesson in course.lessons:
            if lesson.role != "lesson":
                continue
            questions = {q.id for q in lesson.questions if not isinstance(q, Confidence)}
            for tag in lesson.tags:
                info = catalog.competences.get(tag)
                if info is None:
                    continue
                totals.setdefault(info.area_key, set()).update(questions)
                labels[info.area_key] = (
                    f"{FRAMEWORK_NAMES.get(info.framework, info.framework)}"
                    f" {info.area_id}: {info.area}"
                )
    return [
        AreaProgress(key, labels[key], len(qs & mastered), len(qs))
        for key, qs in sorted(totals.items())
    ]
