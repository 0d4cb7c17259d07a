"""Log lines: the token never appears, and libraries do not write a line per update."""

from __future__ import annotations

import io
import logging

import pytest

from bot.config import Settings
from bot.logs import CHATTY, configure_logging

TOKEN = "123456:SECRET-TOKEN"


@pytest.fixture
def log():
    stream = io.StringIO()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in CHATTY}
    configure_logging(Settings(bot_token=TOKEN), logging.INFO, stream)
    yield stream
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, chatty_level in levels.items():
        logging.getLogger(name).setLevel(chatty_level)


def test_a_line_per_update_is_dropped_and_errors_kept(log):
    logging.getLogger("aiogram.event").info("Update id=7 is handled. Duration 2 ms by bot id=1")
    logging.getLogger("aiogram.event").error("Cause exception while process update id=8")
    logging.getLogger("bot.runtime").info("RestART Tutor running")
    text = log.getvalue()
    assert "is handled" not in text
    assert "update id=8" in text and "RestART Tutor running" in text


def test_the_token_is_redacted_from_messages_and_tracebacks(log):
    logging.getLogger("aiohttp.client").warning("POST https://api.telegram.org/bot%s/x", TOKEN)
    try:
        raise RuntimeError(f"https://api.telegram.org/bot{TOKEN}/sendMessage failed")
    except RuntimeError:
        logging.getLogger("bot.delivery").exception("send failed")
    text = log.getvalue()
    assert TOKEN not in text
    assert text.count("<token>") == 2
