"""`restart-tutor broadcast` and `restart-tutor stats` as real processes."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.content import load_catalog
from bot.tutor.engine import Tutor
from bot.tutor.events import Command, Who
from storage.db import create_engine, upgrade
from storage.models import OutboxMessage
from storage.repository import SqlStore
from tests.conftest import LESSONS
from tests.faults.procs import TOKEN, ApiServerProcess

ROOT = Path(__file__).parent.parent


async def seed(url: str, members: int) -> str:
    engine = create_engine(url)
    await upgrade(engine)
    store = SqlStore(engine)
    tutor = Tutor(load_catalog(LESSONS), store)
    async with store.unit() as repo:
        owner = await repo.learner(Who("tg:1", chat_id=1), tutor.clock())
        cohort_id = await repo.create_cohort("GROUP1", "Choir", owner.id, tutor.clock())
        await repo.update_cohort(cohort_id, course_id="mooc-art")
    for uid in range(100, 100 + members):
        await tutor.handle(Who(f"tg:{uid}", chat_id=uid), Command("start", "c-GROUP1"))
    await engine.dispose()
    return "GROUP1"


async def outbox_count(url: str) -> int:
    engine = create_engine(url)
    async with engine.connect() as conn:
        count = await conn.scalar(select(func.count()).select_from(OutboxMessage))
    await engine.dispose()
    return count


def cli(url: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "--db", url, *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def group(tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    return url, asyncio.run(seed(url, 12))


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--text", "   "], "empty"),
        (["--text", "x" * 10_000], "10,000 characters"),
        (["--text", "caption", "--photo", "pyproject.toml"], "not a PNG, JPEG"),
        (["--text", "hi", "--at", "2020-01-01 10:00"], "in the past"),
    ],
)
def test_bad_broadcasts_are_refused_and_nothing_is_queued(group, args, words):
    url, code = group
    result = cli(url, "broadcast", "--cohort", code, *args)
    assert result.returncode == 2 and words in result.stderr
    assert asyncio.run(outbox_count(url)) == 0


def test_unknown_cohort_is_refused(group):
    url, _code = group
    result = cli(url, "broadcast", "--cohort", "NOPE", "--text", "hello")
    assert result.returncode == 2 and "No group has the code" in result.stderr


def test_cli_broadcast_sends_with_a_progress_bar_and_reports(group, tmp_path):
    url, code = group
    photo = tmp_path / "poster.png"
    photo.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    server = ApiServerProcess()
    try:
        result = cli(
            url,
            "broadcast",
            "--cohort",
            code,
            "--text",
            "Concert on Friday!",
            "--photo",
            str(photo),
            "--send",
            env={
                "TELEGRAM_BOT_TOKEN": TOKEN,
                "TELEGRAM_API_BASE": server.base,
                "TUTOR_SEND_RATE": "200",
            },
        )
        sent = server.get("sent?method=sendPhoto")
        sent = sent.get("result", sent)["sent"]
    finally:
        server.stop()
    assert result.returncode == 0, result.stderr
    assert "12/12" in result.stderr  # tqdm's bar
    assert "Delivered: 12 · blocked: 0 · failed: 0 (of 12)" in result.stdout
    assert sorted(m["chat"]["id"] for m in sent) == list(range(100, 112))


def test_cli_stats(group):
    url, code = group
    result = cli(url, "stats", "--cohort", code)
    assert result.returncode == 0
    assert "Group “Choir”" in result.stdout and "Learners: 12" in result.stdout
