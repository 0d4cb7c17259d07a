"""What every benchmark shares: the results file, timing, and a throwaway PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class ThrowawayPostgres:
    """A throwaway cluster as a benchmark sees it: call it for a new database's URL."""

    def __init__(self, cluster: Any):
        self.cluster = cluster
        self.counter = iter(range(1000))

    def __call__(self) -> str:
        import asyncpg

        name = f"bench{next(self.counter)}"

        async def create() -> None:
            conn = await asyncpg.connect(self.cluster.url().replace("+asyncpg", ""))
            await conn.execute(f'CREATE DATABASE "{name}"')
            await conn.close()

        asyncio.run(create())
        return self.cluster.url(name)

    def cpu_seconds(self) -> float:
        """The CPU the server has used so far: its postmaster and the processes it runs now
        (the backends of pooled connections live as long as their connections)."""
        postmaster = int((self.cluster.data / "postmaster.pid").read_text().split()[0])
        total = cpu_seconds(postmaster)
        for entry in Path("/proc").iterdir():
            try:
                if entry.name.isdigit() and _parent(entry) == postmaster:
                    total += cpu_seconds(int(entry.name))
            except OSError:  # gone meanwhile
                continue
        return total


def _parent(proc: Path) -> int:
    return int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])


@contextmanager
def postgres() -> Iterator[ThrowawayPostgres]:
    """A throwaway PostgreSQL cluster (the tests' helper), stopped at the end."""
    from tests.pgcluster import Cluster, find_bindir

    bindir = find_bindir()
    if bindir is None:
        raise SystemExit("PostgreSQL binaries not found: install postgresql-15")
    cluster = Cluster(bindir).start()
    try:
        yield ThrowawayPostgres(cluster)
    finally:
        cluster.stop()
