"""Interactive benchmark: learners pressing buttons through the whole stack, against an echo bot.

    python -m bench.interactive [--learners 20] [--presses 30] [--rounds 5]
                                [--paced-presses 9] [--paced-share 0.5] [--warm-up 45]
                                [--only aiogram_sqlite|ptb_sqlite|aiogram_postgresql ...]

Each simulated learner presses a button, waits for the bot's next keyboard, and presses again,
all learners at once. Each bot runs in its own process (as it would beside Telegram), started
once and measured in every round; the loopback servers and the learners run in this one.
Through the tutor: framework → engine → database → Bot API; with the echo bot of the same
framework: framework → Bot API (answer the callback, send a message with one button). Same
machine, same run: the ratio is the figure.
Reply latency is the time from the press to the bot's first message or edit in that chat.

Two phases per bot process. Saturated: every learner presses again as soon as its keyboard is
back, so the bot is always busy; this gives the throughput, and latencies that are mostly the
queue (learners / throughput). Paced: the same learners press on a fixed schedule, at
`--paced-share` of the tutor's saturated rate in that round, and the echo bot that follows it
gets the same rate; this gives the latency a learner sees when both bots carry the same load.
Each bot's saturated figures are medians of its rounds, and the saturated ratios medians of the
rounds' ratios (`ratios`); paced latencies are pooled over the rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench.common import ROOT, ThrowawayPostgres, cpu_seconds, median, percentile, postgres, record
from tests.botapi import BotAPIServer
from tests.conftest import LESSONS
from tests.e2e.tg import TOKEN, free_port


class Learners:
    """Simulated learners driven by the server's outgoing-message hook (no polling delay)."""

    def __init__(self, server: BotAPIServer, count: int, first_id: int = 5000):
        self.server = server
        self.ids = list(range(first_id, first_id + count))
        self.ready = {uid: asyncio.Event() for uid in self.ids}
        self.first_reply = {uid: asyncio.Event() for uid in self.ids}
        self.keyboard: dict[int, tuple[int, list[tuple[str, str]]]] = {}
        self.latencies: list[float] = []
        self.pressed_at: dict[int, float] = {}
        server.on_outgoing = self._outgoing

    def _outgoing(self, record: Any) -> None:
        uid = record.chat_id
        if uid not in self.ready:
            return
        if uid in self.pressed_at:
            self.latencies.append(time.perf_counter() - self.pressed_at.pop(uid))
            self.first_reply[uid].set()
        markup = (record.message.get("reply_markup") or {}).get("inline_keyboard")
        if markup:
            cells = [
                (c["callback_data"], c["text"])
                for row in markup
                for c in row
                if "callback_data" in c
            ]
            self.keyboard[uid] = (record.message["message_id"], cells)
            self.ready[uid].set()

    def choose(self, uid: int) -> str:
        _message_id, cells = self.keyboard[uid]
        data = [d for d, _label in cells]
        toggles = [(d, label) for d, label in cells if d.startswith("t:")]
        if toggles:  # a "choose 2" question: tick two, then Check
            unticked = [d for d, label in toggles if not label.startswith("☑")]
            if len(toggles) - len(unticked) < 2:
                return unticked[0]
            return next(d for d in data if d.startswith("ok:"))
        for prefix in ("go:", "a:", "today", "lang:en", "tz:0", "tm:"):
            for d in data:
                if d.startswith(prefix):
                    return d
        return data[0]

    async def press(self, uid: int) -> None:
        message_id, _cells = self.keyboard[uid]
        data = self.choose(uid)
        self.ready[uid].clear()
        self.first_reply[uid].clear()
        self.pressed_at[uid] = time.perf_counter()
        self.server.user_presses(uid, data, message_id=message_id)
        await asyncio.wait_for(self.ready[uid].wait(), 30)

    async def run(self, presses: int) -> float:
        async def one(uid: int) -> None:
            for _ in range(presses):
                await self.press(uid)

        started = time.perf_counter()
        await asyncio.gather(*(one(uid) for uid in self.ids))
        return time.perf_counter() - started

    async def paced(self, presses: int, rate: float) -> None:
        """Each learner presses every `len(ids) / rate` seconds, the learners evenly staggered;
        a learner whose reply is late presses as soon as it comes, then keeps the schedule."""
        interval = len(self.ids) / rate

        async def one(offset: float, uid: int) -> None:
            due = time.perf_counter() + offset
            for _ in range(presses):
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                await self.press(uid)
                due += interval

        await asyncio.gather(
            *(one(interval * i / len(self.ids), uid) for i, uid in enumerate(self.ids))
        )


