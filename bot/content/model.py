"""The typed course model: course → module → lesson → items.

Lesson YAML is parsed into these pydantic models once, at load. Each model forbids unknown keys and
checks its own rules (right number of correct options, Telegram's size limits), so the rest of the
program can trust the content it is handed. Rules that span files (duplicate ids, unknown
competence tags) live in `bot.content.loader`.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bot import limits

ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,39}$"
TAG_PATTERN = re.compile(r"^(digcomp|entrecomp|lifecomp):[A-Z0-9.]+$")
TECHNIQUES = ("impersonation", "emotion", "polarisation", "conspiracy", "discrediting", "trolling")
EXERCISES = ("rate", "technique", "check", "share", "roleplay", "confidence", "order", "classify")

Id = Annotated[str, Field(pattern=ID_PATTERN)]
Text = Annotated[str, Field(min_length=1, max_length=limits.MESSAGE_TEXT_MAX)]
OptionText = Annotated[str, Field(min_length=1, max_length=limits.POLL_OPTION_MAX)]


class Strict(BaseModel):
    """Base for content models: unknown keys are errors, models are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Card(Strict):
    type: Literal["card"]
    text: Text
    image: str | None = None
    link: str | None = None

    @model_validator(mode="after")
    def _caption_fits(self) -> Card:
        if self.image and len(self.text) > limits.CAPTION_MAX:
            raise ValueError(
                f"a card with an image is sent as a photo: its text is a caption of at most "
                f"{limits.CAPTION_MAX} characters (this one has {len(self.text)})"
            )
        return self


class Option(Strict):
    text: OptionText
    correct: bool = False
    feedback: Text


class _Question(Strict):
    id: Id
    prompt: Text
    post: Text | None = None
    exercise: Literal[EXERCISES] | None = None  # type: ignore[valid-type]
    explanation: Text

    @property
    def message_text(self) -> str:
        """The text shown with the question: the quoted post (if any) and the prompt."""
        return f"{self.post}\n\n{self.prompt}" if self.post else self.prompt

    @model_validator(mode="after")
    def _message_fits(self) -> _Question:
        if len(self.message_text) > limits.MESSAGE_TEXT_MAX - 200:
            raise ValueError("post and prompt together are too long for one Telegram message")
        return self


class SingleChoice(_Question):
    type: Literal["single"]
    options: list[Option] = Field(min_length=2, max_length=limits.POLL_OPTIONS_MAX)

    @model_validator(mode="after")
    def _one_correct(self) -> SingleChoice:
        right = sum(o.correct for o in self.options)
        if right != 1:
            raise ValueError(
                f"a single-choice question needs exactly 1 correct option, has {right}"
            )
        return self

    @property
    def correct_ids(self) -> tuple[int, ...]:
        return tuple(i for i, o in enumerate(self.options) if o.correct)


class MultipleChoice(_Question):
    type: Literal["multiple"]
    choose: int = Field(ge=2)
    options: list[Option] = Field(min_length=3, max_length=limits.POLL_OPTIONS_MAX)

    @model_validator(mode="after")
    def _choose_correct(self) -> MultipleChoice:
        right = sum(o.correct for o in self.options)
        if right != self.choose:
            raise ValueError(
                f"'choose: {self.choose}' needs exactly {self.choose} correct options, has {right}"
            )
        if self.choose >= len(self.options):
            raise ValueError("'choose' must be smaller than the number of options")
        return self

    @property
    def correct_ids(self) -> tuple[int, ...]:
        return tuple(i for i, o in enumerate(self.options) if o.correct)


class TrueFalse(_Question):
    type: Literal["truefalse"]
    answer: bool
    feedback_true: Text
    feedback_false: Text

    @property
    def correct_ids(self) -> tuple[int, ...]:
        # Option 0 is "True", option 1 is "False".
        return (0,) if self.answer else (1,)


class Rating(Strict):
    """Rate how reliable a (fictional) post is, 1 (not at all) to 5 (very)."""

    type: Literal["rating"]
    id: Id
    post: Text
    manipulative: bool
    technique: Literal[TECHNIQUES] | None = None  # type: ignore[valid-type]
    feedback: Text

    @model_validator(mode="after")
    def _technique_named(self) -> Rating:
        if self.manipulative and self.technique is None:
            raise ValueError("a manipulative post must name its technique")
        return self

    def is_right(self, rating: int) -> bool:
        return rating <= 2 if self.manipulative else rating >= 4


class Confidence(Strict):
    """How sure is the learner? 1 to 5, recorded, never graded."""

    type: Literal["confidence"]
    id: Id
    prompt: Text


ChoiceQuestion = SingleChoice | MultipleChoice | TrueFalse
Question = SingleChoice | MultipleChoice | TrueFalse | Rating | Confidence
Item = Annotated[
    Card | SingleChoice | MultipleChoice | TrueFalse | Rating | Confidence,
    Field(discriminator="type"),
]


class Lesson(Strict):
    id: Id
    title: Annotated[str, Field(min_length=1, max_length=limits.LESSON_TITLE_MAX)]
    tags: list[str] = Field(min_length=1)
    sources: list[str] = Field(default_factory=list)
    resources: list[Id] = Field(default_factory=list)
    role: Literal["lesson", "pretest", "posttest"] = "lesson"
    items: list[Item] = Field(min_length=1)

    @field_validator("tags")
    @classmethod
    def _tag_shape(cls, tags: list[str]) -> list[str]:
        for tag in tags:
            if not TAG_PATTERN.match(tag):
                raise ValueError(f"tag {tag!r} is not like 'digcomp:1.2', 'entrecomp:2.3'")
        return tags

    @property
    def questions(self) -> list[Question]:
        return [i for i in self.items if not isinstance(i, Card)]

    @property
    def cards(self) -> list[Card]:
        return [i for i in self.items if isinstance(i, Card)]


class Module(Strict):
    id: Id
    title: Annotated[str, Field(min_length=1, max_length=limits.LESSON_TITLE_MAX)]
    lessons: list[Lesson] = Field(min_length=1)


class ModuleHead(Strict):
    """A module file before its lessons are checked one by one."""

    id: Id
    title: Annotated[str, Field(min_length=1, max_length=limits.LESSON_TITLE_MAX)]
    lessons: list[dict] = Field(min_length=1)


class CourseMeta(Strict):
    id: Id
    title: Annotated[str, Field(min_length=1, max_length=200)]
    summary: Text
    pass_mark: int = Field(default=70, ge=0, le=100)
    order: int = 100


class Course(Strict):
    id: str
    title: str
    summary: str
    pass_mark: int
    modules: tuple[Module, ...]
    order: int = 100

    @property
    def lessons(self) -> list[Lesson]:
        return [lesson for module in self.modules for lesson in module.lessons]


class Competence(Strict):
    id: str
    name: str


class Area(Strict):
    id: str
    name: str
    competences: list[Competence] = Field(min_length=1)


class Framework(Strict):
    id: Id
    name: str
    title: str
    source: str | None = None
    areas: list[Area] = Field(min_length=1)


class FrameworkFile(Strict):
    frameworks: list[Framework] = Field(min_length=1)


class Topic(Strict):
    id: Id
    title: str


class Resource(Strict):
    id: Id
    name: str
    url: Annotated[str, Field(pattern=r"^https?://")]
    what: Annotated[str, Field(min_length=1, max_length=600)]
    type: str
    languages: list[str] = Field(min_length=1)
    topics: list[Id] = Field(min_length=1)
    tags: list[str] = Field(default_factory=list)
    keywords: dict[str, list[str]] = Field(default_factory=dict)
    checked: bool = False


class ToolkitFile(Strict):
    topics: list[Topic] = Field(min_length=1)
    resources: list[Resource] = Field(min_length=1)
