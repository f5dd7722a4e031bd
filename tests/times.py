"""Time filter values that once made views fail: offsets Python accepts but PostgreSQL does not
(beyond ±15:59), and times at the ends of the calendar whose UTC form falls outside Python's
years 1..9999."""

from __future__ import annotations

CALENDAR_ENDS = ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"]


def extreme_times(local: str) -> list[str]:
    """``local`` (an ISO date and time without offset) with the two widest offsets, then the
    two calendar ends."""
    return [f"{local}+16:00", f"{local}-23:59", *CALENDAR_ENDS]


def off_the_calendar(value: str) -> bool:
    """Whether ``value`` is one of the calendar ends (no real instant once moved to UTC)."""
    return value in CALENDAR_ENDS
