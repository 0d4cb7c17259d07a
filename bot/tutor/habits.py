"""The daily habit's settings: pause (vacation hold), quiet hours, weekdays; and the streak view.

Anything that changes when a nudge may come calls `reschedule`, so `next_nudge_at` is always
right. Odd input ('-3d', '10y', '25:99') gets a clear reply and stores nothing.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import TYPE_CHECKING

from bot.delivery.planner import ALL_DAYS, parse_weekdays, reschedule
from bot.i18n import N_
from bot.tutor.events import Button, EditPressed, Keyboard
from bot.tutor.streaks import StreakSummary, local_date
from bot.tutor.zones import parse_daily_time

if TYPE_CHECKING:
    from bot.tutor.engine import Turn

MAX_PAUSE_DAYS = 90
_PAUSE = re.compile(r"^(\d{1,4})\s*(d|day|days|w|week|weeks)?$", re.IGNORECASE)
DAY_NAMES = (N_("Mon"), N_("Tue"), N_("Wed"), N_("Thu"), N_("Fri"), N_("Sat"), N_("Sun"))


def today(turn: Turn) -> date:
    return local_date(turn.now, turn.zone)


async def streak(turn: Turn) -> StreakSummary:
    """The learner's streak today, with freezes and paused days applied."""
    return summarize(turn, *await turn.repo.streak_history(turn.learner.id))


def summarize(turn: Turn, days: list[date], pauses: list[tuple[date, date]]) -> StreakSummary:
    """`streak` from practice days and pauses already read (`Repository.history`)."""
    paused: set[date] = set()
    for first, last in pauses:
        day = first
        while day <= last:
            paused.add(day)
            day += timedelta(days=1)
    return turn.tutor.streaks.summarize(days, today(turn), paused.__contains__)


def parse_pause(text: str, now_day: date) -> date | str | None:
    """Return the last paused day, None for "end the pause", or an error code."""
    text = text.strip().lower()
    if text in ("off", "end", "stop", "0", "0d"):
        return None
    try:
        until = date.fromisoformat(text)
    except ValueError:
        match = _PAUSE.match(text)
        if not match:
            return "format"
        count = int(match.group(1)) * (7 if (match.group(2) or "d").startswith("w") else 1)
        if count < 1:
            return "format"
        if count > MAX_PAUSE_DAYS:
            return "long"
        return now_day + timedelta(days=count - 1)
    if until < now_day:
        return "past"
    if (until - now_day).days >= MAX_PAUSE_DAYS:
        return "long"
    return until


async def pause(turn: Turn, args: str = "") -> None:
    _ = turn.t._
    learner = turn.learner
    if not args.strip():
        state = (
            _("Reminders are paused until {date}.").format(date=turn.t.date(learner.paused_until))
            if learner.paused_until
            else _(
                "Going away? Pause the reminders; your streak "
                "is frozen, not lost, while you are paused."
            )
        )
        buttons = (
            (
                Button(_("3 days"), "pause:3"),
                Button(_("1 week"), "pause:7"),
                Button(_("2 weeks"), "pause:14"),
            ),
        )
        if learner.paused_until:
            buttons += ((Button(_("End the pause"), "pause:off"),),)
        turn.out.say(
            state + "\n" + _("Or type, for example, /pause 10d or /pause 2026-08-31."), buttons
        )
        return
    start = today(turn)
    result = parse_pause(args, start)
    if result == "format":
        turn.out.say(
            _(
                "I did not understand that pause. Try /pause 7d, /pause 2w, "
                "/pause 2026-08-31 or /pause off."
            )
        )
        return
    if result == "past":
        turn.out.say(_("That date is in the past. Nothing changed."))
        return
    if result == "long":
        turn.out.say(
            _("A pause can last at most {n} days. Nothing changed.").format(n=MAX_PAUSE_DAYS)
        )
        return
    assert not isinstance(result, str)
    await turn.repo.set_pause(learner.id, start, result)
    learner.paused_until = result
    reschedule(learner, turn.now)
    if result is None:
        turn.out.say(_("Welcome back! Reminders are on again."))
    else:
        turn.out.say(
            _("Paused until {date}. Your streak is frozen until then; see you soon!").format(
                date=turn.t.date(result)
            )
        )


async def pause_press(turn: Turn, value: str) -> None:
    await pause(turn, value if value == "off" else f"{value}d" if value.isdecimal() else "?")


async def quiet(turn: Turn, args: str = "") -> None:
    _ = turn.t._
    learner = turn.learner
    text = args.strip().lower()
    if not text:
        now = (
            _("Quiet hours: {hours}.").format(hours=learner.quiet_hours)
            if learner.quiet_hours
            else _("No quiet hours set.")
        )
        turn.out.say(
            now
            + "\n"
            + _(
                "Set them with, for example, /quiet 22:00-07:00, or "
                "/quiet off. No reminder comes during quiet hours."
            )
        )
        return
    if text == "off":
        learner.quiet_hours = None
        turn.out.say(_("Quiet hours are off."))
        return
    start, _sep, end = text.partition("-")
    first, last = parse_daily_time(start), parse_daily_time(end)
    if first is None or last is None or first == last:
        turn.out.say(_("Please write quiet hours as two times, for example /quiet 22:00-07:00."))
        return
    learner.quiet_hours = f"{first}-{last}"
    turn.out.say(_("Quiet hours set: {hours}.").format(hours=learner.quiet_hours))


def _days_keyboard(turn: Turn) -> Keyboard:
    _ = turn.t._
    chosen = parse_weekdays(turn.learner.weekdays)
    buttons = tuple(
        Button(("✅ " if i in chosen else "▫️ ") + _(name), f"day:{i}")
        for i, name in enumerate(DAY_NAMES)
    )
    return (buttons[:4], buttons[4:], (Button(_("Every day"), "day:all"),))


async def days(turn: Turn, _args: str = "") -> None:
    _ = turn.t._
    turn.out.say(
        _("On which days shall I remind you? Tap to switch a day on or off."), _days_keyboard(turn)
    )


async def day_press(turn: Turn, value: str) -> None:
    _ = turn.t._
    chosen = set(parse_weekdays(turn.learner.weekdays))
    if value == "all":
        chosen = set(ALL_DAYS)
    elif value.isdecimal() and int(value) < 7:
        chosen ^= {int(value)}
        if not chosen:
            turn.out.say(_("Keep at least one day."))
            return
    else:
        turn.out.say(_("That button no longer works. Type /settings to choose again."))
        return
    turn.learner.weekdays = None if chosen == set(ALL_DAYS) else "".join(map(str, sorted(chosen)))
    reschedule(turn.learner, turn.now)
    turn.out.actions.append(
        EditPressed(
            _("On which days shall I remind you? Tap to switch a day on or off."),
            _days_keyboard(turn),
        )
    )
