"""Telegram Bot API limits, named once.

Values from the Bot API 10.x spec (see ../shared/research/telegram-and-stack.md §1). Content is
checked against them when it is loaded, not when it is sent, so a lesson that would be refused by
Telegram never reaches a learner. Where Telegram does not document a limit, the note says so.
"""

from __future__ import annotations

MESSAGE_TEXT_MAX = 4096
"""sendMessage.text, characters after entity parsing."""

CAPTION_MAX = 1024
"""sendPhoto/sendDocument caption."""

CALLBACK_DATA_MAX_BYTES = 64
"""InlineKeyboardButton.callback_data, UTF-8 bytes."""

CALLBACK_ANSWER_MAX = 200
"""answerCallbackQuery.text."""

POLL_QUESTION_MAX = 300
POLL_OPTION_MAX = 100
POLL_OPTIONS_MAX = 12
POLL_EXPLANATION_MAX = 200
POLL_EXPLANATION_MAX_LINE_FEEDS = 2

BUTTON_LABEL_MAX = 64
"""Not documented by Telegram; labels longer than this are cut by clients. Our own cap."""

KEYBOARD_BUTTONS_MAX = 100
"""Undocumented; PTB's InlineKeyboardMarkupLimit uses 100 buttons in total."""

FLOOD_MESSAGES_PER_SECOND = 30
FLOOD_MESSAGES_PER_CHAT_PER_SECOND = 1
FLOOD_MESSAGES_PER_GROUP_PER_MINUTE = 20
PAID_BROADCAST_MESSAGES_PER_SECOND = 1000

LESSON_TITLE_MAX = 100
"""Our own: a title must fit a button label or a short heading."""
