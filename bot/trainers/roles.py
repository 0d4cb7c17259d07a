"""Roles: admins (from TUTOR_ADMINS), trainers (granted by an admin or by a one-time invite),
and everyone else a learner. Every trainer action checks here, in the engine, whatever the
transport: a learner who types a trainer command or replays a trainer button is refused politely
and nothing changes."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.tutor.engine import Turn

Handler = Callable[..., Awaitable[None]]


def is_admin(turn: Turn) -> bool:
    learner = turn.learner
    return learner.role == "admin" or learner.external_id in turn.tutor.admins


def is_trainer(turn: Turn) -> bool:
    return is_admin(turn) or turn.learner.role == "trainer"


async def refuse(turn: Turn) -> None:
    _ = turn.t._
    turn.out.say(
        _(
            "Sorry, that is for trainers. If you teach a group, ask an admin for a "
            "trainer invitation."
        )
    )


def trainer_only(handler: Handler) -> Handler:
    @wraps(handler)
    async def checked(turn: Turn, *args: str) -> None:
        if not is_trainer(turn):
            await refuse(turn)
            return
        await handler(turn, *args)

    return checked


def admin_only(handler: Handler) -> Handler:
    @wraps(handler)
    async def checked(turn: Turn, *args: str) -> None:
        if not is_admin(turn):
            _ = turn.t._
            turn.out.say(_("Sorry, only an admin can do that."))
            return
        await handler(turn, *args)

    return checked


def link(turn: Turn, payload: str) -> str:
    return f"https://t.me/{turn.tutor.bot_username}?start={payload}"


@admin_only
async def grant(turn: Turn, args: str = "") -> None:
    """`/grant` makes a one-time trainer invite; `/grant 12345` makes that Telegram user a
    trainer; `/grant revoke 12345` makes them a learner again."""
    _ = turn.t._
    words = args.split()
    if not words:
        code = secrets.token_urlsafe(9)
        await turn.repo.create_invite(code, turn.learner.id, turn.now)
        turn.out.say(
            _(
                "A one-time trainer invitation. Whoever opens it first becomes a trainer:\n{link}"
            ).format(link=link(turn, f"t-{code}"))
        )
        return
    revoke = words[0].lower() == "revoke"
    target = words[-1].lstrip("@")
    if not target.isdecimal() or len(target) > 15:
        turn.out.say(
            _(
                "Please give the person's Telegram user id, for example /grant "
                "123456789 (they can see it with @userinfobot)."
            )
        )
        return
    await turn.repo.set_role(f"tg:{target}", "learner" if revoke else "trainer", turn.now)
    turn.out.say(
        (_("{user} is a learner again.") if revoke else _("{user} is now a trainer.")).format(
            user=target
        )
    )


async def accept_invite(turn: Turn, code: str) -> bool:
    _ = turn.t._
    if not code or not await turn.repo.use_invite(code, turn.learner.id):
        turn.out.say(
            _("This trainer invitation is not valid any more. Ask an admin for a new one.")
        )
        return False
    if turn.learner.role == "learner":
        turn.learner.role = "trainer"
    turn.out.say(
        _(
            "You are now a trainer: /newcohort creates a group, /broadcast sends an "
            "announcement, /stats shows how a group is doing, /toolkit opens the "
            "RestART-kit."
        )
    )
    return True
