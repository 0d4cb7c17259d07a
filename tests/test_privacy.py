"""Data rights and flood control: /mydata exports everything, /deleteme leaves nothing that
points to the person (checked table by table), and one learner's flood slows nobody else."""

from __future__ import annotations

import asyncio
import json
import time

from sqlalchemy import Integer, String, Text, select

from bot.tutor.engine import Tutor
from bot.tutor.events import Command, Document, Press, Who
from bot.tutor.events import Text as TextEvent
from bot.tutor.throttle import Throttle
from storage.models import Base
from tests.chat import Chat, take_lesson


async def rich_learner(tutor, catalog, name="Rosa Punto") -> Chat:
    chat = Chat(tutor, name)
    await chat.onboard()
    await chat.command("pause", "3d")
    await chat.command("today")
    await take_lesson(chat, catalog.courses["mooc-art"].lessons[0])
    await chat.command("newcohort", "x")  # refused: not a trainer, nothing stored
    return chat


async def test_mydata_exports_everything(tutor, catalog):
    chat = await rich_learner(tutor, catalog)
    await chat.command("mydata")
    (doc,) = [a for a in chat.last if isinstance(a, Document)]
    data = json.loads(doc.content)
    assert data["learner"]["display_name"] == "Rosa Punto"
    assert data["learner"]["time_zone"] == "Europe/Rome"
    assert len(data["answers"]) == len(catalog.courses["mooc-art"].lessons[0].questions)
    assert data["lesson_completions"] and data["practice_days"] and data["review_cards"]
    assert data["pause_periods"]


async def scan_for(store, needles: list) -> list[str]:
    """Every table and column where any of `needles` still appears."""
    found = []
    async with store.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for column in table.columns:
                for needle in needles:
                    if isinstance(needle, str) and not isinstance(column.type, (String, Text)):
                        continue
                    if isinstance(needle, int) and not isinstance(column.type, Integer):
                        continue
                    if column.name == "id" and table.name != "learners":
                        continue
                    hit = await conn.scalar(select(column).where(column == needle).limit(1))
                    if hit is not None:
                        found.append(f"{table.name}.{column.name}={needle!r}")
    return found


async def test_deleteme_asks_then_erases_every_personal_row(tutor, catalog, sqlite_store):
    keep = await rich_learner(tutor, catalog, "Other Person")
    chat = await rich_learner(tutor, catalog)
    async with sqlite_store.unit() as repo:
        me = await repo.learner(chat.who, tutor.clock())
        my_id, my_chat = me.id, me.chat_id
    await chat.command("deleteme")
    assert "Are you sure" in chat.said
    await chat.press("No, keep")
    assert "Nothing was deleted" in chat.said
    assert await scan_for(sqlite_store, [chat.who.external_id])
    await chat.command("deleteme")
    await chat.press("Yes, delete everything")
    assert "everything about you has been deleted" in chat.said
    leftovers = await scan_for(sqlite_store, [chat.who.external_id, "Rosa Punto", my_chat])
    # Integer ids: only the learner-referencing columns can hold a learner id.
    from storage.privacy import personal_tables

    async with sqlite_store.engine.connect() as conn:
        for table, columns in personal_tables():
            for column in columns:
                if await conn.scalar(select(table.c[column]).where(table.c[column] == my_id)):
                    leftovers.append(f"{table.name}.{column}")
    assert leftovers == []
    # The other learner is untouched.
    await keep.command("progress")
    assert "1/5 lessons" in keep.said


async def test_a_flooding_learner_does_not_slow_anyone_else(catalog, sqlite_store, clock):
    tutor = Tutor(catalog, sqlite_store, clock=clock, throttle=Throttle(20, 5))
    flood, calm = Chat(tutor, "flood"), Chat(tutor, "calm")
    await calm.onboard()
    await flood.onboard()

    async def calm_turn() -> float:
        started = time.perf_counter()
        actions = await tutor.handle(calm.who, Command("progress"))
        assert actions
        return time.perf_counter() - started

    results = await asyncio.gather(
        *(tutor.handle(flood.who, TextEvent(f"spam {i}")) for i in range(50)), calm_turn()
    )
    answered = [r for r in results[:-1] if r]
    assert len(answered) <= 20 + 1  # the rest ignored on purpose (one warning)
    assert results[-1] < 1.0
    # Presses from the flooder are throttled too, and nothing was stored for them.
    for _ in range(30):
        await tutor.handle(flood.who, Press("a:zz:0"))
    assert await tutor.handle(Who("tg:someone-else", chat_id=5), Command("help"))
