"""Settings from the environment, read once by the composition root (never at import time)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "sqlite:///restart-tutor.db"


def _ids(raw: str) -> frozenset[int]:
    return frozenset(
        int(p) for p in raw.replace(",", " ").split() if p.strip().lstrip("-").isdecimal()
    )


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    lessons_dir: Path = ROOT / "lessons"
    locales_dir: Path = ROOT / "locales"
    bot_token: str | None = field(default=None, repr=False)
    api_base: str | None = None
    transport: str = "aiogram"
    admins: frozenset[int] = frozenset()
    log_format: str = "text"
    send_rate: float = 25.0
    """Messages per second for the whole token (Telegram allows ~30; 1000 with paid broadcasts)."""
    throttle: str = "20/5"
    """Per-learner flood control: at most N updates per S seconds ("N/S")."""
    sender_lease: float = 120.0
    """Seconds before a row claimed by a dead process may be claimed again."""
    webhook_url: str | None = None
    webhook_secret: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        return cls(
            database_url=env.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
            lessons_dir=Path(env.get("TUTOR_LESSONS_DIR") or ROOT / "lessons"),
            locales_dir=Path(env.get("TUTOR_LOCALES_DIR") or ROOT / "locales"),
            bot_token=env.get("TELEGRAM_BOT_TOKEN") or None,
            api_base=env.get("TELEGRAM_API_BASE") or None,
            transport=(env.get("TUTOR_TRANSPORT") or "aiogram").lower(),
            admins=_ids(env.get("TUTOR_ADMINS", "")),
            log_format=(env.get("LOG_FORMAT") or "text").lower(),
            send_rate=float(env.get("TUTOR_SEND_RATE") or 25.0),
            sender_lease=float(env.get("TUTOR_SENDER_LEASE_SECONDS") or 120.0),
            throttle=env.get("TUTOR_THROTTLE") or "20/5",
            webhook_url=env.get("TUTOR_WEBHOOK_URL") or None,
            webhook_secret=env.get("TUTOR_WEBHOOK_SECRET") or None,
        )
