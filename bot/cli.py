"""`restart-tutor`: the command line (argparse: standard library, no dependency to keep).

restart-tutor chat [--learner NAME]      the tutor in the terminal (no token, no server)
restart-tutor lessons check [--path DIR] list every content error with file and line
restart-tutor lessons stats [--json]     counts and coverage per course
restart-tutor db upgrade                 run the database migrations
restart-tutor run [--transport aiogram|ptb] [--webhook-url URL]   the tutor on Telegram
restart-tutor verify CODE                check a certificate's verification code
restart-tutor broadcast --cohort CODE --text TEXT [--photo P] [--at WHEN] [--send]
restart-tutor stats --cohort CODE        a group's figures
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from bot.config import Settings
from bot.content import ContentInvalid, check_catalog
from bot.content.stats import course_stats

log = logging.getLogger("restart_tutor")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="restart-tutor", description=__doc__.split("\n")[0])
    parser.add_argument("--db", help="database URL (default: $DATABASE_URL or a local SQLite file)")
    parser.add_argument("--lessons", type=Path, help="content folder (default: ./lessons)")
    sub = parser.add_subparsers(dest="command", required=True)

    chat = sub.add_parser("chat", help="talk to the tutor in the terminal")
    chat.add_argument("--learner", default="me", help="learner name (separate progress per name)")

    lessons = sub.add_parser("lessons", help="check the course content")
    lessons_sub = lessons.add_subparsers(dest="lessons_command", required=True)
    check = lessons_sub.add_parser("check", help="validate every file; exit 1 on any error")
    check.add_argument("--path", type=Path, help="folder to check (default: the content folder)")
    stats = lessons_sub.add_parser("stats", help="counts per course")
    stats.add_argument("--json", action="store_true", help="print JSON")

    run = sub.add_parser("run", help="run the tutor on Telegram (needs TELEGRAM_BOT_TOKEN)")
    run.add_argument(
        "--transport",
        choices=("aiogram", "ptb"),
        help="framework (default: $TUTOR_TRANSPORT or aiogram)",
    )
    run.add_argument("--webhook-url", help="public HTTPS URL for webhook mode (default: polling)")
    run.add_argument("--listen", default="0.0.0.0", help="address of the HTTP server")
    run.add_argument("--port", type=int, default=8080, help="port for /healthz and the webhook")

    cast = sub.add_parser("broadcast", help="send an announcement to a group, with progress")
    cast.add_argument("--cohort", required=True, help="the group's code (from /cohorts)")
    cast.add_argument("--text", default="", help="the announcement (the caption with --photo)")
    cast.add_argument("--photo", type=Path, help="a PNG, JPEG, GIF or WebP image to attach")
    cast.add_argument("--at", help="send later: 'YYYY-MM-DD HH:MM' in --zone")
    cast.add_argument("--zone", default="UTC", help="time zone of --at (default UTC)")
    cast.add_argument(
        "--send", action="store_true", help="send from this process too (needs TELEGRAM_BOT_TOKEN)"
    )

    stats = sub.add_parser("stats", help="a group's figures, as in /stats")
    stats.add_argument("--cohort", required=True, help="the group's code")

    verify = sub.add_parser("verify", help="check a certificate's verification code")
    verify.add_argument("code", help="the code printed on the certificate")

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="apply the migrations")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    settings = Settings.from_env()
    if args.db:
        settings = replace(settings, database_url=args.db)
    if args.lessons:
        settings = replace(settings, lessons_dir=args.lessons)
    try:
        match args.command:
            case "lessons":
                return _lessons(args, settings)
            case "chat":
                return asyncio.run(_chat(settings, args.learner))
            case "db":
                return asyncio.run(_db_upgrade(settings))
            case "run":
                return _run(args, settings)
            case "verify":
                return asyncio.run(_verify(settings, args.code))
            case "broadcast" | "stats":
                return asyncio.run(_trainer_tool(settings, args))
    except ContentInvalid as exc:
        print("The course content has errors; fix them and start again:", file=sys.stderr)
        for error in exc.errors:
            print(f"  {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


def _lessons(args: argparse.Namespace, settings: Settings) -> int:
    root = getattr(args, "path", None) or settings.lessons_dir
    catalog, errors = check_catalog(root)
    if args.lessons_command == "check":
        for error in errors:
            print(error)
        if errors:
            print(f"{len(errors)} error(s) in {root}", file=sys.stderr)
            return 1
        assert catalog is not None
        lessons = sum(len(c.lessons) for c in catalog.courses.values())
        print(f"ok: {len(catalog.courses)} courses, {lessons} lessons in {root}")
        return 0
    if catalog is None:
        raise ContentInvalid(errors)
    figures = course_stats(catalog)
    from bot.content.coverage import coverage
    from bot.i18n import LANGUAGES

    others = [lang for lang in LANGUAGES if lang != "en"]
    for course_id, shares in coverage(catalog, settings.locales_dir, others).items():
        figures["courses"][course_id]["translated"] = {"en": 1.0, **shares}
    if args.json:
        print(json.dumps(figures, indent=2, ensure_ascii=False))
    else:
        for course_id, c in figures["courses"].items():
            print(
                f"{course_id}: {c['modules']} modules, {c['lessons']} lessons, "
                f"{c['cards']} cards, {c['questions']} questions, "
                f"{c['tagged_lessons_share']:.0%} of lessons tagged; translated: "
                + ", ".join(f"{lang} {share:.0%}" for lang, share in c["translated"].items())
            )
    return 0


async def _chat(settings: Settings, learner: str) -> int:
    from bot.app import build_app
    from bot.transports.terminal import TerminalChat

    app = await build_app(settings)
    try:
        await TerminalChat(app.tutor, learner).run()
    finally:
        await app.close()
    return 0


NO_TOKEN = (
    "No TELEGRAM_BOT_TOKEN set: create a bot with @BotFather in Telegram (/newbot), put its token "
    "in TELEGRAM_BOT_TOKEN and run again, or try the tutor without Telegram: restart-tutor chat"
)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from bot.logs import configure_logging
    from bot.runtime import RunOptions, run

    if not settings.bot_token:
        print(NO_TOKEN, file=sys.stderr)
        return 2
    configure_logging(settings)
    options = RunOptions(
        transport=args.transport or settings.transport,
        webhook_url=args.webhook_url or settings.webhook_url,
        webhook_secret=settings.webhook_secret,
        listen=args.listen,
        port=args.port,
    )
    if options.transport not in ("aiogram", "ptb"):
        print(f"Unknown transport {options.transport!r}: use aiogram or ptb.", file=sys.stderr)
        return 2
    from bot.delivery.sender import SenderLocked

    try:
        asyncio.run(run(settings, options))
    except SenderLocked as exc:
        print(exc, file=sys.stderr)
        return 3
    return 0


async def _trainer_tool(settings: Settings, args: argparse.Namespace) -> int:
    from bot.app import build_app
    from bot.trainers import cli

    app = await build_app(settings)
    try:
        if args.command == "stats":
            return await cli.stats(app, args.cohort)
        return await cli.broadcast(
            app, args.cohort, args.text, args.photo, args.at, args.zone, args.send
        )
    finally:
        await app.close()


async def _verify(settings: Settings, code: str) -> int:
    from bot.app import build_app
    from bot.i18n import Translator
    from bot.media.certificate import normalise_code
    from bot.tutor.certify import verdict

    app = await build_app(settings)
    try:
        canonical = normalise_code(code)
        async with app.store.unit() as repo:
            fact = await repo.certificate_by_code(canonical) if canonical else None
        print(verdict(app.catalog, Translator(None), fact))
        return 0 if fact else 1
    finally:
        await app.close()


async def _db_upgrade(settings: Settings) -> int:
    from storage.db import create_engine, current_revision, upgrade

    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine)
        print(f"database at revision {await current_revision(engine)}")
    finally:
        await engine.dispose()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
