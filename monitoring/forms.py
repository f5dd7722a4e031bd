"""Forms of the monitoring pages: the dashboard's range picker, acknowledgement, scorecard.

Date-times coming from a query string are read as one instant in UTC (``mlops_portal.filters``): an
offset the database cannot store (PostgreSQL takes at most ±15:59) is moved to UTC first, and
an instant that falls outside the calendar once in UTC (``0001-01-01T00:00:00+05:00``,
``9999-12-31T23:59:59-05:00``) is refused as bad input instead of failing in the database.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta

from django import forms
from django.utils import timezone

from mlops_portal.filters import utc_instant

from .choices import Granularity
from .models_retention import MAX_RAW_DAYS, RetentionPolicy

RANGES = {
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
}
HOURLY_MAX_SPAN = timedelta(days=14)
CUSTOM_MAX_SPAN = timedelta(days=366)


class UTCDateTimeField(forms.DateTimeField):
    """A date-time (any ISO 8601 form Django reads) returned in UTC."""

    def to_python(self, value):
        return utc_instant(super().to_python(value))


@dataclasses.dataclass(frozen=True)
class DashboardQuery:
    """What to show: [start, end) at a granularity, for one feature (and optionally one version)."""

    range_key: str
    start: datetime
    end: datetime
    granularity: str
    requested_granularity: str
    feature: str = ""
    version: int | None = None
    notice: str = ""
    default_range: bool = False  # no range was asked for: the dashboard may pick a wider preset

    def with_preset(self, range_key: str, notice: str) -> DashboardQuery:
        """The same view over another preset range ending at the same time."""
        start = preset_start(range_key, self.end)
        granularity, too_long = granularity_for(self.requested_granularity, start, self.end)
        notice = " ".join(n for n in (notice, too_long) if n)
        return dataclasses.replace(self, range_key=range_key, start=start, granularity=granularity, notice=notice)

    def drawn_daily(self, notice: str) -> DashboardQuery:
        """The same range drawn in daily windows (``notice`` says why)."""
        return dataclasses.replace(self, granularity=Granularity.DAILY, notice=notice)

    @property
    def cost_days(self) -> tuple[date, date]:
        """The first and last day whose cost the range counts (``range_days``)."""
        return range_days(self.start, self.end)

    @property
    def cost_day_left_out(self) -> date | None:
        """The day the range starts on when it holds only part of it (its cost is not counted)."""
        first = self.start.date()
        return first if first < self.cost_days[0] else None


def range_days(start: datetime, end: datetime) -> tuple[date, date]:
    """The first and last calendar day (UTC) whose cost [start, end) counts.

    Costs are recorded per day, so a day counts when the range holds its start (00:00): a partial
    first day is left out (the range holds only its end, most of its cost is from before), a
    partial last day counts (today's cost so far). "Last 7 days" opened at 19:30 on 7 Dec starts
    at 19:00 on 30 Nov and counts 1–7 Dec. A range within one day counts that day."""
    last = (end - timedelta(microseconds=1)).date()  # [start, end): a midnight end leaves its day out
    starts_a_day = start.time() == datetime.min.time() or start.date() == date.max  # 9999-12-31 has no next day
    first = start.date() if starts_a_day else start.date() + timedelta(days=1)
    return (first, last) if first <= last else (start.date(), start.date())


class DashboardRangeForm(forms.Form):
    """The range picker: a preset or a custom [start, end), the granularity and the feature."""

    range = forms.ChoiceField(choices=[(k, k) for k in RANGES] + [("custom", "custom")], required=False)
    start = UTCDateTimeField(required=False)
    end = UTCDateTimeField(required=False)
    granularity = forms.ChoiceField(
        choices=[("auto", "auto"), (Granularity.HOURLY, "hourly"), (Granularity.DAILY, "daily")], required=False
    )
    feature = forms.CharField(required=False, max_length=200)
    version = forms.IntegerField(required=False, min_value=1)

    def clean(self):
        data = super().clean()
        if data.get("range") == "custom":
            start, end = data.get("start"), data.get("end")
            if not start or not end:  # each error beside its field (a field refused on its own has one)
                for name in ("start", "end"):
                    if not data.get(name) and name not in self.errors:
                        self.add_error(name, "A custom range needs a start and an end.")
            elif start >= end:
                self.add_error("end", "The start must be before the end.")
            elif end - start > CUSTOM_MAX_SPAN:
                self.add_error("start", "A custom range can span at most 366 days.")
        return data

    def query(self, *, now: datetime | None = None) -> DashboardQuery:
        """The validated picker as a ``DashboardQuery`` (call after ``is_valid()``)."""
        data = self.cleaned_data
        now = now or timezone.now()
        range_key = data.get("range") or "7d"
        if range_key == "custom":
            start, end = data["start"], data["end"]
        else:
            end = now
            start = preset_start(range_key, end)
        requested = data.get("granularity") or "auto"
        granularity, notice = granularity_for(requested, start, end)
        return DashboardQuery(
            range_key=range_key,
            start=start,
            end=end,
            granularity=granularity,
            requested_granularity=requested,
            feature=data.get("feature") or "",
            version=data.get("version"),
            notice=notice,
            default_range=not data.get("range"),
        )


def custom_range(start: datetime, end: datetime) -> dict[str, str]:
    """The dashboard's query parameters of a custom range, as its form reads them."""
    return {"range": "custom", "start": f"{start:%Y-%m-%dT%H:%M}", "end": f"{end:%Y-%m-%dT%H:%M}"}


def preset_start(range_key: str, end: datetime) -> datetime:
    """The start of a preset range ending at ``end``, aligned to a window boundary, so
    "last 24 h" is 24 whole hourly windows."""
    return (end - RANGES[range_key]).replace(minute=0, second=0, microsecond=0)


def granularity_for(requested: str, start: datetime, end: datetime) -> tuple[str, str]:
    """The granularity drawn for [start, end) when ``requested`` is asked, and why it differs."""
    if requested == "auto":
        return (Granularity.HOURLY if end - start <= HOURLY_MAX_SPAN else Granularity.DAILY), ""
    if requested == Granularity.HOURLY and end - start > HOURLY_MAX_SPAN:
        return Granularity.DAILY, "Hourly windows are shown for ranges up to 14 days; this range is shown daily."
    return requested, ""


def dashboard_query_parse(params, *, now: datetime | None = None) -> DashboardQuery:
    """Validate the range picker's GET parameters; raises forms.ValidationError on bad input."""
    form = DashboardRangeForm(params)
    if not form.is_valid():
        raise forms.ValidationError(form.errors)
    return form.query(now=now)


class AcknowledgeForm(forms.Form):
    comment = forms.CharField(max_length=5000, strip=True)


class ScorecardForm(forms.Form):
    ack_hours = forms.IntegerField(required=False, min_value=1, max_value=24 * 30)


class BatchesSinceForm(forms.Form):
    """The "Connect a pipeline" page's check: batches received since the page was opened."""

    since = UTCDateTimeField()


def _max_length(field: str) -> int:
    return RetentionPolicy._meta.get_field(field).max_length


class RetentionForm(forms.Form):
    """The privacy page's change of one model's retention, legal hold and Art. 30 entries (the API's
    ``RetentionWriteSerializer`` fields; the service checks the high-risk floor and that a hold
    cites its article). ``raw_days`` empty is the risk tier's default (the API's ``null``); left
    out of the post altogether it is an error, not a silent return to the default."""

    raw_days = forms.IntegerField(min_value=1, max_value=MAX_RAW_DAYS, required=False)
    legal_hold = forms.BooleanField(required=False)
    legal_hold_reason = forms.CharField(max_length=_max_length("legal_hold_reason"), required=False, strip=True)
    legal_hold_article = forms.CharField(max_length=_max_length("legal_hold_article"), required=False, strip=True)
    data_subject_categories = forms.CharField(
        max_length=_max_length("data_subject_categories"), required=False, strip=True
    )
    recipients = forms.CharField(max_length=_max_length("recipients"), required=False, strip=True)
    third_country_transfers = forms.CharField(
        max_length=_max_length("third_country_transfers"), required=False, strip=True
    )

    def clean_raw_days(self) -> int | None:
        if "raw_days" not in self.data:
            raise forms.ValidationError("Give the days, or leave the field empty for the risk tier's default.")
        return self.cleaned_data["raw_days"]
