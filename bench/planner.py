"""Planner benchmark: one tick over a million learners, and 100,000 learners due in one minute.

    python -m bench.planner [--learners 1000000]

For SQLite and PostgreSQL: seed learners over 30 time zones with daily times spread over the day,
then time the planner tick of ten consecutive minutes (median), against a baseline measured in
the same run on the same database: the bare indexed select of that minute's due learners (the
least any planner must do). Then put 100,000 learners on the same minute and time the tick that
enqueues them all, in a child process whose peak RSS is the memory figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select, text

from bench.common import ROOT, median, postgres, record
from bot.delivery.planner import ALL_DAYS, next_after
from storage.db import create_engine, upgrade
from storage.models import Learner
from storage.outbox import Outbox
from storage.schedules import Planner, eligible

ZONES = [
    "Europe/Rome",
    "Europe/Athens",
    "Europe/Madrid",
    "Europe/Lisbon",
    "Europe/London",
    "Europe/Paris",
    "Europe/Berlin",
    "Europe/Warsaw",
    "Europe/Helsinki",
    "Europe/Bucharest",
    "Europe/Dublin",
    "Europe/Vienna",
    "Europe/Prague",
    "Europe/Sofia",
    "Europe/Riga",
    "Europe/Istanbul",
    "Atlantic/Canary",
    "America/New_York",
    "America/Sao_Paulo",
    "America/Mexico_City",
    "America/Los_Angeles",
    "Asia/Kolkata",
    "Asia/Tokyo",
    "Asia/Dubai",
    "Asia/Kathmandu",
    "Australia/Sydney",
    "Africa/Cairo",
    "Africa/Lagos",
    "Pacific/Chatham",
    "Pacific/Auckland",
]
START = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
SAME_MINUTE = 100_000
COLUMNS = (
    "external_id",
    "chat_id",
    "language",
    "time_zone",
    "daily_time",
    "onboarding",
    "nudges_enabled",
    "active",
    "role",
    "quiz_mode",
    "item_index",
    "next_nudge_at",
    "created_at",
    "streak_days",
)


def learners(count: int):
    """Rows for `count` learners: zones round-robin, daily times spread over 1,440 minutes."""
    for i in range(count):
        zone = ZONES[i % len(ZONES)]
        minute = (i * 7919) % 1440  # a prime stride spreads times evenly
        daily = f"{minute // 60:02d}:{minute % 60:02d}"
        due = next_after(zone, daily, ALL_DAYS, None, START)
        yield (
            f"tg:{i}",
            i + 1,
            "en",
            zone,
            daily,
            "done",
            True,
            True,
            "learner",
            "buttons",
            0,
            due,
            START,
            0,
        )


def seed_sqlite(path: Path, count: int) -> None:
    conn = sqlite3.connect(path)
    placeholders = ",".join("?" * len(COLUMNS))
    rows = (
        (
            *r[:11],
            r[11].replace(tzinfo=None).isoformat(" "),
            r[12].replace(tzinfo=None).isoformat(" "),
            r[13],
        )
        for r in learners(count)
    )
    with conn:
        conn.executemany(
            f"INSERT INTO learners ({','.join(COLUMNS)}) VALUES ({placeholders})", rows
        )
    conn.close()


async def seed_postgres(url: str, count: int) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("+asyncpg", ""))
    await conn.copy_records_to_table("learners", records=learners(count), columns=COLUMNS)
    await conn.execute("ANALYZE learners")
    await conn.close()


async def minute_ticks(url: str, minutes: int = 10) -> tuple[list[float], list[float], int]:
    engine = create_engine(url)
    planner = Planner(engine, Outbox(engine))
    ticks, baselines, enqueued = [], [], 0
    for k in range(1, minutes + 1):
        now = START + timedelta(minutes=k, seconds=20)
        query = (
            select(Learner.id, Learner.chat_id, Learner.time_zone, Learner.next_nudge_at)
            .where(Learner.next_nudge_at <= now, eligible())
            .limit(planner.batch)
        )
        started = time.perf_counter()
        async with engine.connect() as conn:
            (await conn.execute(query)).all()
        baselines.append(time.perf_counter() - started)
        started = time.perf_counter()
        report = await planner.enqueue_due(now)
        ticks.append(time.perf_counter() - started)
        enqueued += report.enqueued
    await engine.dispose()
    return ticks, baselines, enqueued


async def crowd_one_minute(url: str, count: int) -> datetime:
    """Put the first `count` learners on the same minute, after the timed ticks."""
    engine = create_engine(url)
    crowd = START + timedelta(minutes=11)  # just after the timed ticks: only the crowd is due
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE learners SET next_nudge_at = :at WHERE id <= :n"),
            {
                "at": crowd
                if engine.dialect.name != "sqlite"
                else crowd.replace(tzinfo=None).isoformat(" "),
                "n": count,
            },
        )
    await engine.dispose()
    return crowd


def tick_child(url: str, now: str) -> None:
    """Child process: one tick at `now`; prints seconds, enqueued rows and peak RSS."""

    async def run() -> tuple[float, int]:
        engine = create_engine(url)
        planner = Planner(engine, Outbox(engine))
        started = time.perf_counter()
        report = await planner.enqueue_due(datetime.fromisoformat(now))
        elapsed = time.perf_counter() - started
        await engine.dispose()
        return elapsed, report.enqueued

    elapsed, enqueued = asyncio.run(run())
    print(json.dumps({"seconds": elapsed, "enqueued": enqueued, "peak_rss_mb": peak_rss_mb()}))


def peak_rss_mb() -> float:
    """This process's own high-water mark (VmHWM). Not getrusage's ru_maxrss: on Linux a
    child started with fork keeps the parent's maximum, which here is the seeding's."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(kind: str, url: str, count: int) -> dict[str, float]:
    started = time.perf_counter()
    if kind == "sqlite":
        seed_sqlite(Path(url.split("///", 1)[1]), count)
    else:
        asyncio.run(seed_postgres(url, count))
    seed_seconds = time.perf_counter() - started
    ticks, baselines, enqueued = asyncio.run(minute_ticks(url))
    crowd = asyncio.run(crowd_one_minute(url, SAME_MINUTE))
    child = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.planner",
            "--tick",
            url,
            (crowd + timedelta(seconds=20)).isoformat(),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    crowd_figures = json.loads(child.stdout.strip().splitlines()[-1])
    tick_ms, base_ms = median(ticks) * 1000, median(baselines) * 1000
    figures = {
        f"planner_{kind}_learners": count,
        f"planner_{kind}_seed_s": seed_seconds,
        f"planner_{kind}_tick_median_ms": tick_ms,
        f"planner_{kind}_tick_due_per_minute": enqueued / len(ticks),
        f"planner_{kind}_baseline_select_median_ms": base_ms,
        f"planner_{kind}_tick_vs_select_ratio": tick_ms / base_ms if base_ms else 0.0,
        f"planner_{kind}_100k_same_minute_s": crowd_figures["seconds"],
        f"planner_{kind}_100k_enqueued": crowd_figures["enqueued"],
        f"planner_{kind}_peak_rss_mb": crowd_figures["peak_rss_mb"],
    }
    for name, value in figures.items():
        print(f"  {name} = {value:,.2f}")
    return figures


async def _migrate(url: str) -> None:
    engine = create_engine(url)
    await upgrade(engine)
    await engine.dispose()


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--learners", type=int, default=1_000_000)
    parser.add_argument("--tick", nargs=2, metavar=("URL", "NOW"), help=argparse.SUPPRESS)
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    args = parser.parse_args(argv)
    if args.tick:
        tick_child(*args.tick)
        return {}
    figures: dict[str, float] = {}
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        if args.only in (None, "sqlite"):
            url = f"sqlite:///{Path(tmp) / 'planner.db'}"
            asyncio.run(_migrate(url))
            print(f"planner on SQLite, {args.learners:,} learners")
            figures |= measure("sqlite", url, args.learners)
        if args.only in (None, "postgresql"):
            with postgres() as new_database:
                url = new_database()
                asyncio.run(_migrate(url))
                print(f"planner on PostgreSQL, {args.learners:,} learners")
                figures |= measure("postgresql", url, args.learners)
    record(figures)
    return figures


if __name__ == "__main__":
    main()
