"""What both Telegram adapters share: reading an update, rendering actions, the command menu.

aiogram and python-telegram-bot each hand us the update as the Bot API's own JSON shape and give
us one way to call a Bot API method (`BotApi.call`). Everything between (which chats we serve,
which updates we ignore on purpose, how a question becomes a keyboard or a quiz poll, answering
every callback query once) lives here, once, so the two adapters cannot drift apart.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from bot import limits
from bot.i18n import LANGUAGES, Translator
from bot.tutor.engine import Tutor
from bot.tutor.events import (
    Action,
    Attachment,
    ChatStatus,
    Command,
    Document,
    EditPressed,
    Event,
    InlineAnswer,
    InlineQuery,
    Keyboard,
    Media,
    Notice,
    Photo,
    PollAnswer,
    Press,
    Quiz,
    Reply,
    Text,
    Unsupported,
    Who,
)

log = logging.getLogger(__name__)

ALLOWED_UPDATES = ["message", "callback_query", "poll_answer", "my_chat_member", "inline_query"]
MEDIA_KINDS = (
    "sticker",
    "photo",
    "voice",
    "video",
    "video_note",
    "audio",
    "document",
    "animation",
    "location",
    "contact",
    "poll",
    "dice",
)


class BotApi(Protocol):
    """One Bot API call through whichever framework is in use; errors are `SendError`s."""

    async def call(self, method: str, params: dict[str, Any]) -> Any: ...


class SendError(Exception):
    """A Bot API call failed; `kind` says what the sender should do about it."""

    def __init__(self, kind: str, description: str, retry_after: float = 0.0):
        super().__init__(f"{kind}: {description}")
        self.kind = kind  # "retry_after" | "blocked" | "unauthorized" | "bad_request" | "transient"
        self.description = description
        self.retry_after = retry_after


def bot_api_result(status: int, body: str) -> Any:
    """The `result` of a Bot API answer, or the answer's error as a `SendError`.

    A 429 carries `retry_after`; 403 means we may not write to this chat (the learner blocked
    us); 401 means Telegram refuses the bot token itself, which says nothing about the learner;
    any other 4xx is a request Telegram will never accept; 5xx and an unreadable answer are worth
    retrying.
    """
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        raise SendError("transient", f"HTTP {status}: not a Bot API answer")
    if payload.get("ok") and status < 300:
        return payload.get("result")
    description = str(payload.get("description") or f"HTTP {status}")
    code = payload.get("error_code", status)
    retry_after = (payload.get("parameters") or {}).get("retry_after")
    if code == 429 and isinstance(retry_after, int | float):
        raise SendError("retry_after", description, float(retry_after))
    if code == 401:
        raise SendError("unauthorized", description)
    if code == 403:
        raise SendError("blocked", description)
    if isinstance(code, int) and 400 <= code < 500:
        raise SendError("bad_request", description)
    raise SendError("transient", description)


class PolledUpdates:
    """Each polled update's Bot API JSON by `update_id`, from when the framework decodes the
    getUpdates answer until it dispatches the update.

    The gateway reads updates as the Bot API's JSON; rebuilding that from the framework's objects
    (`Update.to_dict()`, `model_dump()`) cost PTB about a seventh and aiogram about a twelfth of
    the tutor's CPU per update (bench/interactive.py). Each adapter feeds `keep` from its
    framework's JSON-decoding hook; the frameworks do not alter the decoded JSON (they build
    their objects from copies).
    """

    KEEP = 1000  # more unclaimed updates than this means they are not ours to claim: start over

    def __init__(self) -> None:
        self.raw: dict[int, dict[str, Any]] = {}

    def keep(self, answer: Any) -> None:
        """Remember the updates in a decoded Bot API answer (other answers are ignored)."""
        updates = answer.get("result") if isinstance(answer, dict) else None
        if not isinstance(updates, list):
            return
        if len(self.raw) > self.KEEP:
            self.raw.clear()
        for update in updates:
            if isinstance(update, dict) and isinstance(update.get("update_id"), int):
                self.raw[update["update_id"]] = update

    def claim(self, update_id: int) -> dict[str, Any] | None:
        return self.raw.pop(update_id, None)


@dataclass(frozen=True)
class FileUpload:
    """Bytes to upload; each adapter wraps them in its framework's input-file type."""

    filename: str
    content: bytes


@dataclass(frozen=True)
class Incoming:
    who: Who
    event: Event
    chat_id: int
    callback_id: str | None = None
    message_id: int | None = None


@dataclass(frozen=True)
class GroupNotice:
    """Something from a group: we answer (politely, once) that we work in private chats."""

    chat_id: int
    callback_id: str | None = None


