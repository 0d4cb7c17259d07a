"""Reading time zones and daily times from what learners type."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from bot.tutor.zones import parse_daily_time, parse_zone, resolve_zone


@pytest.mark.parametrize(
    ("typed", "zone"),
    [
        ("Europe/Rome", "Europe/Rome"),
        ("rome", "Europe/Rome"),
        ("  New   York ", "America/New_York"),
        ("kolkata", "Asia/Kolkata"),
        ("Chatham", "Pacific/Chatham"),
        ("UTC", "UTC"),
        ("UTC+2", "UTC+02:00"),
        ("gmt-3", "UTC-03:00"),
        ("+05:30", "UTC+05:30"),
        ("+0545", "UTC+05:45"),
        ("UTC+14", "UTC+14:00"),
    ],
)
def test_zones_learners_type(typed, zone):
    assert parse_zone(typed) == zone


@pytest.mark.parametrize(
    "typed",
    [
        "Atlantis",
        "",
        "UTC+15",
        "UTC-13",
        "+05:99",
        "x" * 200,
        "'; DROP TABLE learners; --",
        "Europe/",
    ],
)
def test_unknown_zones_are_refused(typed):
    assert parse_zone(typed) is None


def test_offsets_resolve_to_fixed_zones():
    tz = resolve_zone("UTC+05:30")
    assert tz.utcoffset(datetime(2026, 1, 1)) == timedelta(hours=5, minutes=30)
    assert resolve_zone("UTC-03:00").utcoffset(None) == timedelta(hours=-3)
    assert resolve_zone("No/Such_Zone").utcoffset(None) == timedelta(0)


@pytest.mark.parametrize(
    ("typed", "value"),
    [
        ("8:05", "08:05"),
        ("08.05", "08:05"),
        ("20h30", "20:30"),
        ("9", "09:00"),
        ("23:59", "23:59"),
        ("0:00", "00:00"),
    ],
)
def test_daily_times(typed, value):
    assert parse_daily_time(typed) == value


@pytest.mark.parametrize("typed", ["25:99", "24:00", "12:60", "noon", "-1:00", "", "7:5"])
def test_impossible_times_are_refused(typed):
    assert parse_daily_time(typed) is None
