"""A loopback Telegram Bot API server for end-to-end tests.

:class:`BotAPIServer` speaks the HTTP protocol of https://core.telegram.org/bots/api closely
enough that the real aiogram and python-telegram-bot clients can be pointed at it:

* aiogram: ``AiohttpSession(api=TelegramAPIServer.from_base(server.base_url))``
* PTB: ``telegram.Bot(token, base_url=server.ptb_base_url)`` or
  ``ApplicationBuilder().base_url(server.ptb_base_url)``

Requests are ``GET``/``POST {base}/bot{token}/{method}`` with parameters in the query string,
a JSON body, an urlencoded form or ``multipart/form-data`` (nested values arrive as JSON strings
and are decoded; file parts are recorded as :class:`UploadedFile`). Every answer has the real
shape: ``{"ok": true, "result": ...}`` or ``{"ok": false, "error_code": N, "description": ...}``.

The test plays the users (:meth:`BotAPIServer.user_sends`, :meth:`BotAPIServer.user_presses`,
...), inspects what the bot did (:attr:`BotAPIServer.requests`, :meth:`BotAPIServer.sent`, ...)
and injects faults (:meth:`BotAPIServer.fail`, :meth:`BotAPIServer.slow`,
:meth:`BotAPIServer.enforce_limits`). Request handling does O(1) work apart from parsing the
request itself, so the server can be used in benchmarks.

All state lives on the event loop of the caller: use one server per event loop and call the
synchronous helpers from that loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import math
import mimetypes
import re
import socket
import struct
import time
import zlib
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from aiohttp import ClientError, ClientSession, ClientTimeout, MultipartReader, web

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

T = TypeVar("T")
ChatKey = int | str
Params = dict[str, Any]
Handler = Callable[[Params], Awaitable[Any]]

DEFAULT_TOKEN = "123456:TEST-TOKEN"

#: Every update type of the Bot API, in the order of the ``Update`` documentation.
UPDATE_TYPES: tuple[str, ...] = (
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "business_connection",
    "business_message",
    "edited_business_message",
    "deleted_business_messages",
    "message_reaction",
    "message_reaction_count",
    "inline_query",
    "chosen_inline_result",
    "callback_query",
    "shipping_query",
    "pre_checkout_query",
    "purchased_paid_media",
    "poll",
    "poll_answer",
    "my_chat_member",
    "chat_member",
    "chat_join_request",
    "chat_boost",
    "removed_chat_boost",
)
#: What Telegram delivers when ``allowed_updates`` was never given (or given as ``[]``).
DEFAULT_ALLOWED_UPDATES: frozenset[str] = frozenset(UPDATE_TYPES) - {
    "chat_member",
    "message_reaction",
    "message_reaction_count",
}

# Parameters whose values arrive JSON-encoded in forms and are decoded before recording.
_JSON_FIELDS = frozenset(
    {
        "reply_markup",
        "entities",
        "caption_entities",
        "options",
        "allowed_updates",
        "commands",
        "scope",
        "results",
        "link_preview_options",
        "reply_parameters",
        "correct_option_ids",
        "question_entities",
        "explanation_entities",
        "description_entities",
        "country_codes",
        "media",
        "explanation_media",
        "button",
        "menu_button",
        "rights",
        "message_ids",
        "reaction",
        "permissions",
        "prices",
        "input_message_content",
    }
)
# Parameters normalised to ``int`` / ``bool`` so recorded params look alike for every client.
_INT_FIELDS = frozenset(
    {
        "chat_id",
        "from_chat_id",
        "user_id",
        "message_id",
        "message_thread_id",
        "reply_to_message_id",
        "offset",
        "limit",
        "timeout",
        "cache_time",
        "correct_option_id",
        "open_period",
        "close_date",
        "until_date",
        "max_connections",
    }
)
_BOOL_FIELDS = frozenset(
    {
        "show_alert",
        "is_anonymous",
        "allows_multiple_answers",
        "allows_revoting",
        "members_only",
        "shuffle_options",
        "is_closed",
        "disable_notification",
        "protect_content",
        "allow_sending_without_reply",
        "allow_paid_broadcast",
        "disable_web_page_preview",
        "drop_pending_updates",
        "is_personal",
        "has_spoiler",
        "show_caption_above_media",
        "disable_content_type_detection",
        "for_channels",
        "is_big",
    }
)
# Outgoing-message methods that count for the flood guard.
_FLOOD_METHODS = frozenset(
    {
        "sendMessage",
        "sendPhoto",
        "sendDocument",
        "sendPoll",
        "sendMediaGroup",
        "sendSticker",
        "sendVideo",
        "sendAudio",
        "sendVoice",
        "sendAnimation",
        "sendLocation",
        "sendContact",
        "sendDice",
        "copyMessage",
        "forwardMessage",
    }
)
# Methods that only need to be accepted (answer ``true``) and recorded.
_ACCEPTED_METHODS: tuple[str, ...] = (
    "setChatMenuButton",
    "setMyDefaultAdministratorRights",
    "setMessageReaction",
    "pinChatMessage",
    "unpinChatMessage",
    "unpinAllChatMessages",
    "deleteMessages",
    "leaveChat",
    "logOut",
    "close",
)
_CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
_BUTTON_ACTIONS = (
    "callback_data",
    "url",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
_ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "Bad Request: injected failure",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
_NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
_QUERY_INVALID = "query is too old and response timeout expired or query ID is invalid"
_TEXT_LIMIT = 4096
_CAPTION_LIMIT = 1024
_HEAD_BYTES = 64
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")
_COMMAND_RE = re.compile(r"[a-z0-9_]{1,32}")
_NUMBER_RE = re.compile(r"-?\d+")


# ---------------------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UploadedFile:
    """A file part of a ``multipart/form-data`` request."""

    field: str
    filename: str | None
    size: int
    head: bytes
    content_type: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (``head`` as hex) used by the control interface."""
        return {
            "field": self.field,
            "filename": self.filename,
            "size": self.size,
            "head": self.head.hex(),
            "content_type": self.content_type,
        }


@dataclass
class RecordedRequest:
    """One Bot API call as the server saw it.

    ``method`` is the canonical method name (``"sendMessage"``) or, for unknown methods, the
    name as requested. ``params`` holds the decoded parameters (nested JSON decoded, well-known
    integer and boolean fields normalised, files as :class:`UploadedFile`). ``time`` is the
    :func:`time.monotonic` arrival time and ``status`` the HTTP status answered (``0`` while
    still being handled or when the connection was dropped on purpose).
    """

    method: str
    params: Params
    time: float
    status: int = 0
    via: str = "http"  # "http" or "webhook-reply"


@dataclass(frozen=True)
class OutgoingMessage:
    """A successful call whose result is a Message: what the bot sent or edited."""

    method: str
    chat_id: ChatKey
    message: dict[str, Any]
    params: Params
    time: float


@dataclass(frozen=True)
class WebhookDelivery:
    """One attempt to POST an update to the webhook (``status`` 0: connection failed)."""

    update_id: int
    url: str
    status: int
    attempt: int
    time: float
    secret_token: str | None
    error: str | None
    update: dict[str, Any]


@dataclass
class FaultRule:
    """Answer matching calls with an error; see :meth:`BotAPIServer.fail`."""

    method: str | None
    status: int
    retry_after: int
    remaining: int | None
    chat_id: ChatKey | None = None
    description: str | None = None
    body: str | None = None
    hits: int = 0


@dataclass
class SlowRule:
    """Delay matching calls; see :meth:`BotAPIServer.slow`."""

    method: str | None
    seconds: float
    remaining: int | None
    hits: int = 0


@dataclass
class _Limits:
    per_chat_per_second: int | None
    global_per_second: int | None
    per_group_per_minute: int | None
    retry_after: int | None


@dataclass
class _Webhook:
    url: str
    secret_token: str | None
    max_connections: int
    ip_address: str | None
    last_error_date: int | None = None
    last_error_message: str | None = None


class BotAPIError(Exception):
    """An error answer of the Bot API (``{"ok": false, ...}``)."""

    def __init__(
        self, status: int, description: str, parameters: dict[str, Any] | None = None
    ) -> None:
        super().__init__(f"{status} {description}")
        self.status = status
        self.description = description
        self.parameters = parameters

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = self.parameters
        return body


class _Described:
    """A result together with the ``description`` Telegram sends along (setWebhook...)."""

    __slots__ = ("description", "result")

    def __init__(self, result: Any, description: str) -> None:
        self.result = result
        self.description = description


def _bad_request(message: str) -> BotAPIError:
    return BotAPIError(400, f"Bad Request: {message}")


def _too_many_requests(retry_after: int) -> BotAPIError:
    return BotAPIError(
        429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after}
    )


# ---------------------------------------------------------------------------------------------
# Parameter helpers
# ---------------------------------------------------------------------------------------------


def _dumps(obj: Any) -> str:
    return _ENCODER.encode(obj)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, UploadedFile):
        return obj.as_dict()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if isinstance(obj, bytes | bytearray):
        return obj.hex()
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_json_default)


def _normalise(params: Params, files: Mapping[str, UploadedFile]) -> Params:
    """Decode JSON fields, resolve ``attach://`` names and coerce well-known scalar fields."""
    attached: set[str] = set()
    for name, value in params.items():
        if isinstance(value, str):
            if value.startswith("attach://") and value[9:] in files:
                params[name] = files[value[9:]]
                attached.add(value[9:])
            elif name in _JSON_FIELDS:
                with contextlib.suppress(ValueError):
                    params[name] = json.loads(value)
            elif name in _INT_FIELDS and _NUMBER_RE.fullmatch(value.strip()):
                params[name] = int(value)
            elif name in _BOOL_FIELDS and value.lower() in ("true", "false", "1", "0"):
                params[name] = value.lower() in ("true", "1")
    for name, file in files.items():
        if name not in attached:
            params.setdefault(name, file)
    return params


def _opt_int(params: Params, name: str) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _NUMBER_RE.fullmatch(value.strip()):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise _bad_request(f'field "{name}" must be of type Integer')


def _req_int(params: Params, name: str, missing: str) -> int:
    value = _opt_int(params, name)
    if value is None:
        raise _bad_request(missing)
    return value


def _opt_float(params: Params, name: str, default: float) -> float:
    value = params.get(name)
    if value is None or value == "":
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        raise _bad_request(f'field "{name}" must be a Number') from None


def _opt_bool(params: Params, name: str, default: bool) -> bool:
    value = params.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    return str(value).lower() in ("true", "1")


def _opt_str(params: Params, name: str) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    raise _bad_request(f'field "{name}" must be of type String')


def _opt_list(params: Params, name: str) -> list[Any] | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, list):
        raise _bad_request(f"can't parse {name} JSON object")
    return value


