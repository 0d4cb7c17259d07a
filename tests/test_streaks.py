"""Streak rules across time zones, DST changes and midnight edges, and streak freezes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.tutor.streaks import StreakPolicy, local_date

POLICY = StreakPolicy()
D = date(2026, 3, 2)


def days(*offsets: int) -> list[date]:
    return [D + timedelta(days=o) for o in offsets]


@pytest.mark.parametrize(
    ("instant", "zone", "expected"),
    [
        # 23:30 UTC on 1 March is already 2 March in Rome (UTC+1) and Athens (UTC+2)...
        (datetime(2026, 3, 1, 23, 30, tzinfo=UTC), "Europe/Rome", date(2026, 3, 2)),
        (datetime(2026, 3, 1, 22, 30, tzinfo=UTC), "Europe/Athens", date(2026, 3, 2)),
        # ...and still 1 March in New York (UTC-5).
        (datetime(2026, 3, 2, 4, 59, tzinfo=UTC), "America/New_York", date(2026, 3, 1)),
        (datetime(2026, 3, 2, 5, 0, tzinfo=UTC), "America/New_York", date(2026, 3, 2)),
        # Kolkata is UTC+5:30: 18:29 UTC is 23:59, 18:30 UTC is midnight.
        (datetime(2026, 3, 2, 18, 29, tzinfo=UTC), "Asia/Kolkata", date(2026, 3, 2)),
        (datetime(2026, 3, 2, 18, 30, tzinfo=UTC), "Asia/Kolkata", date(2026, 3, 3)),
        # Chatham is UTC+13:45 in its (southern) summer.
        (datetime(2026, 3, 2, 10, 14, tzinfo=UTC), "Pacific/Chatham", date(2026, 3, 2)),
        (datetime(2026, 3, 2, 10, 15, tzinfo=UTC), "Pacific/Chatham", date(2026, 3, 3)),
        # Spring forward in Rome (29 March 2026, 02:00 → 03:00): midnight is still UTC+1.
        (datetime(2026, 3, 28, 23, 0, tzinfo=UTC), "Europe/Rome", date(2026, 3, 29)),
        (datetime(2026, 3, 29, 21, 59, tzinfo=UTC), "Europe/Rome", date(2026, 3, 29)),
        (datetime(2026, 3, 29, 22, 0, tzinfo=UTC), "Europe/Rome", date(2026, 3, 30)),
        # Fall back in New York (1 Nov 2026): the day has 25 hours.
        (datetime(2026, 11, 2, 4, 59, tzinfo=UTC), "America/New_York", date(2026, 11, 1)),
        (datetime(2026, 11, 2, 5, 0, tzinfo=UTC), "America/New_York", date(2026, 11, 2)),
    ],
)
def test_local_date_follows_the_learners_zone(instant, zone, expected):
    assert local_date(instant, ZoneInfo(zone)) == expected


def test_naive_instants_are_refused():
    with pytest.raises(ValueError):
        local_date(datetime(2026, 3, 2), ZoneInfo("Europe/Rome"))


def test_consecutive_days_count_and_today_not_done_does_not_break():
    s = POLICY.summarize(days(0, 1, 2), today=D + timedelta(days=3))
    assert (s.current, s.best, s.practised_today) == (3, 3, False)
    assert s.at_risk


def test_a_missed_day_without_freeze_breaks_the_streak():
    s = POLICY.summarize(days(0, 1, 2, 4), today=D + timedelta(days=4))
    assert (s.current, s.best) == (1, 3)


def test_same_utc_instants_make_different_streaks_in_different_zones():
    # Practice at 23:30 UTC on three evenings: in Athens that is after midnight, so days shift
    # but stay consecutive; in New York (18:30) too. Same streak length, different dates.
    instants = [datetime(2026, 3, d, 23, 30, tzinfo=UTC) for d in (2, 3, 4)]
    for zone in ("Europe/Athens", "America/New_York", "Asia/Kolkata"):
        tz = ZoneInfo(zone)
        practice = [local_date(i, tz) for i in instants]
        today = local_date(instants[-1], tz)
        assert POLICY.summarize(practice, today).current == 3


def test_two_lessons_either_side_of_local_midnight_are_two_streak_days():
    tz = ZoneInfo("Asia/Kolkata")
    before = datetime(2026, 3, 2, 18, 29, tzinfo=UTC)  # 23:59 local
    after = datetime(2026, 3, 2, 18, 31, tzinfo=UTC)  # 00:01 local, next day
    practice = [local_date(before, tz), local_date(after, tz)]
    assert POLICY.summarize(practice, local_date(after, tz)).current == 2


def test_streak_over_the_spring_forward_day_is_unbroken():
    tz = ZoneInfo("Europe/Rome")
    # Every day at 08:00 local from 27 to 31 March 2026 (DST starts on the 29th).
    practice = [local_date(datetime(2026, 3, d, 8, tzinfo=tz), tz) for d in range(27, 32)]
    assert POLICY.summarize(practice, date(2026, 3, 31)).current == 5


def test_seven_days_earn_a_freeze_that_covers_a_missed_day():
    s = POLICY.summarize(days(*range(7)), today=D + timedelta(days=7))
    assert s.freezes == 1
    s = POLICY.summarize(days(*range(7), 8), today=D + timedelta(days=8))
    assert (s.current, s.freezes, s.frozen_days) == (8, 0, (D + timedelta(days=7),))


def test_freezes_are_capped_at_two():
    s = POLICY.summarize(days(*range(28)), today=D + timedelta(days=27))
    assert s.freezes == 2


def test_two_missed_days_with_one_freeze_break_the_streak():
    s = POLICY.summarize(days(*range(7), 9), today=D + timedelta(days=9))
    assert s.current == 1


def test_paused_days_neither_count_nor_break():
    paused = {D + timedelta(days=d) for d in (3, 4, 5)}
    s = POLICY.summarize(days(0, 1, 2, 6), today=D + timedelta(days=6), paused=paused.__contains__)
    assert s.current == 4


@given(st.sets(st.integers(min_value=0, max_value=60)), st.integers(min_value=0, max_value=70))
def test_streak_invariants(offsets, today_offset):
    today = D + timedelta(days=today_offset)
    s = POLICY.summarize(days(*offsets), today)
    assert 0 <= s.current <= s.best
    assert 0 <= s.freezes <= POLICY.max_freezes
    assert s.practised_today == ((today - D).days in offsets)
    assert s.current <= len({o for o in offsets if o <= today_offset})
