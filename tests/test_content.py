"""Content validation: the bundled courses load; broken files are reported with file and line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from bot import limits
from bot.content import MultipleChoice, SingleChoice, check_catalog
from tests.conftest import LESSONS

BROKEN = Path(__file__).parent / "fixtures" / "broken-lessons"
EXPECTED = [
    ("module-1.yaml", 7, "colour: Extra inputs are not permitted"),
    ("module-1.yaml", 11, "exactly 1 correct option, has 2"),
    ("module-1.yaml", 24, "unknown competence tag 'digcomp:9.9'"),
    ("module-1.yaml", 37, "explanation: Field required"),
    ("module-2.yaml", 8, "'choose: 2' needs exactly 2 correct options, has 3"),
    ("module-2.yaml", 22, "at most 100 characters"),
    ("module-2.yaml", 33, "duplicate id 'a-q2'"),
    ("module-3.yaml", 7, "not valid YAML"),
]


def test_bundled_content_is_valid_and_fully_tagged(catalog):
    _catalog, errors = check_catalog(LESSONS)
    assert errors == []
    for course in catalog.courses.values():
        for lesson in course.lessons:
            assert lesson.tags and all(catalog.knows_tag(t) for t in lesson.tags)
            for question in lesson.questions:
                if hasattr(question, "explanation"):
                    assert question.explanation.strip()


def test_every_broken_file_error_is_named_with_file_and_line():
    catalog, errors = check_catalog(BROKEN)
    assert catalog is None
    found = [(Path(e.path).name, e.line, e.message) for e in errors]
    for name, line, words in EXPECTED:
        assert any(n == name and ln == line and words in m for n, ln, m in found), (
            name,
            line,
            words,
            found,
        )
    assert len(errors) == len(EXPECTED)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parent.parent,
    )


def test_lessons_check_cli_exits_non_zero_and_lists_every_error():
    result = run_cli("lessons", "check", "--path", str(BROKEN))
    assert result.returncode == 1
    lines = result.stdout.strip().splitlines()
    assert len(lines) == len(EXPECTED)
    assert all(":" in line and "broken-lessons/course-a/" in line for line in lines)


def test_lessons_check_cli_passes_on_bundled_content():
    result = run_cli("lessons", "check")
    assert result.returncode == 0, result.stdout + result.stderr


def test_lessons_stats_json_counts(catalog):
    result = run_cli("lessons", "stats", "--json")
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)["courses"]
    mooc = figures["mooc-art"]
    course = catalog.courses["mooc-art"]
    assert mooc["modules"] == len(course.modules) >= 2
    assert mooc["lessons"] == len(course.lessons)
    assert mooc["questions"] == sum(len(les.questions) for les in course.lessons)
    assert mooc["tagged_lessons_share"] == 1.0


def test_a_broken_lesson_folder_stops_the_chat_with_file_and_line(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bot.cli",
            "--lessons",
            str(BROKEN),
            "--db",
            f"sqlite:///{tmp_path / 'x.db'}",
            "chat",
        ],
        input="",
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parent.parent,
    )
    assert result.returncode == 2
    assert "module-1.yaml:11" in result.stderr
    assert "Traceback" not in result.stderr


def _question(kind: str, correct: list[bool], choose: int = 2) -> dict:
    data = {
        "type": kind,
        "id": "q-1",
        "prompt": "Which?",
        "explanation": "Because.",
        "options": [
            {"text": f"option {i}", "correct": c, "feedback": "fb"} for i, c in enumerate(correct)
        ],
    }
    if kind == "multiple":
        data["choose"] = choose
    return data


@given(st.lists(st.booleans(), min_size=2, max_size=limits.POLL_OPTIONS_MAX))
def test_single_choice_needs_exactly_one_correct(correct):
    if sum(correct) == 1:
        assert SingleChoice.model_validate(_question("single", correct)).correct_ids
    else:
        with pytest.raises(ValidationError):
            SingleChoice.model_validate(_question("single", correct))


@given(
    st.lists(st.booleans(), min_size=3, max_size=limits.POLL_OPTIONS_MAX),
    st.integers(min_value=2, max_value=5),
)
def test_multiple_choice_needs_exactly_choose_correct(correct, choose):
    data = _question("multiple", correct, choose)
    if sum(correct) == choose and choose < len(correct):
        assert len(MultipleChoice.model_validate(data).correct_ids) == choose
    else:
        with pytest.raises(ValidationError):
            MultipleChoice.model_validate(data)


@given(st.integers(min_value=1, max_value=limits.MESSAGE_TEXT_MAX + 50))
def test_card_text_limit(size):
    from bot.content.model import Card

    if size <= limits.MESSAGE_TEXT_MAX:
        Card.model_validate({"type": "card", "text": "x" * size})
    else:
        with pytest.raises(ValidationError):
            Card.model_validate({"type": "card", "text": "x" * size})