def bot_process(command: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, *command],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def until_polling(server: BotAPIServer, proc: subprocess.Popen) -> None:
    for _ in range(600):
        if server.calls("getUpdates"):
            return
        if proc.poll() is not None:
            raise RuntimeError("the bot process exited")
        await asyncio.sleep(0.05)
    raise RuntimeError("the bot never started polling")


def stop_process(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


@dataclass(frozen=True)
class Load:
    """What the simulated learners do to one bot process."""

    learners: int = 20
    presses: int = 30
    paced_presses: int = 9
    """Per learner and round: 900 paced latencies over five rounds, so that one hiccup of this
    shared machine does not set the p95 alone (with 6, 360 latencies, it sometimes did)."""
    paced_share: float = 0.5
    """The paced rate as a share of this run's saturated rate, unless `paced_rate` is set."""
    paced_rate: float | None = None
    warm_up: int = 45
    """Untimed saturated presses per learner before the first round. A fresh tutor's first
    round on PostgreSQL ran about 10 % slower than the rounds after it, with PostgreSQL using
    0.33-0.37 ms of CPU a press against 0.16-0.24: each of the 20 pooled connections prepares
    each statement on first use and plans it afresh for its first five runs (PostgreSQL's
    custom plans), once in the life of a connection."""


@dataclass
class Run:
    """One bot process's figures: the saturated phase's, and the paced phase's latencies."""

    saturated: dict[str, float]
    paced: list[float]
    paced_rate: float


SPREAD = 10
"""Learners start up to this many presses apart (`BotUnderTest.__aenter__`)."""


class BotUnderTest:
    """One bot process beside its own loopback server and simulated learners, started once and
    measured in every round (an idle bot costs the other one nothing)."""

    def __init__(
        self,
        command: list[str],
        env: dict[str, str] | None,
        load: Load,
        first: str,
        onboarding: int,
        database: ThrowawayPostgres | None = None,
    ):
        self.command, self.env, self.load = command, env or {}, load
        self.first, self.onboarding = first, onboarding
        self.database = database
        """The PostgreSQL server the bot uses, whose CPU the figures count too."""

    async def __aenter__(self) -> BotUnderTest:
        """Start the process and bring every learner to a first keyboard (`first`, then
        `onboarding` untimed presses). Learner i then presses i % 10 times more, so that they
        are spread over a lesson, as real learners are: in step, they would all reach the same
        kind of item at once (every one a graded answer, say) and load the bot in waves. Then
        `load.warm_up` untimed saturated presses each (`Load.warm_up` says why)."""
        self.server = BotAPIServer(token=TOKEN)
        base = await self.server.start()
        self.proc = bot_process(
            [arg.replace("{base}", base) for arg in self.command],
            {k: v.replace("{base}", base) for k, v in self.env.items()},
        )
        try:
            await until_polling(self.server, self.proc)
            self.crowd = Learners(self.server, self.load.learners)
            for uid in self.crowd.ids:
                self.server.user_sends(uid, self.first)
            await asyncio.gather(
                *(asyncio.wait_for(self.crowd.ready[u].wait(), 30) for u in self.crowd.ids)
            )
            for _ in range(self.onboarding):
                await asyncio.gather(*(self.crowd.press(u) for u in self.crowd.ids))
            for step in range(SPREAD):
                await asyncio.gather(
                    *(
                        self.crowd.press(u)
                        for i, u in enumerate(self.crowd.ids)
                        if i % SPREAD > step
                    )
                )
            await self.crowd.run(self.load.warm_up)
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def __aexit__(self, *_exc: object) -> None:
        stop_process(self.proc)
        await self.server.stop()

    async def measure(self, load: Load) -> Run:
        """`load.presses` saturated presses per learner, then the paced ones."""
        # This process keeps the loopback server's record of every call; its full collections
        # grew to 20-130 ms and, landing in a paced phase, set that phase's p95 by themselves.
        gc.collect()
        gc.freeze()
        crowd = self.crowd
        crowd.latencies.clear()
        before = self._cpu()
        elapsed = await crowd.run(load.presses)
        cpu = [after - then for after, then in zip(self._cpu(), before, strict=True)]
        saturated = summary(crowd, elapsed, load.learners * load.presses, *cpu)
        crowd.latencies.clear()
        rate = load.paced_rate or load.paced_share * saturated["updates_per_s"]
        await crowd.paced(load.paced_presses, rate)
        return Run(saturated, list(crowd.latencies), rate)

    def _cpu(self) -> tuple[float, float, float]:
        """CPU seconds so far: the bot's, this process's (the loopback server and the
        learners), and the database server's (0 for SQLite, which runs inside the bot)."""
        database = self.database.cpu_seconds() if self.database else 0.0
        return cpu_seconds(self.proc.pid), time.process_time(), database


def echo_bot(transport: str, load: Load) -> BotUnderTest:
    return BotUnderTest(
        ["-m", "bench.echo_bot", transport, "{base}"], None, load, first="hi", onboarding=0
    )


def tutor_bot(
    transport: str, database_url: str, load: Load, database: ThrowawayPostgres | None = None
) -> BotUnderTest:
    """The tutor as deployed (`restart-tutor run`); onboarding is the untimed warm-up."""
    env = {
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_BASE": "{base}",
        "DATABASE_URL": database_url,
        "TUTOR_TRANSPORT": transport,
        "TUTOR_LESSONS_DIR": str(LESSONS),
        "TUTOR_SEND_RATE": "10000",
        "TUTOR_THROTTLE": "100000/1",  # the learners here are machines, not floods
    }
    command = ["-m", "bot.cli", "run", "--port", str(free_port()), "--listen", "127.0.0.1"]
    return BotUnderTest(command, env, load, first="/start", onboarding=4, database=database)


def summary(
    crowd: Learners, elapsed: float, interactions: int, cpu: float, harness: float, database: float
) -> dict[str, float]:
    """The saturated phase's figures. The CPU per press of the bot, the harness and the
    database server together tell whether the bot or the machine set the pace: on 2 cores the
    three share them."""
    lat = crowd.latencies
    return {
        "updates_per_s": interactions / elapsed,
        "p50_ms": percentile(lat, 50) * 1000,
        "p95_ms": percentile(lat, 95) * 1000,
        "p99_ms": percentile(lat, 99) * 1000,
        "bot_cpu_ms_per_update": cpu / interactions * 1000,
        "bot_cpu_share": cpu / elapsed,
        "harness_cpu_ms_per_update": harness / interactions * 1000,
        "database_cpu_ms_per_update": database / interactions * 1000,
    }


def combined(runs: list[Run]) -> dict[str, float]:
    """Each saturated figure's median over the runs, and the pooled paced latencies."""
    figures = {k: median([r.saturated[k] for r in runs]) for k in runs[0].saturated}
    paced = [latency for r in runs for latency in r.paced]
    for p in (50, 95, 99):
        figures[f"paced_p{p}_ms"] = percentile(paced, p) * 1000
    figures["paced_per_s"] = median([r.paced_rate for r in runs])
    return figures


async def alternating(
    rounds: int, load: Load, echo: BotUnderTest, tutor: BotUnderTest
) -> tuple[list[Run], list[Run]]:
    """Measure the tutor and the echo bot in turns, `rounds` times each: on a shared machine a
    burst of someone else's load then hits both, not one. The echo bot is paced at the rate the
    tutor was just paced at."""
    echoes, tutors = [], []
    async with tutor, echo:
        for _ in range(rounds):
            tutors.append(await tutor.measure(load))
            echoes.append(await echo.measure(replace(load, paced_rate=tutors[-1].paced_rate)))
    return echoes, tutors


def ratios(echoes: list[Run], tutors: list[Run]) -> dict[str, float]:
    """The tutor's figures over the echo bot's. Saturated: the median over the rounds of each
    round's ratio, the tutor's round against the echo bot's right after it, seconds apart, so
    that this machine's drift from one minute to the next cancels out (the same tutor ran at
    4.0 and at 4.6 ms of CPU a press a few minutes apart, with the echo bot at 3.0 and 3.4).
    Paced: the pooled latencies' p95s."""

    def rounds(key: str) -> list[float]:
        return [t.saturated[key] / e.saturated[key] for e, t in zip(echoes, tutors, strict=True)]

    echo, tutor = combined(echoes), combined(tutors)
    throughput = rounds("updates_per_s")
    return {
        "throughput_ratio": median(throughput),
        "throughput_ratio_lowest": min(throughput),
        "throughput_ratio_highest": max(throughput),
        "p95_ratio": median(rounds("p95_ms")),
        "paced_p95_ratio": tutor["paced_p95_ms"] / echo["paced_p95_ms"],
    }


PAIRS = ("aiogram_sqlite", "ptb_sqlite", "aiogram_postgresql")
SHORTER = {"ptb_sqlite": 2 / 3}
"""Pairs that run this share of the presses: python-telegram-bot's bots need 4-7 ms of CPU a
press, five times aiogram's, and at full length that pair alone took over a minute of `make
bench`, which must finish in under five minutes on 2 cores."""


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--learners", type=int, default=20)
    parser.add_argument("--presses", type=int, default=Load.presses)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--paced-presses", type=int, default=Load.paced_presses)
    parser.add_argument(
        "--warm-up", type=int, default=Load.warm_up, help="untimed presses per learner"
    )
    parser.add_argument(
        "--paced-share", type=float, default=0.5, help="of the tutor's saturated rate"
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=PAIRS,
        help="run this pair alone (repeatable); the others keep their recorded figures",
    )
    args = parser.parse_args(argv)
    wanted = set(args.only or PAIRS)
    load = Load(
        args.learners, args.presses, args.paced_presses, args.paced_share, warm_up=args.warm_up
    )
    figures: dict[str, float] = {}

    def report(prefix: str, echoes: list[Run], tutors: list[Run]) -> None:
        for bot, runs in (("echo", echoes), ("tutor", tutors)):
            for key, value in combined(runs).items():
                figures[f"{prefix}_{bot}_{key}"] = value
        for key, value in ratios(echoes, tutors).items():
            figures[f"{prefix}_{key}"] = value

    def compare(
        prefix: str,
        transport: str,
        new_database: Callable[[], str],
        server: ThrowawayPostgres | None = None,
    ) -> None:
        pair = prefix.removeprefix("interactive_")
        if pair not in wanted:
            return
        share = SHORTER.get(pair, 1.0)
        pair_load = replace(
            load,
            presses=round(load.presses * share),
            paced_presses=round(load.paced_presses * share),
            warm_up=round(load.warm_up * share),
        )
        echoes, tutors = asyncio.run(
            alternating(
                args.rounds,
                pair_load,
                echo_bot(transport, pair_load),
                tutor_bot(transport, new_database(), pair_load, server),
            )
        )
        report(prefix, echoes, tutors)

    with tempfile.TemporaryDirectory() as tmp:
        files = iter(range(1000))
        for transport in ("aiogram", "ptb"):
            compare(
                f"interactive_{transport}_sqlite",
                transport,
                lambda: f"sqlite:///{Path(tmp) / f'{next(files)}.db'}",
            )
        if "aiogram_postgresql" in wanted:
            with postgres() as server:
                compare("interactive_aiogram_postgresql", "aiogram", server, server)
    for name, value in figures.items():
        print(f"  {name} = {value:,.2f}")
    record(figures)
    return figures


if __name__ == "__main__":
    main()
