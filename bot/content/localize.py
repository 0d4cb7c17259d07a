"""Course content in other languages, through the same gettext workflow as the interface.

Every translatable string of a course has a context (its id plus the field) and its English text
as msgid, in the `lessons` domain. `translate_course` is the one place that knows which field gets
which context: the Babel extractor walks content with it to write the template, and the catalog
uses it to build each language's copy of a course once. A string without a translation stays
English, string by string; a translation is never empty.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import yaml

from bot.content.model import (
    Card,
    Confidence,
    Course,
    Lesson,
    Module,
    MultipleChoice,
    Rating,
    SingleChoice,
    TrueFalse,
)

Translate = Callable[[str, str], str]
"""(context, English text) → text in the target language."""


def _options(item: SingleChoice | MultipleChoice, tr: Translate) -> list[Any]:
    return [
        o.model_copy(
            update={
                "text": tr(f"{item.id}.{i}", o.text),
                "feedback": tr(f"{item.id}.{i}.fb", o.feedback),
            }
        )
        for i, o in enumerate(item.options)
    ]


def _item(lesson: Lesson, index: int, item: Any, tr: Translate) -> Any:
    match item:
        case Card():
            return item.model_copy(update={"text": tr(f"{lesson.id}#{index}", item.text)})
        case SingleChoice() | MultipleChoice() | TrueFalse():
            update: dict[str, Any] = {
                "prompt": tr(item.id, item.prompt),
                "explanation": tr(f"{item.id}.why", item.explanation),
            }
            if item.post:
                update["post"] = tr(f"{item.id}.post", item.post)
            if isinstance(item, TrueFalse):
                update["feedback_true"] = tr(f"{item.id}.t", item.feedback_true)
                update["feedback_false"] = tr(f"{item.id}.f", item.feedback_false)
            else:
                update["options"] = _options(item, tr)
            return item.model_copy(update=update)
        case Rating():
            return item.model_copy(
                update={
                    "post": tr(f"{item.id}.post", item.post),
                    "feedback": tr(f"{item.id}.fb", item.feedback),
                }
            )
        case Confidence():
            return item.model_copy(update={"prompt": tr(item.id, item.prompt)})
    return item


def translate_lesson(lesson: Lesson, tr: Translate) -> Lesson:
    items = [_item(lesson, i, item, tr) for i, item in enumerate(lesson.items)]
    return lesson.model_copy(update={"title": tr(lesson.id, lesson.title), "items": items})


def translate_module(module: Module, tr: Translate) -> Module:
    return module.model_copy(
        update={
            "title": tr(module.id, module.title),
            "lessons": [translate_lesson(les, tr) for les in module.lessons],
        }
    )


def translate_course(course: Course, tr: Translate) -> Course:
    return course.model_copy(
        update={
            "title": tr(course.id, course.title),
            "summary": tr(f"{course.id}.summary", course.summary),
            "modules": tuple(translate_module(m, tr) for m in course.modules),
        }
    )


def strings(walk: Callable[[Translate], object]) -> Iterator[tuple[str, str]]:
    """Every (context, text) pair that `walk` asks to translate, in order."""
    found: list[tuple[str, str]] = []

    def record(context: str, text: str) -> str:
        found.append((context, text))
        return text

    walk(record)
    yield from found


def extract_lessons(fileobj, keywords, comment_tags, options):
    """Babel extractor for lesson YAML (entry point `lessons_yaml`): yields pgettext messages
    with the item id as context, so translators see each string beside its siblings."""
    from bot.content.model import CourseMeta, FrameworkFile, ModuleHead, ToolkitFile

    raw = fileobj.read()
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    data = yaml.safe_load(text)
    lines = text.splitlines()

    def line_of(value: str) -> int:
        probe = value.strip().splitlines()[0][:40] if value.strip() else ""
        for number, line in enumerate(lines, 1):
            if probe and probe in line:
                return number
        return 1

    pairs: list[tuple[str, str]] = []
    if isinstance(data, dict) and "lessons" in data:
        head = ModuleHead.model_validate(data)
        lessons = [Lesson.model_validate(raw_lesson) for raw_lesson in head.lessons]
        module = Module(id=head.id, title=head.title, lessons=lessons)
        pairs = list(strings(lambda tr: translate_module(module, tr)))
    elif isinstance(data, dict) and "pass_mark" in data:
        meta = CourseMeta.model_validate(data)
        pairs = [(meta.id, meta.title), (f"{meta.id}.summary", meta.summary)]
    elif isinstance(data, dict) and "frameworks" in data:
        for framework in FrameworkFile.model_validate(data).frameworks:
            for area in framework.areas:
                pairs.append((f"area:{framework.id}:{area.id}", area.name))
                pairs += [(f"competence:{framework.id}:{c.id}", c.name) for c in area.competences]
    elif isinstance(data, dict) and "resources" in data:
        kit = ToolkitFile.model_validate(data)
        pairs = [(f"topic:{t.id}", t.title) for t in kit.topics]
        pairs += [(f"resource:{r.id}", r.what) for r in kit.resources]
    for context, value in pairs:
        yield line_of(value), "pgettext", (context, value), []
