"""Grading, in one place: turn a learner's choice into right/wrong and the feedback to show."""

from __future__ import annotations

from dataclasses import dataclass

from bot.content import Confidence, MultipleChoice, Question, Rating, SingleChoice, TrueFalse


@dataclass(frozen=True)
class Grade:
    correct: bool | None
    """None for questions that have no right answer (confidence)."""
    feedback: tuple[str, ...]
    choice: str
    """The choice as stored: option indexes joined by commas, or the rating."""


def option_count(question: Question) -> int:
    if isinstance(question, (SingleChoice, MultipleChoice)):
        return len(question.options)
    if isinstance(question, TrueFalse):
        return 2
    return 5  # ratings and confidence use a 1..5 scale


def grade(question: Question, chosen: tuple[int, ...]) -> Grade:
    """`chosen` holds 0-based option indexes (for a scale: 0 means 1, 4 means 5)."""
    picked = tuple(sorted(set(chosen)))
    if not picked or any(i < 0 or i >= option_count(question) for i in picked):
        raise ValueError(f"invalid choice {chosen!r} for {question.id}")
    choice = ",".join(str(i) for i in picked)
    match question:
        case SingleChoice() | MultipleChoice():
            right = picked == question.correct_ids
            feedback = tuple(question.options[i].feedback for i in picked)
            return Grade(right, feedback, choice)
        case TrueFalse():
            said_true = picked == (0,)
            text = question.feedback_true if said_true else question.feedback_false
            return Grade(said_true == question.answer, (text,), choice)
        case Rating():
            rating = picked[0] + 1
            return Grade(question.is_right(rating), (question.feedback,), str(rating))
        case Confidence():
            return Grade(None, (), str(picked[0] + 1))
    raise TypeError(type(question))
