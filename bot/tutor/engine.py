"""The tutor engine: one event for one learner in, a list of actions out.

`Tutor.handle` opens one unit of work, loads (or creates) the learner, and routes the event to the
feature that owns it: onboarding and settings, the lesson flow, progress. It knows no transport and
no SQL: transports call it, the repository protocol stores for it, the clock tells it the time.
Every reply is built with the learner's `Translator`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from bot.content import Catalog
from bot.delivery.planner import reschedule
from bot.i18n import LOCALES_DIR, Translator
from bot.trainers import broadcast, cohorts, roles, stats, toolkit
from bot.tutor import assessment, certify, flow, habits, nudges, onboarding, privacy, report, review
from bot.tutor.events import (
    Action,
    ChatStatus,
    Command,
    Event,
    InlineQuery,
    Later,
    Media,
    Notice,
    Outcome,
    PollAnswer,
    Press,
    Text,
    Unsupported,
    Who,
)
from bot.tutor.ports import Clock, LearnerState, Repository, Store, utcnow
from bot.tutor.streaks import StreakPolicy
from bot.tutor.throttle import Throttle
from bot.tutor.zones import resolve_zone

log = logging.getLogger(__name__)

MAX_TEXT = 16_384
"""Longer input is cut here (Telegram itself stops at 4,096); every use checks its own limit."""


@dataclass
class Turn:
    """Everything one event's handling needs, passed to the feature modules."""

    tutor: Tutor
    repo: Repository
    learner: LearnerState
    now: datetime
    t: Translator
    out: Outcome = field(default_factory=Outcome)

    @property
    def catalog(self) -> Catalog:
        """The content in the learner's language."""
        return self.tutor.catalog_for(self.t)

    @property
    def zone(self):
        return resolve_zone(self.learner.time_zone)

    def relang(self) -> None:
        self.t = Translator(self.learner.language, self.tutor.locales_dir)


