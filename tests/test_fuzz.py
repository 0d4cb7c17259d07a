"""Property-based and hostile-input tests: the engine, `read_update` and the Telegram gateway.

Everything runs on the real engine and a real SQLite file (copied from a migrated template, so an
example costs a file copy, not a migration); only the Bot API is faked, by a recorder, because it
is the transport boundary. Hypothesis drives sync tests that call `asyncio.run` once per example,
each with a fresh database file, so no example sees another's rows or event loop.
"""

from __future__ import annotations

import asyncio
import random
import re
import shutil
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import count
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import String, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import limits
from bot.content import Catalog
from bot.i18n import LANGUAGES
from bot.transports.telegram import (
    GroupNotice,
    Incoming,
    SendError,
    TelegramGateway,
    read_update,
)
from bot.tutor.engine import COMMANDS, PRESSES, WITH_ARGS, Tutor
from bot.tutor.events import (
    Action,
    Attachment,
    Button,
    ChatStatus,
    Command,
    EditPressed,
    Event,
    Media,
    Notice,
    PollAnswer,
    Press,
    Quiz,
    Reply,
    Text,
    Unsupported,
    Who,
)
from bot.tutor.throttle import Throttle
from bot.tutor.zones import resolve_zone
from storage.db import create_engine, upgrade
from storage.models import Base
from storage.repository import SqlStore
from tests.conftest import LESSONS, FakeClock

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

FUZZ = settings(
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)

