"""`make bench`: every benchmark in turn, then docs/benchmarks.md (4 to 4.5 minutes on 2 cores)."""

from __future__ import annotations

import time

from bench import broadcast, interactive, planner, report, sender


def main() -> None:
    for name, module in (
        ("interactive", interactive),
        ("planner", planner),
        ("sender", sender),
        ("broadcast", broadcast),
    ):
        started = time.perf_counter()
        print(f"== {name}")
        module.main([])
        print(f"   ({time.perf_counter() - started:.0f} s)")
    report.write()
    print("figures in bench/results.json and docs/benchmarks.md")


if __name__ == "__main__":
    main()
