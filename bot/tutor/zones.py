"""Reading a learner's time zone and daily time from a tap or from what they type.

A zone is stored as an IANA name ("Europe/Rome") or as a fixed offset written "UTC+05:30" for
people who prefer to give one. Both resolve to a tzinfo here and nowhere else.
"""

from __future__ import annotations

import re
from datetime import UTC, time, timedelta, timezone, tzinfo
from functools import cache, lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from bot.i18n import N_

CITY_CHOICES: tuple[tuple[str, str], ...] = (
    (N_("Rome"), "Europe/Rome"),
    (N_("Madrid"), "Europe/Madrid"),
    (N_("Athens"), "Europe/Athens"),
    (N_("Lisbon"), "Europe/Lisbon"),
    (N_("London"), "Europe/London"),
    (N_("Paris"), "Europe/Paris"),
    (N_("Berlin"), "Europe/Berlin"),
    (N_("Brussels"), "Europe/Brussels"),
    (N_("Warsaw"), "Europe/Warsaw"),
    (N_("Helsinki"), "Europe/Helsinki"),
)
TIME_CHOICES: tuple[str, ...] = ("07:30", "09:00", "12:30", "18:00", "20:30")

_OFFSET = re.compile(r"^(?:utc|gmt)?\s*([+-])\s*(\d{1,2})(?::?(\d{2}))?$", re.IGNORECASE)
_TIME = re.compile(r"^(\d{1,2})[:.h](\d{2})$|^(\d{1,2})$")


@cache
def _zones_by_city() -> dict[str, str]:
    """'new york' → 'America/New_York', built once from the system's zone list."""
    table: dict[str, str] = {}
    for name in sorted(available_timezones()):
        if "/" not in name or name.startswith(("Etc/", "SystemV/", "posix/", "right/")):
            continue
        city = name.rsplit("/", 1)[1].replace("_", " ").lower()
        table.setdefault(city, name)
        table.setdefault(name.lower(), name)
    return table


def parse_zone(text: str) -> str | None:
    """Return a storable zone name for what the learner typed, or None if we cannot tell."""
    cleaned = " ".join(text.strip().split())
    if not cleaned or len(cleaned) > 64:
        return None
    if cleaned.upper() in ("UTC", "GMT", "Z"):
        return "UTC"
    match = _OFFSET.match(cleaned)
    if match:
        sign, hours, minutes = match.group(1), int(match.group(2)), int(match.group(3) or 0)
        if hours > 14 or minutes >= 60 or (hours == 14 and minutes):
            return None
        if sign == "-" and hours > 12:
            return None
        return f"UTC{sign}{hours:02d}:{minutes:02d}"
    key = cleaned.lower()
    return _zones_by_city().get(key) or _zones_by_city().get(key.replace(" ", "_"))


@lru_cache(maxsize=2048)
def resolve_zone(name: str | None) -> tzinfo:
    """The tzinfo for a stored zone name; UTC when unset or no longer known.

    Cached: zoneinfo keeps only a few zones strongly, and the planner resolves thousands a tick.
    """
    if not name or name == "UTC":
        return UTC
    if name.startswith("UTC") and len(name) == 9:
        sign = -1 if name[3] == "-" else 1
        return timezone(sign * timedelta(hours=int(name[4:6]), minutes=int(name[7:9])))
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def parse_daily_time(text: str) -> str | None:
    """'8:05', '08.05', '20h30' or '9' → 'HH:MM'; None for anything impossible like '25:99'."""
    match = _TIME.match(text.strip())
    if not match:
        return None
    hours = int(match.group(1) or match.group(3))
    minutes = int(match.group(2) or 0)
    if hours > 23 or minutes > 59:
        return None
    return f"{hours:02d}:{minutes:02d}"


def as_time(daily_time: str) -> time:
    hours, minutes = daily_time.split(":")
    return time(int(hours), int(minutes))