def _chat_key(value: Any) -> ChatKey:
    """Normalise a ``chat_id`` (``int``, ``"123"`` or ``"@channel"``); ValueError if invalid."""
    if isinstance(value, bool):
        raise ValueError("chat_id must be an integer or @username")
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if _NUMBER_RE.fullmatch(text):
        return int(text)
    if text.startswith("@") and len(text) > 1:
        return text
    raise ValueError(f"invalid chat_id {value!r}")


def _u16len(text: str) -> int:
    """Length in UTF-16 code units, the unit of MessageEntity offsets."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le")) // 2


def _update_type(update: Mapping[str, Any]) -> str | None:
    for key in update:
        if key != "update_id":
            return key
    return None


# ---------------------------------------------------------------------------------------------
# Formatting: parse_mode HTML / MarkdownV2 / Markdown -> (plain text, entities)
# ---------------------------------------------------------------------------------------------


class EntityParseError(ValueError):
    """The text does not follow the parse_mode rules (Telegram: "can't parse entities")."""


_HTML_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_HTML_NAME_RE = re.compile(r"[a-zA-Z][a-zA-Z0-9-]*")
_HTML_ATTR_RE = re.compile(r"""([a-zA-Z_][\w-]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?""")
_HTML_ENTITY_RE = re.compile(r"&(?:#[xX]([0-9a-fA-F]{1,6})|#([0-9]{1,7})|([a-zA-Z]{2,6}));")
_HTML_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


def _html_entity(match: re.Match[str]) -> str:
    hex_code, dec_code, name = match.groups()
    if name is not None:
        return _HTML_NAMED.get(name, match.group(0))
    code = int(hex_code, 16) if hex_code is not None else int(dec_code)
    if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF:
        return chr(code)
    return match.group(0)


def _html_unescape(text: str) -> str:
    return _HTML_ENTITY_RE.sub(_html_entity, text) if "&" in text else text


def parse_html(text: str) -> tuple[str, list[dict[str, Any]]]:
    """Parse Telegram's HTML subset; return the plain text and its MessageEntity dicts."""
    out: list[str] = []
    pos = 0  # current UTF-16 offset in the plain text
    stack: list[tuple[str, int, dict[str, str], int]] = []
    entities: list[dict[str, Any]] = []
    i, n = 0, len(text)
    while i < n:
        lt = text.find("<", i)
        amp = text.find("&", i)
        stop = min(x for x in (lt, amp, n) if x >= 0)
        if stop > i:
            chunk = text[i:stop]
            out.append(chunk)
            pos += _u16len(chunk)
            i = stop
            continue
        if text[i] == "&":
            match = _HTML_ENTITY_RE.match(text, i)
            chunk = _html_entity(match) if match else "&"
            out.append(chunk)
            pos += _u16len(chunk)
            i = match.end() if match else i + 1
            continue
        end = text.find(">", i)
        if end < 0:
            raise EntityParseError(f"Unclosed start tag at byte offset {_byte_offset(text, i)}")
        inner = text[i + 1 : end]
        if inner.startswith("/"):
            name = inner[1:].strip().lower()
            if not stack:
                raise EntityParseError(f"Unexpected end tag at byte offset {_byte_offset(text, i)}")
            tag, start, attrs, _ = stack.pop()
            if name != tag:
                raise EntityParseError(
                    f"Unmatched end tag at byte offset {_byte_offset(text, i)}, "
                    f'expected "</{tag}>", found "</{name}>"'
                )
            entity = _html_tag_entity(tag, attrs, start, pos - start, stack)
            if entity is not None:
                entities.append(entity)
        else:
            match = _HTML_NAME_RE.match(inner)
            name = match.group(0).lower() if match else ""
            if name not in _HTML_TAGS:
                raise EntityParseError(
                    f'Unsupported start tag "{name}" at byte offset {_byte_offset(text, i)}'
                )
            attrs = {
                m.group(1).lower(): _html_unescape(m.group(2) or m.group(3) or m.group(4) or "")
                for m in _HTML_ATTR_RE.finditer(inner, len(name))
            }
            if name == "span" and attrs.get("class") != "tg-spoiler":
                raise EntityParseError(
                    'Tag "span" must have class "tg-spoiler" at byte offset '
                    f"{_byte_offset(text, i)}"
                )
            stack.append((name, pos, attrs, i))
        i = end + 1
    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


def _html_tag_entity(
    tag: str,
    attrs: dict[str, str],
    offset: int,
    length: int,
    stack: list[tuple[str, int, dict[str, str], int]],
) -> dict[str, Any] | None:
    kind = _HTML_TAGS[tag]
    if tag == "code" and stack and stack[-1][0] == "pre":
        # <pre><code class="language-x">: the language belongs to the enclosing pre entity.
        language = attrs.get("class", "")
        if language.startswith("language-"):
            stack[-1][2]["_language"] = language[len("language-") :]
        return None
    if length == 0:
        return None
    entity: dict[str, Any] = {"type": kind, "offset": offset, "length": length}
    if tag == "a":
        href = attrs.get("href")
        if not href:
            return None
        entity["url"] = href
    elif tag == "pre" and attrs.get("_language"):
        entity["language"] = attrs["_language"]
    elif tag == "blockquote" and "expandable" in attrs:
        entity["type"] = "expandable_blockquote"
    elif tag == "tg-emoji":
        entity["custom_emoji_id"] = attrs.get("emoji-id", "")
    return entity


_MDV2_RESERVED = frozenset("_*[]()~`>#+-=|{}.!")
_MDV2_PLAIN_RE = re.compile(r"[^_*\[\]()~`>#+\-=|{}.!\\\n]+")
_MDV2_MARKERS = {
    "*": "bold",
    "_": "italic",
    "__": "underline",
    "~": "strikethrough",
    "||": "spoiler",
}
_MDV2_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "text_link": "TextUrl",
    "custom_emoji": "CustomEmoji",
}


def parse_markdown_v2(text: str) -> tuple[str, list[dict[str, Any]]]:
    """Parse MarkdownV2 (reserved characters must be escaped); return text and entities."""
    out: list[str] = []
    pos = 0
    stack: list[tuple[str, int, int]] = []  # (entity type, utf-16 start, index in text)
    entities: list[dict[str, Any]] = []
    quote: list[Any] | None = None  # [start, expandable, end of the last quoted line]
    line_start = True
    i, n = 0, len(text)

    def emit(chunk: str) -> None:
        nonlocal pos
        out.append(chunk)
        pos += _u16len(chunk)

    def scan_until(start: int, closing: str, what: str, at: int) -> tuple[str, int]:
        """Read escaped content up to ``closing``; return it and the index after ``closing``."""
        chunk: list[str] = []
        j = start
        while j < n:
            if text[j] == "\\" and j + 1 < n:
                chunk.append(text[j + 1])
                j += 2
            elif text.startswith(closing, j):
                return "".join(chunk), j + len(closing)
            else:
                chunk.append(text[j])
                j += 1
        raise EntityParseError(f"Can't find end of {what} entity at byte offset {at}")

    while i < n:
        c = text[i]
        if line_start:
            line_start = False
            expandable = text.startswith("**>", i)
            if c == ">" or expandable:
                if quote is None:
                    quote = [pos, expandable, pos]
                i += 3 if expandable else 1
                continue
            if quote is not None:
                _close_quote(entities, quote)
                quote = None
        if c == "\\":
            if i + 1 < n and 0 < ord(text[i + 1]) < 127:
                emit(text[i + 1])
                i += 2
            else:
                emit("\\")
                i += 1
        elif c == "\n":
            if quote is not None:
                quote[2] = pos
            emit("\n")
            line_start = True
            i += 1
        elif c == "`":
            at = _byte_offset(text, i)
            if text.startswith("```", i):
                content, i = scan_until(i + 3, "```", "Pre", at)
                language = ""
                first, sep, rest = content.partition("\n")
                if sep and first and not any(ch.isspace() for ch in first):
                    language, content = first, rest
                entity: dict[str, Any] = {"type": "pre", "offset": pos}
                if language:
                    entity["language"] = language
            else:
                content, i = scan_until(i + 1, "`", "Code", at)
                entity = {"type": "code", "offset": pos}
            emit(content)
            entity["length"] = pos - entity["offset"]
            if entity["length"]:
                entities.append(entity)
        elif c in "*_~|":
            marker = c
            if c == "_" and text.startswith("__", i):
                marker = "__"
            elif c == "|":
                if not text.startswith("||", i):
                    raise EntityParseError(_reserved(c))
                if quote is not None and quote[1] and (i + 2 == n or text[i + 2] == "\n"):
                    i += 2  # "||" closing an expandable block quotation
                    quote[2] = pos
                    continue
                marker = "||"
            kind = _MDV2_MARKERS[marker]
            if stack and stack[-1][0] == kind:
                _, start, _ = stack.pop()
                if pos > start:
                    entities.append({"type": kind, "offset": start, "length": pos - start})
            elif any(entry[0] == kind for entry in stack):
                raise EntityParseError(
                    f"Can't find end of {_MDV2_NAMES[stack[-1][0]]} entity at byte offset "
                    f"{_byte_offset(text, stack[-1][2])}"
                )
            else:
                stack.append((kind, pos, i))
            i += len(marker)
        elif c == "[" or (c == "!" and text.startswith("![", i)):
            kind = "text_link" if c == "[" else "custom_emoji"
            stack.append((kind, pos, i))
            i += 1 if c == "[" else 2
        elif c == "]":
            if not stack or stack[-1][0] not in ("text_link", "custom_emoji"):
                raise EntityParseError(_reserved(c))
            kind, start, at_index = stack.pop()
            if not text.startswith("(", i + 1):
                raise EntityParseError(_reserved(c))
            url, i = scan_until(i + 2, ")", "a URL", _byte_offset(text, i + 1))
            if pos > start:
                entity = {"type": kind, "offset": start, "length": pos - start}
                if kind == "text_link":
                    entity["url"] = url
                else:
                    entity["custom_emoji_id"] = url.rpartition("id=")[2]
                entities.append(entity)
        elif c in _MDV2_RESERVED:
            raise EntityParseError(_reserved(c))
        else:
            match = _MDV2_PLAIN_RE.match(text, i)
            end = match.end() if match else i + 1
            emit(text[i:end])
            i = end
    if stack:
        kind, _, at_index = stack[-1]
        raise EntityParseError(
            f"Can't find end of {_MDV2_NAMES[kind]} entity at byte offset "
            f"{_byte_offset(text, at_index)}"
        )
    if quote is not None:
        quote[2] = pos
        _close_quote(entities, quote)
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


def _close_quote(entities: list[dict[str, Any]], quote: list[Any]) -> None:
    start, expandable, end = quote
    if end > start:
        kind = "expandable_blockquote" if expandable else "blockquote"
        entities.append({"type": kind, "offset": start, "length": end - start})


