"""What the engine understands (events) and what it asks a transport to do (actions).

Plain frozen dataclasses: the engine never sees a Telegram object and a transport never sees a
lesson. A new messenger is one adapter that maps its updates to these events and renders these
actions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Who:
    """The learner an event is for, as the transport knows them."""

    external_id: str
    chat_id: int | None = None
    display_name: str | None = None
    language_code: str | None = None


@dataclass(frozen=True)
class Command:
    name: str
    args: str = ""


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Press:
    data: str


@dataclass(frozen=True)
class PollAnswer:
    poll_id: str
    option_ids: tuple[int, ...]


@dataclass(frozen=True)
class ChatStatus:
    """The learner blocked (`blocked=True`) or unblocked the bot."""

    blocked: bool


@dataclass(frozen=True)
class Unsupported:
    """Something we cannot read: a sticker, a photo, a voice note…"""

    kind: str


@dataclass(frozen=True)
class Media:
    """A photo or document the user sent (trainers attach them to broadcasts)."""

    kind: str  # photo | document
    file_id: str
    caption: str = ""
    filename: str | None = None
    mime: str | None = None


@dataclass(frozen=True)
class InlineQuery:
    query_id: str
    query: str


Event = Command | Text | Press | PollAnswer | ChatStatus | Unsupported | Media | InlineQuery


@dataclass(frozen=True)
class Button:
    label: str
    data: str | None = None
    url: str | None = None


Keyboard = tuple[tuple[Button, ...], ...]


@dataclass(frozen=True)
class Reply:
    """Send a message; with `image`, a photo whose caption is the text."""

    text: str
    buttons: Keyboard = ()
    image: str | None = None


@dataclass(frozen=True)
class EditPressed:
    """Edit the message whose button was pressed (show the result, drop or redraw buttons)."""

    text: str
    buttons: Keyboard = ()


@dataclass(frozen=True)
class Notice:
    """A short toast for a button press (answerCallbackQuery text); transports may show it."""

    text: str


@dataclass(frozen=True)
class Quiz:
    """A native quiz poll. The transport sends it and reports the poll id with `Tutor.bind_poll`."""

    token: str
    question: str
    options: tuple[str, ...]
    correct_ids: tuple[int, ...]
    explanation: str | None = None
    preface: str | None = None


@dataclass(frozen=True)
class Document:
    filename: str
    content: bytes
    caption: str = ""


@dataclass(frozen=True)
class Photo:
    content: bytes
    caption: str = ""
    filename: str = "picture.png"


@dataclass(frozen=True)
class Attachment:
    """A photo or document by Telegram file id (or as bytes), with a caption and buttons."""

    kind: str  # photo | document
    caption: str = ""
    file_id: str | None = None
    content: bytes | None = None
    filename: str = "file"
    buttons: Keyboard = ()


@dataclass(frozen=True)
class InlineResult:
    id: str
    title: str
    description: str
    text: str
    url: str | None = None


@dataclass(frozen=True)
class InlineAnswer:
    query_id: str
    results: tuple[InlineResult, ...]


@dataclass(frozen=True)
class Later:
    """An action that is slow to make (a picture, a PDF): made after the unit of work has
    closed, so rendering never holds the database, and one at a time, so a burst of pictures
    cannot starve everyone else."""

    make: Callable[[], Action]
    optional: bool = False
    """An extra (a chart) that may be dropped while the same learner's previous one is still
    being drawn; a certificate is never optional."""


Action = Reply | EditPressed | Notice | Quiz | Document | Photo | Attachment | InlineAnswer


@dataclass
class Outcome:
    """The engine's answer to one event."""

    actions: list[Action] = field(default_factory=list)

    def say(self, text: str, buttons: Keyboard = (), image: str | None = None) -> None:
        self.actions.append(Reply(text, buttons, image))
