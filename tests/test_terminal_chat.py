"""`restart-tutor chat` as a real process fed through a pipe, as a script or `make demo` does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bot.content import Card, MultipleChoice, SingleChoice, TrueFalse
from tests.conftest import LESSONS

ROOT = Path(__file__).parent.parent


def lines_for_lesson(lesson) -> list[str]:
    """The numbers a learner types to go through `lesson` answering everything right."""
    typed = []
    for item in lesson.items:
        match item:
            case Card():
                typed.append("1")
            case TrueFalse():
                typed.append("1" if item.answer else "2")
            case SingleChoice():
                typed.append(str(item.correct_ids[0] + 1))
            case MultipleChoice():
                typed += [str(i + 1) for i in item.correct_ids]
                typed.append(str(len(item.options) + 1))
    return typed


def chat(tmp_path: Path, typed: list[str], learner: str = "ada") -> str:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bot.cli",
            "--db",
            f"sqlite:///{tmp_path / 'demo.db'}",
            "--lessons",
            str(LESSONS),
            "chat",
            "--learner",
            learner,
        ],
        input="\n".join(typed) + "\n",
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_piped_session_onboards_finishes_a_lesson_and_shows_streak(tmp_path, catalog):
    lesson = catalog.courses["mooc-art"].lessons[0]
    out = chat(
        tmp_path, ["English", "1", "2", "1", *lines_for_lesson(lesson), "/progress", "/quit"]
    )
    assert "All set!" in out
    assert "Lesson complete" in out
    assert "Streak: 1 day" in out.split("> /progress")[-1]
    assert "Bye!" in out


def test_progress_is_kept_between_sessions_and_learners_are_separate(tmp_path, catalog):
    lesson = catalog.courses["mooc-art"].lessons[0]
    chat(tmp_path, ["1", "1", "1", "1", *lines_for_lesson(lesson)])
    again = chat(tmp_path, ["/progress"])
    assert "Welcome back" in again and "1/5 lessons" in again
    other = chat(tmp_path, ["/progress"], learner="bo")
    assert "Which language" in other


def test_end_of_input_and_odd_lines_end_cleanly(tmp_path):
    out = chat(tmp_path, ["", "   ", "999", "/nonsense", "\x00\x01", "é" * 5000])
    assert "Bye!" in out
