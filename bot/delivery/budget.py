"""One sending budget per bot token: a paced token bucket with two priorities and a global pause.

Why our own and not aiolimiter: aiolimiter's leaky bucket lets a full second's worth of messages
out in one burst (Telegram answers such bursts with 429s), has no notion of priority, and cannot
pause everyone for a `retry_after`. Here sends are paced evenly at `rate` per second with a small
burst allowance, interactive replies to a learner go before proactive messages, and a 429 pauses
every sender sharing the token until the wait is over.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from bot import limits


class Budget:
    def __init__(
        self, rate: float, burst: float = 0.05, clock: Callable[[], float] = time.monotonic
    ):
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.interval = 1.0 / rate
        self.burst = max(burst, self.interval)
        self.clock = clock
        self._next = clock()
        self._paused_until = 0.0
        self._interactive_waiting = 0

    def pause(self, seconds: float) -> None:
        """Stop every send on this token for `seconds` (Telegram's retry_after)."""
        self._paused_until = max(self._paused_until, self.clock() + seconds)

    async def acquire(self, interactive: bool = False) -> None:
        if interactive:
            self._interactive_waiting += 1
        try:
            while True:
                now = self.clock()
                wait = max(self._paused_until - now, self._next - self.burst - now)
                if not interactive and self._interactive_waiting:
                    wait = max(wait, self.interval)
                if wait <= 0:
                    self._next = max(self._next, now - self.burst) + self.interval
                    return
                await asyncio.sleep(wait)
        finally:
            if interactive:
                self._interactive_waiting -= 1


class ChatSpacing:
    """At most one message per chat per `interval` seconds (Telegram's ~1/s per chat).

    Telegram counts arrivals. A message can wait (for the budget, for the event loop) between
    its turn here and its arrival, so a chat's next turn is counted from when the previous
    message was sent (`sent`, after its answer came back), not from when its turn came: a late
    message then cannot arrive within a second of the one before.
    """

    def __init__(
        self,
        interval: float = 1 / limits.FLOOD_MESSAGES_PER_CHAT_PER_SECOND,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.interval = interval
        self.clock = clock
        self._last: dict[int, float] = {}

    async def wait(self, chat_id: int) -> None:
        """Wait for the chat's turn, and hold it (a second sender to the chat waits too)."""
        while True:
            now = self.clock()
            last = self._last.get(chat_id)
            if last is None or now - last >= self.interval:
                self._last[chat_id] = now
                if len(self._last) > 10_000:
                    self._forget(now)
                return
            await asyncio.sleep(self.interval - (now - last))

    def sent(self, chat_id: int) -> None:
        """The message to `chat_id` went out (or failed): the next one waits from now."""
        self._last[chat_id] = self.clock()

    def _forget(self, now: float) -> None:
        self._last = {c: t for c, t in self._last.items() if now - t < self.interval}
