"""Broadcasts: audience → message (text, or a photo or document with a caption) → a preview
exactly as learners will see it → send now or at a date and time in the trainer's zone.

Sending is the outbox's job (rate limits, 429, 403); the delivery service's broadcast monitor
edits a progress message as it goes and ends with the delivery report. A broadcast in flight or
scheduled can be cancelled. The content rules (not empty, within Telegram's sizes) live in
`check_content`, shared with `restart-tutor broadcast`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot import limits
from bot.trainers.roles import is_admin, trainer_only
from bot.tutor.events import Attachment, Button, Media, Reply

if TYPE_CHECKING:
    from bot.tutor.engine import Turn


MAX_SCHEDULE_DAYS = 365


def check_content(text: str | None, has_media: bool) -> str | None:
    """Why this content cannot be sent, in plain English (translated by the caller); None if
    it can."""
    text = (text or "").strip()
    if not text and not has_media:
        return "empty"
    limit = limits.CAPTION_MAX if has_media else limits.MESSAGE_TEXT_MAX
    if len(text) > limit:
        return "long"
    return None


def refusal(turn: Turn, reason: str, text: str | None, has_media: bool) -> str:
    _ = turn.t._
    if reason == "empty":
        return _("The announcement is empty. Send some text, or a photo or document.")
    limit = limits.CAPTION_MAX if has_media else limits.MESSAGE_TEXT_MAX
    return _(
        "Your text has {n} characters; Telegram allows {limit} here. Please shorten it "
        "or send it as two announcements. Nothing was sent."
    ).format(n=turn.t.number(len((text or "").strip())), limit=turn.t.number(limit))


def message_of(row) -> Reply | Attachment:
    """What learners receive for a broadcast row from the database."""
    if row.media_kind:
        return Attachment(
            row.media_kind,
            row.text or "",
            file_id=row.media_id,
            content=row.media_bytes,
            filename=row.media_name or "file",
        )
    return Reply(row.text or "")


async def _own(turn: Turn, broadcast_id: str):
    row = await turn.repo.broadcast(int(broadcast_id)) if broadcast_id.isdecimal() else None
    if row is None or (row.owner_id != turn.learner.id and not is_admin(turn)):
        _ = turn.t._
        turn.out.say(_("That announcement is not yours."))
        return None
    return row


@trainer_only
async def start(turn: Turn, _args: str = "") -> None:
    _ = turn.t._
    cohorts = await turn.repo.cohorts(turn.learner.id)
    if not cohorts:
        turn.out.say(_("Create a group first: /newcohort"))
        return
    buttons = [(Button(f"{c.name[:40]} ({c.members})", f"ba:{c.id}"),) for c in cohorts]
    buttons.append((Button(_("All my groups"), "ba:all"),))
    turn.out.say(_("Who should receive the announcement?"), tuple(buttons))


@trainer_only
async def audience(turn: Turn, value: str) -> None:
    _ = turn.t._
    cohort_id = None
    if value != "all":
        cohort = await turn.repo.cohort(int(value)) if value.isdecimal() else None
        if cohort is None or (cohort.owner_id != turn.learner.id and not is_admin(turn)):
            turn.out.say(_("That group is not yours to manage."))
            return
        cohort_id = cohort.id
    broadcast_id = await turn.repo.create_broadcast(
        turn.learner.id, turn.learner.chat_id, cohort_id, turn.now
    )
    turn.learner.awaiting = f"bc:{broadcast_id}"
    turn.out.say(_("Now send the announcement: a text, or a photo or document with a caption."))


async def content(turn: Turn, event: str | Media) -> None:
    """The trainer's message while we wait for a broadcast's content."""
    _ = turn.t._
    broadcast_id = (turn.learner.awaiting or "").removeprefix("bc:")
    row = await _own(turn, broadcast_id)
    if row is None or row.status != "draft":
        turn.learner.awaiting = None
        return
    media = event if isinstance(event, Media) else None
    text = media.caption if media else str(event)
    reason = check_content(text, media is not None)
    if reason:
        turn.out.say(refusal(turn, reason, text, media is not None))
        return
    await turn.repo.update_broadcast(
        row.id,
        text=text.strip(),
        media_kind=media.kind if media else None,
        media_id=media.file_id if media else None,
        media_name=(media.filename if media else None),
    )
    turn.learner.awaiting = None
    await preview(turn, row.id)


async def preview(turn: Turn, broadcast_id: int) -> None:
    _ = turn.t._
    row = await turn.repo.broadcast(broadcast_id)
    cohorts = (
        [row.cohort_id]
        if row.cohort_id
        else [c.id for c in await turn.repo.cohorts(turn.learner.id)]
    )
    members = sum(c.members for c in await turn.repo.cohorts(None) if c.id in cohorts)
    turn.out.say(_("Preview: this is exactly what your learners will see."))
    turn.out.actions.append(message_of(row))
    turn.out.say(
        _("Send it to {n} learners?").format(n=members),
        (
            (Button(_("Send now"), f"bs:{row.id}"), Button(_("Schedule"), f"bl:{row.id}")),
            (Button(_("Cancel"), f"bx:{row.id}"),),
        ),
    )


async def _audience_ids(turn: Turn, row) -> list[int]:
    if row.cohort_id:
        return [row.cohort_id]
    return [c.id for c in await turn.repo.cohorts(row.owner_id)]


async def _draft(turn: Turn, value: str):
    """The trainer's announcement if it is still a draft; a polite word otherwise (a replayed
    button, an announcement already sent or cancelled)."""
    row = await _own(turn, value)
    if row is not None and row.status != "draft":
        _ = turn.t._
        turn.out.say(_("This announcement has already been handled."))
        return None
    return row


@trainer_only
async def send_now(turn: Turn, value: str) -> None:
    _ = turn.t._
    row = await _draft(turn, value)
    if row is None:
        return
    total = await turn.repo.enqueue_broadcast(row.id, await _audience_ids(turn, row), turn.now)
    await turn.repo.update_broadcast(row.id, status="sending", total=total)
    turn.out.say(
        _("Sending to {n} learners. I'll report progress here.").format(n=turn.t.number(total))
    )


@trainer_only
async def schedule_ask(turn: Turn, value: str) -> None:
    _ = turn.t._
    row = await _draft(turn, value)
    if row is None:
        return
    turn.learner.awaiting = f"bt:{row.id}"
    turn.out.say(
        _(
            "When shall I send it? Write the date and time in your time zone ({zone}), "
            "for example 2027-03-01 18:30."
        ).format(zone=turn.learner.time_zone or "UTC")
    )


async def schedule_typed(turn: Turn, text: str) -> None:
    _ = turn.t._
    row = await _own(turn, (turn.learner.awaiting or "").removeprefix("bt:"))
    if row is None or row.status != "draft":
        turn.learner.awaiting = None
        if row is not None:
            turn.out.say(_("This announcement has already been handled."))
        return
    try:
        local = datetime.fromisoformat(" ".join(text.split()).replace("T", " "))
    except ValueError:
        turn.out.say(_("I could not read that. Please write it like 2027-03-01 18:30."))
        return
    when = local.replace(tzinfo=turn.zone) if local.tzinfo is None else local
    try:
        too_far = when - turn.now > timedelta(days=MAX_SCHEDULE_DAYS)
    except OverflowError:
        too_far = True
    if too_far:
        turn.out.say(
            _("Please choose a moment within the next {n} days.").format(n=MAX_SCHEDULE_DAYS)
        )
        return
    if when <= turn.now:
        turn.out.say(_("That moment is in the past. Please give a future date and time."))
        return
    turn.learner.awaiting = None
    await turn.repo.update_broadcast(row.id, status="scheduled", scheduled_at=when)
    turn.out.say(
        _("Scheduled for {when}. /broadcasts lists it; you can cancel it there.").format(
            when=turn.t.datetime(when, turn.zone)
        )
    )


@trainer_only
async def cancel(turn: Turn, value: str) -> None:
    _ = turn.t._
    row = await _own(turn, value)
    if row is None:
        return
    if row.status in ("done", "cancelled"):
        turn.out.say(_("This announcement is already finished."))
        return
    stopped = await turn.repo.cancel_broadcast_rows(row.id)
    await turn.repo.update_broadcast(row.id, status="cancelled")
    if turn.learner.awaiting in (f"bc:{row.id}", f"bt:{row.id}"):
        turn.learner.awaiting = None
    turn.out.say(
        _("Cancelled. {n} messages will not be sent.").format(n=turn.t.number(stopped))
        if stopped
        else _("Cancelled.")
    )


@trainer_only
async def list_broadcasts(turn: Turn, _args: str = "") -> None:
    _ = turn.t._
    rows = await turn.repo.broadcasts(
        None if is_admin(turn) else turn.learner.id, ("scheduled", "sending")
    )
    if not rows:
        turn.out.say(_("No announcement is scheduled or being sent."))
        return
    lines, buttons = [], []
    for row in rows:
        when = (
            turn.t.datetime(row.scheduled_at, turn.zone)
            if row.status == "scheduled"
            else _("sending now")
        )
        lines.append(f"#{row.id} · {when} · {(row.text or '')[:60]}")
        buttons.append((Button(_("Cancel #{id}").format(id=row.id), f"bx:{row.id}"),))
    turn.out.say("\n".join(lines), tuple(buttons))