# --- a fresh SQLite database per example -----------------------------------------------------


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, empty database file; each example works on a copy."""
    path = tmp_path_factory.mktemp("fuzz-template") / "template.db"

    async def migrate() -> None:
        engine = create_engine(f"sqlite:///{path}")
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    asyncio.run(migrate())
    return path


@pytest.fixture(scope="session")
def fresh_db(template_db: Path, tmp_path_factory: pytest.TempPathFactory):
    """`fresh_db()` → the path of a new copy of the template database."""
    folder = tmp_path_factory.mktemp("fuzz-dbs")
    numbers = count()

    def make() -> Path:
        path = folder / f"db{next(numbers)}.db"
        shutil.copyfile(template_db, path)
        return path

    return make


@dataclass
class Sandbox:
    tutor: Tutor
    store: SqlStore
    engine: AsyncEngine
    clock: FakeClock


@asynccontextmanager
async def sandbox(
    catalog: Catalog,
    db: Path,
    admins: frozenset[str] = frozenset(),
    throttle: Throttle | None = None,
) -> AsyncIterator[Sandbox]:
    engine = create_engine(f"sqlite:///{db}")
    clock = FakeClock(START)
    store = SqlStore(engine)
    tutor = Tutor(catalog, store, clock=clock, admins=admins, throttle=throttle)
    try:
        yield Sandbox(tutor, store, engine, clock)
    finally:
        await engine.dispose()


# --- what every answer and the database must satisfy ---------------------------------------


def check_keyboard(buttons: tuple[tuple[Button, ...], ...]) -> None:
    assert isinstance(buttons, tuple)
    total = 0
    for row in buttons:
        for button in row:
            total += 1
            assert isinstance(button.label, str) and button.label.strip(), button
            assert (button.data is None) != (button.url is None), button
            if button.data is not None:
                size = len(button.data.encode())
                assert 0 < size <= limits.CALLBACK_DATA_MAX_BYTES, button
    assert total <= limits.KEYBOARD_BUTTONS_MAX


def check_actions(event: Event, actions: list[Action]) -> None:
    """The engine's answer to one event: well-formed, within Telegram's limits."""
    assert isinstance(actions, list)
    if isinstance(event, (Command, Text, Press, Media, Unsupported)):
        assert actions, f"{event!r} was not answered"
    for action in actions:
        if isinstance(action, (Reply, EditPressed)):
            assert isinstance(action.text, str) and action.text.strip(), (event, action)
            assert len(action.text) <= limits.MESSAGE_TEXT_MAX, (event, len(action.text))
            check_keyboard(action.buttons)
        elif isinstance(action, Notice):
            assert isinstance(action.text, str) and action.text.strip(), (event, action)
        elif isinstance(action, Quiz):
            assert action.question.strip() and action.token
            assert 2 <= len(action.options) <= limits.POLL_OPTIONS_MAX
            assert action.correct_ids
            assert all(0 <= i < len(action.options) for i in action.correct_ids)
        elif isinstance(action, Attachment):
            check_keyboard(action.buttons)


ONBOARDING_STEPS = {"new", "language", "zone", "time", "done"}
DAILY_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


async def check_database(sandbox: Sandbox, catalog: Catalog, present: set[str]) -> None:
    """After any sequence of events the rows still make sense."""
    questions = {  # question id → its lesson id
        q.id: lesson.id
        for course in catalog.courses.values()
        for lesson in course.lessons
        for q in lesson.questions
    }
    async with sandbox.engine.connect() as conn:

        async def rows(sql: str) -> list[Any]:
            return list((await conn.execute(text(sql))).all())

        assert (await rows("PRAGMA integrity_check"))[0][0] == "ok"
        assert await rows("PRAGMA foreign_key_check") == []

        learners = await rows(
            "SELECT external_id, onboarding, language, time_zone, daily_time, course_id, "
            "lesson_id, item_index, quiz_mode, weekdays FROM learners"
        )
        assert sorted(r[0] for r in learners) == sorted(present), "one row per learner"
        for ext, step, language, zone, daily, course, lesson, index, mode, days in learners:
            where = f"learner {ext}"
            assert step in ONBOARDING_STEPS, where
            assert language in LANGUAGES, where
            assert mode in ("buttons", "poll"), where
            assert daily is None or DAILY_TIME.match(daily), (where, daily)
            assert zone is None or resolve_zone(zone) is not None, where
            assert course is None or catalog.course(course), (where, course)
            assert days is None or (set(days) <= set("0123456") and days), (where, days)
            if lesson is not None:
                found = catalog.lesson(lesson)
                assert found is not None, (where, lesson)
                assert 0 <= index <= len(found.items), (where, index)

        for qid, lid in await rows("SELECT question_id, lesson_id FROM answers"):
            assert qid in questions, f"answer to unknown question {qid!r}"
            assert questions[qid] == lid, (qid, lid)
        assert (
            await rows(
                "SELECT learner_id, token FROM answers "
                "GROUP BY learner_id, token HAVING count(*) > 1"
            )
            == []
        )
        for (lid,) in await rows("SELECT lesson_id FROM lesson_completions"):
            assert catalog.lesson(lid) is not None, lid
        for (qid,) in await rows("SELECT question_id FROM review_cards"):
            assert qid in questions, qid
        for name, daily in await rows("SELECT name, default_time FROM cohorts"):
            assert daily is None or DAILY_TIME.match(daily), f"cohort {name!r} time {daily!r}"

        # SQLite ignores VARCHAR(n); PostgreSQL refuses a longer value. Nothing may overflow.
        for table in Base.metadata.sorted_tables:
            sized = [c for c in table.columns if isinstance(c.type, String) and c.type.length]
            if not sized:
                continue
            probes = ", ".join(f'max(length("{c.name}"))' for c in sized)
            longest = (await rows(f'SELECT {probes} FROM "{table.name}"'))[0]
            for column, chars in zip(sized, longest, strict=True):
                assert chars is None or chars <= column.type.length, (
                    f"{table.name}.{column.name} holds {chars} characters, "
                    f"declared {column.type.length}"
                )


# --- hostile inputs ----------------------------------------------------------------------------

HOSTILE_TEXTS = [
    "",
    " ",
    "\n\n",
    "\t",
    "\x00",
    "\x1b[31mred",
    "\u200b",
    "\u200b\u200c\u200d\ufeff\u2060",
    "\u202eevil\u202c",
    "\u202b\u05e9\u05dc\u05d5\u05dd\u202c",
    "مرحبا بالعالم ١٢٣",
    "👩‍👩‍👧‍👦🇪🇺🏳️‍🌈" * 40,
    "🎉",
    "A" * 10_240,
    "é" * 5_000,
    "\u0301" * 3_000,
    "ﷺ" * 2_000,
    "%s%n%x%p",
    "{0}{learner.__class__}{__import__}",
    "'; DROP TABLE learners; --",
    "Robert'); DROP TABLE answers;--",
    "<b>bold</b><script>alert(1)</script>",
    "*_`[link](http://x)`_*",
    "1",
    "0",
    "5",
    "99",
    "-1",
    "+1",
    " 2 ",
    "A",
    "a",
    "z",
    "²",
    "³",
    "①",
    "٣",
    "１",
    "Ⅻ",
    "9" * 4_096,
    "07:30",
    "25:99",
    "٠٧:٣٠",
    "UTC+99",
    "UTC+٣",
    "Europe/Rome",
    "new york",
    "Atlantis/Lost_City",
    "/today",
    "/start '; DROP TABLE learners; --",
]

HOSTILE_ARGS = [
    "",
    "'; DROP TABLE learners; --",
    "{0}%s%n{learner.__class__}",
    "%x%x",
    "c-nope",
    "t-nope",
    "c-",
    "t-",
    "c-" + "A" * 5_000,
    "t-'; DROP TABLE trainer_invites; --",
    "2026-02-30",
    "2026-03-01",
    "9999-12-31",
    "0001-01-01",
    "-1",
    "0",
    "3d",
    "2w",
    "99999d",
    "9999",
    "10y",
    "²",
    "²d",
    "٣d",
    "off",
    "22:00-07:00",
    "25:00-99:99",
    "22:00-22:00",
    "-",
    "revoke",
    "revoke 1",
    "revoke ²",
    "²",
    "1" * 16,
    "123",
    "K7QF-9XWA-3MTP",
    "k7qf9xwa3mtp",
    "\u200b",
    "A" * 10_240,
]

COMMAND_NAMES = sorted({"start", *COMMANDS, *WITH_ARGS})
HOSTILE_COMMAND_NAMES = [
    "",
    "START",
    "ToDaY",
    "start@other_bot",
    "x" * 64,
    "ｓｔａｒｔ",
    "stárt",
    "İ",
    "__class__",
    "__init__",
    "get",
    "../../etc/passwd",
    "%s",
    "{0}",
    "'; DROP TABLE learners; --",
]

FORGED_PRESSES = [
    "",
    ":",
    "::",
    "noop",
    "a",
    "a:",
    "a::0",
    "a:AAAAAAAA:0",
    "a:AAAAAAAA:99",
    "a:AAAAAAAA:-1",
    "a:AAAAAAAA:²",
    "a:AAAAAAAA:٣",
    "a:AAAAAAAA:0:0",
    "t:AAAAAAAA:0",
    "t:AAAAAAAA:²",
    "t:AAAAAAAA",
    "ok:AAAAAAAA",
    "ok:",
    "go:AAAAAAAA",
    "go:",
    "tz:999",
    "tz:-1",
    "tz:10",
    "tz:²",
    "tz:offset",
    "tz:UTC+99:00",
    "tz:UTC+05:30",
    "tm:99:99",
    "tm:",
    "tm:²",
    "tm:٠٧:٣٠",
    "lang:xx",
    "lang:",
    "lang:EN",
    "day:9",
    "day:-1",
    "day:²",
    "day:all",
    "day:",
    "pause:-1",
    "pause:0",
    "pause:99999",
    "pause:off",
    "pause:²",
    "course:nope",
    "course:",
    "cert:me",
    "skip:test",
    "today",
    "today:extra",
    "set:nope",
    "set:quiz",
    "set:",
    "cc:1:x",
    "cc:²",
    "ct:1:2500",
    "cr:1",
    "ba:1",
    "bs:1",
    "bl:1",
    "bx:1",
    "st:1",
    "ex:1",
    "tk:nope",
    "a:'; DROP TABLE answers; --:0",
    "a:{0}%s:0",
    "é" * 32,
    "del:no",
    "del:yes",
    "del:",
]


def clip64(data: str) -> str:
    """Cut to at most 64 UTF-8 bytes, as Telegram would never deliver more."""
    return data.encode()[: limits.CALLBACK_DATA_MAX_BYTES].decode(errors="ignore")


weird_chars = st.characters(exclude_categories=("Cs",))
texts = st.one_of(st.sampled_from(HOSTILE_TEXTS), st.text(weird_chars, max_size=300))
args = st.one_of(st.sampled_from(HOSTILE_ARGS), st.text(weird_chars, max_size=120))
command_names = st.one_of(
    st.sampled_from(COMMAND_NAMES),
    st.sampled_from(HOSTILE_COMMAND_NAMES),
    st.text(weird_chars, max_size=64),
)
press_data = st.one_of(
    st.sampled_from(FORGED_PRESSES),
    st.builds(
        lambda kind, rest: clip64(f"{kind}:{rest}"),
        st.sampled_from([*sorted(PRESSES), "zz", "A", "TODAY"]),
        st.text(weird_chars, max_size=40),
    ),
    st.text(weird_chars, max_size=64).map(clip64),
)
option_ids = st.lists(st.integers(-3, 20), max_size=5).map(tuple)

OTHER_EVENTS = [
    Unsupported("sticker"),
    Unsupported("other"),
    Media("photo", "AgAC-file-id", "a caption"),
    Media("photo", "", ""),
    Media("document", "BQAC-file-id", "", "../../etc/passwd", "application/pdf"),
    Media("document", "BQAC", "A" * 2_000, None, None),
]

# A step is (learner index, kind, payload); the harness turns it into an event.
steps = st.one_of(
    st.tuples(st.integers(0, 2), st.just("command"), st.tuples(command_names, args)),
    st.tuples(st.integers(0, 2), st.just("text"), texts),
    st.tuples(st.integers(0, 2), st.just("press"), press_data),
    st.tuples(st.integers(0, 2), st.just("poll"), st.tuples(st.text(max_size=20), option_ids)),
    st.tuples(st.integers(0, 2), st.just("status"), st.booleans()),
    # pressing what is actually on screen gets the learners deep into lessons
    st.tuples(st.integers(0, 2), st.just("pick"), st.integers(0, 99)),
    st.tuples(st.integers(0, 2), st.just("pick"), st.integers(0, 99)),
    st.tuples(st.integers(0, 2), st.just("study"), st.integers(0, 99)),
    st.tuples(st.integers(0, 2), st.just("study"), st.integers(0, 99)),
    st.tuples(st.integers(0, 2), st.just("steal"), st.tuples(st.integers(0, 2), st.integers())),
    st.tuples(st.integers(0, 2), st.just("replay"), st.integers(0, 999)),
    st.tuples(
        st.integers(0, 2), st.just("mutate"), st.sampled_from([":99", ":²", ":-1", "", ":0:0"])
    ),
    st.tuples(st.integers(0, 2), st.just("quiz"), option_ids),
    st.tuples(st.integers(0, 2), st.just("clock"), st.integers(1, 60 * 24 * 9)),
    st.tuples(st.integers(0, 2), st.just("event"), st.sampled_from(OTHER_EVENTS)),
)

LEARNERS = (
    Who("tg:1001", chat_id=1001, display_name="Ada Admin", language_code="en"),
    Who(
        "tg:1002",
        chat_id=1002,
        display_name="‮Robert'); DROP TABLE learners;-- {0}%s",
        language_code="it-IT",
    ),
    Who("tg:1003", chat_id=None, display_name=None, language_code="xx-ZZ"),
)
ADMINS = frozenset({LEARNERS[0].external_id})


STUDY_BUTTONS = ("a:", "t:", "ok:", "go:", "cert:", "skip:")


@dataclass
class Player:
    """A learner as the fuzzer drives them: what is on their screen."""

    who: Who
    keyboard: list[str] = field(default_factory=list)
    polls: list[str] = field(default_factory=list)


class Driver:
    """Sends events for several learners, checks every answer, remembers the keyboards."""

    def __init__(self, box: Sandbox, whos: tuple[Who, ...] = LEARNERS):
        self.box = box
        self.players = [Player(w) for w in whos]
        self.seen: list[str] = []
        self.present: set[str] = set()
        """The learners who must have a row: everyone who wrote, less those who erased
        themselves with /deleteme, plus the users an admin made trainers with /grant ID."""
        self.events = 0

    async def send(self, i: int, event: Event) -> list[Action]:
        player = self.players[i]
        actions = await self.box.tutor.handle(player.who, event)
        self.events += 1
        check_actions(event, actions)
        self.present.add(player.who.external_id)
        if event == Press("del:yes"):
            self.present.discard(player.who.external_id)
        if isinstance(event, Command) and event.name.lower() == "grant":
            words = event.args.split()
            target = words[-1].lstrip("@") if words else ""
            if player.who.external_id in ADMINS and re.fullmatch(r"[0-9]{1,15}", target):
                self.present.add(f"tg:{target}")
        for action in actions:
            if isinstance(action, (Reply, EditPressed)) and action.buttons:
                player.keyboard = [b.data for row in action.buttons for b in row if b.data]
                self.seen += player.keyboard
            elif isinstance(action, Quiz):
                poll_id = f"poll-{player.who.external_id}-{action.token}"
                await self.box.tutor.bind_poll(player.who, action.token, poll_id)
                player.polls.append(poll_id)
        return actions

    async def onboard(self, i: int) -> None:
        for event in (Command("start"), Press("lang:en"), Press("tz:0"), Press("tm:09:00")):
            await self.send(i, event)

    async def step(self, i: int, kind: str, payload: Any) -> None:
        player = self.players[i]
        match kind:
            case "command":
                await self.send(i, Command(*payload))
            case "text":
                await self.send(i, Text(payload))
            case "press":
                await self.send(i, Press(payload))
            case "poll":
                await self.send(i, PollAnswer(*payload))
            case "status":
                await self.send(i, ChatStatus(blocked=payload))
            case "study":  # what a diligent learner presses: the item on screen, then next
                bound = [d for d in player.keyboard if d.startswith(STUDY_BUTTONS)]
                if bound:
                    await self.send(i, Press(bound[payload % len(bound)]))
                elif "today" in player.keyboard:
                    await self.send(i, Press("today"))
                elif player.polls and payload % 2:
                    await self.send(i, PollAnswer(player.polls[-1], (payload % 2,)))
                else:
                    await self.send(i, Command("review" if payload % 3 == 0 else "today"))
            case "pick":
                if player.keyboard:
                    await self.send(i, Press(player.keyboard[payload % len(player.keyboard)]))
                else:
                    await self.send(i, Command("today"))
            case "steal":
                other, index = payload
                board = self.players[other].keyboard
                await self.send(i, Press(board[index % len(board)] if board else "a:x:0"))
            case "replay":
                await self.send(i, Press(self.seen[payload % len(self.seen)] if self.seen else ""))
            case "mutate":
                real = next((d for d in player.keyboard if d.count(":") >= 1), "a:x:0")
                await self.send(i, Press(clip64(real.rsplit(":", 1)[0] + payload)))
            case "quiz":
                poll = player.polls[-1] if player.polls else "never-sent"
                await self.send(i, PollAnswer(poll, payload))
            case "clock":
                self.box.clock.advance(minutes=payload)
            case "event":
                await self.send(i, payload)


# --- 1. random and hostile events to the engine ----------------------------------------------


@settings(FUZZ, max_examples=60)
@given(
    onboarded=st.lists(st.sampled_from([None, "buttons", "poll"]), min_size=3, max_size=3),
    script=st.lists(steps, min_size=1, max_size=80),
)
def test_random_events_are_always_answered_and_leave_the_database_consistent(
    catalog, fresh_db, onboarded, script
):
    async def play() -> None:
        async with sandbox(catalog, fresh_db(), ADMINS) as box:
            driver = Driver(box)
            for i, style in enumerate(onboarded):
                if style:
                    await driver.onboard(i)
                if style == "poll":
                    await driver.send(i, Press("set:quiz"))  # questions as quiz polls
            for i, kind, payload in script:
                await driver.step(i, kind, payload)
            await check_database(box, catalog, driver.present)

    asyncio.run(play())


WALK_STEPS = 500


@pytest.mark.parametrize("state", ["new", "zone", "lesson"])
def test_a_long_random_walk_through_lessons(catalog, fresh_db, state):
    """Hundreds of events in one database: mostly real buttons (a diligent learner finishes
    lessons, meets reviews and tests), with hostile input mixed in."""
    rnd = random.Random(f"walk-{state}")

    async def walk() -> None:
        async with sandbox(catalog, fresh_db(), ADMINS) as box:
            driver = Driver(box)
            for i in range(3):
                if state != "new":
                    await driver.send(i, Command("start"))
                    await driver.send(i, Press("lang:en"))
                if state == "lesson":
                    await driver.send(i, Press("tz:3"))
                    await driver.send(i, Press("tm:07:30"))
                    if i == 2:
                        await driver.send(i, Press("set:quiz"))
                    await driver.send(i, Command("today"))
            for _n in range(WALK_STEPS):
                i = rnd.randrange(3)
                roll = rnd.random()
                if roll < 0.40:
                    await driver.step(i, "study", rnd.randrange(100))
                elif roll < 0.70:
                    await driver.step(i, "pick", rnd.randrange(100))
                elif roll < 0.75:
                    await driver.step(i, "steal", (rnd.randrange(3), rnd.randrange(100)))
                elif roll < 0.80:
                    await driver.step(i, "press", rnd.choice(FORGED_PRESSES))
                elif roll < 0.85:
                    await driver.step(i, "text", rnd.choice(HOSTILE_TEXTS))
                elif roll < 0.90:
                    name = rnd.choice(COMMAND_NAMES + HOSTILE_COMMAND_NAMES)
                    await driver.step(i, "command", (name, rnd.choice(HOSTILE_ARGS)))
                elif roll < 0.93:
                    await driver.step(i, "replay", rnd.randrange(10_000))
                elif roll < 0.96:
                    await driver.step(i, "quiz", (rnd.randrange(-1, 6),))
                elif roll < 0.98:
                    await driver.step(i, "clock", rnd.randrange(1, 60 * 30))
                else:
                    await driver.step(i, "event", rnd.choice(OTHER_EVENTS))
            assert driver.events >= WALK_STEPS * 0.9  # the rest moved the clock
            await check_database(box, catalog, driver.present)

    asyncio.run(walk())


@pytest.mark.parametrize("data", FORGED_PRESSES)
def test_forged_callback_data_is_answered_politely_in_every_state(catalog, fresh_db, data):
    async def run() -> None:
        async with sandbox(catalog, fresh_db()) as box:
            driver = Driver(box)
            await driver.send(1, Command("start"))
            await driver.send(1, Press("lang:en"))  # learner 1 waits for a time zone
            await driver.onboard(2)
            await driver.send(2, Command("today"))
            await driver.send(2, Press(driver.players[2].keyboard[0]))  # past the first card
            for i in range(3):
                await driver.send(i, Press(data))
            await check_database(box, catalog, driver.present)

    asyncio.run(run())


@pytest.mark.parametrize("typed", HOSTILE_TEXTS)
def test_hostile_text_is_answered_in_every_state(catalog, fresh_db, typed):
    async def run() -> None:
        async with sandbox(catalog, fresh_db()) as box:
            driver = Driver(box)
            await driver.send(1, Command("start"))
            await driver.send(1, Press("lang:en"))  # waits for a time zone
            await driver.onboard(2)
            await driver.send(2, Command("today"))
            while driver.players[2].keyboard[0].startswith("go:"):  # up to the first question
                await driver.send(2, Press(driver.players[2].keyboard[0]))
            for i in range(3):
                await driver.send(i, Text(typed))
            await check_database(box, catalog, driver.present)

    asyncio.run(run())


SLOW_COMMANDS = {"progress", "mydata", "certificate", "export", "stats"}
"""They draw a chart or build a file (~0.2 s each)."""


@pytest.mark.parametrize("name", COMMAND_NAMES + HOSTILE_COMMAND_NAMES)
def test_every_command_with_hostile_arguments_is_answered(catalog, fresh_db, name):
    if name in SLOW_COMMANDS:
        arguments = HOSTILE_ARGS[:2]
    elif name.lower() in WITH_ARGS or name.lower() == "start":
        arguments = HOSTILE_ARGS
    else:  # it reads no arguments (or is unknown): a few will do
        arguments = HOSTILE_ARGS[:4] + HOSTILE_ARGS[-2:]

    async def run() -> None:
        async with sandbox(catalog, fresh_db(), ADMINS) as box:
            driver = Driver(box)
            await driver.onboard(0)  # an admin, so trainer commands run for real
            await driver.onboard(1)
            for argument in arguments:
                for i in (0, 1, 2):
                    await driver.send(i, Command(name, argument))
            await check_database(box, catalog, driver.present)

    asyncio.run(run())


async def poll_mode_learner(driver: Driver, i: int) -> str:
    """Onboard learner `i` with questions as quiz polls; return the poll on screen."""
    await driver.onboard(i)
    await driver.send(i, Press("set:quiz"))
    await driver.send(i, Command("today"))
    for _n in range(20):
        if driver.players[i].polls:
            return driver.players[i].polls[-1]
        await driver.step(i, "pick", 0)
    raise AssertionError("no quiz poll was ever sent")


@pytest.mark.parametrize("options", [(-1,), (-1, 0), (99,), (12,)])
def test_a_quiz_poll_answer_with_an_impossible_option_is_ignored(catalog, fresh_db, options):
    async def run() -> None:
        async with sandbox(catalog, fresh_db()) as box:
            driver = Driver(box, LEARNERS[:1])
            poll = await poll_mode_learner(driver, 0)
            before = await learner_row(box, LEARNERS[0])
            await driver.send(0, PollAnswer(poll, options))
            after = await learner_row(box, LEARNERS[0])
            assert after["answers"] == before["answers"], "an impossible option was stored"
            assert after["row"]["pending_token"] == before["row"]["pending_token"]
            await check_database(box, catalog, driver.present)

    asyncio.run(run())


async def trainer_with_draft(driver: Driver, zone: str = "tz:0") -> None:
    """Learner 0 (an admin) with a group and a drafted announcement #1 on screen."""
    for event in (Command("start"), Press("lang:en"), Press(zone), Press("tm:09:00")):
        await driver.send(0, event)
    await driver.send(0, Command("newcohort", "Class of '27"))
    await driver.send(0, Command("broadcast"))
    await driver.send(0, Press("ba:all"))
    await driver.send(0, Text("Rehearsal moved to 18:00"))
    assert driver.players[0].keyboard == ["bs:1", "bl:1", "bx:1"]


