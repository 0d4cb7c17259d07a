"""Streak rules, in one place.

A streak day is a calendar day in the learner's own time zone on which they finished at least one
lesson or exercise. The streak counts consecutive streak days up to today; today not being done
yet does not break it (the day is not over). Protection, as learners of Duolingo expect: every 7
consecutive practice days earn a freeze (at most `max_freezes` banked), and a missed day uses one
automatically; days inside a pause neither count nor break the streak.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo


def local_date(instant: datetime, zone: tzinfo) -> date:
    """The learner's calendar date at `instant` (an aware datetime)."""
    if instant.tzinfo is None:
        raise ValueError("local_date needs an aware datetime")
    return instant.astimezone(zone).date()


@dataclass(frozen=True)
class StreakSummary:
    current: int
    best: int
    freezes: int
    practised_today: bool
    frozen_days: tuple[date, ...] = field(default=())

    @property
    def at_risk(self) -> bool:
        """A streak worth protecting that today's practice has not yet extended."""
        return self.current >= 2 and not self.practised_today


@dataclass(frozen=True)
class StreakPolicy:
    freeze_every: int = 7
    max_freezes: int = 2

    def summarize(
        self,
        practice_days: Iterable[date],
        today: date,
        paused: Callable[[date], bool] = lambda _d: False,
    ) -> StreakSummary:
        days = {d for d in practice_days if d <= today}
        if not days:
            return StreakSummary(0, 0, 0, False)
        run = best = freezes = toward_freeze = 0
        frozen: list[date] = []
        day = min(days)
        while day <= today:
            if day in days:
                run += 1
                toward_freeze += 1
                if toward_freeze == self.freeze_every:
                    freezes = min(self.max_freezes, freezes + 1)
                    toward_freeze = 0
                best = max(best, run)
            elif day == today or paused(day):
                pass
            elif run and freezes:
                freezes -= 1
                frozen.append(day)
            else:
                run = toward_freeze = 0
                frozen.clear()
            day += timedelta(days=1)
        return StreakSummary(run, best, freezes, today in days, tuple(frozen))
