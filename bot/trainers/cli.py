"""`restart-tutor broadcast` and `restart-tutor stats`: the trainer's tools in a terminal.

The broadcast goes through the same checks and the same outbox as in the chat; with `--send` this
process also sends it (it needs TELEGRAM_BOT_TOKEN), otherwise the running tutor does, and either
way a progress bar follows the outbox until the delivery report.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime
from pathlib import Path

from tqdm import tqdm

from bot.app import App
from bot.i18n import Translator
from bot.trainers.broadcast import check_content
from bot.trainers.stats import cohort_figures, figures_text
from bot.tutor.zones import resolve_zone
from storage.outbox import Outbox

IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"RIFF")
PHOTO_MAX_BYTES = 10 * 1024 * 1024


def photo_problem(path: Path) -> str | None:
    if not path.is_file():
        return f"{path}: no such file"
    data = path.read_bytes()[:16]
    if path.stat().st_size > PHOTO_MAX_BYTES:
        return f"{path}: larger than Telegram's 10 MB for photos"
    if not data.startswith(IMAGE_MAGIC) or (data.startswith(b"RIFF") and data[8:12] != b"WEBP"):
        return f"{path}: not a PNG, JPEG, GIF or WebP image"
    return None


def fail(message: str) -> int:
    print(message, file=sys.stderr)
    return 2


async def broadcast(
    app: App, cohort_code: str, text: str, photo: Path | None, at: str | None, zone: str, send: bool
) -> int:
    reason = check_content(text, photo is not None)
    if reason == "empty":
        return fail("The announcement is empty: give --text (or --photo with a caption).")
    if reason == "long":
        limit = 1024 if photo else 4096
        return fail(
            f"The text has {len(text.strip()):,} characters; Telegram allows {limit:,}. "
            "Shorten it or send two announcements. Nothing was sent."
        )
    if photo is not None and (problem := photo_problem(photo)):
        return fail(f"{problem}. Nothing was sent.")
    now = app.tutor.clock()
    when = None
    if at:
        try:
            when = datetime.fromisoformat(at).replace(tzinfo=resolve_zone(zone))
        except ValueError:
            return fail(f"--at {at!r}: write it like 2027-03-01 18:30")
        if when <= now:
            return fail("--at is in the past. Nothing was scheduled.")
    async with app.store.unit() as repo:
        cohort = await repo.cohort_by_code(cohort_code)
        if cohort is None:
            return fail(f"No group has the code {cohort_code!r}.")
        broadcast_id = await repo.create_broadcast(cohort.owner_id, None, cohort.id, now)
        await repo.update_broadcast(
            broadcast_id,
            text=text.strip(),
            media_kind="photo" if photo else None,
            media_bytes=photo.read_bytes() if photo else None,
            media_name=photo.name if photo else None,
        )
        if when is not None:
            await repo.update_broadcast(broadcast_id, status="scheduled", scheduled_at=when)
            print(f"Broadcast #{broadcast_id} scheduled for {when.isoformat()}.")
            return 0
        total = await repo.enqueue_broadcast(broadcast_id, [cohort.id], now)
        await repo.update_broadcast(broadcast_id, status="sending", total=total)
    print(f"Broadcast #{broadcast_id} to {total} learners of “{cohort.name}”.")
    sending = asyncio.create_task(_send(app)) if send else None
    counts = await _follow(Outbox(app.engine), broadcast_id, total)
    if sending:
        sending.cancel()
    print(
        f"Delivered: {counts.get('sent', 0)} · blocked: {counts.get('blocked', 0)} · "
        f"failed: {counts.get('failed', 0)} (of {total})."
    )
    return 0


async def _follow(outbox: Outbox, broadcast_id: int, total: int) -> dict[str, int]:
    with tqdm(total=total, unit="msg", desc="sending") as bar:
        while True:
            counts = await outbox.counts(broadcast_id)
            done = sum(counts.get(s, 0) for s in ("sent", "blocked", "failed", "cancelled"))
            bar.update(done - bar.n)
            if done >= total:
                return counts
            await asyncio.sleep(0.5)


async def _send(app: App) -> None:
    """Send from this process, through the same sender and budget as the tutor."""
    from bot.delivery.budget import Budget
    from bot.delivery.sender import Sender
    from bot.delivery.service import composer
    from bot.runtime import make_runner
    from bot.transports.telegram import TelegramGateway

    settings = app.settings
    if not settings.bot_token:
        raise SystemExit("--send needs TELEGRAM_BOT_TOKEN")
    gateway = TelegramGateway(app.tutor, settings.lessons_dir)
    runner = make_runner(settings.transport, settings.bot_token, settings.api_base, gateway)

    async def deliver(chat_id, action):
        await gateway.render(runner.api, chat_id, action)

    sender = Sender(Outbox(app.engine), composer(app.tutor), deliver, Budget(settings.send_rate))
    try:
        await sender.run(asyncio.Event())
    finally:
        await runner.close()


async def stats(app: App, cohort_code: str) -> int:
    async with app.store.unit() as repo:
        cohort = await repo.cohort_by_code(cohort_code)
        if cohort is None:
            return fail(f"No group has the code {cohort_code!r}.")
        rows = (
            await repo.cohort_learners([cohort.id]),
            await repo.cohort_answers([cohort.id]),
            await repo.cohort_completions([cohort.id]),
            await repo.cohort_scores([cohort.id]),
        )
    figures = cohort_figures(app.catalog, *rows, app.tutor.clock())
    print(figures_text(Translator(None), cohort.name, figures))
    return 0
