"""Course content: typed models, the loader that validates YAML once, and the indexed catalog."""

from bot.content.catalog import Catalog, CompetenceInfo, Place
from bot.content.loader import ContentError, ContentInvalid, check_catalog, load_catalog
from bot.content.model import (
    Card,
    ChoiceQuestion,
    Confidence,
    Course,
    Lesson,
    Module,
    MultipleChoice,
    Question,
    Rating,
    SingleChoice,
    TrueFalse,
)

__all__ = [
    "Card",
    "Catalog",
    "ChoiceQuestion",
    "CompetenceInfo",
    "Confidence",
    "ContentError",
    "ContentInvalid",
    "Course",
    "Lesson",
    "Module",
    "MultipleChoice",
    "Place",
    "Question",
    "Rating",
    "SingleChoice",
    "TrueFalse",
    "check_catalog",
    "load_catalog",
]
