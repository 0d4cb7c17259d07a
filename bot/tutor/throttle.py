"""Per-learner throttling: a learner flooding the bot is slowed down, nobody else is.

A sliding window per learner (in this process; several instances each keep their own, which is
enough to stop a flood from one chat). Past the limit, updates are ignored on purpose: Telegram
gets its answer, the learner is told once per window to slow down, the database is not touched.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class Throttle:
    def __init__(
        self, limit: int = 20, window: float = 5.0, clock: Callable[[], float] = time.monotonic
    ):
        self.limit = limit
        self.window = window
        self.clock = clock
        self._seen: dict[str, deque[float]] = {}
        self._warned: dict[str, float] = {}

    @classmethod
    def parse(cls, spec: str) -> Throttle:
        """'20/5': at most 20 updates per 5 seconds per learner."""
        limit, _sep, window = spec.partition("/")
        return cls(int(limit), float(window or 1))

    def allow(self, key: str) -> bool:
        now = self.clock()
        seen = self._seen.setdefault(key, deque())
        while seen and now - seen[0] > self.window:
            seen.popleft()
        if len(seen) >= self.limit:
            return False
        seen.append(now)
        if len(self._seen) > 50_000:
            self._forget(now)
        return True

    def should_warn(self, key: str) -> bool:
        now = self.clock()
        if now - self._warned.get(key, -1e9) > self.window:
            self._warned[key] = now
            return True
        return False

    def _forget(self, now: float) -> None:
        self._seen = {k: v for k, v in self._seen.items() if v and now - v[-1] <= self.window}
        self._warned = {k: t for k, t in self._warned.items() if now - t <= self.window}