def read_update(raw: dict[str, Any], bot_username: str = "") -> Incoming | GroupNotice | None:
    """Map a Bot API update to an engine event, or None when we ignore it on purpose (an
    update we do not serve, or one so damaged that it has no sender or chat)."""
    try:
        return _read_update(raw, bot_username)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        log.warning("damaged update %r ignored: %s", str(raw)[:200], exc)
        return None


def _read_update(raw: dict[str, Any], bot_username: str) -> Incoming | GroupNotice | None:
    if message := raw.get("message"):
        chat, sender = message.get("chat") or {}, message.get("from") or {}
        if chat.get("type") != "private" or not sender:
            text = message.get("text") or ""
            if chat.get("type") in ("group", "supergroup") and isinstance(text, str):
                event = _text_event(text, bot_username)
                if isinstance(event, Command):  # addressed to us, not to another bot
                    return GroupNotice(chat["id"])
            return None
        who = _who(sender, chat["id"])
        text = message.get("text")
        if text is None:
            return Incoming(who, _media(message), chat["id"])
        return Incoming(who, _text_event(text, bot_username), chat["id"])
    if query := raw.get("callback_query"):
        sender = query.get("from") or {}
        message = query.get("message") or {}
        chat_id = (message.get("chat") or {}).get("id", sender.get("id"))
        if (message.get("chat") or {}).get("type", "private") != "private":
            return GroupNotice(chat_id, callback_id=query.get("id")) if query.get("id") else None
        return Incoming(
            _who(sender, chat_id),
            Press(str(query.get("data") or "")[:64]),
            chat_id,
            callback_id=query.get("id"),
            message_id=message.get("message_id"),
        )
    if answer := raw.get("poll_answer"):
        user = answer.get("user")
        if not user:
            return None
        options = tuple(int(i) for i in answer.get("option_ids") or () if isinstance(i, int))
        return Incoming(
            _who(user, user["id"]), PollAnswer(str(answer.get("poll_id")), options), user["id"]
        )
    if member := raw.get("my_chat_member"):
        chat = member.get("chat") or {}
        if chat.get("type") != "private":
            return None
        status = (member.get("new_chat_member") or {}).get("status")
        return Incoming(
            _who(member["from"], chat["id"]), ChatStatus(status == "kicked"), chat["id"]
        )
    if query := raw.get("inline_query"):
        user = query.get("from") or {}
        if not user or "id" not in query:
            return None
        return Incoming(
            _who(user, user["id"]),
            InlineQuery(str(query["id"]), str(query.get("query") or "")[:256]),
            user["id"],
        )
    return None  # edited messages, channel posts and anything else: ignored on purpose


def _media(message: dict[str, Any]) -> Event:
    """A photo or document becomes `Media` (trainers attach them); anything else is
    `Unsupported`, answered with a short explanation."""
    caption = str(message.get("caption") or "")
    photos = message.get("photo")
    if isinstance(photos, list) and photos and isinstance(photos[-1], dict):
        return Media("photo", str(photos[-1].get("file_id", "")), caption)
    document = message.get("document")
    if isinstance(document, dict) and document.get("file_id"):
        return Media(
            "document",
            str(document["file_id"]),
            caption,
            document.get("file_name"),
            document.get("mime_type"),
        )
    return Unsupported(next((k for k in MEDIA_KINDS if k in message), "other"))


def _who(user: dict[str, Any], chat_id: int) -> Who:
    name = " ".join(p for p in (user.get("first_name"), user.get("last_name")) if p)
    return Who(
        f"tg:{user['id']}",
        chat_id=chat_id,
        display_name=name[:200] or None,
        language_code=user.get("language_code"),
    )


def _text_event(text: str, bot_username: str) -> Event:
    if text.startswith("/") and len(text) > 1:
        head, _sep, args = text[1:].partition(" ")
        name, _at, target = head.partition("@")
        if not target or target.lower() == bot_username.lower():
            return Command(name[:64], args.strip())
    return Text(text)


def keyboard_markup(buttons: Keyboard) -> dict[str, Any] | None:
    if not buttons:
        return None
    rows = []
    for row in buttons:
        cells = []
        for button in row:
            cell: dict[str, Any] = {"text": button.label[: limits.BUTTON_LABEL_MAX]}
            if button.url:
                cell["url"] = button.url
            else:
                data = button.data or "noop"
                if len(data.encode()) > limits.CALLBACK_DATA_MAX_BYTES:
                    raise ValueError(f"callback data over 64 bytes: {data!r}")
                cell["callback_data"] = data
            cells.append(cell)
        rows.append(cells)
    return {"inline_keyboard": rows}


