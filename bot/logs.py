"""Logging set-up: plain text or one JSON object a line, and the bot token never in a log line.

httpx (under python-telegram-bot) and aiohttp log request URLs, and a Bot API URL contains the
token; the redacting filter on our handler replaces it wherever it appears, and those chatty
loggers are kept at WARNING. So is `aiogram.event`, which writes one INFO line for every update
handled ("Update id=… is handled"): per-update counts and timings are in the metrics, and its
errors still come through.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from bot.config import Settings

REDACTED = "<token>"
CHATTY = ("httpx", "httpcore", "aiohttp.access", "apscheduler", "aiosqlite", "aiogram.event")
"""Libraries' loggers kept at WARNING: request lines with the token in their URL, or a line per
update."""


class RedactToken(logging.Filter):
    def __init__(self, secrets: list[str]):
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(s in message for s in self.secrets):
            for secret in self.secrets:
                message = message.replace(secret, REDACTED)
            record.msg, record.args = message, None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            for secret in self.secrets:
                text = text.replace(secret, REDACTED)
            record.exc_text, record.exc_info = text, None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_text:
            entry["error"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(
    settings: Settings, level: int = logging.INFO, stream=None, quiet_libraries: bool = True
) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(RedactToken([settings.bot_token or "", settings.webhook_secret or ""]))
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    if quiet_libraries:
        for chatty in CHATTY:
            logging.getLogger(chatty).setLevel(logging.WARNING)
    return handler
