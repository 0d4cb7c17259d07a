"""`restart-tutor chat`: the engine in a terminal.

Buttons are shown as numbered choices; the learner answers with a number, a button's label or a
command. It reads standard input line by line, so a script can pipe a whole session through it.
Quiz polls are shown as numbered options too and answered through the same poll path Telegram
uses. Pictures and documents are written to files and their paths printed.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TextIO

from bot.tutor.engine import Tutor
from bot.tutor.events import (
    Action,
    Button,
    Command,
    Document,
    EditPressed,
    Event,
    Notice,
    Photo,
    PollAnswer,
    Press,
    Quiz,
    Reply,
    Text,
    Who,
)

QUIT = ("/quit", "/exit")


class TerminalChat:
    def __init__(
        self,
        tutor: Tutor,
        learner: str,
        out: TextIO = sys.stdout,
        files_dir: Path = Path("tutor-files"),
    ):
        self.tutor = tutor
        self.who = Who(external_id=f"term:{learner}", display_name=learner)
        self.out = out
        self.files_dir = files_dir
        self.buttons: list[Button] = []
        self.quiz: tuple[str, int] | None = None  # (poll id, option count)

    def print(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def parse(self, line: str) -> Event | None:
        text = line.strip()
        if not text:
            return None
        if self.quiz and text.isdecimal() and 1 <= int(text) <= self.quiz[1]:
            poll_id, _count = self.quiz
            self.quiz = None
            return PollAnswer(poll_id, (int(text) - 1,))
        if text.isdecimal() and 1 <= int(text) <= len(self.buttons):
            button = self.buttons[int(text) - 1]
            if button.data:
                return Press(button.data)
        for button in self.buttons:
            if button.data and button.label.strip().lower() == text.lower():
                return Press(button.data)
        if text.startswith("/"):
            name, _sep, args = text[1:].partition(" ")
            return Command(name.split("@")[0], args.strip())
        return Text(text)

    async def send(self, event: Event) -> None:
        for action in await self.tutor.handle(self.who, event):
            await self.render(action)

    async def render(self, action: Action) -> None:
        match action:
            case Reply(text=text, buttons=buttons, image=image):
                self.print()
                if image:
                    self.print(f"[picture: {image}]")
                self.print(text)
                self._show_buttons([b for row in buttons for b in row])
            case EditPressed(text=text, buttons=buttons):
                if buttons:  # a redrawn keyboard (ticks in a "choose 2" question)
                    self._show_buttons([b for row in buttons for b in row])
                else:  # the answered question, with its feedback
                    self.print()
                    self.print(text)
                    self.buttons = []
            case Notice():
                pass  # the same words always follow as a message
            case Quiz():
                await self._quiz(action)
            case (
                Photo(content=content, caption=caption, filename=filename)
                | Document(content=content, caption=caption, filename=filename)
            ):
                self.files_dir.mkdir(parents=True, exist_ok=True)
                path = self.files_dir / filename
                path.write_bytes(content)
                self.print()
                self.print(f"{caption}\n[saved {path}]" if caption else f"[saved {path}]")

    async def _quiz(self, quiz: Quiz) -> None:
        poll_id = f"term-{self.who.external_id}-{quiz.token}"
        await self.tutor.bind_poll(self.who, quiz.token, poll_id)
        self.print()
        if quiz.preface:
            self.print(quiz.preface)
        self.print(f"[quiz] {quiz.question}")
        for i, option in enumerate(quiz.options, 1):
            self.print(f"  ({i}) {option}")
        self.quiz = (poll_id, len(quiz.options))
        self.buttons = []

    def _show_buttons(self, buttons: list[Button]) -> None:
        self.buttons = buttons
        for i, button in enumerate(buttons, 1):
            target = f" → {button.url}" if button.url else ""
            self.print(f"  [{i}] {button.label}{target}")

    async def run(self, stream: TextIO = sys.stdin) -> None:
        echo = not stream.isatty()
        self.print(
            "RestART Tutor in the terminal. Answer with a number, a label or a command; "
            "/quit or Ctrl-D to leave."
        )
        await self.send(Command("start"))
        while True:
            self.print()
            if not echo:
                self.out.write("> ")
                self.out.flush()
            line = await asyncio.to_thread(stream.readline)
            if not line:
                break
            if echo:
                self.print(f"> {line.rstrip()}")
            if line.strip().lower() in QUIT:
                break
            event = self.parse(line)
            if event is not None:
                await self.send(event)
        self.print("Bye! Your progress is saved.")