def split_text(text: str, size: int = limits.MESSAGE_TEXT_MAX) -> list[str]:
    """Cut a long text into Telegram-sized pieces, at a paragraph or line break when possible."""
    pieces = []
    while len(text) > size:
        cut = max(text.rfind("\n\n", 0, size), text.rfind("\n", 0, size))
        cut = cut if cut > size // 2 else size
        pieces.append(text[:cut])
        text = text[cut:].lstrip("\n")
    pieces.append(text)
    return pieces


class TelegramGateway:
    """Feeds updates to the engine and renders its actions through a `BotApi`."""

    def __init__(
        self, tutor: Tutor, lessons_dir: Path, bot_username: str = "", metrics: Any = None
    ):
        self.tutor = tutor
        self.lessons_dir = lessons_dir
        self.bot_username = bot_username
        self.metrics = metrics

    async def handle(self, raw: dict[str, Any], api: BotApi) -> None:
        if self.metrics is None:
            await self._handle(raw, api)
            return
        with self.metrics.observe_update(raw):
            await self._handle(raw, api)

    async def _handle(self, raw: dict[str, Any], api: BotApi) -> None:
        incoming = read_update(raw, self.bot_username)
        if incoming is None:
            log.debug("update %s ignored on purpose", raw.get("update_id"))
            return
        if isinstance(incoming, GroupNotice):
            text = (
                Translator(None)
                .gettext("I work in private chats. Open a chat with me to learn: @{bot}")
                .format(bot=self.bot_username)
            )
            if incoming.callback_id:
                await self._answer_callback(api, incoming.callback_id, text)
            else:
                await api.call("sendMessage", {"chat_id": incoming.chat_id, "text": text})
            return
        answering: asyncio.Task[None] | None = None
        try:
            actions = await self.tutor.handle(incoming.who, incoming.event)
            if incoming.callback_id:  # answered beside the replies, not before them
                notice = next((a.text for a in actions if isinstance(a, Notice)), None)
                answering = asyncio.create_task(
                    self._answer_callback(api, incoming.callback_id, notice)
                )
            for action in actions:
                await self.render(api, incoming.chat_id, action, incoming.message_id, incoming.who)
        finally:
            if incoming.callback_id:
                await (answering or self._answer_callback(api, incoming.callback_id, None))

    async def _answer_callback(self, api: BotApi, callback_id: str, text: str | None) -> None:
        params: dict[str, Any] = {"callback_query_id": callback_id}
        if text:
            params["text"] = text[: limits.CALLBACK_ANSWER_MAX]
        try:
            await api.call("answerCallbackQuery", params)
        except SendError as exc:  # a callback older than ~15 min can no longer be answered
            log.info("callback query not answered: %s", exc)

    async def render(
        self,
        api: BotApi,
        chat_id: int,
        action: Action,
        message_id: int | None = None,
        who: Who | None = None,
    ) -> None:
        """Send one action to `chat_id`; `message_id` is the pressed message (for edits) and
        `who` the learner (to bind a quiz poll to them)."""
        match action:
            case Reply(text=text, buttons=buttons, image=image):
                markup = keyboard_markup(buttons)
                if image:
                    await self._photo(api, chat_id, image, text, markup)
                    return
                pieces = split_text(text)
                for i, piece in enumerate(pieces):
                    params: dict[str, Any] = {"chat_id": chat_id, "text": piece}
                    if markup and i == len(pieces) - 1:
                        params["reply_markup"] = markup
                    await api.call("sendMessage", params)
            case EditPressed(text=text, buttons=buttons):
                if message_id is None:
                    return
                params = {
                    "chat_id": chat_id,
                    "message_id": message_id,
                    "text": text[: limits.MESSAGE_TEXT_MAX],
                }
                if markup := keyboard_markup(buttons):
                    params["reply_markup"] = markup
                try:
                    await api.call("editMessageText", params)
                except SendError as exc:  # "message is not modified" and the like
                    if exc.kind != "bad_request":
                        raise
                    log.info("edit skipped: %s", exc.description)
            case Notice():
                pass  # only meaningful for a button press, handled above
            case Attachment(kind=kind, caption=caption, buttons=buttons):
                media: Any = action.file_id or FileUpload(action.filename, action.content or b"")
                method, field = (
                    ("sendPhoto", "photo") if kind == "photo" else ("sendDocument", "document")
                )
                params = {
                    "chat_id": chat_id,
                    field: media,
                    "caption": caption[: limits.CAPTION_MAX],
                }
                if markup := keyboard_markup(buttons):
                    params["reply_markup"] = markup
                await api.call(method, params)
            case InlineAnswer(query_id=query_id, results=results):
                await api.call(
                    "answerInlineQuery",
                    {
                        "inline_query_id": query_id,
                        "cache_time": 300,
                        "is_personal": False,
                        "results": [
                            {
                                "type": "article",
                                "id": r.id[:64],
                                "title": r.title[:256],
                                "description": r.description,
                                "input_message_content": {"message_text": r.text[:4096]},
                                **({"url": r.url} if r.url else {}),
                            }
                            for r in results
                        ],
                    },
                )
            case Quiz():
                await self._quiz(api, chat_id, who or Who(f"tg:{chat_id}", chat_id), action)
            case Photo(content=content, caption=caption, filename=filename):
                await api.call(
                    "sendPhoto",
                    {
                        "chat_id": chat_id,
                        "photo": FileUpload(filename, content),
                        "caption": caption[: limits.CAPTION_MAX],
                    },
                )
            case Document(content=content, caption=caption, filename=filename):
                await api.call(
                    "sendDocument",
                    {
                        "chat_id": chat_id,
                        "document": FileUpload(filename, content),
                        "caption": caption[: limits.CAPTION_MAX],
                    },
                )

    async def _photo(
        self, api: BotApi, chat_id: int, image: str, caption: str, markup: dict[str, Any] | None
    ) -> None:
        photo: Any = image
        if not image.startswith(("http://", "https://")):
            path = (self.lessons_dir / image).resolve()
            if not path.is_relative_to(self.lessons_dir.resolve()) or not path.is_file():
                log.warning("card image %s not found; sending the text alone", image)
                await api.call(
                    "sendMessage",
                    {
                        "chat_id": chat_id,
                        "text": caption,
                        **({"reply_markup": markup} if markup else {}),
                    },
                )
                return
            photo = FileUpload(path.name, path.read_bytes())
        params: dict[str, Any] = {"chat_id": chat_id, "photo": photo, "caption": caption}
        if markup:
            params["reply_markup"] = markup
        await api.call("sendPhoto", params)

    async def _quiz(self, api: BotApi, chat_id: int, who: Who, quiz: Quiz) -> None:
        if quiz.preface:
            await api.call("sendMessage", {"chat_id": chat_id, "text": quiz.preface})
        params: dict[str, Any] = {
            "chat_id": chat_id,
            "question": quiz.question[: limits.POLL_QUESTION_MAX],
            "options": [{"text": o[: limits.POLL_OPTION_MAX]} for o in quiz.options],
            "type": "quiz",
            "is_anonymous": False,
            "correct_option_ids": list(quiz.correct_ids),
        }
        if quiz.explanation:
            params["explanation"] = quiz.explanation[: limits.POLL_EXPLANATION_MAX]
        message = await api.call("sendPoll", params)
        poll_id = _poll_id(message)
        if poll_id:
            await self.tutor.bind_poll(who, quiz.token, poll_id)