@pytest.mark.parametrize(
    ("zone", "typed"),
    [
        ("tz:UTC-05:00", "9999-12-31 23:00"),
        ("tz:0", "9999-12-31T23:59-12:00"),
        ("tz:UTC+05:00", "0001-01-01 00:00"),
        ("tz:0", "2027-02-30 10:00"),
        ("tz:0", "2027-03-01 18:30+99:00"),
    ],
)
def test_scheduling_an_announcement_at_an_impossible_moment_is_refused(
    catalog, fresh_db, zone, typed
):
    async def run() -> None:
        async with sandbox(catalog, fresh_db(), ADMINS) as box:
            driver = Driver(box, LEARNERS[:1])
            await trainer_with_draft(driver, zone)
            await driver.send(0, Press("bl:1"))
            await driver.send(0, Text(typed))  # answered, not an exception
            await check_database(box, catalog, driver.present)

    asyncio.run(run())


@pytest.mark.parametrize(
    "presses",
    [
        ["bx:1", "bl:1"],  # "Schedule" on a cancelled announcement
        ["bs:1", "bl:1"],  # "Schedule" on one already being sent
        ["bl:1", "bs:1", "text"],  # chose Schedule, then Send now, then typed a date
    ],
    ids=["schedule-after-cancel", "schedule-after-send", "date-after-send"],
)
def test_replayed_announcement_buttons_are_answered(catalog, fresh_db, presses):
    async def run() -> None:
        async with sandbox(catalog, fresh_db(), ADMINS) as box:
            driver = Driver(box, LEARNERS[:1])
            await trainer_with_draft(driver)
            for data in presses:
                event = Text("2027-03-01 18:30") if data == "text" else Press(data)
                await driver.send(0, event)  # check_actions: never an empty answer

    asyncio.run(run())


