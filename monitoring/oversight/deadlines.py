"""Art. 73 reporting deadlines and their reminders: pure functions of time.

A deadline is ``aware_at`` plus the class's days on the wall clock of the model's time zone
(its ``time_zone`` setting, else the installation's ``DEFAULT_MODEL_TIME_ZONE``), so a period
that crosses a daylight-saving change keeps its local time of day (it is 1 hour shorter or
longer in UTC), and month ends and leap days fall where the calendar puts them. When the
local time does not exist (spring forward) or exists twice (fall back), the earlier instant is
taken: the deadline is never later than the law's. Reminders go at 50% and 80% of the time
from ``aware_at`` to the deadline.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from monitoring.choices import IncidentSeverity

LEGAL_DAYS = {
    IncidentSeverity.SERIOUS: 15,  # Art. 73(2)
    IncidentSeverity.WIDESPREAD: 2,  # Art. 73(3)
    IncidentSeverity.DEATH: 10,  # Art. 73(4)
}
ARTICLES = {
    IncidentSeverity.SERIOUS: "Art. 73(2)",
    IncidentSeverity.WIDESPREAD: "Art. 73(3)",
    IncidentSeverity.DEATH: "Art. 73(4)",
    IncidentSeverity.MALFUNCTION: "internal",
}
REMINDER_PERCENTS = (50, 80)


def model_time_zone(model=None) -> str:
    """The zone ``model``'s deadlines are computed in: its ``time_zone`` setting, else the
    installation's ``DEFAULT_MODEL_TIME_ZONE`` (default: ``TIME_ZONE``)."""
    if model is not None and model.time_zone:
        return model.time_zone  # validated when the model was saved
    name = getattr(settings, "DEFAULT_MODEL_TIME_ZONE", "") or settings.TIME_ZONE
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ImproperlyConfigured(f"DEFAULT_MODEL_TIME_ZONE={name!r} is not an IANA time zone.") from exc
    return name


def deadline_days(severity: str) -> int | None:
    """Days allowed for the report: the legal clock, or the configured internal one for a
    malfunction (``INCIDENT_MALFUNCTION_DEADLINE_DAYS``, default none)."""
    if severity in LEGAL_DAYS:
        return LEGAL_DAYS[IncidentSeverity(severity)]
    return getattr(settings, "INCIDENT_MALFUNCTION_DEADLINE_DAYS", None)


def add_local_days(moment: dt.datetime, days: int, zone: str) -> dt.datetime:
    """``moment`` plus ``days`` calendar days on the wall clock of ``zone``, in UTC."""
    tz = ZoneInfo(zone)
    local = moment.astimezone(tz)
    day = local.date() + dt.timedelta(days=days)
    wall = dt.datetime.combine(day, local.timetz().replace(tzinfo=None))
    candidates = [wall.replace(tzinfo=tz, fold=fold).astimezone(dt.UTC) for fold in (0, 1)]
    return min(candidates)


def reporting_deadline(*, severity: str, aware_at: dt.datetime, zone: str) -> dt.datetime | None:
    days = deadline_days(severity)
    if days is None:
        return None
    return add_local_days(aware_at, int(days), zone)


def reminder_at(*, aware_at: dt.datetime, deadline: dt.datetime, percent: int) -> dt.datetime:
    """When ``percent``% of the reporting period has elapsed."""
    return aware_at + (deadline - aware_at) * percent / 100


def local(moment: dt.datetime | None, zone: str) -> dt.datetime | None:
    return moment.astimezone(ZoneInfo(zone)) if moment else None
