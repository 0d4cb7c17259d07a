"""Loopback Telegram Bot API server used by the end-to-end tests (see :mod:`.server`)."""

from .server import (
    DEFAULT_TOKEN,
    BotAPIError,
    BotAPIServer,
    FaultRule,
    OutgoingMessage,
    RecordedRequest,
    SlowRule,
    UploadedFile,
    WebhookDelivery,
)

__all__ = [
    "DEFAULT_TOKEN",
    "BotAPIError",
    "BotAPIServer",
    "FaultRule",
    "OutgoingMessage",
    "RecordedRequest",
    "SlowRule",
    "UploadedFile",
    "WebhookDelivery",
]
