"""Filter pieces shared by both apps' FilterSets (pages and API alike): times read as the UTC
instant they name, and booleans that refuse what is not a boolean."""

from __future__ import annotations

import datetime

import django_filters
from django import forms
from django.utils import timezone


class InvalidTime(ValueError):
    """A time parameter that is not an ISO 8601 date or date-time, or not a representable instant."""


def to_utc(moment: datetime.datetime) -> datetime.datetime:
    """``moment`` as the same instant in UTC (naive means UTC).

    Queries only ever see UTC: PostgreSQL refuses offsets beyond ±15:59 that Python accepts
    (``+16:00``, ``-23:59``), and an instant at the calendar's ends (``0001-01-01T00:00+05:00``,
    ``9999-12-31T23:59:59-05:00``) has no UTC form in Python's years 1..9999. The latter raises
    ``InvalidTime``, for a 400 instead of an OverflowError deep in a query or a template.
    """
    if timezone.is_naive(moment):
        return moment.replace(tzinfo=datetime.UTC)
    try:
        return moment.astimezone(datetime.UTC)
    except OverflowError as exc:
        raise InvalidTime(f"'{moment.isoformat()}' is out of range: its UTC time is outside years 1 to 9999.") from exc


def utc_instant(moment: datetime.datetime | None) -> datetime.datetime | None:
    """A form field's cleaned date-time as the instant in UTC (``to_utc``); out of range is a
    field error."""
    if moment is None:
        return None
    try:
        return to_utc(moment)
    except InvalidTime as exc:
        raise forms.ValidationError(str(exc), code="invalid") from exc


class UtcIsoDateTimeField(django_filters.fields.IsoDateTimeField):
    """An ISO 8601 date-time, cleaned to the same instant in UTC (see ``to_utc``)."""

    def to_python(self, value):
        return utc_instant(super().to_python(value))


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


class StrictBooleanField(forms.NullBooleanField):
    """``true``/``false`` (and ``1``/``0``, ``True``/``False``); empty means "not filtered".
    Django's NullBooleanField reads anything else (``null``, ``maybe``) as "not filtered", so a
    typo silently returned the whole list: here it is a field error."""

    TRUE, FALSE = {"true", "True", "1"}, {"false", "False", "0"}
    widget = forms.TextInput  # NullBooleanSelect itself reads unknown values as None

    def to_python(self, value):
        if value in (True, False, None, ""):
            return None if value == "" else value
        if value in self.TRUE:
            return True
        if value in self.FALSE:
            return False
        raise forms.ValidationError("Enter true or false.", code="invalid")

    def validate(self, value):
        pass


class StrictBooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField
