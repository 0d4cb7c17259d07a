"""The loaded content, indexed for the engine: courses in order, lessons and questions by id."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bot.content.localize import Translate, translate_course
from bot.content.model import (
    Card,
    Course,
    FrameworkFile,
    Lesson,
    Module,
    Question,
    Resource,
    ToolkitFile,
)


@dataclass(frozen=True)
class Place:
    """Where a lesson or question sits in the course tree."""

    course: Course
    module: Module
    lesson: Lesson


@dataclass(frozen=True)
class CompetenceInfo:
    tag: str
    framework: str
    area_id: str
    area: str
    name: str

    @property
    def area_key(self) -> str:
        return f"{self.framework}:{self.area_id}"


class Catalog:
    def __init__(
        self,
        courses: Iterable[Course],
        frameworks: FrameworkFile | None = None,
        toolkit: ToolkitFile | None = None,
    ):
        self.courses: dict[str, Course] = {
            c.id: c for c in sorted(courses, key=lambda c: (c.order, c.id))
        }
        self.frameworks = frameworks
        self.toolkit = toolkit
        self._lessons: dict[str, Place] = {}
        self._questions: dict[str, tuple[Place, Question]] = {}
        for course in self.courses.values():
            for module in course.modules:
                for lesson in module.lessons:
                    place = Place(course, module, lesson)
                    self._lessons[lesson.id] = place
                    for item in lesson.items:
                        if not isinstance(item, Card):
                            self._questions[item.id] = (place, item)
        self.competences: dict[str, CompetenceInfo] = {}
        for fw in frameworks.frameworks if frameworks else ():
            for area in fw.areas:
                for comp in area.competences:
                    tag = f"{fw.id}:{comp.id}"
                    self.competences[tag] = CompetenceInfo(
                        tag, fw.id, area.id, area.name, comp.name
                    )
        self.resources: dict[str, Resource] = (
            {r.id: r for r in toolkit.resources} if toolkit else {}
        )

    def localized(self, translate: Translate) -> Catalog:
        """A copy with every course string passed through `translate(context, text)`."""
        courses = [translate_course(c, translate) for c in self.courses.values()]
        return Catalog(courses, self.frameworks, self.toolkit)

    def knows_tag(self, tag: str) -> bool:
        return tag in self.competences

    def course(self, course_id: str) -> Course | None:
        return self.courses.get(course_id)

    def default_course(self) -> Course:
        return next(iter(self.courses.values()))

    def place(self, lesson_id: str) -> Place | None:
        return self._lessons.get(lesson_id)

    def lesson(self, lesson_id: str) -> Lesson | None:
        place = self._lessons.get(lesson_id)
        return place.lesson if place else None

    def question(self, question_id: str) -> tuple[Place, Question] | None:
        return self._questions.get(question_id)

    def next_lesson(self, course_id: str, done: set[str]) -> Lesson | None:
        """The first lesson of the course, in order, that is not in `done`."""
        course = self.courses.get(course_id)
        if course is None:
            return None
        return next((les for les in course.lessons if les.id not in done), None)