def _reserved(char: str) -> str:
    return f"Character '{char}' is reserved and must be escaped with the preceding '\\'"


def parse_markdown(text: str) -> tuple[str, list[dict[str, Any]]]:
    """Parse legacy Markdown (``*bold*``, ``_italic_``, ```code```, ``[text](url)``)."""
    out: list[str] = []
    pos = 0
    entities: list[dict[str, Any]] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n and text[i + 1] in "_*`[":
            out.append(text[i + 1])
            pos += 1
            i += 2
            continue
        if c not in "*_`[":
            j = i + 1
            while j < n and text[j] not in "*_`[\\":
                j += 1
            out.append(text[i:j])
            pos += _u16len(text[i:j])
            i = j
            continue
        error = f"Can't find end of the entity starting at byte offset {_byte_offset(text, i)}"
        entity: dict[str, Any]
        if c == "[":
            close = text.find("]", i + 1)
            if close < 0:
                raise EntityParseError(error)
            content = text[i + 1 : close]
            entity = {"type": "text_link"}
            i = close + 1
            if text.startswith("(", i):
                end = text.find(")", i)
                if end < 0:
                    raise EntityParseError(error)
                entity["url"] = text[i + 1 : end]
                i = end + 1
            else:
                entity = {}
        else:
            marker = "```" if text.startswith("```", i) else c
            close = text.find(marker, i + len(marker))
            if close < 0:
                raise EntityParseError(error)
            content = text[i + len(marker) : close]
            kind = {"*": "bold", "_": "italic", "`": "code", "```": "pre"}[marker]
            entity = {"type": kind}
            if kind == "pre":
                first, sep, rest = content.partition("\n")
                if sep and first and " " not in first:
                    entity["language"], content = first, rest
            i = close + len(marker)
        length = _u16len(content)
        if entity and length:
            entity.update(offset=pos, length=length)
            entities.append(entity)
        out.append(content)
        pos += length
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


_PARSERS: dict[str, Callable[[str], tuple[str, list[dict[str, Any]]]]] = {
    "html": parse_html,
    "markdownv2": parse_markdown_v2,
    "markdown": parse_markdown,
}


# ---------------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------------


