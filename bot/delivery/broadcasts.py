"""The broadcast monitor: starts scheduled broadcasts when due, and keeps each trainer's progress
message up to date ("Sending: 1,200 of 5,000"), ending with the delivery report.

It reads the counts from the outbox, so the report is exactly what was delivered, blocked or
failed, across every instance that helped send.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from bot.i18n import Translator
from bot.transports.telegram import BotApi, SendError
from bot.tutor.ports import utcnow
from storage.outbox import Outbox
from storage.repository import SqlStore

log = logging.getLogger(__name__)
DONE = ("sent", "blocked", "failed", "cancelled")


def _message_id(message: Any) -> int | None:
    return message.get("message_id") if isinstance(message, dict) else None


class BroadcastMonitor:
    def __init__(
        self, store: SqlStore, api: BotApi, locales_dir, clock: Callable[[], datetime] = utcnow
    ):
        self.store = store
        self.outbox = Outbox(store.engine)
        self.api = api
        self.locales_dir = locales_dir
        self.clock = clock

    async def tick(self) -> None:
        now = self.clock()
        async with self.store.unit() as repo:
            for row in await repo.broadcasts(None, ("scheduled",)):
                if row.scheduled_at and row.scheduled_at <= now:
                    cohorts = (
                        [row.cohort_id]
                        if row.cohort_id
                        else [c.id for c in await repo.cohorts(row.owner_id)]
                    )
                    total = await repo.enqueue_broadcast(row.id, cohorts, now)
                    await repo.update_broadcast(row.id, status="sending", total=total)
            sending = [
                (row, (await repo.learner_by_id(row.owner_id)))
                for row in await repo.broadcasts(None, ("sending",))
            ]
        for row, owner in sending:
            await self._report(row, owner.language if owner else None)

    async def _report(self, row, language: str | None) -> None:
        t = Translator(language, self.locales_dir)
        _ = t.gettext
        counts = await self.outbox.counts(row.id)
        total = sum(counts.values())
        done = sum(counts.get(s, 0) for s in DONE)
        finished = done == total
        if finished:
            text = _(
                "📣 Announcement #{id} finished. Delivered: {sent} · blocked: {blocked} · "
                "failed: {failed} (of {total})."
            ).format(
                id=row.id,
                sent=t.number(counts.get("sent", 0)),
                blocked=t.number(counts.get("blocked", 0)),
                failed=t.number(counts.get("failed", 0)),
                total=t.number(total),
            )
        else:
            text = _("📣 Sending: {done} of {total}").format(
                done=t.number(done), total=t.number(total)
            )
        message_id = row.progress_message_id
        try:
            if row.owner_chat_id is None:
                pass
            elif message_id is None:
                message_id = _message_id(
                    await self.api.call("sendMessage", {"chat_id": row.owner_chat_id, "text": text})
                )
            elif text != row.progress_text:
                await self.api.call(
                    "editMessageText",
                    {"chat_id": row.owner_chat_id, "message_id": message_id, "text": text},
                )
            if finished and row.owner_chat_id is not None and row.progress_message_id:
                await self.api.call("sendMessage", {"chat_id": row.owner_chat_id, "text": text})
        except SendError as exc:
            log.info("broadcast %s progress not shown: %s", row.id, exc)
        async with self.store.unit() as repo:
            await repo.update_broadcast(
                row.id,
                progress_message_id=message_id,
                progress_text=text,
                **({"status": "done"} if finished else {}),
            )
