"""Nudge planning, in one place: when is a learner's next daily nudge, as a UTC instant?

The learner chose a wall-clock time in their own zone (and optionally weekdays). We turn the next
such local time into UTC with zoneinfo and store it in `learners.next_nudge_at`:

* a local time that does not exist (the spring-forward gap) moves to the first valid instant, the
  moment the clocks jump;
* an ambiguous local time (the fall-back hour) takes its first occurrence (`fold=0`);
* days inside a pause, and weekdays the learner did not choose, are skipped.

Quiet hours are checked separately (`in_quiet_hours`): they silence catch-up nudges and reminders.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache

from bot.tutor.zones import as_time, resolve_zone

ALL_DAYS = frozenset(range(7))
MAX_LOOKAHEAD_DAYS = 400


@dataclass(frozen=True)
class Schedule:
    zone: str
    daily_time: str
    weekdays: frozenset[int] = ALL_DAYS
    paused_until: date | None = None
    """Last paused local date (inclusive); nudges resume the day after."""


def parse_weekdays(raw: str | None) -> frozenset[int]:
    """'0123456' (Monday = 0) as stored; empty or None means every day."""
    days = frozenset(int(c) for c in (raw or "") if c.isdecimal() and int(c) < 7)
    return days or ALL_DAYS


def local_instant(day: date, at: time, zone: tzinfo) -> datetime:
    """The UTC instant of wall-clock `at` on `day` in `zone`, DST rules applied as above."""
    wall = datetime.combine(day, at).replace(tzinfo=zone, fold=0)
    utc = wall.astimezone(UTC)
    if utc.astimezone(zone).replace(tzinfo=None) == wall.replace(tzinfo=None):
        return utc  # exists (the first occurrence if it is ambiguous)
    # In a gap: the first valid instant is the transition, between the two readings of `wall`.
    low = wall.replace(fold=1).astimezone(UTC)
    high = utc
    if low > high:
        low, high = high, low
    target = wall.replace(fold=1).utcoffset()
    while high - low > timedelta(seconds=1):
        mid = low + (high - low) / 2
        if mid.astimezone(zone).utcoffset() == target:
            high = mid
        else:
            low = mid
    return high.replace(microsecond=0) if high.microsecond else high


def next_nudge_at(schedule: Schedule, after: datetime) -> datetime | None:
    """The first nudge instant strictly after `after`; None when nothing can be scheduled."""
    zone = resolve_zone(schedule.zone)
    at = as_time(schedule.daily_time)
    day = after.astimezone(zone).date()
    if schedule.paused_until and day <= schedule.paused_until:
        day = schedule.paused_until + timedelta(days=1)
    for _ in range(MAX_LOOKAHEAD_DAYS):
        if day.weekday() in schedule.weekdays:
            instant = local_instant(day, at, zone)
            if instant > after:
                return instant
        day += timedelta(days=1)
    return None


@lru_cache(maxsize=4096)
def _cached_next(zone: str, daily_time: str, weekdays: frozenset[int], after: datetime) -> datetime:
    result = next_nudge_at(Schedule(zone, daily_time, weekdays), after)
    assert result is not None
    return result


def next_after(
    zone: str | None,
    daily_time: str,
    weekdays: frozenset[int],
    paused_until: date | None,
    after: datetime,
) -> datetime | None:
    """`next_nudge_at` with a cache for the common case (no pause): the planner computes the
    same answer for every learner who shares a zone, a time and weekdays."""
    if paused_until is None:
        return _cached_next(
            zone or "UTC", daily_time, weekdays, after.replace(second=0, microsecond=0)
        )
    return next_nudge_at(Schedule(zone or "UTC", daily_time, weekdays, paused_until), after)


def parse_quiet(raw: str | None) -> tuple[time, time] | None:
    if not raw or "-" not in raw:
        return None
    start, end = raw.split("-", 1)
    return as_time(start), as_time(end)


def in_quiet_hours(quiet: str | None, instant: datetime, zone: tzinfo) -> bool:
    """Quiet hours are a local time window, possibly across midnight ('22:00-07:00')."""
    window = parse_quiet(quiet)
    if window is None:
        return False
    start, end = window
    now = instant.astimezone(zone).time()
    if start <= end:
        return start <= now < end
    return now >= start or now < end


def reschedule(learner, now: datetime) -> None:
    """Recompute `learner.next_nudge_at` after anything that affects it (one home for the rule:
    no nudges unless onboarded, active, with nudges on and a daily time)."""
    if (
        learner.onboarding != "done"
        or not learner.active
        or not learner.nudges_enabled
        or not learner.daily_time
    ):
        learner.next_nudge_at = None
        return
    learner.next_nudge_at = next_nudge_at(
        Schedule(
            learner.time_zone or "UTC",
            learner.daily_time,
            parse_weekdays(learner.weekdays),
            learner.paused_until,
        ),
        now,
    )