class BotAPIServer:
    """A loopback Telegram Bot API server; see the module docstring.

    ``async with BotAPIServer() as server:`` starts it on a free port of 127.0.0.1.
    """

    #: How many times a webhook delivery is attempted before the update is dropped.
    webhook_attempts: int = 3
    #: Pause between two attempts to deliver the same update.
    webhook_retry_delay: float = 0.05
    #: Timeout of one webhook POST.
    webhook_timeout: float = 10.0

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        bot_username: str = "restart_tutor_bot",
        *,
        bot_name: str = "RestART Tutor",
        record_requests: bool = True,
    ) -> None:
        bot_id, sep, _ = token.partition(":")
        if not sep or not bot_id.isdigit():
            raise ValueError("token must look like '<digits>:<secret>'")
        self.token = token
        self.bot_username = bot_username
        self.bot_id = int(bot_id)
        self.record_requests = record_requests
        self.bot_user: dict[str, Any] = {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": bot_name,
            "username": bot_username,
        }

        # Inspection (public, read-only by convention).
        self.requests: list[RecordedRequest] = []
        self.outbox: list[OutgoingMessage] = []
        self.answered_callbacks: list[Params] = []
        self.answered_inline_queries: list[Params] = []
        self.webhook_deliveries: list[WebhookDelivery] = []
        self.filtered_updates: list[dict[str, Any]] = []
        self.violations = 0
        self.violation_log: list[tuple[str, ChatKey | None, float]] = []
        #: Unexpected exceptions raised while handling calls (answered 500); should stay empty.
        self.internal_errors: list[Exception] = []
        self.on_outgoing: Callable[[OutgoingMessage], None] | None = None
        """Called with every message the bot sends or edits (benchmarks time replies with it)."""

        # Updates.
        self._updates: deque[dict[str, Any]] = deque()
        self._next_update_id = 1000
        self._update_event = asyncio.Event()
        self._allowed_updates: frozenset[str] = DEFAULT_ALLOWED_UPDATES
        self._poll_generation = 0

        # Chats, users, messages.
        self._users: dict[int, dict[str, Any]] = {}
        self._chats: dict[ChatKey, dict[str, Any]] = {}
        self._messages: dict[tuple[ChatKey, int], dict[str, Any]] = {}
        self._next_message_ids: dict[ChatKey, int] = {}
        self._outbox_by_chat: dict[ChatKey, list[OutgoingMessage]] = {}
        self._button_index: dict[tuple[ChatKey, str], int] = {}
        self._blocked: set[int] = set()
        self._callback_queries: dict[str, dict[str, Any]] = {}
        self._answered_callback_ids: set[str] = set()
        self._inline_queries: dict[str, dict[str, Any]] = {}
        self._answered_inline_ids: set[str] = set()
        self._polls: dict[str, tuple[ChatKey, int]] = {}
        self._votes: dict[str, dict[int, tuple[int, ...]]] = {}
        self._files: dict[str, dict[str, Any]] = {}
        self._commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._bot_texts: dict[tuple[str, str], str] = {}
        self._ids = itertools.count(1)

        # Faults and limits.
        self._faults: list[FaultRule] = []
        self._slow: list[SlowRule] = []
        self._limits: _Limits | None = None
        self._chat_windows: dict[ChatKey, deque[float]] = {}
        self._group_windows: dict[ChatKey, deque[float]] = {}
        self._global_window: deque[float] = deque()

        # Webhook.
        self._webhook: _Webhook | None = None
        self._webhook_task: asyncio.Task[None] | None = None
        self._client: ClientSession | None = None

        # HTTP.
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None
        self._closing = False
        self._methods: dict[str, tuple[str, Handler]] = self._method_table()

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on ``host:port`` (0: a free port); return the base URL ``http://host:port``."""
        if self._runner is not None:
            raise RuntimeError("server already started")
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        self._add_control_routes(app)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            sock.close()
            await runner.cleanup()
            raise
        site = web.SockSite(runner, sock)
        await site.start()
        self._runner = runner
        self._closing = False
        bound_port = sock.getsockname()[1]
        shown_host = f"[{host}]" if ":" in host else host
        self._base_url = f"http://{shown_host}:{bound_port}"
        return self._base_url

    async def stop(self) -> None:
        """Stop serving: end pending long polls, the webhook worker and the HTTP server."""
        self._closing = True
        self._wake()
        await self._stop_webhook_worker()
        if self._client is not None:
            await self._client.close()
            self._client = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> BotAPIServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``: for aiogram's ``TelegramAPIServer.from_base``."""
        if self._base_url is None:
            raise RuntimeError("server not started")
        return self._base_url

    @property
    def ptb_base_url(self) -> str:
        """``{base_url}/bot``: for PTB's ``Bot(base_url=...)`` / ``ApplicationBuilder``."""
        return f"{self.base_url}/bot"

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    # -- playing users --------------------------------------------------------------------

    def put_update(self, update: Mapping[str, Any]) -> int:
        """Queue a raw update (``update_id`` assigned when missing); return its update_id.

        Updates whose type is not in the bot's current ``allowed_updates`` are not queued
        (like Telegram, which filters when the update is created); they land in
        :attr:`filtered_updates`.
        """
        raw = dict(update)
        update_id = raw.get("update_id")
        if not isinstance(update_id, int):
            update_id = self._next_update_id
            raw = {"update_id": update_id, **raw}
        self._next_update_id = max(self._next_update_id, update_id + 1)
        kind = _update_type(raw)
        if kind == "callback_query":
            self._callback_queries.setdefault(str(raw[kind].get("id")), raw[kind])
        elif kind == "inline_query":
            self._inline_queries.setdefault(str(raw[kind].get("id")), raw[kind])
        if kind in UPDATE_TYPES and kind not in self._allowed_updates:
            self.filtered_updates.append(raw)
            return update_id
        self._updates.append(raw)
        self._wake()
        return update_id

    def user_sends(
        self,
        user_id: int,
        text: str,
        *,
        chat_type: str = "private",
        chat_id: int | None = None,
        language_code: str | None = "en",
        first_name: str = "Ada",
        username: str | None = None,
        reply_to_message_id: int | None = None,
    ) -> int:
        """The user sends a text message; return the update_id.

        ``/commands`` get a ``bot_command`` entity. In a private chat a user who blocked the
        bot unblocks it first (a ``my_chat_member`` update, as when pressing "Restart").
        Non-private chats default to ``chat_id = -user_id`` (group) or
        ``-1_000_000_000_000 - user_id`` (supergroup).
        """
        user = self._remember_user(user_id, first_name, language_code, username)
        key = self._user_chat_key(user_id, chat_type, chat_id)
        if chat_type == "private" and user_id in self._blocked:
            self.user_unblocks(user_id)
        chat = self._chats.get(key)
        if chat is None or chat.get("type") != chat_type:
            chat = self._make_chat(key, chat_type, user)
        message: dict[str, Any] = {
            "message_id": self._next_message_id(key),
            "from": user,
            "chat": chat,
            "date": int(time.time()),
            "text": text,
        }
        command = text.split(maxsplit=1)[0] if text.startswith("/") else ""
        if len(command) > 1:
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": _u16len(command)}]
        if reply_to_message_id is not None:
            replied = self._messages.get((key, reply_to_message_id))
            if replied is not None:
                message["reply_to_message"] = _without_reply(replied)
        self._messages[(key, message["message_id"])] = message
        return self.put_update({"message": message})

    def user_presses(
        self,
        user_id: int,
        callback_data: str,
        *,
        message_id: int | None = None,
        chat_id: int | None = None,
    ) -> str:
        """The user presses an inline button; return the callback query id.

        Without ``message_id`` the message is the latest bot message in the chat (the user's
        private chat unless ``chat_id`` is given) whose keyboard carries ``callback_data``;
        LookupError when there is none. With ``message_id`` any stored message is used, whether
        or not it carries the button (to simulate stale or forged presses).
        """
        user = self._user(user_id)
        key = user_id if chat_id is None else chat_id
        if message_id is None:
            message_id = self._find_button(key, callback_data)
            if message_id is None:
                raise LookupError(
                    f"no bot message in chat {key} has a button with callback_data "
                    f"{callback_data!r}"
                )
        message = self._messages.get((key, message_id))
        if message is None:
            raise LookupError(f"no message {message_id} in chat {key}")
        query_id = str(4_000_000_000_000_000_000 + next(self._ids))
        query = {
            "id": query_id,
            "from": user,
            "message": message,
            "chat_instance": _chat_instance(key),
            "data": callback_data,
        }
        self._callback_queries[query_id] = query
        self.put_update({"callback_query": query})
        return query_id

    def user_answers_poll(
        self, user_id: int, poll_id: str, option_ids: Iterable[int], *, poll_update: bool = False
    ) -> int:
        """The user votes (``[]`` retracts); queue a ``poll_answer`` update, return its id.

        Voter counts of a known poll are updated (see :meth:`poll`). ValueError for anonymous
        or closed polls (Telegram sends no poll_answer for them) and invalid option ids. With
        ``poll_update=True`` a ``poll`` update with the new state is queued too.
        """
        user = self._user(user_id)
        chosen = tuple(option_ids)
        persistent = [str(i) for i in chosen]
        location = self._polls.get(poll_id)
        if location is not None:
            message = self._messages[location]
            poll = message["poll"]
            if poll["is_anonymous"]:
                raise ValueError("anonymous polls do not produce poll_answer updates")
            if poll["is_closed"]:
                raise ValueError("the poll is closed")
            options = poll["options"]
            if any(not 0 <= i < len(options) for i in chosen) or len(set(chosen)) != len(chosen):
                raise ValueError(f"invalid option ids {chosen!r}")
            if len(chosen) > 1 and not poll["allows_multiple_answers"]:
                raise ValueError("the poll allows one answer only")
            persistent = [options[i]["persistent_id"] for i in chosen]
            poll = self._vote(poll_id, poll, user_id, chosen)
            self._messages[location] = {**message, "poll": poll}
        update_id = self.put_update(
            {
                "poll_answer": {
                    "poll_id": poll_id,
                    "user": user,
                    "option_ids": list(chosen),
                    "option_persistent_ids": persistent,
                }
            }
        )
        if poll_update and location is not None:
            self.put_update({"poll": self._messages[location]["poll"]})
        return update_id

    def user_blocks(self, user_id: int) -> int | None:
        """The user blocks the bot: ``my_chat_member`` (member -> kicked); sends then get 403.

        Returns the update_id, or None if the user had already blocked the bot.
        """
        if user_id in self._blocked:
            return None
        self._blocked.add(user_id)
        return self.put_update({"my_chat_member": self._membership(user_id, "member", "kicked")})

    def user_unblocks(self, user_id: int) -> int | None:
        """The user unblocks the bot: ``my_chat_member`` (kicked -> member)."""
        if user_id not in self._blocked:
            return None
        self._blocked.discard(user_id)
        return self.put_update({"my_chat_member": self._membership(user_id, "kicked", "member")})

    def user_sends_inline_query(
        self, user_id: int, query: str, *, offset: str = "", chat_type: str = "sender"
    ) -> str:
        """The user types ``@bot query``; queue an ``inline_query`` update, return its id."""
        query_id = str(6_000_000_000_000_000_000 + next(self._ids))
        inline = {
            "id": query_id,
            "from": self._user(user_id),
            "query": query,
            "offset": offset,
            "chat_type": chat_type,
        }
        self._inline_queries[query_id] = inline
        self.put_update({"inline_query": inline})
        return query_id

    # -- inspecting -----------------------------------------------------------------------

    def sent(self, chat_id: ChatKey | None = None, method: str | None = None) -> list[dict]:
        """Messages the bot sent or edited, oldest first, exactly as returned to the bot.

        One entry per successful call whose result is a Message (send* and editMessage*, also
        when triggered by a webhook reply); filter by chat and/or method (``"sendMessage"``,
        ``"editMessageText"``...). Entries are snapshots: later edits and votes show in
        :meth:`message` / :meth:`poll`, not here. Do not mutate them.
        """
        if chat_id is not None:
            records: Iterable[OutgoingMessage] = self._outbox_by_chat.get(_chat_key(chat_id), [])
        else:
            records = self.outbox
        return [r.message for r in records if method is None or r.method == method]

    def message(self, chat_id: ChatKey, message_id: int) -> dict[str, Any] | None:
        """Current state of a stored message (bot or user), after edits and votes."""
        return self._messages.get((_chat_key(chat_id), message_id))

    def poll(self, poll_id: str) -> dict[str, Any] | None:
        """Current state of a poll the bot sent (voter counts included)."""
        location = self._polls.get(poll_id)
        return None if location is None else self._messages[location]["poll"]

    def calls(self, method: str | None = None) -> list[RecordedRequest]:
        """Recorded requests, optionally only those of one method."""
        if method is None:
            return list(self.requests)
        return [r for r in self.requests if r.method == method]

    def commands(self, scope: Mapping[str, Any] | None = None, language_code: str = "") -> list:
        """The command list set with setMyCommands for a scope/language."""
        return list(self._commands.get((_scope_key(scope), language_code), []))

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates not yet confirmed (getUpdates) or delivered (webhook)."""
        return list(self._updates)

    @property
    def blocked_users(self) -> frozenset[int]:
        return frozenset(self._blocked)

    @property
    def webhook_url(self) -> str | None:
        return None if self._webhook is None else self._webhook.url

    async def wait_for(
        self, predicate: Callable[[], T], timeout: float = 5.0, *, interval: float = 0.005
    ) -> T:
        """Poll ``predicate`` until it returns something truthy; return that value.

        Raises TimeoutError after ``timeout`` seconds.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if loop.time() >= deadline:
                raise TimeoutError(f"condition not met within {timeout} s")
            await asyncio.sleep(interval)

    async def wait_sent(
        self, chat_id: ChatKey, count: int, timeout: float = 5.0, *, method: str | None = None
    ) -> list[dict[str, Any]]:
        """Wait until :meth:`sent` for the chat holds ``count`` messages; return them all."""
        try:
            return await self.wait_for(
                lambda: len(self.sent(chat_id, method)) >= count and self.sent(chat_id, method),
                timeout,
            )
        except TimeoutError:
            got = self.sent(chat_id, method)
            recent = [(r.method, r.status) for r in self.requests[-10:]]
            raise TimeoutError(
                f"chat {chat_id}: expected {count} messages within {timeout} s, got {len(got)}: "
                f"{[m.get('text') or m.get('caption') for m in got]}; last requests: {recent}"
            ) from None

    def clear_records(self) -> None:
        """Forget recorded requests, sent messages, answers and deliveries (not the state)."""
        self.requests.clear()
        self.outbox.clear()
        self._outbox_by_chat.clear()
        self.answered_callbacks.clear()
        self.answered_inline_queries.clear()
        self.webhook_deliveries.clear()
        self.filtered_updates.clear()
        self.violation_log.clear()
        self.violations = 0

    # -- fault injection ------------------------------------------------------------------

    def fail(
        self,
        method: str | None = None,
        *,
        status: int = 429,
        retry_after: int = 1,
        times: int | None = 1,
        chat_id: ChatKey | None = None,
        description: str | None = None,
        body: str | None = None,
    ) -> FaultRule:
        """Answer the next ``times`` matching calls (None: all) with an error.

        ``method=None`` matches every method except getUpdates (name it to fail polling).
        ``status`` 429 answers "Too Many Requests: retry after N" with
        ``parameters.retry_after``; other statuses get Telegram's usual description unless
        ``description`` is given; ``body`` replaces the JSON body with raw text (e.g. an nginx
        HTML page); ``status=0`` drops the connection without an answer.
        """
        rule = FaultRule(
            method=method.lower() if method else None,
            status=status,
            retry_after=retry_after,
            remaining=times,
            chat_id=None if chat_id is None else _chat_key(chat_id),
            description=description,
            body=body,
        )
        self._faults.append(rule)
        return rule

    def slow(
        self, method: str | None = None, *, seconds: float = 1.0, times: int | None = 1
    ) -> SlowRule:
        """Delay the next ``times`` matching calls (None: all) by ``seconds``.

        ``method=None`` matches every method except getUpdates.
        """
        rule = SlowRule(method=method.lower() if method else None, seconds=seconds, remaining=times)
        self._slow.append(rule)
        return rule

    def clear_faults(self) -> None:
        """Remove all fail() and slow() rules."""
        self._faults.clear()
        self._slow.clear()

    def enforce_limits(
        self,
        per_chat_per_second: int | None = 1,
        global_per_second: int | None = None,
        *,
        per_group_per_minute: int | None = None,
        retry_after: int | None = None,
    ) -> None:
        """Turn on the flood guard (off by default) for send*/copy/forward calls.

        A call is answered 429 (and :attr:`violations` incremented) when the chat already got
        ``per_chat_per_second`` messages within the last second, all chats together
        ``global_per_second``, or a group/supergroup ``per_group_per_minute`` within the last
        minute. ``retry_after`` defaults to the seconds until the window frees up (at least 1).
        """
        self._limits = _Limits(
            per_chat_per_second, global_per_second, per_group_per_minute, retry_after
        )
        self._chat_windows.clear()
        self._group_windows.clear()
        self._global_window.clear()

    def disable_limits(self) -> None:
        """Turn the flood guard off again."""
        self._limits = None

    # -- internals: updates ---------------------------------------------------------------

    def _wake(self) -> None:
        """Wake every long poll / the webhook worker waiting for updates."""
        self._update_event.set()
        self._update_event = asyncio.Event()

    def _confirm(self, offset: int) -> None:
        updates = self._updates
        if offset > 0:
            while updates and updates[0]["update_id"] < offset:
                updates.popleft()
        elif offset < 0:
            while len(updates) > -offset:
                updates.popleft()

    def _set_allowed_updates(self, allowed: Any) -> None:
        if allowed is None or allowed == "":
            return
        if not isinstance(allowed, list):
            raise _bad_request("can't parse allowed updates")
        self._allowed_updates = frozenset(allowed) if allowed else DEFAULT_ALLOWED_UPDATES

    def _next_message_id(self, key: ChatKey) -> int:
        message_id = self._next_message_ids.get(key, 1)
        self._next_message_ids[key] = message_id + 1
        return message_id

    # -- internals: users and chats -------------------------------------------------------

    def _remember_user(
        self, user_id: int, first_name: str, language_code: str | None, username: str | None
    ) -> dict[str, Any]:
        user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
        if username:
            user["username"] = username
        if language_code:
            user["language_code"] = language_code
        self._users[user_id] = user
        return user

    def _user(self, user_id: int) -> dict[str, Any]:
        user = self._users.get(user_id)
        if user is None:
            user = self._remember_user(user_id, "Ada", "en", None)
        return user

    def _user_chat_key(self, user_id: int, chat_type: str, chat_id: int | None) -> ChatKey:
        if chat_type == "private":
            if chat_id is not None and chat_id != user_id:
                raise ValueError("a private chat's id is the user's id")
            return user_id
        if chat_id is not None:
            return chat_id
        if chat_type == "supergroup":
            return -1_000_000_000_000 - user_id
        if chat_type == "group":
            return -user_id
        raise ValueError(f"pass chat_id for chat_type {chat_type!r}")

    def _make_chat(self, key: ChatKey, chat_type: str, user: Mapping[str, Any]) -> dict:
        if chat_type == "private":
            chat = {"id": key, "type": "private", "first_name": user["first_name"]}
            if "username" in user:
                chat["username"] = user["username"]
        else:
            chat = {"id": key, "type": chat_type, "title": f"Test {chat_type} {key}"}
        self._chats[key] = chat
        return chat

    def _chat(self, key: ChatKey) -> dict[str, Any]:
        chat = self._chats.get(key)
        if chat is not None:
            return chat
        if isinstance(key, str):
            name = key[1:]
            chat_id = -1_000_000_000_000 - zlib.crc32(name.lower().encode())
            chat = {"id": chat_id, "type": "channel", "title": name, "username": name}
        elif key > 0:
            return self._make_chat(key, "private", self._user(key))
        elif key <= -1_000_000_000_000:
            chat = {"id": key, "type": "supergroup", "title": f"Test supergroup {key}"}
        else:
            chat = {"id": key, "type": "group", "title": f"Test group {key}"}
        self._chats[key] = chat
        return chat

    def _membership(self, user_id: int, old: str, new: str) -> dict[str, Any]:
        user = self._user(user_id)
        new_member: dict[str, Any] = {"user": self.bot_user, "status": new}
        if new == "kicked":
            new_member["until_date"] = 0
        old_member: dict[str, Any] = {"user": self.bot_user, "status": old}
        if old == "kicked":
            old_member["until_date"] = 0
        return {
            "chat": self._chat(user_id),
            "from": user,
            "date": int(time.time()),
            "old_chat_member": old_member,
            "new_chat_member": new_member,
        }

    def _find_button(self, key: ChatKey, data: str) -> int | None:
        message_id = self._button_index.get((key, data))
        if message_id is not None:
            current = self._messages.get((key, message_id))
            if current is not None and data in _callback_data(current):
                return message_id
        for record in reversed(self._outbox_by_chat.get(key, [])):
            mid = record.message["message_id"]
            current = self._messages.get((key, mid))
            if current is not None and data in _callback_data(current):
                return mid
        return None

    def _vote(
        self, poll_id: str, poll: dict[str, Any], user_id: int, chosen: tuple[int, ...]
    ) -> dict[str, Any]:
        votes = self._votes.setdefault(poll_id, {})
        counts = [option["voter_count"] for option in poll["options"]]
        for i in votes.pop(user_id, ()):
            counts[i] -= 1
        if chosen:
            votes[user_id] = chosen
            for i in chosen:
                counts[i] += 1
        options = [
            {**option, "voter_count": count}
            for option, count in zip(poll["options"], counts, strict=True)
        ]
        return {**poll, "options": options, "total_voter_count": len(votes)}

    # -- internals: HTTP ------------------------------------------------------------------

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        arrived = time.monotonic()
        token = request.match_info["token"]
        method = request.match_info["method"]
        try:
            params, files = await _read_request(request)
        except BotAPIError as error:
            return self._respond(error.status, error.payload())
        if token != self.token:
            self._record(method, params, arrived, 401)
            return self._respond(401, BotAPIError(401, "Unauthorized").payload())
        status, payload, raw_body = await self._execute(method, params, files, arrived)
        if status == 0:
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError  # nothing to answer: the connection is gone
        if raw_body is not None:
            return web.Response(status=status, text=raw_body, content_type="text/html")
        return self._respond(status, payload)

    @staticmethod
    def _respond(status: int, payload: Any) -> web.Response:
        return web.Response(status=status, text=_dumps(payload), content_type="application/json")

    def _record(
        self, method: str, params: Params, arrived: float, status: int = 0, via: str = "http"
    ) -> RecordedRequest:
        record = RecordedRequest(method, params, arrived, status, via)
        if self.record_requests:
            self.requests.append(record)
        return record

    async def _execute(
        self,
        method: str,
        params: Params,
        files: Mapping[str, UploadedFile],
        arrived: float,
        via: str = "http",
    ) -> tuple[int, Any, str | None]:
        """Run one API call through slow/fail rules, checks and the handler.

        Returns (HTTP status, JSON payload, raw body replacing the payload or None).
        """
        entry = self._methods.get(method.lower())
        if entry is None:
            self._record(method, params, arrived, 404, via)
            return 404, BotAPIError(404, "Not Found: method not found").payload(), None
        name, handler = entry
        params = _normalise(params, files)
        record = self._record(name, params, arrived, via=via)
        if self._slow:
            rule = self._match_slow(name)
            if rule is not None:
                await asyncio.sleep(rule.seconds)
        fault = self._match_fault(name, params) if self._faults else None
        raw_body: str | None = None
        if fault is not None:
            status = fault.status
            if status == 429:
                error = _too_many_requests(fault.retry_after)
                error.description = fault.description or error.description
                payload: Any = error.payload()
            else:
                description = fault.description or _ERROR_DESCRIPTIONS.get(status, "Error")
                payload = BotAPIError(status, description).payload()
            raw_body = fault.body
        else:
            try:
                chat_id = params.get("chat_id")
                if self._blocked and isinstance(chat_id, int) and chat_id in self._blocked:
                    raise BotAPIError(403, "Forbidden: bot was blocked by the user")
                if self._limits is not None and name in _FLOOD_METHODS:
                    self._check_limits(name, params)
                result = await handler(params)
                status = 200
                if isinstance(result, _Described):
                    payload = {"ok": True, "result": result.result}
                    payload["description"] = result.description
                else:
                    payload = {"ok": True, "result": result}
            except BotAPIError as error:
                status, payload = error.status, error.payload()
            except Exception as exc:  # a bug in this server: answer 500 and keep it
                self.internal_errors.append(exc)
                status = 500
                description = f"Internal Server Error: {type(exc).__name__}: {exc}"
                payload = BotAPIError(500, description).payload()
        record.status = status
        return status, payload, raw_body

    def _match_slow(self, name: str) -> SlowRule | None:
        lowered = name.lower()
        for rule in self._slow:
            if rule.method == lowered or (rule.method is None and lowered != "getupdates"):
                rule.hits += 1
                if rule.remaining is not None:
                    rule.remaining -= 1
                    if rule.remaining <= 0:
                        self._slow.remove(rule)
                return rule
        return None

    def _match_fault(self, name: str, params: Params) -> FaultRule | None:
        lowered = name.lower()
        for rule in self._faults:
            if rule.method is None and lowered == "getupdates":
                continue
            if rule.method is not None and rule.method != lowered:
                continue
            if rule.chat_id is not None and params.get("chat_id") != rule.chat_id:
                continue
            rule.hits += 1
            if rule.remaining is not None:
                rule.remaining -= 1
                if rule.remaining <= 0:
                    self._faults.remove(rule)
            return rule
        return None

    def _check_limits(self, name: str, params: Params) -> None:
        limits = self._limits
        assert limits is not None
        now = time.monotonic()
        key = params.get("chat_id")
        if not isinstance(key, int | str):
            key = None
        windows: list[tuple[deque[float], int, float]] = []
        if key is not None and limits.per_chat_per_second:
            windows.append(
                (self._chat_windows.setdefault(key, deque()), limits.per_chat_per_second, 1.0)
            )
        if limits.global_per_second:
            windows.append((self._global_window, limits.global_per_second, 1.0))
        if key is not None and limits.per_group_per_minute and isinstance(key, int) and key < 0:
            windows.append(
                (self._group_windows.setdefault(key, deque()), limits.per_group_per_minute, 60.0)
            )
        wait = 0.0
        for window, limit, span in windows:
            while window and window[0] <= now - span:
                window.popleft()
            if len(window) >= limit:
                wait = max(wait, window[0] + span - now, 0.001)
        if wait > 0:
            self.violations += 1
            self.violation_log.append((name, key, now))
            raise _too_many_requests(limits.retry_after or max(1, math.ceil(wait)))
        for window, _, _ in windows:
            window.append(now)

    # -- internals: webhook ---------------------------------------------------------------

    async def _restart_webhook_worker(self) -> None:
        await self._stop_webhook_worker()
        if self._client is None:
            self._client = ClientSession(timeout=ClientTimeout(total=self.webhook_timeout))
        self._webhook_task = asyncio.create_task(self._webhook_worker(), name="botapi-webhook")

    async def _stop_webhook_worker(self) -> None:
        task = self._webhook_task
        if task is None or task is asyncio.current_task():
            return
        self._webhook_task = None
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _webhook_worker(self) -> None:
        hook = self._webhook
        while hook is not None and self._webhook is hook and not self._closing:
            if not self._updates:
                await self._update_event.wait()
                continue
            update = self._updates[0]
            await self._deliver(hook, update)
            if self._updates and self._updates[0] is update:
                self._updates.popleft()

    async def _deliver(self, hook: _Webhook, update: dict[str, Any]) -> bool:
        assert self._client is not None
        headers = {"Content-Type": "application/json"}
        if hook.secret_token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = hook.secret_token
        body = _dumps(update).encode()
        for attempt in range(1, self.webhook_attempts + 1):
            status, error = 0, None
            try:
                async with self._client.post(hook.url, data=body, headers=headers) as response:
                    status = response.status
                    if 200 <= status < 300:
                        await self._webhook_reply(response)
                    else:
                        error = f"Wrong response from the webhook: {status} {response.reason}"
            except (ClientError, TimeoutError) as exc:
                error = f"Connection failed: {type(exc).__name__}: {exc}"
            self.webhook_deliveries.append(
                WebhookDelivery(
                    update_id=update["update_id"],
                    url=hook.url,
                    status=status,
                    attempt=attempt,
                    time=time.monotonic(),
                    secret_token=hook.secret_token,
                    error=error,
                    update=update,
                )
            )
            if error is None:
                return True
            hook.last_error_date = int(time.time())
            hook.last_error_message = error
            if attempt < self.webhook_attempts:
                await asyncio.sleep(self.webhook_retry_delay)
        return False

    async def _webhook_reply(self, response: Any) -> None:
        """Execute a method call returned in the webhook response body, if any."""
        content_type = response.content_type
        params: Params = {}
        files: dict[str, UploadedFile] = {}
        if content_type == "application/json":
            with contextlib.suppress(ValueError):
                body = json.loads(await response.read() or b"null")
                if isinstance(body, dict):
                    params = body
        elif content_type == "multipart/form-data":
            reader = MultipartReader(response.headers, response.content)
            params, files = await _read_multipart(reader)
        method = params.pop("method", None)
        if isinstance(method, str) and method:
            await self._execute(method, params, files, time.monotonic(), via="webhook-reply")

    # -- internals: messages --------------------------------------------------------------

    def _target(self, params: Params) -> ChatKey:
        value = params.get("chat_id")
        if value is None or value == "":
            raise _bad_request("chat_id is empty")
        try:
            return _chat_key(value)
        except ValueError:
            raise _bad_request("chat not found") from None

    def _format(
        self, text: str, parse_mode: Any, entities: Any
    ) -> tuple[str, list[dict[str, Any]]]:
        if entities not in (None, ""):
            if not isinstance(entities, list) or not all(
                isinstance(e, dict) and {"type", "offset", "length"} <= e.keys() for e in entities
            ):
                raise _bad_request("can't parse entities JSON object")
            return text, entities
        if not parse_mode:
            return text, []
        parser = _PARSERS.get(str(parse_mode).lower())
        if parser is None:
            raise _bad_request(f'unsupported parse_mode "{parse_mode}"')
        try:
            return parser(text)
        except EntityParseError as exc:
            raise _bad_request(f"can't parse entities: {exc}") from None

    def _caption(self, params: Params) -> dict[str, Any]:
        caption = _opt_str(params, "caption")
        if not caption:
            return {}
        text, entities = self._format(
            caption, params.get("parse_mode"), params.get("caption_entities")
        )
        if len(text) > _CAPTION_LIMIT:
            raise _bad_request("message caption is too long")
        content: dict[str, Any] = {"caption": text}
        if entities:
            content["caption_entities"] = entities
        if _opt_bool(params, "show_caption_above_media", False):
            content["show_caption_above_media"] = True
        return content

    def _new_message(
        self, method: str, key: ChatKey, params: Params, content: dict[str, Any]
    ) -> dict[str, Any]:
        """Validate the common parameters, store the bot's message and record it as sent."""
        markup = _validate_markup(params.get("reply_markup"))
        reply_to = None
        reply_id = _opt_int(params, "reply_to_message_id")
        allow_without = _opt_bool(params, "allow_sending_without_reply", False)
        reply_parameters = params.get("reply_parameters")
        if isinstance(reply_parameters, dict):
            reply_id = _opt_int(reply_parameters, "message_id")
            allow_without = _opt_bool(reply_parameters, "allow_sending_without_reply", False)
        if reply_id is not None:
            reply_to = self._messages.get((key, reply_id))
            if reply_to is None and not allow_without:
                raise _bad_request("message to be replied not found")
        chat = self._chat(key)
        message: dict[str, Any] = {
            "message_id": self._next_message_id(key),
            "from": self.bot_user,
            "chat": chat,
            "date": int(time.time()),
        }
        thread_id = _opt_int(params, "message_thread_id")
        if thread_id is not None:
            message["message_thread_id"] = thread_id
        if reply_to is not None:
            message["reply_to_message"] = _without_reply(reply_to)
        message.update(content)
        if markup is not None and markup.get("inline_keyboard"):
            message["reply_markup"] = markup
        if _opt_bool(params, "protect_content", False):
            message["has_protected_content"] = True
        self._store(method, key, message, params)
        return message

    def _store(self, method: str, key: ChatKey, message: dict[str, Any], params: Params) -> None:
        self._messages[(key, message["message_id"])] = message
        markup = message.get("reply_markup")
        if markup:
            for data in _callback_data(message):
                self._button_index[(key, data)] = message["message_id"]
        record = OutgoingMessage(method, key, message, params, time.monotonic())
        self.outbox.append(record)
        self._outbox_by_chat.setdefault(key, []).append(record)
        if self.on_outgoing is not None:
            self.on_outgoing(record)

    def _editable(self, params: Params) -> tuple[ChatKey, dict[str, Any]] | None:
        """The stored bot message addressed by chat_id+message_id; None for inline messages."""
        if params.get("inline_message_id"):
            return None
        key = self._target(params)
        message_id = _req_int(params, "message_id", "message identifier is not specified")
        message = self._messages.get((key, message_id))
        if message is None:
            raise _bad_request("message to edit not found")
        if message.get("from", {}).get("id") != self.bot_id:
            raise _bad_request("message can't be edited")
        return key, message

    def _replace(
        self,
        method: str,
        key: ChatKey,
        message: dict[str, Any],
        changes: dict[str, Any],
        params: Params,
    ) -> dict[str, Any]:
        """Store an edited copy of ``message``; values of None in ``changes`` drop the field."""
        edited = {k: v for k, v in message.items() if changes.get(k, v) is not None}
        edited.update({k: v for k, v in changes.items() if v is not None})
        significant = ("text", "entities", "caption", "caption_entities", "reply_markup", "poll")
        if all(edited.get(k) == message.get(k) for k in significant):
            raise _bad_request(_NOT_MODIFIED)
        edited["edit_date"] = int(time.time())
        self._store(method, key, edited, params)
        return edited

    def _input_file(self, params: Params, name: str) -> dict[str, Any]:
        """Register the file given as upload, file_id or URL; return its stored metadata."""
        value = params.get(name)
        if isinstance(value, UploadedFile):
            if value.size == 0:
                raise _bad_request("file must be non-empty")
            meta: dict[str, Any] = {
                "file_id": f"BQACAgIAAxkBAAI{next(self._ids):08d}",
                "file_size": value.size,
                "file_name": value.filename or name,
                "mime_type": value.content_type
                or mimetypes.guess_type(value.filename or "")[0]
                or "application/octet-stream",
                "width": 1280,
                "height": 720,
            }
            if value.head.startswith(_PNG_MAGIC) and len(value.head) >= 24:
                meta["width"], meta["height"] = struct.unpack(">II", value.head[16:24])
        elif isinstance(value, str) and value and not value.startswith("attach://"):
            known = self._files.get(value)
            if known is not None:
                return known
            meta = {"file_id": value, "width": 1280, "height": 720}
            if urlsplit(value).scheme in ("http", "https"):
                meta["file_id"] = f"BQACAgIAAxkBAAI{next(self._ids):08d}"
                meta["file_name"] = urlsplit(value).path.rsplit("/", 1)[-1] or name
        else:
            raise _bad_request(f"there is no {name} in the request")
        meta["file_unique_id"] = f"AQAD{zlib.crc32(meta['file_id'].encode()):08x}"
        self._files[meta["file_id"]] = meta
        return meta

    # -- API methods ----------------------------------------------------------------------

    def _method_table(self) -> dict[str, tuple[str, Handler]]:
        handlers: dict[str, Handler] = {
            "getMe": self._get_me,
            "getUpdates": self._get_updates,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "sendMessage": self._send_message,
            "editMessageText": self._edit_message_text,
            "editMessageCaption": self._edit_message_caption,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "deleteMessage": self._delete_message,
            "answerCallbackQuery": self._answer_callback_query,
            "sendPoll": self._send_poll,
            "stopPoll": self._stop_poll,
            "sendPhoto": self._send_photo,
            "sendDocument": self._send_document,
            "sendChatAction": self._send_chat_action,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "answerInlineQuery": self._answer_inline_query,
            "getChat": self._get_chat,
            "getChatMember": self._get_chat_member,
            "getChatMenuButton": self._get_chat_menu_button,
        }
        for setter, getter, param in (
            ("setMyDescription", "getMyDescription", "description"),
            ("setMyShortDescription", "getMyShortDescription", "short_description"),
            ("setMyName", "getMyName", "name"),
        ):
            handlers[setter] = self._text_setter(param)
            handlers[getter] = self._text_getter(param)
        for name in _ACCEPTED_METHODS:
            handlers[name] = self._accept
        return {name.lower(): (name, handler) for name, handler in handlers.items()}

    async def _accept(self, params: Params) -> bool:
        return True

    async def _get_me(self, params: Params) -> dict[str, Any]:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": True,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _get_updates(self, params: Params) -> list[dict[str, Any]]:
        if self._webhook is not None:
            raise BotAPIError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = _opt_int(params, "offset")
        limit = min(max(_opt_int(params, "limit") or 100, 1), 100)
        timeout = max(_opt_float(params, "timeout", 0.0), 0.0)
        self._set_allowed_updates(params.get("allowed_updates"))
        if offset:
            self._confirm(offset)
        self._poll_generation += 1
        generation = self._poll_generation
        self._wake()  # a poll still waiting is terminated by this one (409 Conflict)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if self._updates:
                return list(itertools.islice(self._updates, limit))
            remaining = deadline - loop.time()
            if remaining <= 0 or self._closing:
                return []
            event = self._update_event
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)
            if generation != self._poll_generation:
                raise BotAPIError(409, _ERROR_DESCRIPTIONS[409])
            if self._webhook is not None:
                return []

    async def _set_webhook(self, params: Params) -> _Described:
        url = _opt_str(params, "url") or ""
        if not url:
            return await self._delete_webhook(params)
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
            raise _bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        secret = _opt_str(params, "secret_token")
        if secret and not _SECRET_RE.fullmatch(secret):
            raise _bad_request("bad webhook: secret token contains unallowed characters")
        self._set_allowed_updates(params.get("allowed_updates"))
        if _opt_bool(params, "drop_pending_updates", False):
            self._updates.clear()
        old = self._webhook
        if old is not None and old.url == url and old.secret_token == (secret or None):
            return _Described(True, "Webhook is already set")
        self._webhook = _Webhook(
            url=url,
            secret_token=secret or None,
            max_connections=_opt_int(params, "max_connections") or 40,
            ip_address=_opt_str(params, "ip_address"),
        )
        self._wake()  # end long polls
        await self._restart_webhook_worker()
        return _Described(True, "Webhook was set")

    async def _delete_webhook(self, params: Params) -> _Described:
        if _opt_bool(params, "drop_pending_updates", False):
            self._updates.clear()
        if self._webhook is None:
            return _Described(True, "Webhook is already deleted")
        self._webhook = None
        self._wake()
        await self._stop_webhook_worker()
        return _Described(True, "Webhook was deleted")

    async def _get_webhook_info(self, params: Params) -> dict[str, Any]:
        info: dict[str, Any] = {
            "url": "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        hook = self._webhook
        if hook is not None:
            info["url"] = hook.url
            info["max_connections"] = hook.max_connections
            if hook.ip_address:
                info["ip_address"] = hook.ip_address
            if hook.last_error_date is not None:
                info["last_error_date"] = hook.last_error_date
                info["last_error_message"] = hook.last_error_message
            if self._allowed_updates != DEFAULT_ALLOWED_UPDATES:
                info["allowed_updates"] = sorted(self._allowed_updates)
        return info

    async def _send_message(self, params: Params) -> dict[str, Any]:
        key = self._target(params)
        text, entities = self._format(
            _opt_str(params, "text") or "", params.get("parse_mode"), params.get("entities")
        )
        if not text.strip():
            raise _bad_request("message text is empty")
        if len(text) > _TEXT_LIMIT:
            raise _bad_request("message is too long")
        content: dict[str, Any] = {"text": text}
        if entities:
            content["entities"] = entities
        preview = params.get("link_preview_options")
        if isinstance(preview, dict) and preview:
            content["link_preview_options"] = preview
        return self._new_message("sendMessage", key, params, content)

    async def _edit_message_text(self, params: Params) -> dict[str, Any] | bool:
        text, entities = self._format(
            _opt_str(params, "text") or "", params.get("parse_mode"), params.get("entities")
        )
        if not text.strip():
            raise _bad_request("message text is empty")
        if len(text) > _TEXT_LIMIT:
            raise _bad_request("MESSAGE_TOO_LONG")
        markup = _validate_markup(params.get("reply_markup"), inline_only=True)
        target = self._editable(params)
        if target is None:
            return True
        key, message = target
        if "text" not in message:
            raise _bad_request("there is no text in the message to edit")
        changes = {
            "text": text,
            "entities": entities or None,
            "reply_markup": markup if markup and markup.get("inline_keyboard") else None,
        }
        return self._replace("editMessageText", key, message, changes, params)

    async def _edit_message_caption(self, params: Params) -> dict[str, Any] | bool:
        caption = self._caption(params)
        markup = _validate_markup(params.get("reply_markup"), inline_only=True)
        target = self._editable(params)
        if target is None:
            return True
        key, message = target
        if "text" in message or "poll" in message:
            raise _bad_request("there is no caption in the message to edit")
        changes = {
            "caption": caption.get("caption"),
            "caption_entities": caption.get("caption_entities"),
            "reply_markup": markup if markup and markup.get("inline_keyboard") else None,
        }
        return self._replace("editMessageCaption", key, message, changes, params)

    async def _edit_message_reply_markup(self, params: Params) -> dict[str, Any] | bool:
        markup = _validate_markup(params.get("reply_markup"), inline_only=True)
        target = self._editable(params)
        if target is None:
            return True
        key, message = target
        changes = {"reply_markup": markup if markup and markup.get("inline_keyboard") else None}
        return self._replace("editMessageReplyMarkup", key, message, changes, params)

    async def _delete_message(self, params: Params) -> bool:
        key = self._target(params)
        message_id = _req_int(params, "message_id", "message identifier is not specified")
        if self._messages.pop((key, message_id), None) is None:
            raise _bad_request("message to delete not found")
        return True

    async def _answer_callback_query(self, params: Params) -> bool:
        query_id = _opt_str(params, "callback_query_id")
        if (
            not query_id
            or query_id not in self._callback_queries
            or query_id in self._answered_callback_ids
        ):
            raise _bad_request(_QUERY_INVALID)
        text = _opt_str(params, "text") or ""
        if len(text) > 200:
            raise _bad_request("MESSAGE_TOO_LONG")
        self._answered_callback_ids.add(query_id)
        self.answered_callbacks.append(params)
        return True

    async def _answer_inline_query(self, params: Params) -> bool:
        query_id = _opt_str(params, "inline_query_id")
        if (
            not query_id
            or query_id not in self._inline_queries
            or query_id in self._answered_inline_ids
        ):
            raise _bad_request(_QUERY_INVALID)
        results = _opt_list(params, "results")
        if results is None:
            raise _bad_request("can't parse inline query results JSON object")
        if len(results) > 50:
            raise _bad_request("RESULTS_TOO_MUCH")
        for result in results:
            if not isinstance(result, dict) or not result.get("type") or not result.get("id"):
                raise _bad_request("can't parse InlineQueryResult JSON object")
        self._answered_inline_ids.add(query_id)
        self.answered_inline_queries.append(params)
        return True

    async def _send_poll(self, params: Params) -> dict[str, Any]:
        key = self._target(params)
        question, question_entities = self._format(
            _opt_str(params, "question") or "",
            params.get("question_parse_mode"),
            params.get("question_entities"),
        )
        if not question.strip():
            raise _bad_request("poll question must be non-empty")
        if len(question) > 300:
            raise _bad_request("poll question length must not exceed 300")
        raw_options = _opt_list(params, "options")
        if raw_options is None:
            raise _bad_request("poll options must be non-empty")
        if not 1 <= len(raw_options) <= 12:
            raise _bad_request("poll must have 1-12 options")
        poll_id = str(5_000_000_000_000_000_000 + next(self._ids))
        options = []
        for index, raw in enumerate(raw_options):
            if isinstance(raw, dict):
                text, entities = self._format(
                    _opt_str(raw, "text") or "",
                    raw.get("text_parse_mode"),
                    raw.get("text_entities"),
                )
            elif isinstance(raw, str):
                text, entities = raw, []
            else:
                raise _bad_request("can't parse InputPollOption JSON object")
            if not 1 <= len(text) <= 100:
                raise _bad_request("poll options length must be 1-100 characters")
            option: dict[str, Any] = {"persistent_id": str(index), "text": text, "voter_count": 0}
            if entities:
                option["text_entities"] = entities
            options.append(option)
        poll_type = _opt_str(params, "type") or "regular"
        if poll_type not in ("regular", "quiz"):
            raise _bad_request("wrong poll type specified")
        multiple = _opt_bool(params, "allows_multiple_answers", False)
        correct_id = _opt_int(params, "correct_option_id")
        correct_ids = _opt_list(params, "correct_option_ids")
        if correct_ids is None and correct_id is not None:
            correct_ids = [correct_id]
        poll: dict[str, Any] = {
            "id": poll_id,
            "question": question,
            "options": options,
            "total_voter_count": 0,
            "is_closed": _opt_bool(params, "is_closed", False),
            "is_anonymous": _opt_bool(params, "is_anonymous", True),
            "type": poll_type,
            "allows_multiple_answers": multiple,
            "allows_revoting": _opt_bool(params, "allows_revoting", poll_type == "regular"),
            "members_only": _opt_bool(params, "members_only", False),
        }
        if question_entities:
            poll["question_entities"] = question_entities
        if poll_type == "quiz":
            if not correct_ids:
                raise _bad_request("correct_option_ids must be specified for quizzes")
            for value in correct_ids:
                if not isinstance(value, int) or not 0 <= value < len(options):
                    raise _bad_request("wrong correct option ID specified")
            poll["correct_option_ids"] = list(correct_ids)
            if correct_id is not None:
                poll["correct_option_id"] = correct_id
        explanation = _opt_str(params, "explanation")
        if explanation:
            text, entities = self._format(
                explanation,
                params.get("explanation_parse_mode"),
                params.get("explanation_entities"),
            )
            if len(text) > 200:
                raise _bad_request("explanation is too long")
            poll["explanation"] = text
            if entities:
                poll["explanation_entities"] = entities
        for name in ("open_period", "close_date"):
            value = _opt_int(params, name)
            if value is not None:
                poll[name] = value
        message = self._new_message("sendPoll", key, params, {"poll": poll})
        self._polls[poll_id] = (key, message["message_id"])
        return message

    async def _stop_poll(self, params: Params) -> dict[str, Any]:
        key = self._target(params)
        message_id = _req_int(params, "message_id", "message identifier is not specified")
        message = self._messages.get((key, message_id))
        if message is None or "poll" not in message:
            raise _bad_request("message with poll to stop not found")
        if message["poll"]["is_closed"]:
            raise _bad_request("poll has already been closed")
        markup = _validate_markup(params.get("reply_markup"), inline_only=True)
        poll = {**message["poll"], "is_closed": True}
        edited = {**message, "poll": poll}
        if markup is not None:
            if markup.get("inline_keyboard"):
                edited["reply_markup"] = markup
            else:
                edited.pop("reply_markup", None)
        self._messages[(key, message_id)] = edited
        return poll

    async def _send_photo(self, params: Params) -> dict[str, Any]:
        key = self._target(params)
        meta = self._input_file(params, "photo")
        width, height = meta["width"], meta["height"]
        scale = min(1.0, 90 / max(width, height, 1))
        thumb_id = f"{meta['file_id']}-s"
        self._files.setdefault(thumb_id, meta)
        sizes = [
            {
                "file_id": thumb_id,
                "file_unique_id": f"{meta['file_unique_id']}-s",
                "width": max(1, round(width * scale)),
                "height": max(1, round(height * scale)),
                "file_size": min(meta.get("file_size", 1024), 2048),
            },
            {
                "file_id": meta["file_id"],
                "file_unique_id": meta["file_unique_id"],
                "width": width,
                "height": height,
                **({"file_size": meta["file_size"]} if "file_size" in meta else {}),
            },
        ]
        content: dict[str, Any] = {"photo": sizes, **self._caption(params)}
        if _opt_bool(params, "has_spoiler", False):
            content["has_media_spoiler"] = True
        return self._new_message("sendPhoto", key, params, content)

    async def _send_document(self, params: Params) -> dict[str, Any]:
        key = self._target(params)
        meta = self._input_file(params, "document")
        document = {
            k: meta[k]
            for k in ("file_id", "file_unique_id", "file_name", "mime_type", "file_size")
            if k in meta
        }
        content = {"document": document, **self._caption(params)}
        return self._new_message("sendDocument", key, params, content)

    async def _send_chat_action(self, params: Params) -> bool:
        self._target(params)
        if _opt_str(params, "action") not in _CHAT_ACTIONS:
            raise _bad_request("wrong parameter action in request")
        return True

    async def _set_my_commands(self, params: Params) -> bool:
        commands = _opt_list(params, "commands")
        if commands is None:
            raise _bad_request("can't parse commands JSON object")
        if len(commands) > 100:
            raise _bad_request("too many commands")
        for command in commands:
            if (
                not isinstance(command, dict)
                or not _COMMAND_RE.fullmatch(str(command.get("command", "")))
                or not 1 <= len(str(command.get("description", ""))) <= 256
            ):
                raise _bad_request("BOT_COMMAND_INVALID")
        key = (_scope_key(params.get("scope")), _opt_str(params, "language_code") or "")
        self._commands[key] = [
            {"command": c["command"], "description": c["description"]} for c in commands
        ]
        return True

    async def _get_my_commands(self, params: Params) -> list[dict[str, Any]]:
        key = (_scope_key(params.get("scope")), _opt_str(params, "language_code") or "")
        return list(self._commands.get(key, []))

    async def _delete_my_commands(self, params: Params) -> bool:
        key = (_scope_key(params.get("scope")), _opt_str(params, "language_code") or "")
        self._commands.pop(key, None)
        return True

    def _text_setter(self, param: str) -> Handler:
        limit = {"description": 512, "short_description": 120, "name": 64}[param]

        async def handler(params: Params) -> bool:
            value = _opt_str(params, param) or ""
            if len(value) > limit:
                raise _bad_request(f"{param} is too long")
            self._bot_texts[(param, _opt_str(params, "language_code") or "")] = value
            return True

        return handler

    def _text_getter(self, param: str) -> Handler:
        async def handler(params: Params) -> dict[str, str]:
            language = _opt_str(params, "language_code") or ""
            value = self._bot_texts.get((param, language))
            if value is None:
                value = self._bot_texts.get((param, ""), "")
            return {param: value}

        return handler

    async def _get_chat(self, params: Params) -> dict[str, Any]:
        chat = self._chat(self._target(params))
        return {
            **chat,
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }

    async def _get_chat_member(self, params: Params) -> dict[str, Any]:
        key = self._target(params)
        user_id = _req_int(params, "user_id", "user_id is empty")
        if user_id == self.bot_id:
            if isinstance(key, int) and key in self._blocked:
                return {"user": self.bot_user, "status": "kicked", "until_date": 0}
            return {"user": self.bot_user, "status": "member"}
        user = self._users.get(user_id)
        if user is None:
            raise _bad_request("user not found")
        return {"user": user, "status": "member"}

    async def _get_chat_menu_button(self, params: Params) -> dict[str, Any]:
        return {"type": "commands"}

    # -- control interface (/_test/...) ---------------------------------------------------

    def _add_control_routes(self, app: web.Application) -> None:
        routes = [
            ("POST", "/_test/user_sends", self._ctl_user_sends),
            ("POST", "/_test/press", self._ctl_press),
            ("POST", "/_test/poll_answer", self._ctl_poll_answer),
            ("POST", "/_test/inline_query", self._ctl_inline_query),
            ("POST", "/_test/update", self._ctl_update),
            ("POST", "/_test/block", self._ctl_block),
            ("POST", "/_test/fail", self._ctl_fail),
            ("POST", "/_test/slow", self._ctl_slow),
            ("POST", "/_test/clear_faults", self._ctl_clear_faults),
            ("POST", "/_test/limits", self._ctl_limits),
            ("POST", "/_test/clear_records", self._ctl_clear_records),
            ("GET", "/_test/sent", self._ctl_sent),
            ("GET", "/_test/requests", self._ctl_requests),
            ("GET", "/_test/answered_callbacks", self._ctl_answered_callbacks),
            ("GET", "/_test/webhook_deliveries", self._ctl_webhook_deliveries),
            ("GET", "/_test/state", self._ctl_state),
        ]
        for verb, path, handler in routes:
            app.router.add_route(verb, path, _control(handler))

    async def _ctl_user_sends(self, body: dict[str, Any]) -> Any:
        update_id = self.user_sends(
            int(body["user_id"]),
            str(body["text"]),
            chat_type=body.get("chat_type", "private"),
            chat_id=body.get("chat_id"),
            language_code=body.get("language_code", "en"),
            first_name=body.get("first_name", "Ada"),
            username=body.get("username"),
            reply_to_message_id=body.get("reply_to_message_id"),
        )
        return {"update_id": update_id}

    async def _ctl_press(self, body: dict[str, Any]) -> Any:
        query_id = self.user_presses(
            int(body["user_id"]),
            str(body["callback_data"]),
            message_id=body.get("message_id"),
            chat_id=body.get("chat_id"),
        )
        return {"callback_query_id": query_id}

    async def _ctl_poll_answer(self, body: dict[str, Any]) -> Any:
        update_id = self.user_answers_poll(
            int(body["user_id"]), str(body["poll_id"]), body.get("option_ids", [])
        )
        return {"update_id": update_id}

    async def _ctl_inline_query(self, body: dict[str, Any]) -> Any:
        query_id = self.user_sends_inline_query(
            int(body["user_id"]), str(body.get("query", "")), offset=body.get("offset", "")
        )
        return {"inline_query_id": query_id}

    async def _ctl_update(self, body: dict[str, Any]) -> Any:
        return {"update_id": self.put_update(body)}

    async def _ctl_block(self, body: dict[str, Any]) -> Any:
        user_id = int(body["user_id"])
        if body.get("blocked", True):
            return {"update_id": self.user_blocks(user_id)}
        return {"update_id": self.user_unblocks(user_id)}

    async def _ctl_fail(self, body: dict[str, Any]) -> Any:
        rule = self.fail(
            body.get("method"),
            status=int(body.get("status", 429)),
            retry_after=int(body.get("retry_after", 1)),
            times=body.get("times", 1),
            chat_id=body.get("chat_id"),
            description=body.get("description"),
            body=body.get("body"),
        )
        return {"rule": rule}

    async def _ctl_slow(self, body: dict[str, Any]) -> Any:
        rule = self.slow(
            body.get("method"),
            seconds=float(body.get("seconds", 1.0)),
            times=body.get("times", 1),
        )
        return {"rule": rule}

    async def _ctl_clear_faults(self, body: dict[str, Any]) -> Any:
        self.clear_faults()
        return {"ok": True}

    async def _ctl_limits(self, body: dict[str, Any]) -> Any:
        if body.get("enabled", True):
            self.enforce_limits(
                body.get("per_chat_per_second", 1),
                body.get("global_per_second"),
                per_group_per_minute=body.get("per_group_per_minute"),
                retry_after=body.get("retry_after"),
            )
        else:
            self.disable_limits()
        return {"ok": True}

    async def _ctl_clear_records(self, body: dict[str, Any]) -> Any:
        self.clear_records()
        return {"ok": True}

    async def _ctl_sent(self, body: dict[str, Any]) -> Any:
        return {"sent": self.sent(body.get("chat_id"), body.get("method"))}

    async def _ctl_requests(self, body: dict[str, Any]) -> Any:
        return {"requests": self.calls(body.get("method"))}

    async def _ctl_answered_callbacks(self, body: dict[str, Any]) -> Any:
        return {"answered_callbacks": self.answered_callbacks}

    async def _ctl_webhook_deliveries(self, body: dict[str, Any]) -> Any:
        return {"webhook_deliveries": self.webhook_deliveries}

    async def _ctl_state(self, body: dict[str, Any]) -> Any:
        return {
            "base_url": self._base_url,
            "pending_updates": len(self._updates),
            "requests": len(self.requests),
            "sent": len(self.outbox),
            "violations": self.violations,
            "blocked": sorted(self._blocked),
            "webhook_url": self.webhook_url,
            "faults": self._faults,
            "slow": self._slow,
        }


# ---------------------------------------------------------------------------------------------
# Module helpers
# ---------------------------------------------------------------------------------------------


def _control(
    handler: Callable[[dict[str, Any]], Awaitable[Any]],
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Wrap a control handler: JSON body (POST) or query string (GET) in, JSON out."""

    async def route(request: web.Request) -> web.Response:
        body: dict[str, Any] = {}
        for key, value in request.query.items():
            body[key] = int(value) if _NUMBER_RE.fullmatch(value) else value
        if request.method == "POST" and request.can_read_body:
            try:
                data = await request.json()
            except ValueError:
                return _control_error(400, "body must be a JSON object")
            if not isinstance(data, dict):
                return _control_error(400, "body must be a JSON object")
            body.update(data)
        try:
            result = await handler(body)
        except (KeyError, TypeError, ValueError, LookupError) as exc:
            return _control_error(400, f"{type(exc).__name__}: {exc}")
        return web.Response(text=_dumps(result), content_type="application/json")

    return route


def _control_error(status: int, message: str) -> web.Response:
    return web.Response(
        status=status, text=_dumps({"error": message}), content_type="application/json"
    )


async def _read_request(request: web.Request) -> tuple[Params, dict[str, UploadedFile]]:
    """Parameters from the query string and a JSON, urlencoded or multipart body."""
    params: Params = dict(request.query)
    files: dict[str, UploadedFile] = {}
    if not request.body_exists:
        return params, files
    content_type = request.content_type
    if content_type == "multipart/form-data":
        body_params, files = await _read_multipart(await request.multipart())
        params.update(body_params)
    elif content_type == "application/json":
        try:
            body = json.loads(await request.read() or b"{}")
        except ValueError:
            raise _bad_request("can't parse JSON encoded request body") from None
        if not isinstance(body, dict):
            raise _bad_request("JSON object expected in the request body")
        params.update(body)
    elif content_type == "application/x-www-form-urlencoded":
        form = await request.post()
        params.update((key, value) for key, value in form.items() if isinstance(value, str))
    return params, files


async def _read_multipart(reader: MultipartReader) -> tuple[Params, dict[str, UploadedFile]]:
    params: Params = {}
    files: dict[str, UploadedFile] = {}
    while True:
        part = await reader.next()
        if part is None:
            break
        if isinstance(part, MultipartReader) or not part.name:
            continue
        if part.filename is None:
            params[part.name] = await part.text()
            continue
        head = b""
        size = 0
        while chunk := await part.read_chunk(65536):
            if len(head) < _HEAD_BYTES:
                head += chunk[: _HEAD_BYTES - len(head)]
            size += len(chunk)
        files[part.name] = UploadedFile(
            field=part.name,
            filename=part.filename,
            size=size,
            head=head,
            content_type=part.headers.get("Content-Type"),
        )
    return params, files


def _validate_markup(value: Any, *, inline_only: bool = False) -> dict[str, Any] | None:
    """Check a reply_markup like Telegram does; return it (None when absent)."""
    if value is None or value == "":
        return None
    if not isinstance(value, dict):
        raise _bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in value:
        rows = value["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise _bad_request(
                'field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays'
            )
        for row in rows:
            for button in row:
                _validate_button(button)
        return value
    if inline_only:
        raise _bad_request("inline keyboard expected")
    if any(key in value for key in ("keyboard", "remove_keyboard", "force_reply")):
        return value
    raise _bad_request("can't parse reply keyboard markup JSON object")


def _validate_button(button: Any) -> None:
    if not isinstance(button, dict) or not isinstance(button.get("text"), str):
        raise _bad_request(
            'can\'t parse inline keyboard button: Field "text" must be of type String'
        )
    if not button["text"]:
        raise _bad_request("can't parse inline keyboard button: Text must be non-empty")
    if not any(key in button for key in _BUTTON_ACTIONS):
        raise _bad_request(
            "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
        )
    data = button.get("callback_data")
    if data is not None and (not isinstance(data, str) or not 1 <= len(data.encode("utf-8")) <= 64):
        raise _bad_request("BUTTON_DATA_INVALID")
    if "url" in button and not button["url"]:
        raise _bad_request("BUTTON_URL_INVALID")


def _callback_data(message: Mapping[str, Any]) -> set[str]:
    markup = message.get("reply_markup") or {}
    return {
        button["callback_data"]
        for row in markup.get("inline_keyboard", [])
        for button in row
        if "callback_data" in button
    }


def _without_reply(message: Mapping[str, Any]) -> dict[str, Any]:
    """A replied-to message as embedded by Telegram (no nested reply_to_message)."""
    return {k: v for k, v in message.items() if k != "reply_to_message"}


def _chat_instance(key: ChatKey) -> str:
    return str(zlib.crc32(str(key).encode()) * 1_000_003 + 7_000_000_000_000_000)


def _scope_key(scope: Any) -> str:
    if not scope:
        return '{"type":"default"}'
    if isinstance(scope, str):
        with contextlib.suppress(ValueError):
            scope = json.loads(scope)
    return json.dumps(scope, sort_keys=True, separators=(",", ":"))