def _poll_id(message: Any) -> str | None:
    return (message.get("poll") or {}).get("id") if isinstance(message, dict) else None


def command_menus() -> list[dict[str, Any]]:
    """setMyCommands parameters: the default menu and one per shipped language."""
    names = ("today", "progress", "settings", "language", "stop", "resume", "help")
    menus = []
    for code in (None, *LANGUAGES):
        t = Translator(code)
        _ = t.gettext
        descriptions = {
            "today": _("Continue your lesson"),
            "progress": _("Your progress and streak"),
            "settings": _("Language, time zone, daily time"),
            "language": _("Change the language"),
            "stop": _("Pause the daily reminders"),
            "resume": _("Turn the daily reminders back on"),
            "help": _("What I can do"),
        }
        params: dict[str, Any] = {
            "commands": [{"command": n, "description": descriptions[n]} for n in names]
        }
        if code:
            params["language_code"] = code
        menus.append(params)
    return menus


SENDING_METHODS = frozenset(
    {
        "sendMessage",
        "sendPhoto",
        "sendDocument",
        "sendPoll",
        "editMessageText",
        "editMessageReplyMarkup",
    }
)
INTERACTIVE_RETRY_MAX = 30.0


class BudgetedApi:
    """Interactive calls through the token's shared budget, ahead of proactive messages.

    A 429 pauses the whole token; a learner's reply is tried once more after the wait when the
    wait is short, so the learner still gets an answer.
    """

    def __init__(self, api: BotApi, budget: Any):
        self.api = api
        self.budget = budget

    async def call(self, method: str, params: dict[str, Any]) -> Any:
        if method not in SENDING_METHODS:
            return await self.api.call(method, params)
        await self.budget.acquire(interactive=True)
        try:
            return await self.api.call(method, params)
        except SendError as exc:
            if exc.kind != "retry_after":
                raise
            self.budget.pause(exc.retry_after)
            if exc.retry_after > INTERACTIVE_RETRY_MAX:
                raise
            await self.budget.acquire(interactive=True)
            return await self.api.call(method, params)
