"""What every benchmark shares: the results file, timing, and a throwaway PostgreSQL."""

from __future__ import annotations

import json
import os
import platform
import statistics
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"


def record(figures: dict[str, float]) -> None:
    """Merge figures (metric name → number) into bench/results.json, a flat object."""
    current = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    current.update({k: round(float(v), 4) for k, v in figures.items()})
    RESULTS.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


@contextmanager
def postgres():
    """A throwaway PostgreSQL cluster (the tests' helper); yields a function making databases."""
    import asyncio

    import asyncpg

    from tests.pgcluster import Cluster, find_bindir

    bindir = find_bindir()
    if bindir is None:
        raise SystemExit("PostgreSQL binaries not found: install postgresql-15")
    cluster = Cluster(bindir).start()
    counter = iter(range(1000))

    def new_database() -> str:
        name = f"bench{next(counter)}"

        async def create() -> None:
            conn = await asyncpg.connect(cluster.url().replace("+asyncpg", ""))
            await conn.execute(f'CREATE DATABASE "{name}"')
            await conn.close()

        asyncio.run(create())
        return cluster.url(name)

    try:
        yield new_database
    finally:
        cluster.stop()
