"""Cost records sent for a model: one JSON record or a list, or a CSV export of the cloud bill.

All-or-nothing: every record is validated before any is stored, and a refused batch stores
nothing (``BatchError`` names the row and field: the API's 400). An ``external_id`` makes
re-sending idempotent: the same id with the same values changes nothing, with other values it is
a conflict (``CostConflict``: 409) and nothing of the batch is stored. Amounts are ``Decimal``
(strings or JSON numbers; NaN, infinity and more than 10 integer or 6 decimal digits refused);
a negative amount is refused (a credit or refund is not a cost; zero is a cost of zero);
currencies are kept as sent (ISO 4217 codes), never converted. Audited ``cost.recorded`` (one
event per request, with counts and per-currency totals); the model's budget is evaluated by a
task once the records have committed.
"""

from __future__ import annotations

import codecs
import re
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from rest_framework import serializers

from mlops_portal import clock
from mlops_portal.api.parsers import JSONInputError, StrictSerializer, json_loads
from mlops_portal.queue import enqueue_on_commit
from monitoring.choices import CostCategory, CostSource
from monitoring.models_cost import CostRecord
from registry.models import RegisteredModel
from registry.rules import can_change_model
from registry.services.audit import AuditContext, audit_record

from .ingest_parsing import CSV_TYPES, JSON_TYPES, BatchError, UnsupportedFormat, media_type, parse_body

MAX_RECORDS = 50_000
MAX_PERIOD_DAYS = 366
EARLIEST = date(2000, 1, 1)
FUTURE_DAYS = 31
CURRENCY = re.compile(r"^[A-Z]{3}\Z")
COMPARED = ("period_start", "period_end", "amount", "currency", "category")
NEGATIVE_AMOUNT = "Must not be negative: a credit or refund is not a cost. Send what was spent; leave credit lines out."

# CSV header (lower-cased, spaces and dashes as underscores) → record field
CSV_COLUMNS = {
    "date": "date",
    "usage_date": "date",
    "period_start": "period_start",
    "start_date": "period_start",
    "period_end": "period_end",
    "end_date": "period_end",
    "amount": "amount",
    "cost": "amount",
    "currency": "currency",
    "currency_code": "currency",
    "category": "category",
    "line_id": "external_id",
    "line_item_id": "external_id",
    "external_id": "external_id",
}


class CostConflict(ValidationError):
    """An external id already stored with other values (API: 409)."""


class CostRecordInput(StrictSerializer):
    """One record as sent (JSON) or read from a CSV row (text cells)."""

    period_start = serializers.DateField()
    period_end = serializers.DateField()
    amount = serializers.DecimalField(max_digits=16, decimal_places=6)  # exact even where SQLite stores a float
    currency = serializers.CharField(min_length=3, max_length=3)
    category = serializers.ChoiceField(choices=CostCategory.choices)
    external_id = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")

    def validate_amount(self, value: Decimal) -> Decimal:
        if value < 0:
            raise serializers.ValidationError(NEGATIVE_AMOUNT)
        return abs(value)  # "-0" is a cost of 0, not "-0.000000"

    def validate_currency(self, value: str) -> str:
        value = value.upper()
        if not CURRENCY.match(value):
            raise serializers.ValidationError("Expected an ISO 4217 currency code of three letters, e.g. EUR.")
        return value

    def validate_external_id(self, value: str) -> str:
        if "\x00" in value:
            raise serializers.ValidationError("NUL characters are not allowed.")
        return value.strip()

    def validate(self, attrs: dict) -> dict:
        start, end = attrs["period_start"], attrs["period_end"]
        latest = clock.now().date() + timedelta(days=FUTURE_DAYS)
        if end < start:
            raise serializers.ValidationError({"period_end": ["Must not be before period_start."]})
        if (end - start).days >= MAX_PERIOD_DAYS:
            raise serializers.ValidationError({"period_end": [f"A period spans at most {MAX_PERIOD_DAYS} days."]})
        if start < EARLIEST or end > latest:
            raise serializers.ValidationError(
                {"period_start": [f"Dates from {EARLIEST} to {latest} (today + {FUTURE_DAYS} days) are accepted."]}
            )
        return attrs


# --------------------------------------------------------------------------- reading


