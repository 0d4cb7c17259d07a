"""Nudge times across zones and both DST changes; quiet hours; weekdays and pauses."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.delivery.planner import (
    Schedule,
    in_quiet_hours,
    local_instant,
    next_after,
    next_nudge_at,
    parse_weekdays,
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("zone", "day", "at", "expected"),
    [
        # Ordinary days.
        ("Europe/Rome", date(2026, 1, 15), "08:00", utc(2026, 1, 15, 7, 0)),
        ("Europe/Athens", date(2026, 7, 15), "08:00", utc(2026, 7, 15, 5, 0)),
        ("America/New_York", date(2026, 1, 15), "08:00", utc(2026, 1, 15, 13, 0)),
        ("Asia/Kolkata", date(2026, 1, 15), "08:00", utc(2026, 1, 15, 2, 30)),
        ("Pacific/Chatham", date(2026, 7, 15), "08:00", utc(2026, 7, 14, 19, 15)),  # +12:45
        ("Pacific/Chatham", date(2026, 1, 15), "08:00", utc(2026, 1, 14, 18, 15)),  # +13:45
        # Spring forward: the local time does not exist → the first valid instant.
        ("Europe/Rome", date(2026, 3, 29), "02:30", utc(2026, 3, 29, 1, 0)),  # 03:00 CEST
        ("Europe/Athens", date(2026, 3, 29), "03:30", utc(2026, 3, 29, 1, 0)),  # 04:00 EEST
        ("America/New_York", date(2026, 3, 8), "02:30", utc(2026, 3, 8, 7, 0)),  # 03:00 EDT
        ("Pacific/Chatham", date(2026, 9, 27), "03:00", utc(2026, 9, 26, 14, 0)),  # 03:45 +13:45
        # Fall back: the local time happens twice → the first occurrence.
        ("Europe/Rome", date(2026, 10, 25), "02:30", utc(2026, 10, 25, 0, 30)),  # CEST
        ("Europe/Athens", date(2026, 10, 25), "03:30", utc(2026, 10, 25, 0, 30)),  # EEST
        ("America/New_York", date(2026, 11, 1), "01:30", utc(2026, 11, 1, 5, 30)),  # EDT
        ("Pacific/Chatham", date(2026, 4, 5), "03:00", utc(2026, 4, 4, 13, 15)),  # +13:45
        # Just after each change, times are plain again.
        ("Europe/Rome", date(2026, 3, 29), "08:00", utc(2026, 3, 29, 6, 0)),
        ("Europe/Rome", date(2026, 10, 25), "08:00", utc(2026, 10, 25, 7, 0)),
    ],
)
def test_local_time_to_utc_with_dst_rules(zone, day, at, expected):
    hours, minutes = map(int, at.split(":"))
    from datetime import time

    assert local_instant(day, time(hours, minutes), ZoneInfo(zone)) == expected


def test_next_nudge_is_strictly_after_now_and_daily():
    schedule = Schedule("Europe/Rome", "09:00")
    assert next_nudge_at(schedule, utc(2026, 1, 15, 7, 59)) == utc(2026, 1, 15, 8, 0)
    assert next_nudge_at(schedule, utc(2026, 1, 15, 8, 0)) == utc(2026, 1, 16, 8, 0)


def test_the_learners_local_day_decides_not_utc():
    # 23:30 UTC on 15 Jan is already 16 Jan in Kolkata; the 08:00 slot of the 16th is next.
    schedule = Schedule("Asia/Kolkata", "08:00")
    assert next_nudge_at(schedule, utc(2026, 1, 15, 23, 30)) == utc(2026, 1, 16, 2, 30)


def test_weekdays_are_respected():
    schedule = Schedule("Europe/Athens", "18:00", parse_weekdays("0"))  # Mondays only
    friday = utc(2026, 1, 16, 12, 0)
    assert next_nudge_at(schedule, friday) == utc(2026, 1, 19, 16, 0)


def test_a_pause_skips_its_days():
    schedule = Schedule("Europe/Rome", "09:00", paused_until=date(2026, 1, 20))
    assert next_nudge_at(schedule, utc(2026, 1, 15, 7, 0)) == utc(2026, 1, 21, 8, 0)


def test_cached_planner_agrees_with_the_plain_one():
    for zone in ("Europe/Rome", "America/New_York", "Pacific/Chatham", "UTC+05:30"):
        after = utc(2026, 3, 7, 12, 34, 56)
        plain = next_nudge_at(Schedule(zone, "02:30"), after)
        assert next_after(zone, "02:30", parse_weekdays(None), None, after) == plain


@pytest.mark.parametrize(
    ("quiet", "local", "expected"),
    [
        ("22:00-07:00", "23:30", True),
        ("22:00-07:00", "06:59", True),
        ("22:00-07:00", "07:00", False),
        ("22:00-07:00", "12:00", False),
        ("13:00-15:00", "14:00", True),
        ("13:00-15:00", "15:00", False),
        (None, "03:00", False),
    ],
)
def test_quiet_hours(quiet, local, expected):
    zone = ZoneInfo("Europe/Rome")
    hours, minutes = map(int, local.split(":"))
    instant = datetime(2026, 1, 15, hours, minutes, tzinfo=zone)
    assert in_quiet_hours(quiet, instant, zone) is expected
