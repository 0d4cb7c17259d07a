"""Cohorts: a trainer's group of learners, joined through a deep link
(`https://t.me/<bot>?start=c-<code>`). A trainer sees and manages only their own; an admin all."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from bot.delivery.planner import reschedule
from bot.trainers.roles import is_admin, link, trainer_only
from bot.tutor.events import Button
from bot.tutor.zones import TIME_CHOICES, parse_daily_time

if TYPE_CHECKING:
    from bot.tutor.engine import Turn
    from storage.trainers import CohortFact

NAME_MAX = 100


def deep_link(turn: Turn, cohort: CohortFact) -> str:
    return link(turn, f"c-{cohort.code}")


async def owned(turn: Turn, cohort_id: str) -> CohortFact | None:
    """The cohort, if this trainer may manage it; a polite refusal otherwise."""
    cohort = await turn.repo.cohort(int(cohort_id)) if cohort_id.isdecimal() else None
    if cohort is None or (cohort.owner_id != turn.learner.id and not is_admin(turn)):
        _ = turn.t._
        turn.out.say(_("That group is not yours to manage."))
        return None
    return cohort


@trainer_only
async def new_cohort(turn: Turn, args: str = "") -> None:
    _ = turn.t._
    name = " ".join(args.split())[:NAME_MAX]
    if not name:
        turn.learner.awaiting = "cohort:name"
        turn.out.say(_("What is the group called? (for example: Palermo dancers, spring 2027)"))
        return
    cohort_id = await turn.repo.create_cohort(
        secrets.token_urlsafe(6), name, turn.learner.id, turn.now
    )
    buttons = tuple(
        (Button(c.title[:60], f"cc:{cohort_id}:{c.id}"),) for c in turn.catalog.courses.values()
    )
    turn.out.say(
        _("Group “{name}” created. Which course will it follow?").format(name=name), buttons
    )


async def typed_name(turn: Turn, text: str) -> None:
    turn.learner.awaiting = None
    await new_cohort(turn, text)


@trainer_only
async def choose_course(turn: Turn, rest: str) -> None:
    _ = turn.t._
    cohort_id, _sep, course_id = rest.partition(":")
    cohort = await owned(turn, cohort_id)
    if cohort is None:
        return
    if turn.catalog.course(course_id) is None:
        turn.out.say(_("That course does not exist."))
        return
    await turn.repo.update_cohort(cohort.id, course_id=course_id)
    buttons = [Button(t, f"ct:{cohort.id}:{t.replace(':', '')}") for t in TIME_CHOICES]
    buttons.append(Button(_("Let each learner choose"), f"ct:{cohort.id}:none"))
    turn.out.say(
        _("Default daily time for new members?"),
        tuple(tuple(buttons[i : i + 3]) for i in range(0, len(buttons), 3)),
    )


@trainer_only
async def choose_time(turn: Turn, rest: str) -> None:
    _ = turn.t._
    cohort_id, _sep, value = rest.partition(":")
    cohort = await owned(turn, cohort_id)
    if cohort is None:
        return
    daily = parse_daily_time(f"{value[:2]}:{value[2:]}") if len(value) == 4 else None
    await turn.repo.update_cohort(cohort.id, default_time=daily)
    turn.out.say(
        _(
            "Your group is ready. Share this link with your learners: opening it "
            "joins the group.\n{link}"
        ).format(link=deep_link(turn, cohort))
    )


@trainer_only
async def list_cohorts(turn: Turn, _args: str = "") -> None:
    _ = turn.t._
    cohorts = await turn.repo.cohorts(None if is_admin(turn) else turn.learner.id)
    if not cohorts:
        turn.out.say(_("You have no group yet: /newcohort creates one."))
        return
    lines, buttons = [_("Your groups:")], []
    for cohort in cohorts:
        state = _(" (link withdrawn)") if cohort.revoked else ""
        lines.append(
            _("• {name}: {n} learners{state}\n  {link}").format(
                name=cohort.name, n=cohort.members, state=state, link=deep_link(turn, cohort)
            )
        )
        buttons.append(
            (
                Button(f"📊 {cohort.name[:30]}", f"st:{cohort.id}"),
                Button("⬇️ CSV", f"ex:{cohort.id}"),
                Button(_("Withdraw link"), f"cr:{cohort.id}"),
            )
        )
    turn.out.say("\n".join(lines), tuple(buttons))


@trainer_only
async def revoke(turn: Turn, cohort_id: str) -> None:
    _ = turn.t._
    cohort = await owned(turn, cohort_id)
    if cohort is None:
        return
    await turn.repo.update_cohort(cohort.id, revoked=True)
    turn.out.say(
        _("The link of “{name}” no longer works. Members stay in the group.").format(
            name=cohort.name
        )
    )


async def join(turn: Turn, code: str) -> bool:
    """A learner opened a cohort link."""
    _ = turn.t._
    cohort = await turn.repo.cohort_by_code(code) if code else None
    if cohort is None or cohort.revoked:
        turn.out.say(
            _(
                "This group link is not valid (it may have been withdrawn). Ask your "
                "trainer for a new one."
            )
        )
        return False
    await turn.repo.join_cohort(cohort.id, turn.learner.id, turn.now)
    learner = turn.learner
    if cohort.course_id:
        learner.course_id = learner.course_id or cohort.course_id
    if cohort.default_time and not learner.daily_time:
        learner.daily_time = cohort.default_time
        reschedule(learner, turn.now)
    turn.out.say(_("You have joined the group “{name}”.").format(name=cohort.name))
    return True
