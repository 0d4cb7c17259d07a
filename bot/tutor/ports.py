"""What the engine needs from the outside world: a repository inside a unit of work, and a clock.

The engine is written against these protocols only; `storage.repository` implements them with
SQLAlchemy. Tests run the engine on the real repository over a throwaway SQLite file (fast enough,
and it keeps one implementation instead of a fake twin to keep in step).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Protocol, TypeVar

from bot.tutor.events import Who

Clock = Callable[[], datetime]
T = TypeVar("T")


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class LearnerState:
    """The learner's row as the engine reads and changes it; the repository writes back the
    fields that changed when the unit of work ends."""

    id: int
    external_id: str
    chat_id: int | None
    display_name: str | None
    language: str
    time_zone: str | None
    daily_time: str | None
    onboarding: str
    awaiting: str | None
    nudges_enabled: bool
    active: bool
    role: str
    quiz_mode: str
    course_id: str | None
    lesson_id: str | None
    item_index: int
    pending_token: str | None
    pending_selection: str | None
    reviewing: str | None
    next_nudge_at: datetime | None
    weekdays: str | None
    quiet_hours: str | None
    paused_until: date | None
    streak_days: int
    share_name: bool
    last_practice_day: date | None
    created_at: datetime


@dataclass(frozen=True)
class AnswerFact:
    question_id: str
    lesson_id: str
    choice: str
    correct: bool | None
    answered_at: datetime
    context: str = "lesson"


@dataclass(frozen=True)
class Agenda:
    """What /today chooses from, read at once: the booster due (course, number), the reviews
    due (oldest first, at most the number asked for) and the lessons done."""

    booster: tuple[str, int] | None
    due_reviews: list[str]
    completed: set[str]


@dataclass(frozen=True)
class History:
    """A learner's record as a lesson's end reads it, at once: practice days and pauses (for
    the streak), the answers to the lesson's questions (oldest first), the lessons done."""

    days: list[date]
    pauses: list[tuple[date, date]]
    answers: list[AnswerFact]
    completed: set[str]


@dataclass(frozen=True)
class CertificateFact:
    code: str
    learner_id: int
    course_id: str
    name: str
    score: float
    competences: list[str]
    salt: str
    issued_at: datetime


class Repository(Protocol):
    async def learner(self, who: Who, now: datetime) -> LearnerState: ...

    async def answered(self, learner_id: int, token: str) -> bool: ...

    async def record_answer(
        self,
        learner_id: int,
        *,
        question_id: str,
        lesson_id: str,
        token: str,
        choice: str,
        correct: bool | None,
        at: datetime,
        context: str = "lesson",
    ) -> None:
        """Stored once per presentation (`token`): a second answer to it is ignored."""
        ...

    async def answers(
        self, learner_id: int, questions: Collection[str] | None = None
    ) -> list[AnswerFact]:
        """Oldest first; with `questions`, only the answers to those questions."""
        ...

    async def complete_lesson(
        self, learner_id: int, lesson_id: str, course_id: str, at: datetime
    ) -> None:
        """Recorded once: the first completion's time stays."""
        ...

    async def completed_lessons(self, learner_id: int) -> set[str]: ...

    async def add_practice_day(self, learner_id: int, day: date) -> None: ...

    async def practice_days(self, learner_id: int) -> list[date]: ...

    async def link_poll(self, poll_id: str, learner_id: int, token: str, at: datetime) -> None: ...

    async def poll_token(self, learner_id: int, poll_id: str) -> str | None: ...

    async def streak_history(self, learner_id: int) -> tuple[list[date], list[tuple[date, date]]]:
        """Practice days and pauses (first, last) together, read at once (a streak needs
        both)."""
        ...

    async def set_pause(self, learner_id: int, first: date, last: date | None) -> None:
        """Start a pause (first..last) or, with `last=None`, end the one covering `first`."""
        ...

    async def learner_by_id(self, learner_id: int) -> LearnerState | None: ...

    async def review_card(self, learner_id: int, question_id: str) -> dict | None: ...

    def prefetch_review_card(self, learner_id: int, question_id: str) -> None:
        """A hint: the learner's next update will likely read this card. A store whose reads are
        round trips may read it along with this update's write; one whose reads are cheap
        ignores it."""
        ...

    async def save_review_card(
        self, learner_id: int, question_id: str, due: datetime, card: dict
    ) -> None: ...

    async def due_reviews(self, learner_id: int, now: datetime, limit: int) -> list[str]: ...

    async def answers_since(self, learner_id: int, since: datetime, context: str) -> int: ...

    async def save_test_score(
        self,
        learner_id: int,
        course_id: str,
        kind: str,
        discernment: float | None,
        confidence: float | None,
        at: datetime,
    ) -> bool:
        """Store a pre/post score; False (and nothing changed) when one exists already."""
        ...

    async def test_scores(self, learner_id: int, course_id: str) -> dict[str, float | None]: ...

    async def add_boosters(self, learner_id: int, course_id: str, due: list[date]) -> None: ...

    async def history(self, learner_id: int, questions: Collection[str]) -> History:
        """One read where there would be three: `streak_history`, `answers(questions)` and
        `completed_lessons`."""
        ...

    async def agenda(self, learner_id: int, now: datetime, today: date, reviews: int) -> Agenda:
        """One read where there would be three: the booster due `today`, the first `reviews`
        reviews due at `now`, the lessons done."""
        ...

    async def finish_booster(
        self, learner_id: int, course_id: str, number: int, at: datetime
    ) -> None: ...

    async def certificate(self, learner_id: int, course_id: str) -> CertificateFact | None: ...

    async def add_certificate(self, fact: CertificateFact) -> None: ...

    async def certificate_by_code(self, code: str) -> CertificateFact | None: ...


class Store(Protocol):
    def unit(self) -> AbstractAsyncContextManager[Repository]:
        """One transaction: commit on success, roll back on error."""
        ...

    async def run(self, work: Callable[[Repository], Awaitable[T]]) -> T:
        """`work` in a unit of its own, which the store may run more than once (it may read
        without locks and find at the end that the learner changed meanwhile): `work` acts
        only through the repository it is given."""
        ...
