"""Write docs/benchmarks.md from bench/results.json: every figure, its target, and how to rerun."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from bench.common import RESULTS, ROOT, machine

TARGETS = {
    # metric: (comparison, target, what it means)
    "interactive_aiogram_sqlite_throughput_ratio": (">=", 0.6, "tutor / echo updates per second"),
    "interactive_aiogram_sqlite_p95_ratio": ("<=", 2.0, "tutor / echo p95 reply latency"),
    "interactive_ptb_sqlite_throughput_ratio": (">=", 0.6, "tutor / echo updates per second"),
    "interactive_ptb_sqlite_p95_ratio": ("<=", 2.0, "tutor / echo p95 reply latency"),
    "interactive_aiogram_postgresql_throughput_ratio": (">=", 0.6, "tutor / echo"),
    "interactive_aiogram_postgresql_p95_ratio": ("<=", 2.0, "tutor / echo p95"),
    "interactive_aiogram_sqlite_paced_p95_ratio": ("<=", 2.0, "tutor / echo p95, same load"),
    "interactive_ptb_sqlite_paced_p95_ratio": ("<=", 2.0, "tutor / echo p95, same load"),
    "interactive_aiogram_postgresql_paced_p95_ratio": ("<=", 2.0, "tutor / echo p95, same load"),
    "planner_sqlite_tick_median_ms": ("<=", 50, "one tick, normal spread, 1M learners"),
    "planner_postgresql_tick_median_ms": ("<=", 50, "one tick, normal spread, 1M learners"),
    "planner_sqlite_100k_same_minute_s": ("<=", 10, "100,000 learners due in one minute"),
    "planner_postgresql_100k_same_minute_s": ("<=", 10, "100,000 learners due in one minute"),
    "planner_sqlite_peak_rss_mb": ("<=", 200, "peak RSS of the ticking process"),
    "planner_postgresql_peak_rss_mb": ("<=", 200, "peak RSS of the ticking process"),
    "sender_share_of_limit": (">=", 0.95, "achieved rate / limit (1,000/s)"),
    "sender_per_chat_violations": ("<=", 0, "chats sent two messages within a second"),
    "sender_lost": ("<=", 0, "messages never delivered"),
    "sender_duplicated": ("<=", 0, "messages delivered twice"),
    "sender_429_all_delivered": (">=", 1, "every message delivered despite 429s"),
    "sender_429_sends_during_retry_after": ("<=", 0, "sends inside a retry_after window"),
    "broadcast_share_of_limit": (">=", 0.95, "50,000-learner broadcast, achieved / limit"),
}


def verdict(name: str, value: float) -> str:
    if name not in TARGETS:
        return ""
    op, target, _ = TARGETS[name]
    ok = value >= target if op == ">=" else value <= target
    return f"{op} {target:g}: {'met' if ok else '**not met**'}"


def write() -> None:
    figures = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    lines = [
        "# Benchmarks",
        "",
        "Figures from `make bench` (which runs `python -m bench`); every number below is in",
        "`bench/results.json` (one flat object, metric → number). Benchmarks are not tests: they",
        "print figures. The machines are shared and noisy, so each benchmark also measures a",
        "baseline in the same run and the ratio is the figure to watch.",
        "",
        f"Last run: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}.",
        "",
        "Reproduce one part: `python -m bench.interactive`, `python -m bench.planner`,",
        "`python -m bench.sender`, `python -m bench.broadcast` (each takes `--help`).",
        "",
        "| metric | value | target |",
        "| --- | ---: | --- |",
    ]
    for name in sorted(figures):
        value = figures[name]
        lines.append(f"| `{name}` | {value:,.3f} | {verdict(name, value)} |")
    lines += [
        "",
        (ROOT / "bench" / "NOTES.md").read_text() if (ROOT / "bench" / "NOTES.md").exists() else "",
    ]
    (ROOT / "docs" / "benchmarks.md").write_text("\n".join(lines).rstrip() + "\n")


if __name__ == "__main__":
    write()