@pytest.mark.parametrize("value", ["9999", "2460", "²²²²", "0930"])
def test_a_forged_group_time_stores_no_impossible_time(catalog, fresh_db, value):
    async def run() -> None:
        async with sandbox(catalog, fresh_db(), ADMINS) as box:
            driver = Driver(box, LEARNERS[:2])
            await driver.onboard(0)
            await driver.send(0, Command("newcohort", "Class"))
            await driver.send(0, Press("cc:1:mooc-art"))
            actions = await driver.send(0, Press(f"ct:1:{value}"))
            link = re.search(r"start=(c-\S+)", actions[0].text)
            assert link, actions
            await driver.send(1, Command("start", link.group(1)))  # a learner joins
            await check_database(box, catalog, driver.present)

    asyncio.run(run())


# --- 2. another learner's buttons --------------------------------------------------------------

TOKEN_KINDS = ("a:", "t:", "ok:", "go:")


async def learner_row(box: Sandbox, who: Who) -> dict[str, Any]:
    async with box.engine.connect() as conn:
        row = (
            (
                await conn.execute(
                    text("SELECT * FROM learners WHERE external_id = :e"), {"e": who.external_id}
                )
            )
            .mappings()
            .one()
        )
        learner_id = row["id"]
        answers = (
            await conn.execute(
                text("SELECT token, question_id, choice FROM answers WHERE learner_id = :i"),
                {"i": learner_id},
            )
        ).all()
        done = (
            await conn.execute(
                text("SELECT lesson_id FROM lesson_completions WHERE learner_id = :i"),
                {"i": learner_id},
            )
        ).all()
    return {"row": dict(row), "answers": sorted(answers), "done": sorted(done)}


