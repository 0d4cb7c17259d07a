"""A test learner talking to the engine: sends events, remembers the last keyboard, presses
buttons by label. Used by the engine journey tests."""

from __future__ import annotations

from bot.tutor.engine import Tutor
from bot.tutor.events import (
    Action,
    Button,
    Command,
    EditPressed,
    Event,
    Notice,
    PollAnswer,
    Press,
    Quiz,
    Reply,
    Text,
    Who,
)


class Chat:
    def __init__(self, tutor: Tutor, name: str = "ada", language_code: str | None = "en"):
        self.tutor = tutor
        self.who = Who(
            f"test:{name}",
            chat_id=abs(hash(name)) % 10**9,
            display_name=name,
            language_code=language_code,
        )
        self.last: list[Action] = []
        self.keyboard: list[Button] = []
        self.keyboard_text = ""
        self.history: list[str] = []
        self.quiz: Quiz | None = None

    async def send(self, event: Event) -> list[Action]:
        self.last = await self.tutor.handle(self.who, event)
        self.history.append(self.said)
        for action in self.last:
            if isinstance(action, Reply) and action.buttons:
                self.keyboard = [b for row in action.buttons for b in row]
                self.keyboard_text = action.text
            if isinstance(action, EditPressed) and action.buttons:
                self.keyboard = [b for row in action.buttons for b in row]
            if isinstance(action, Quiz):
                self.quiz = action
                await self.tutor.bind_poll(self.who, action.token, f"poll-{action.token}")
        return self.last

    async def command(self, name: str, args: str = "") -> list[Action]:
        return await self.send(Command(name, args))

    async def text(self, text: str) -> list[Action]:
        return await self.send(Text(text))

    def button(self, label: str) -> Button:
        for button in self.keyboard:
            if label.lower() in button.label.lower():
                return button
        raise AssertionError(f"no button {label!r} in {[b.label for b in self.keyboard]}")

    async def press(self, label: str) -> list[Action]:
        data = self.button(label).data
        assert data
        return await self.send(Press(data))

    async def answer_poll(self, *options: int) -> list[Action]:
        assert self.quiz is not None
        return await self.send(PollAnswer(f"poll-{self.quiz.token}", options))

    @property
    def texts(self) -> list[str]:
        return [a.text for a in self.last if isinstance(a, (Reply, EditPressed, Notice))]

    @property
    def said(self) -> str:
        return "\n".join(self.texts)

    async def onboard(self, city: str = "Rome", time: str = "09:00") -> None:
        await self.command("start")
        await self.press("English")
        await self.press(city)
        await self.press(time)


async def first_answer(chat: Chat) -> str:
    """Onboard, open today's lesson, continue past its cards: the first answer button's data."""
    await chat.onboard()
    await chat.command("today")
    while chat.keyboard and chat.keyboard[0].label.startswith("Continue"):
        await chat.press("Continue")
    return chat.keyboard[0].data or ""


async def take_lesson(chat: Chat, lesson, right: bool = True) -> None:
    """Go through `lesson` (already on screen): continue past cards, answer every question
    right (or wrong) by pressing the buttons a learner would press."""
    from bot.content import Card, Confidence, MultipleChoice, Rating, SingleChoice, TrueFalse

    for item in lesson.items:
        if isinstance(item, Card):
            await chat.press("Continue")
        elif isinstance(item, TrueFalse):
            await chat.press("True" if item.answer == right else "False")
        elif isinstance(item, SingleChoice):
            index = item.correct_ids[0] if right else (item.correct_ids[0] + 1) % len(item.options)
            await chat.send(Press(chat.keyboard[index].data or ""))
        elif isinstance(item, MultipleChoice):
            picks = (
                item.correct_ids
                if right
                else tuple(i for i in range(len(item.options)) if i not in item.correct_ids)[
                    : item.choose
                ]
            )
            toggles = [b for b in chat.keyboard if (b.data or "").startswith("t:")]
            for i in picks:
                await chat.send(Press(toggles[i].data or ""))
                toggles = [b for b in chat.keyboard if (b.data or "").startswith("t:")]
            await chat.send(
                Press(next(b.data for b in chat.keyboard if (b.data or "").startswith("ok:")))
            )
        elif isinstance(item, Rating):
            good = 1 if item.manipulative == right else 5
            await chat.press(str(good))
        elif isinstance(item, Confidence):
            await chat.press("4")


def question_on_screen(chat: Chat, catalog):
    """The catalog question whose prompt (or post) is in the last messages, if any."""
    from bot.content import Card

    text = chat.keyboard_text
    for course in catalog.courses.values():
        for lesson in course.lessons:
            for item in lesson.items:
                if isinstance(item, Card):
                    continue
                probe = getattr(item, "prompt", None) or getattr(item, "post", "")
                if probe and probe[:60] in text:
                    return item
    return None


async def answer_reviews(chat: Chat, catalog, right: bool = True) -> int:
    """Answer review and booster questions while they are on screen; return how many."""
    from bot.content import Lesson

    count = 0
    while chat.keyboard and not any(
        b.label.startswith(("Continue", "Start")) for b in chat.keyboard
    ):
        if count > 40:
            raise AssertionError(f"reviews never end: {chat.said[-300:]!r}")
        item = question_on_screen(chat, catalog)
        if item is None:
            break
        await take_lesson(
            chat, Lesson(id="x", title="x", tags=["digcomp:1.1"], items=[item]), right=right
        )
        count += 1
    return count