def _json_records(body: bytes) -> list:
    if body.startswith(codecs.BOM_UTF8):
        body = body[len(codecs.BOM_UTF8) :]
    try:
        document = json_loads(body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise BatchError(None, "body", f"The body is not UTF-8 text ({exc.reason} at byte {exc.start}).") from exc
    except JSONInputError as exc:
        raise BatchError(None, exc.field or "body", exc.message) from exc
    records = [document] if isinstance(document, dict) else document
    if not isinstance(records, list) or not records:
        raise BatchError(None, "body", "Expected a cost record (JSON object) or a non-empty list of them.")
    for row, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            raise BatchError(row, "record", "Expected an object.")
    return records


def _csv_records(body: bytes) -> list[dict]:
    batch = parse_body(body, "text/csv")  # BOM, ragged rows, encoding: refused naming the row
    fields: dict[str, str] = {}
    for name in batch.present:
        field = CSV_COLUMNS.get(re.sub(r"[\s\-]+", "_", name.strip().lower()))
        if field is None:
            continue  # a bill export carries many columns the portal does not keep
        if field in fields.values():
            raise BatchError(None, name, f"Two columns give the record's {field}.")
        fields[name] = field
    if "date" in fields.values() and {"period_start", "period_end"} & set(fields.values()):
        raise BatchError(None, "date", "Give either a date column or period_start/period_end, not both.")
    missing = [f for f in ("amount", "currency", "category") if f not in fields.values()]
    if "date" not in fields.values():
        missing += [f for f in ("period_start", "period_end") if f not in fields.values()]
    if missing:
        raise BatchError(None, missing[0], f"The CSV has no {' / '.join(missing)} column.")
    records: list[dict] = [{} for _ in range(batch.n)]
    for name, field in fields.items():
        for record, value in zip(records, batch.column(name), strict=True):
            if value is None:
                continue
            if field == "date":
                record["period_start"] = record["period_end"] = value.strip()
            else:
                record[field] = value.strip()
    return records


def _validated(records: list) -> list[dict]:
    out = []
    for row, record in enumerate(records, start=1):
        serializer = CostRecordInput(data=record)
        if not serializer.is_valid():
            field, errors = next(iter(serializer.errors.items()))
            raise BatchError(row, field, str(errors[0]))
        out.append(dict(serializer.validated_data))
    return out


def cost_records_read(*, body: bytes, content_type: str) -> tuple[str, list[dict]]:
    """The body's records, validated: ``(source, records)``; raises ``BatchError`` naming the row."""
    media = media_type(content_type)
    if media in CSV_TYPES:
        source, records = CostSource.CSV, _csv_records(body)
    elif media in JSON_TYPES or not media:
        source, records = CostSource.API, _json_records(body)
    else:
        raise UnsupportedFormat(None, "content_type", f"Unsupported Content-Type '{media}': use JSON or text/csv.")
    if len(records) > MAX_RECORDS:
        raise BatchError(None, "body", f"At most {MAX_RECORDS} records per request; split the batch.")
    return source, _validated(records)


# --------------------------------------------------------------------------- storing


def _same(stored: CostRecord, record: dict) -> bool:
    return all(getattr(stored, name) == record[name] for name in COMPARED)


def _new_records(model: RegisteredModel, source: str, records: list[dict]) -> tuple[list[dict], int]:
    """The records not stored yet, and how many were already there with the same values."""
    by_id: dict[str, tuple[int, dict]] = {}
    fresh: list[dict] = []
    for row, record in enumerate(records, start=1):
        key = record["external_id"]
        if not key:
            fresh.append(record)
            continue
        if key in by_id:
            if not _same(CostRecord(**by_id[key][1]), record):
                raise BatchError(row, "external_id", f"'{key}' appears in row {by_id[key][0]} with other values.")
            continue
        by_id[key] = (row, record)
    stored = {
        r.external_id: r for r in CostRecord.objects.filter(model=model, source=source, external_id__in=list(by_id))
    }
    unchanged = 0
    for key, (row, record) in by_id.items():
        if key not in stored:
            fresh.append(record)
        elif _same(stored[key], record):
            unchanged += 1
        else:
            raise CostConflict(
                {"external_id": [f"Row {row}: '{key}' is already recorded with other values; nothing was stored."]}
            )
    return fresh, unchanged


def totals_by_currency(records) -> dict[str, str]:
    """Exact sums per currency (``Decimal``; never added across currencies), as strings."""
    sums: dict[str, Decimal] = defaultdict(Decimal)
    for record in records:
        sums[record["currency"]] += record["amount"]
    return {currency: str(total) for currency, total in sorted(sums.items())}


def cost_records_ingest(
    *, model: RegisteredModel, body: bytes, content_type: str, actor, context: AuditContext
) -> dict[str, Any]:
    """Validate and store a batch of cost records (owner or admin); see the module docstring."""
    if not can_change_model(actor, model):
        raise PermissionDenied("Only the model's owner or an admin can send cost records.")
    source, records = cost_records_read(body=body, content_type=content_type)
    return _store(model=model, source=source, records=records, actor=actor, context=context)


def cost_records_store(
    *, model: RegisteredModel, records: list[dict], actor, context: AuditContext, source: str = CostSource.API
) -> dict[str, Any]:
    """Store records already in Python form (``period_start``, ``period_end``, ``amount``,
    ``currency``, ``category``, optional ``external_id``), validated as the API's; for the demo
    and other callers inside the portal (owner or admin)."""
    if actor is not None and not can_change_model(actor, model):
        raise PermissionDenied("Only the model's owner or an admin can send cost records.")
    if len(records) > MAX_RECORDS:
        raise BatchError(None, "body", f"At most {MAX_RECORDS} records per call.")
    plain = [
        {k: (str(v) if k == "amount" else v.isoformat() if hasattr(v, "isoformat") else v) for k, v in r.items()}
        for r in records
    ]
    return _store(model=model, source=source, records=_validated(plain), actor=actor, context=context)


@transaction.atomic
def _store(*, model: RegisteredModel, source: str, records: list[dict], actor, context: AuditContext) -> dict:
    RegisteredModel.objects.select_for_update().filter(pk=model.pk).first()  # one batch per model at a time
    fresh, unchanged = _new_records(model, source, records)
    now = clock.now()
    user = actor if getattr(actor, "is_authenticated", False) else None
    CostRecord.objects.bulk_create(
        [CostRecord(model=model, source=source, created_by=user, created_at=now, **record) for record in fresh]
    )
    summary = {
        "source": source,
        "received": len(records),
        "created": len(fresh),
        "unchanged": unchanged,
        "totals": totals_by_currency(fresh),
    }
    if fresh:
        audit_record(actor=actor, action="cost.recorded", context=context, obj=model, after=summary)
        from monitoring import tasks

        enqueue_on_commit(tasks.budget_evaluate, model.pk)
    return summary


__all__ = ["CostConflict", "cost_records_ingest", "cost_records_read", "cost_records_store", "totals_by_currency"]