async def advance(driver: Driver, i: int, picks: list[int]) -> None:
    """Press real buttons, then make sure a token-bound keyboard is on screen."""
    for pick in picks:
        await driver.step(i, "pick", pick)
    for _n in range(10):
        if any(d.startswith(TOKEN_KINDS) for d in driver.players[i].keyboard):
            return
        await driver.send(i, Command("today"))
        await driver.step(i, "pick", 0)
    raise AssertionError(f"no question or card on screen: {driver.players[i].keyboard}")


@settings(FUZZ, max_examples=15)
@given(
    picks_a=st.lists(st.integers(0, 9), max_size=12),
    picks_b=st.lists(st.integers(0, 9), max_size=12),
)
def test_another_learners_buttons_change_nothing(catalog, fresh_db, picks_a, picks_b):
    async def run() -> None:
        async with sandbox(catalog, fresh_db()) as box:
            driver = Driver(box, LEARNERS[:2])
            for i in (0, 1):
                await driver.onboard(i)
                await driver.send(i, Command("today"))
            await advance(driver, 0, picks_a)
            await advance(driver, 1, picks_b)
            a, b = driver.players
            stolen = [d for d in b.keyboard if d.startswith(TOKEN_KINDS)]
            before = await learner_row(box, a.who)
            for data in stolen:
                actions = await driver.send(0, Press(data))
                replies = [x for x in actions if isinstance(x, Reply)]
                assert replies and not any(isinstance(x, EditPressed) for x in actions), actions
                assert any("earlier step" in r.text or "already" in r.text for r in replies), [
                    r.text for r in replies
                ]
                assert await learner_row(box, a.who) == before, f"{data!r} changed learner A"
            b_before = await learner_row(box, b.who)
            actions = await driver.send(1, Press(stolen[0]))
            assert not any("earlier step" in getattr(x, "text", "") for x in actions), actions
            b_after = await learner_row(box, b.who)
            assert b_after["row"]["pending_token"] != b_before["row"]["pending_token"] or (
                b_after["row"]["pending_selection"] != b_before["row"]["pending_selection"]
            ), "B's own button did nothing"
            await check_database(box, catalog, driver.present)

    asyncio.run(run())


def test_another_learners_quiz_poll_is_ignored(catalog, fresh_db):
    async def run() -> None:
        async with sandbox(catalog, fresh_db()) as box:
            driver = Driver(box, LEARNERS[:2])
            for i in (0, 1):
                await driver.onboard(i)
            await driver.send(1, Press("set:quiz"))  # B asks for quiz polls
            await driver.send(1, Command("today"))
            for _n in range(20):
                if driver.players[1].polls:
                    break
                await driver.step(1, "pick", 0)
            assert driver.players[1].polls, "B never got a quiz poll"
            poll = driver.players[1].polls[-1]
            before = await learner_row(box, LEARNERS[0])
            b_before = await learner_row(box, LEARNERS[1])
            assert await driver.send(0, PollAnswer(poll, (0,))) == []
            assert await learner_row(box, LEARNERS[0]) == before
            assert await learner_row(box, LEARNERS[1]) == b_before
            assert await driver.send(1, PollAnswer(poll, (0,)))
            b_after = await learner_row(box, LEARNERS[1])
            assert len(b_after["answers"]) == len(b_before["answers"]) + 1
            await check_database(box, catalog, driver.present)

    asyncio.run(run())


# --- 3. read_update ---------------------------------------------------------------------------

