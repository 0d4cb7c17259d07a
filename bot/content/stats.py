"""Figures about the content for `restart-tutor lessons stats`: counts and coverage per course."""

from __future__ import annotations

from typing import Any

from bot.content.catalog import Catalog
from bot.content.model import Card, Confidence, Rating


def course_stats(catalog: Catalog) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for course in catalog.courses.values():
        lessons = course.lessons
        items = [item for lesson in lessons for item in lesson.items]
        questions = [i for i in items if not isinstance(i, Card)]
        tags = sorted({tag for lesson in lessons for tag in lesson.tags})
        result[course.id] = {
            "title": course.title,
            "modules": len(course.modules),
            "lessons": len(lessons),
            "cards": sum(isinstance(i, Card) for i in items),
            "questions": len(questions),
            "exercises": sum(
                lesson.role == "lesson" for lesson in lessons for _ in lesson.questions
            ),
            "ratings": sum(isinstance(i, Rating) for i in questions),
            "with_feedback": sum(not isinstance(i, Confidence) for i in questions),
            "confidence": sum(isinstance(i, Confidence) for i in questions),
            "tagged_lessons_share": round(sum(bool(les.tags) for les in lessons) / len(lessons), 4),
            "unknown_tags": [t for t in tags if not catalog.knows_tag(t)],
            "competences": tags,
        }
    result_all: dict[str, Any] = {"courses": result}
    if catalog.toolkit:
        result_all["toolkit"] = {
            "resources": len(catalog.toolkit.resources),
            "topics": len(catalog.toolkit.topics),
        }
    return result_all