class Tutor:
    def __init__(
        self,
        catalog: Catalog,
        store: Store,
        clock: Clock = utcnow,
        streaks: StreakPolicy | None = None,
        locales_dir: Path = LOCALES_DIR,
        admins: frozenset[str] = frozenset(),
        bot_username: str = "restart_tutor_bot",
        throttle: Throttle | None = None,
    ):
        self.catalog = catalog
        self.store = store
        self.clock = clock
        self.streaks = streaks or StreakPolicy()
        self.locales_dir = locales_dir
        self._localized: dict[str, Catalog] = {}
        self.admins = admins
        """External ids ("tg:<user id>") of the admins from TUTOR_ADMINS."""
        self.bot_username = bot_username
        self._toolkit_index = None
        self.throttle = throttle
        self._render_lock = asyncio.Lock()
        self._drawing: set[str] = set()
        """Per-learner flood control; the composition root turns it on (tests leave it off)."""

    def translated(self, language: str, context: str, text: str) -> str:
        return Translator(language, self.locales_dir).content(context, text)

    def catalog_for(self, t: Translator) -> Catalog:
        if t.language not in self._localized:
            self._localized[t.language] = self.catalog.localized(t.content)
        return self._localized[t.language]

    async def handle(self, who: Who, event: Event) -> list[Action]:
        if isinstance(event, InlineQuery):  # no learner record for a passer-by's search
            return await self._inline(who, event)
        if (
            self.throttle is not None
            and not isinstance(event, ChatStatus)
            and not self.throttle.allow(who.external_id)
        ):
            if self.throttle.should_warn(who.external_id):
                t = Translator(who.language_code, self.locales_dir)
                return [
                    Notice(
                        t.gettext("Slow down a little, please: I'll answer again in a few seconds.")
                    )
                ]
            return []
        now = self.clock()

        async def step(repo: Repository) -> Turn:
            learner = await repo.learner(who, now)
            turn = Turn(self, repo, learner, now, Translator(learner.language, self.locales_dir))
            await self._route(turn, who, event)
            return turn

        turn = await self.store.run(step)
        return await self._finish_later(who.external_id, turn.out.actions)

    async def _finish_later(self, key: str, actions: list[Action]) -> list[Action]:
        """Make the slow actions, one at a time for everyone; an optional one is skipped while
        the same learner already has one waiting, so a burst cannot queue up behind itself."""
        done = []
        for action in actions:
            if isinstance(action, Later):
                if action.optional and key in self._drawing:
                    continue
                self._drawing.add(key)
                try:
                    async with self._render_lock:
                        action = await asyncio.to_thread(action.make)
                finally:
                    self._drawing.discard(key)
            done.append(action)
        return done

    async def compose(self, learner_id: int, kind: str, payload: dict | None) -> list[Action]:
        """The message for one outbox row (a nudge, a reminder…) in the learner's language,
        composed when it is sent so it says what is waiting now. Empty: nothing to send."""
        now = self.clock()
        async with self.store.unit() as repo:
            learner = await repo.learner_by_id(learner_id)
            if learner is None or not learner.active:
                return []
            turn = Turn(self, repo, learner, now, Translator(learner.language, self.locales_dir))
            await nudges.compose(turn, kind, payload or {})
            return turn.out.actions

    async def _inline(self, who: Who, event: InlineQuery) -> list[Action]:
        from bot.trainers import toolkit

        turn = Turn(
            self,
            None,
            None,
            self.clock(),  # type: ignore[arg-type]
            Translator(who.language_code, self.locales_dir),
        )
        await toolkit.inline(turn, event.query_id, event.query)
        return turn.out.actions

    async def compose_broadcast(self, broadcast_id: int) -> list[Action]:
        from bot.trainers.broadcast import message_of

        async with self.store.unit() as repo:
            row = await repo.broadcast(broadcast_id)
        return [message_of(row)] if row is not None and row.status != "cancelled" else []

    async def bind_poll(self, who: Who, token: str, poll_id: str) -> None:
        """Remember which question presentation a sent quiz poll belongs to."""
        now = self.clock()

        async def link(repo: Repository) -> None:
            learner = await repo.learner(who, now)
            await repo.link_poll(poll_id, learner.id, token, now)

        await self.store.run(link)

    async def _route(self, turn: Turn, who: Who, event: Event) -> None:
        learner = turn.learner
        if isinstance(event, ChatStatus):
            learner.active = not event.blocked
            reschedule(learner, turn.now)
            log.info(
                "learner %s %s the bot", learner.id, "blocked" if event.blocked else "unblocked"
            )
            return
        if not learner.active:
            learner.active = True  # a learner who writes to us has unblocked the bot
            reschedule(learner, turn.now)
        match event:
            case Media() if (learner.awaiting or "").startswith("bc:"):
                await broadcast.content(turn, event)
            case Media() | Unsupported():
                _ = turn.t._
                turn.out.say(
                    _(
                        "I can only read text, commands and buttons. "
                        "Type /today for your lesson or /help for more."
                    )
                )
            case Command(name=name, args=args):
                await self._command(turn, who, name.lower(), args[:MAX_TEXT])
            case Press(data=data):
                await self._press(turn, data)
            case PollAnswer(poll_id=poll_id, option_ids=option_ids):
                token = await turn.repo.poll_token(learner.id, poll_id)
                if token is None:
                    log.info("poll answer for an unknown poll %s ignored", poll_id)
                    return
                await flow.answer(turn, token, option_ids, from_poll=True)
            case Text(text=text):
                await self._text(turn, text[:MAX_TEXT])

    async def _command(self, turn: Turn, who: Who, name: str, args: str) -> None:
        if name == "start":
            await onboarding.start(turn, who, args)
            return
        if turn.learner.onboarding != "done" and name not in BEFORE_ONBOARDING:
            await onboarding.resume(turn)
            return
        handler = COMMANDS.get(name) or WITH_ARGS.get(name)
        if handler is None:
            _ = turn.t._
            turn.out.say(
                _("I don't know the command /{name}. Type /help to see what I can do.").format(
                    name=name[:32]
                )
            )
            return
        if name in WITH_ARGS:
            await WITH_ARGS[name](turn, args)
        else:
            await handler(turn)

    async def _press(self, turn: Turn, data: str) -> None:
        kind, _sep, rest = data.partition(":")
        handler = PRESSES.get(kind)
        if handler is None:
            _ = turn.t._
            turn.out.say(_("That button no longer works. Type /today to carry on."))
            return
        await handler(turn, rest)

    async def _text(self, turn: Turn, text: str) -> None:
        if turn.learner.awaiting:
            await onboarding.typed(turn, text)
        elif turn.learner.onboarding != "done":
            await onboarding.resume(turn)
        elif turn.learner.pending_token and turn.learner.lesson_id:
            await flow.typed_while_question(turn, text)
        else:
            _ = turn.t._
            turn.out.say(
                _(
                    "I work with commands and buttons. Type /today for your lesson "
                    "or /help for everything else."
                )
            )


