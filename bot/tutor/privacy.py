"""Data rights in the chat: `/mydata` sends everything stored about the learner as JSON;
`/deleteme` asks once more, then erases every personal row (answers included: the tutor keeps
no copy, not even anonymous)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from bot.tutor.events import Button, Document

if TYPE_CHECKING:
    from bot.tutor.engine import Turn


async def my_data(turn: Turn, _args: str = "") -> None:
    _ = turn.t._
    data = await turn.repo.export_everything(turn.learner.id)
    body = json.dumps(data, indent=2, ensure_ascii=False, default=str).encode()
    turn.out.actions.append(
        Document(
            "my-restart-tutor-data.json",
            body,
            _("Everything RestART Tutor stores about you. /deleteme erases it."),
        )
    )


async def delete_me(turn: Turn, _args: str = "") -> None:
    _ = turn.t._
    turn.out.say(
        _(
            "This erases your profile, answers, progress, streak, reviews, groups and "
            "certificates, for good. Certificates you shared will no longer verify. "
            "Are you sure?"
        ),
        (
            (
                Button(_("Yes, delete everything"), "del:yes"),
                Button(_("No, keep my data"), "del:no"),
            ),
        ),
    )


async def delete_press(turn: Turn, value: str) -> None:
    _ = turn.t._
    if value != "yes":
        turn.out.say(_("Nothing was deleted."))
        return
    await turn.repo.erase_everything(turn.learner.id, turn.learner.chat_id)
    turn.out.say(
        _(
            "Done: everything about you has been deleted. If you write to me again, "
            "I will start from scratch."
        )
    )