ids = st.one_of(st.integers(1, 2**52), st.integers(-(2**52), -1))
users = st.fixed_dictionaries(
    {"id": st.integers(1, 2**52), "is_bot": st.booleans(), "first_name": st.text(max_size=80)},
    optional={
        "last_name": st.text(max_size=300),
        "username": st.text(max_size=32),
        "language_code": st.sampled_from(["en", "it", "es-ES", "el", "xx", "", "zh-hans"]),
    },
)
chat_types = st.sampled_from(["private", "group", "supergroup", "channel"])
chats = st.fixed_dictionaries(
    {"id": ids, "type": chat_types},
    optional={"title": st.text(max_size=40), "username": st.text(max_size=32)},
)
message_texts = st.one_of(
    texts,
    st.builds(
        lambda n, bot, a: f"/{n}{bot} {a}",
        command_names,
        st.sampled_from(["", "@restart_tutor_bot", "@RESTART_TUTOR_BOT", "@other_bot", "@"]),
        args,
    ),
    st.sampled_from(["/", "/start", "/start c-abc", "/ today", "//", "/start@other_bot"]),
)
photo_sizes = st.fixed_dictionaries(
    {"file_id": st.text(max_size=20), "file_unique_id": st.text(max_size=10)},
    optional={"width": st.integers(0, 5000), "height": st.integers(0, 5000)},
)
documents = st.fixed_dictionaries(
    {"file_id": st.text(max_size=20), "file_unique_id": st.text(max_size=10)},
    optional={"file_name": st.text(max_size=60), "mime_type": st.text(max_size=30)},
)
messages = st.fixed_dictionaries(
    {"message_id": st.integers(1, 2**31), "date": st.integers(0, 2**31), "chat": chats},
    optional={
        "from": users,
        "text": message_texts,
        "caption": st.text(max_size=100),
        "photo": st.lists(photo_sizes, max_size=3),
        "document": documents,
        "sticker": st.just({"file_id": "s", "file_unique_id": "s", "type": "regular"}),
        "voice": st.just({"file_id": "v", "file_unique_id": "v", "duration": 1}),
        "location": st.just({"latitude": 1.0, "longitude": 2.0}),
        "sender_chat": chats,
    },
)
members = st.fixed_dictionaries(
    {
        "status": st.sampled_from(
            ["member", "kicked", "left", "administrator", "restricted", "creator"]
        ),
        "user": users,
    }
)
callback_queries = st.fixed_dictionaries(
    {"id": st.text(min_size=1, max_size=20), "from": users, "chat_instance": st.text(max_size=10)},
    optional={
        "message": messages,
        "inline_message_id": st.text(max_size=20),
        "data": press_data,
        "game_short_name": st.text(max_size=10),
    },
)
poll_answers = st.fixed_dictionaries(
    {"poll_id": st.text(max_size=20), "option_ids": st.lists(st.integers(0, 11), max_size=4)},
    optional={"user": users, "voter_chat": chats},
)
chat_member_updates = st.fixed_dictionaries(
    {
        "chat": chats,
        "from": users,
        "date": st.integers(0, 2**31),
        "old_chat_member": members,
        "new_chat_member": members,
    }
)
inline_queries = st.fixed_dictionaries(
    {"id": st.text(min_size=1, max_size=20), "from": users, "query": texts, "offset": st.just("")}
)
updates = st.one_of(
    st.fixed_dictionaries({"update_id": st.integers(0, 2**31), "message": messages}),
    st.fixed_dictionaries({"update_id": st.integers(0, 2**31), "edited_message": messages}),
    st.fixed_dictionaries({"update_id": st.integers(0, 2**31), "channel_post": messages}),
    st.fixed_dictionaries({"update_id": st.integers(0, 2**31), "edited_channel_post": messages}),
    st.fixed_dictionaries({"update_id": st.integers(0, 2**31), "callback_query": callback_queries}),
    st.fixed_dictionaries({"update_id": st.integers(0, 2**31), "poll_answer": poll_answers}),
    st.fixed_dictionaries(
        {"update_id": st.integers(0, 2**31), "my_chat_member": chat_member_updates}
    ),
    st.fixed_dictionaries({"update_id": st.integers(0, 2**31), "chat_member": chat_member_updates}),
    st.fixed_dictionaries({"update_id": st.integers(0, 2**31), "inline_query": inline_queries}),
    st.fixed_dictionaries({"update_id": st.integers(0, 2**31)}),
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
UPDATE_KEYS = [
    "message",
    "edited_message",
    "channel_post",
    "callback_query",
    "poll_answer",
    "my_chat_member",
    "inline_query",
]
FIELD_KEYS = [
    "chat",
    "from",
    "id",
    "type",
    "text",
    "data",
    "message",
    "user",
    "option_ids",
    "poll_id",
    "new_chat_member",
    "status",
    "photo",
    "document",
    "file_id",
    "query",
]


@st.composite
def damaged(draw, source):
    """A well-formed update with fields dropped or replaced by values of the wrong type."""
    update = draw(source)

    def walk(node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        out = {}
        for key, value in node.items():
            roll = draw(st.integers(0, 9))
            if roll == 0:
                continue  # a missing field
            out[key] = draw(json_values) if roll == 1 else walk(value)
        if draw(st.integers(0, 9)) == 0:
            out[draw(st.sampled_from(FIELD_KEYS))] = draw(json_values)
        return out

    return walk(update)


def _chat(update: dict[str, Any]) -> dict[str, Any]:
    for key in ("message", "edited_message", "channel_post", "edited_channel_post"):
        if key in update:
            return update[key]["chat"]
    if "callback_query" in update:
        return update["callback_query"].get("message", {}).get("chat", {"type": "private"})
    if "my_chat_member" in update:
        return update["my_chat_member"]["chat"]
    return {"type": "private"}


@settings(FUZZ, max_examples=600)
@given(update=updates)
def test_read_update_classifies_every_well_formed_update(update):
    result = read_update(update, "restart_tutor_bot")
    assert result is None or isinstance(result, (Incoming, GroupNotice))
    chat = _chat(update)
    if chat.get("type") != "private":
        assert not isinstance(result, Incoming), "a group or channel update reached the engine"
    if isinstance(result, GroupNotice) and result.callback_id:  # a button pressed in a group
        assert update["callback_query"]["id"] == result.callback_id
    elif isinstance(result, GroupNotice):
        message = update["message"]
        assert chat["type"] in ("group", "supergroup")
        assert result.chat_id == chat["id"]
        assert (message.get("text") or "").startswith("/")
    if any(
        k in update
        for k in ("edited_message", "channel_post", "edited_channel_post", "chat_member")
    ):
        assert result is None
    if "poll_answer" in update and "user" not in update["poll_answer"]:
        assert result is None
    if isinstance(result, Incoming):
        assert result.who.external_id.startswith("tg:")
        assert result.who.display_name is None or len(result.who.display_name) <= 200
        if isinstance(result.event, Press):
            assert len(result.event.data) <= limits.CALLBACK_DATA_MAX_BYTES
        if "message" in update:
            assert result.chat_id == chat["id"]
            assert result.who.external_id == f"tg:{update['message']['from']['id']}"


@settings(FUZZ, max_examples=600)
@given(
    update=st.one_of(damaged(updates), st.dictionaries(st.sampled_from(UPDATE_KEYS), json_values))
)
def test_read_update_never_raises_on_damaged_updates(update):
    result = read_update(update, "restart_tutor_bot")
    assert result is None or isinstance(result, (Incoming, GroupNotice))
    if isinstance(result, Incoming):
        assert _chat_type(update) in (None, "private"), "a group update reached the engine"


def _chat_type(update: dict[str, Any]) -> Any:
    for key in ("message", "callback_query", "my_chat_member"):
        node = update.get(key)
        if isinstance(node, dict):
            if key == "callback_query":
                node = node.get("message")
                if not isinstance(node, dict):
                    return None
            chat = node.get("chat")
            return chat.get("type") if isinstance(chat, dict) else None
    return None


@pytest.mark.parametrize(
    "update",
    [
        {
            "update_id": 1,
            "channel_post": {
                "message_id": 1,
                "chat": {"id": -100, "type": "channel"},
                "text": "/start",
            },
        },
        {
            "update_id": 2,
            "edited_message": {
                "message_id": 1,
                "chat": {"id": 5, "type": "private"},
                "from": {"id": 5},
                "text": "/start",
            },
        },
        {"update_id": 3, "callback_query": {"id": "q", "from": {"id": 5}}},
        {
            "update_id": 4,
            "poll_answer": {
                "poll_id": "p",
                "option_ids": [0],
                "voter_chat": {"id": -100, "type": "channel"},
            },
        },
        {
            "update_id": 5,
            "my_chat_member": {
                "chat": {"id": -5, "type": "group"},
                "from": {"id": 5},
                "new_chat_member": {"status": "kicked"},
            },
        },
        {
            "update_id": 6,
            "message": {
                "message_id": 1,
                "chat": {"id": -5, "type": "supergroup"},
                "sender_chat": {"id": -100, "type": "channel"},
                "text": "hello",
            },
        },
    ],
    ids=["channel_post", "edited", "callback-no-message", "anonymous-vote", "group-member", "grp"],
)
def test_read_update_known_shapes(update):
    result = read_update(update, "restart_tutor_bot")
    if "callback_query" in update:
        assert isinstance(result, Incoming) and result.event == Press("")
        assert result.chat_id == 5 and result.callback_id == "q"
    else:
        assert result is None


def test_a_group_command_for_another_bot_gets_no_notice():
    update = {
        "update_id": 1,
        "message": {
            "message_id": 1,
            "chat": {"id": -5, "type": "group"},
            "from": {"id": 5, "first_name": "x"},
            "text": "/help@other_bot",
        },
    }
    assert read_update(update, "restart_tutor_bot") is None, "we answer other bots' commands"


# --- 4. the gateway with a recording Bot API --------------------------------------------------


class RecordingApi:
    """A fake Bot API: records every call; `failures` makes sending calls fail in turn."""

    def __init__(self, failures: list[str | None] | None = None):
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.failures = list(failures or [])
        self.numbers = count(1000)

    async def call(self, method: str, params: dict[str, Any]) -> Any:
        self.calls.append((method, params))
        await asyncio.sleep(0)
        if method != "answerCallbackQuery" and self.failures:
            kind = self.failures.pop(0)
            if kind:
                raise SendError(kind, "injected failure")
        number = next(self.numbers)
        if method == "sendPoll":
            return {"message_id": number, "poll": {"id": f"poll{number}"}}
        if method.startswith("send"):
            return {"message_id": number}
        return True

    def answered(self) -> Counter[str]:
        return Counter(p["callback_query_id"] for m, p in self.calls if m == "answerCallbackQuery")


GATEWAY_USERS = (7001, 7002)


@st.composite
def gateway_steps(draw):
    """A raw update, or a press of a button the gateway really sent to a user."""
    if draw(st.integers(0, 2)) == 0:
        return ("press", draw(st.sampled_from(GATEWAY_USERS)), draw(st.integers(0, 99)))
    update = draw(updates)
    user = draw(st.sampled_from(GATEWAY_USERS))
    for key in ("message", "callback_query"):  # most private updates from a few known users
        node = update.get(key)
        if node and draw(st.booleans()):
            node["from"] = {"id": user, "is_bot": False, "first_name": "Fuzz"}
            target = node if key == "message" else node.get("message")
            if target is not None:
                target["chat"] = {"id": user, "type": "private"}
    return ("raw", update)


def check_sent(api: RecordingApi) -> None:
    for method, params in api.calls:
        if method == "sendMessage":
            assert isinstance(params["text"], str) and params["text"].strip(), params
            assert len(params["text"]) <= limits.MESSAGE_TEXT_MAX
        if method == "editMessageText":
            assert len(params["text"]) <= limits.MESSAGE_TEXT_MAX
        if method in ("sendPhoto", "sendDocument"):
            assert len(params.get("caption", "")) <= limits.CAPTION_MAX, (method, params)
        for row in (params.get("reply_markup") or {}).get("inline_keyboard", ()):
            for cell in row:
                data = cell.get("callback_data")
                assert data is None or len(data.encode()) <= limits.CALLBACK_DATA_MAX_BYTES


def pressed(api: RecordingApi, n: int, user: int, index: int) -> dict[str, Any]:
    """A callback query for one of the buttons the gateway really sent to `user`."""
    boards = [
        cell["callback_data"]
        for _m, p in api.calls
        if p.get("chat_id") == user and "reply_markup" in p
        for row in p["reply_markup"]["inline_keyboard"]
        for cell in row
        if "callback_data" in cell
    ]
    return {
        "update_id": n,
        "callback_query": {
            "id": f"cb{n}",
            "from": {"id": user, "is_bot": False, "first_name": "Fuzz"},
            "chat_instance": "i",
            "message": {"message_id": 1, "date": 0, "chat": {"id": user, "type": "private"}},
            "data": boards[-1 - index % len(boards)] if boards else "today",
        },
    }


async def run_gateway(
    gateway: TelegramGateway, api: RecordingApi, script: list[Any], tolerate: bool = False
) -> list[str]:
    """Feed the script to the gateway; return the callback ids sent. With `tolerate`, the
    injected `SendError`s may surface (the adapter logs them); nothing else may."""
    callbacks: list[str] = []
    for n, step in enumerate(script):
        if step[0] == "press":
            raw = pressed(api, n, step[1], step[2])
        else:
            raw = step[1]
            if isinstance(raw.get("callback_query"), dict):
                raw["callback_query"]["id"] = f"cb{n}"  # unique, so answers can be counted
        if "callback_query" in raw:
            callbacks.append(raw["callback_query"]["id"])
        try:
            await gateway.handle(raw, api)
        except SendError:
            if not tolerate:
                raise
    return callbacks


def new_gateway(box: Sandbox) -> TelegramGateway:
    return TelegramGateway(box.tutor, LESSONS, bot_username="restart_tutor_bot")


@settings(FUZZ, max_examples=40)
@given(script=st.lists(gateway_steps(), min_size=1, max_size=40))
def test_gateway_never_raises_and_answers_every_callback_once(catalog, fresh_db, script):
    async def run() -> None:
        async with sandbox(catalog, fresh_db()) as box:
            api = RecordingApi()
            callbacks = await run_gateway(new_gateway(box), api, script)
            answered = api.answered()
            for callback in callbacks:
                assert answered[callback] == 1, f"{callback} answered {answered[callback]} times"
            assert sum(answered.values()) == len(callbacks)
            check_sent(api)

    asyncio.run(run())


@settings(FUZZ, max_examples=40)
@given(
    user=st.sampled_from(GATEWAY_USERS),
    presses=st.lists(st.integers(0, 99), min_size=1, max_size=15),
    failures=st.lists(
        st.sampled_from([None, None, "bad_request", "blocked", "transient"]), max_size=30
    ),
)
def test_gateway_answers_callbacks_once_even_when_sending_fails(
    catalog, fresh_db, user, presses, failures
):
    async def run() -> None:
        async with sandbox(catalog, fresh_db()) as box:
            gateway = new_gateway(box)
            api = RecordingApi()
            for n, typed in enumerate(["/start", "/settings"]):
                message = {
                    "message_id": n,
                    "date": 0,
                    "from": {"id": user},
                    "text": typed,
                    "chat": {"id": user, "type": "private"},
                }
                await gateway.handle({"update_id": n, "message": message}, api)
            api.failures = list(failures)
            script = [("press", user, p) for p in presses]
            callbacks = await run_gateway(gateway, api, script, tolerate=True)
            answered = api.answered()
            assert all(answered[c] == 1 for c in callbacks), (callbacks, answered)
            check_sent(api)

    asyncio.run(run())


def test_gateway_answers_a_callback_from_a_forwarded_message_in_a_group(catalog, fresh_db):
    async def run() -> None:
        async with sandbox(catalog, fresh_db()) as box:
            api = RecordingApi()
            gateway = TelegramGateway(box.tutor, LESSONS, bot_username="restart_tutor_bot")
            await gateway.handle(
                {
                    "update_id": 1,
                    "callback_query": {
                        "id": "cb-group",
                        "from": {"id": 5, "is_bot": False, "first_name": "x"},
                        "chat_instance": "i",
                        "message": {
                            "message_id": 9,
                            "date": 0,
                            "chat": {"id": -100, "type": "supergroup"},
                        },
                        "data": "today",
                    },
                },
                api,
            )
            assert api.answered()["cb-group"] == 1, "the button keeps spinning for the user"

    asyncio.run(run())


# --- 5. flooding --------------------------------------------------------------------------------

OTHER_LATENCY_BOUND = 2.0


async def test_a_flood_from_one_learner_does_not_starve_another(catalog, fresh_db):
    async with sandbox(catalog, fresh_db()) as box:
        driver = Driver(box, LEARNERS[:2])
        for i in (0, 1):
            await driver.onboard(i)
        await driver.send(0, Command("today"))
        await advance(driver, 0, [])
        while driver.players[0].keyboard[0].startswith("go:"):
            await driver.send(0, Press(driver.players[0].keyboard[0]))
        flooder, other = driver.players
        answer = next(d for d in flooder.keyboard if d.startswith(("a:", "t:")))
        token = answer.split(":")[1]
        flood: list[Event] = (
            [Press(answer)] * 20
            + [Text("1")] * 10
            + [Press(f"ok:{token}")] * 5
            + [Command("today")] * 5
            + [Command("progress")] * 5
            + [Text("A" * 10_240)] * 5
        )
        assert len(flood) == 50

        async def timed(who: Who, event: Event) -> tuple[float, list[Action]]:
            began = time.perf_counter()
            actions = await box.tutor.handle(who, event)
            return time.perf_counter() - began, actions

        tasks = [timed(flooder.who, e) for e in flood]
        tasks.insert(25, timed(other.who, Command("help")))
        began = time.perf_counter()
        results = await asyncio.gather(*tasks)
        total = time.perf_counter() - began
        for event, (_t, actions) in zip(flood, results[:25] + results[26:], strict=True):
            check_actions(event, actions)
        other_time, other_actions = results[25]
        assert any(isinstance(a, Reply) and "/today" in a.text for a in other_actions)
        assert other_time < OTHER_LATENCY_BOUND, (
            f"the other learner waited {other_time:.3f}s behind the flood (total {total:.3f}s)"
        )
        async with box.engine.connect() as conn:
            per_token = (
                await conn.execute(
                    text("SELECT count(*) FROM answers WHERE token = :t"), {"t": token}
                )
            ).scalar_one()
        assert per_token == 1, f"token {token} stored {per_token} answers"
        await check_database(box, catalog, {flooder.who.external_id, other.who.external_id})


async def test_the_throttle_stops_a_flood_and_lets_the_other_learner_through(catalog, fresh_db):
    """With the throttle the composition root installs (20 updates per 5 s per learner)."""
    now = [0.0]
    throttle = Throttle(limit=20, window=5.0, clock=lambda: now[0])
    async with sandbox(catalog, fresh_db(), throttle=throttle) as box:
        flooder, other = LEARNERS[:2]
        flood = [Command("help")] * 50
        tasks = [box.tutor.handle(flooder, e) for e in flood]
        tasks.insert(25, box.tutor.handle(other, Command("help")))
        results = await asyncio.gather(*tasks)
        other_actions = results.pop(25)
        assert any(isinstance(a, Reply) for a in other_actions), other_actions
        answered = [r for r in results if any(isinstance(a, Reply) for a in r)]
        warned = [r for r in results if r and all(isinstance(a, Notice) for a in r)]
        ignored = [r for r in results if r == []]
        assert (len(answered), len(warned), len(ignored)) == (20, 1, 29)
        assert await box.tutor.handle(flooder, ChatStatus(blocked=False)) == []
        now[0] += 5.1
        assert await box.tutor.handle(flooder, Command("help")), "still throttled after 5 s"
        await check_database(box, catalog, {flooder.external_id, other.external_id})


@pytest.mark.parametrize("wanted", ["help", "progress"])
async def test_a_flood_of_progress_charts_does_not_starve_another_learner(
    catalog, fresh_db, wanted
):
    """/progress draws a chart (~0.2 s). With the production throttle (20 per 5 s), one
    learner's burst may cost another learner's command, chart included, at most
    OTHER_LATENCY_BOUND."""
    async with sandbox(catalog, fresh_db(), throttle=Throttle.parse("20/5")) as box:
        driver = Driver(box, LEARNERS[:2])
        for i in (0, 1):
            await driver.onboard(i)
        flooder, other = LEARNERS[:2]

        async def timed(who: Who, event: Event) -> tuple[float, list[Action]]:
            began = time.perf_counter()
            actions = await box.tutor.handle(who, event)
            return time.perf_counter() - began, actions

        tasks = [timed(flooder, Command("progress")) for _n in range(50)]
        tasks.insert(25, timed(other, Command(wanted)))
        waited, actions = (await asyncio.gather(*tasks))[25]
        assert actions, f"/{wanted} got no answer"
        assert waited < OTHER_LATENCY_BOUND, (
            f"another learner's /{wanted} waited {waited:.2f}s behind one learner's /progress burst"
        )