async def _help(turn: Turn) -> None:
    _ = turn.t._
    turn.out.say(
        _(
            "RestART Tutor: a few minutes of learning a day.\n\n"
            "/today: continue your lesson\n"
            "/progress: your progress and streak\n"
            "/review: questions due for review\n"
            "/courses: the courses and which one you follow\n"
            "/certificate: your certificates again\n"
            "/verify CODE: check a certificate\n"
            "/settings: language, time zone, daily time, question style\n"
            "/language: change the language\n"
            "/pause: a holiday from reminders (your streak is frozen)\n"
            "/days: the weekdays for reminders\n"
            "/quiet: quiet hours without any reminder\n"
            "/stop: turn the daily reminders off\n"
            "/resume: turn the daily reminders back on\n"
            "/sharename: whether your trainer sees your name in exports\n"
            "/mydata: everything stored about you, as a file\n"
            "/deleteme: erase all your data\n"
            "/help: this message"
        )
    )
    if roles.is_trainer(turn):
        turn.out.say(
            _(
                "For trainers:\n"
                "/newcohort NAME: create a group and its invitation link\n"
                "/cohorts: your groups, their links, statistics and exports\n"
                "/broadcast: an announcement to a group\n"
                "/broadcasts: scheduled and running announcements\n"
                "/stats: how a group is doing\n"
                "/export: a group's answers as CSV\n"
                "/toolkit: the RestART-kit (also inline: @{bot} copyright)"
            ).format(bot=turn.tutor.bot_username)
        )
    if roles.is_admin(turn):
        turn.out.say(
            _(
                "For admins: /grant makes a one-time trainer invitation; "
                "/grant USER_ID makes someone a trainer."
            )
        )


async def _stop(turn: Turn) -> None:
    _ = turn.t._
    turn.learner.nudges_enabled = False
    reschedule(turn.learner, turn.now)
    turn.out.say(
        _(
            "Daily reminders are off. Your progress is kept; type /resume to turn them "
            "back on, or /today to learn whenever you like."
        )
    )


async def _resume(turn: Turn) -> None:
    _ = turn.t._
    turn.learner.nudges_enabled = True
    reschedule(turn.learner, turn.now)
    turn.out.say(
        _("Daily reminders are on again, at {time} ({zone}).").format(
            time=turn.learner.daily_time or "—", zone=turn.learner.time_zone or "UTC"
        )
    )


async def _review(turn: Turn) -> None:
    _ = turn.t._
    if await review.next_review(turn):
        return
    if not await review.reviews_left_today(turn):
        turn.out.say(
            _("You have done today's {n} reviews. More tomorrow!").format(
                n=review.DAILY_REVIEW_CAP
            ),
            ((flow.start_button(turn),),),
        )
    else:
        turn.out.say(
            _(
                "No reviews are due right now. Questions you answer come back here "
                "when it is time to remember them."
            ),
            ((flow.start_button(turn),),),
        )


COMMANDS = {
    "today": flow.today,
    "next": flow.today,
    "progress": report.progress,
    "review": _review,
    "courses": report.courses,
    "settings": onboarding.settings,
    "language": onboarding.ask_language,
    "help": _help,
    "stop": _stop,
    "resume": _resume,
}

BEFORE_ONBOARDING = ("help", "language", "settings", "verify", "mydata", "deleteme")

WITH_ARGS = {
    "mydata": privacy.my_data,
    "deleteme": privacy.delete_me,
    "grant": roles.grant,
    "newcohort": cohorts.new_cohort,
    "cohorts": cohorts.list_cohorts,
    "broadcast": broadcast.start,
    "broadcasts": broadcast.list_broadcasts,
    "stats": stats.stats,
    "export": stats.export,
    "toolkit": toolkit.toolkit,
    "sharename": stats.share_name,
    "verify": certify.verify,
    "certificate": certify.resend,
    "pause": habits.pause,
    "quiet": habits.quiet,
    "days": habits.days,
}

PRESSES = {
    "del": privacy.delete_press,
    "cc": cohorts.choose_course,
    "ct": cohorts.choose_time,
    "cr": cohorts.revoke,
    "ba": broadcast.audience,
    "bs": broadcast.send_now,
    "bl": broadcast.schedule_ask,
    "bx": broadcast.cancel,
    "st": stats.stats_press,
    "ex": stats.export_press,
    "tk": toolkit.topic,
    "skip": lambda turn, _rest: assessment.skip_pretest(turn),
    "cert": certify.use_telegram_name,
    "course": report.choose_course,
    "pause": habits.pause_press,
    "day": habits.day_press,
    "go": flow.go,
    "a": flow.press_answer,
    "t": flow.toggle,
    "ok": flow.submit,
    "today": lambda turn, _rest: flow.today(turn),
    "lang": onboarding.choose_language,
    "tz": onboarding.choose_zone,
    "tm": onboarding.choose_time,
    "set": onboarding.settings_press,
}
