"""Onboarding and settings: privacy notice, language, time zone, daily time, question style.

Onboarding is a short series of taps (`learner.onboarding`: new → language → zone → time → done);
typed answers (a city, an offset, a time) are read when `learner.awaiting` says what we asked for.
Bad input gets a clear reply and stores nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.delivery.planner import reschedule
from bot.i18n import LANGUAGES, shipped
from bot.tutor import habits
from bot.tutor.events import Button, Keyboard, Who
from bot.tutor.zones import CITY_CHOICES, TIME_CHOICES, parse_daily_time, parse_zone

if TYPE_CHECKING:
    from bot.tutor.engine import Turn

OFFSET_CHOICES = ("UTC-05:00", "UTC+00:00", "UTC+01:00", "UTC+02:00", "UTC+03:00", "UTC+05:30")


def _rows(buttons: list[Button], per_row: int) -> Keyboard:
    return tuple(tuple(buttons[i : i + per_row]) for i in range(0, len(buttons), per_row))


def privacy_notice(turn: Turn) -> str:
    _ = turn.t._
    return _(
        "Privacy: I store your Telegram id and name, your language, time zone and daily time, "
        "and your answers, lessons and streak days. I use them only to run your lessons, "
        "reminders and progress. I do not store your phone number or your messages."
    )


async def start(turn: Turn, who: Who, args: str) -> None:
    """`/start`, optionally from a deep link: `c-<code>` joins a group, `t-<code>` accepts a
    trainer invitation; then onboarding for someone new."""
    from bot.trainers import cohorts, roles

    _ = turn.t._
    learner = turn.learner
    payload = args.strip()
    if payload.startswith("c-"):
        await cohorts.join(turn, payload[2:40])
    elif payload.startswith("t-"):
        await roles.accept_invite(turn, payload[2:40])
    if learner.onboarding == "done":
        turn.out.say(_("Welcome back! Type /today to continue, or /help to see everything."))
        return
    proposed = shipped(who.language_code)
    if proposed and learner.onboarding == "new":
        learner.language = proposed
        turn.relang()
        _ = turn.t._
    learner.onboarding = "language"
    turn.out.say(
        _(
            "Welcome to RestART Tutor: a few minutes a day of digital and transversal skills "
            "for people in the cultural and creative sector."
        )
        + "\n\n"
        + privacy_notice(turn)
    )
    if who.language_code and not proposed:
        turn.out.say(
            _(
                "I don't speak your Telegram language yet; I'll use English. "
                "You can choose another language below."
            )
        )
    await ask_language(turn)


async def ask_language(turn: Turn) -> None:
    _ = turn.t._
    buttons = [Button(name, f"lang:{code}") for code, name in LANGUAGES.items()]
    turn.out.say(_("Which language would you like?"), _rows(buttons, 2))


async def choose_language(turn: Turn, code: str) -> None:
    _ = turn.t._
    if code not in LANGUAGES:
        turn.out.say(_("That language is not available."))
        return
    turn.learner.language = code
    turn.relang()
    _ = turn.t._
    if turn.learner.onboarding == "language":
        turn.learner.onboarding = "zone"
        await ask_zone(turn)
        return
    turn.out.say(_("Language set to {language}.").format(language=LANGUAGES[code]))
    if turn.learner.onboarding != "done":
        await resume(turn)


async def ask_zone(turn: Turn) -> None:
    _ = turn.t._
    turn.learner.awaiting = "zone"
    buttons = [Button(_(city), f"tz:{i}") for i, (city, _zone) in enumerate(CITY_CHOICES)]
    buttons.append(Button(_("UTC offset"), "tz:offset"))
    turn.out.say(
        _(
            "Which time zone are you in? Pick a city, or type your city "
            "(for example Lisbon or New York) or an offset such as UTC+2."
        ),
        _rows(buttons, 3),
    )


async def choose_zone(turn: Turn, value: str) -> None:
    _ = turn.t._
    if value == "offset":
        buttons = [Button(o, f"tz:{o}") for o in OFFSET_CHOICES]
        turn.out.say(
            _("Pick your offset from UTC, or type one (for example UTC-3 or +05:45)."),
            _rows(buttons, 3),
        )
        return
    if value.isdecimal() and int(value) < len(CITY_CHOICES):
        zone: str | None = CITY_CHOICES[int(value)][1]
    else:
        zone = parse_zone(value)
    if zone is None:
        turn.out.say(_("That button no longer works. Type /settings to choose again."))
        return
    await _set_zone(turn, zone)


async def _set_zone(turn: Turn, zone: str) -> None:
    _ = turn.t._
    turn.learner.time_zone = zone
    turn.learner.awaiting = None
    reschedule(turn.learner, turn.now)
    if turn.learner.onboarding == "zone":
        turn.learner.onboarding = "time"
        await ask_time(turn)
    else:
        turn.out.say(_("Time zone set to {zone}.").format(zone=zone))


async def ask_time(turn: Turn) -> None:
    _ = turn.t._
    turn.learner.awaiting = "time"
    buttons = [Button(t, f"tm:{t}") for t in TIME_CHOICES]
    turn.out.say(
        _(
            "At what time of day shall I send your daily lesson? Pick one or type a "
            "time such as 08:15."
        ),
        _rows(buttons, 3),
    )


async def choose_time(turn: Turn, value: str) -> None:
    _ = turn.t._
    daily = parse_daily_time(value)
    if daily is None:
        turn.out.say(_("That button no longer works. Type /settings to choose again."))
        return
    await _set_time(turn, daily)


async def _set_time(turn: Turn, daily: str) -> None:
    _ = turn.t._
    learner = turn.learner
    learner.daily_time = daily
    learner.awaiting = None
    if learner.onboarding == "time":
        learner.onboarding = "done"
        reschedule(learner, turn.now)
        course = turn.catalog.default_course()
        learner.course_id = learner.course_id or course.id
        turn.out.say(
            _(
                "All set! Every day at {time} ({zone}) I'll remind you of your next lesson. "
                "Your first course is “{course}”."
            ).format(time=daily, zone=learner.time_zone or "UTC", course=course.title),
            ((Button(_("Start the first lesson"), "today"),),),
        )
    else:
        reschedule(learner, turn.now)
        turn.out.say(_("Daily time set to {time}.").format(time=daily))


async def typed(turn: Turn, text: str) -> None:
    """Free text while we wait for a zone or a time."""
    from bot.trainers import broadcast, cohorts

    _ = turn.t._
    awaiting = turn.learner.awaiting or ""
    if awaiting == "cohort:name":
        await cohorts.typed_name(turn, text)
        return
    if awaiting.startswith("bc:"):
        await broadcast.content(turn, text)
        return
    if awaiting.startswith("bt:"):
        await broadcast.schedule_typed(turn, text)
        return
    if (turn.learner.awaiting or "").startswith("cert:"):
        from bot.tutor import certify

        await certify.typed_name(turn, text)
        return
    if turn.learner.awaiting == "zone":
        zone = parse_zone(text)
        if zone is None:
            turn.out.say(
                _(
                    "I could not find the time zone “{text}”. Try a city such as Rome or "
                    "Buenos Aires, or an offset such as UTC+2."
                ).format(text=text[:60])
            )
            return
        await _set_zone(turn, zone)
    elif turn.learner.awaiting == "time":
        daily = parse_daily_time(text)
        if daily is None:
            turn.out.say(
                _(
                    "“{text}” is not a time of day. Please write it as hours and minutes, "
                    "for example 08:15 or 19:30."
                ).format(text=text[:60])
            )
            return
        await _set_time(turn, daily)
    else:
        turn.learner.awaiting = None


async def resume(turn: Turn) -> None:
    """Someone who has not finished onboarding: ask the step they are on again."""
    _ = turn.t._
    step = turn.learner.onboarding
    if step in ("new", "language"):
        turn.learner.onboarding = "language"
        turn.out.say(_("Let's finish setting up first: it takes three taps."))
        await ask_language(turn)
    elif step == "zone":
        await ask_zone(turn)
    else:
        await ask_time(turn)


async def settings(turn: Turn) -> None:
    _ = turn.t._
    learner = turn.learner
    on, off = _("on"), _("off")
    style = _("quiz polls") if learner.quiz_mode == "poll" else _("buttons")
    text = _(
        "Your settings\n"
        "Language: {language}\nTime zone: {zone}\nDaily time: {time}\n"
        "Daily reminders: {nudges}\nQuestions as: {style}\n"
        "Quiet hours: {quiet}\nPaused until: {paused}"
    ).format(
        language=LANGUAGES.get(learner.language, learner.language),
        zone=learner.time_zone or "UTC",
        time=learner.daily_time or "—",
        nudges=on if learner.nudges_enabled else off,
        style=style,
        quiet=learner.quiet_hours or "—",
        paused=turn.t.date(learner.paused_until) if learner.paused_until else "—",
    )
    buttons = (
        (Button(_("Language"), "set:lang"), Button(_("Time zone"), "set:zone")),
        (Button(_("Daily time"), "set:time"), Button(_("Question style"), "set:quiz")),
        (Button(_("Reminders on/off"), "set:nudges"), Button(_("Days"), "set:days")),
        (Button(_("Pause"), "set:pause"), Button(_("Quiet hours"), "set:quiet")),
    )
    turn.out.say(text, buttons)


async def settings_press(turn: Turn, what: str) -> None:
    _ = turn.t._
    learner = turn.learner
    if what == "lang":
        await ask_language(turn)
    elif what == "zone":
        await ask_zone(turn)
    elif what == "time":
        await ask_time(turn)
    elif what == "quiz":
        learner.quiz_mode = "buttons" if learner.quiz_mode == "poll" else "poll"
        turn.out.say(
            _("Questions will come as Telegram quiz polls where they fit.")
            if learner.quiz_mode == "poll"
            else _("Questions will come with answer buttons.")
        )
    elif what == "nudges":
        learner.nudges_enabled = not learner.nudges_enabled
        reschedule(learner, turn.now)
        turn.out.say(
            _("Daily reminders are on.")
            if learner.nudges_enabled
            else _("Daily reminders are off.")
        )
    elif what == "days":
        await habits.days(turn)
    elif what == "pause":
        await habits.pause(turn)
    elif what == "quiet":
        await habits.quiet(turn)
    else:
        turn.out.say(_("That button no longer works. Type /settings to choose again."))
