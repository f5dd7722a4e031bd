"""Prices of provider models (versioned) and the inference cost of an LLM application's requests.

* ``price_create`` (admins only, audited ``price.created``): a changed price is a new row from
  its ``effective_from`` on; rows are never edited, so the past keeps the price it had.
* ``requests_cost``: the cost of a version's requests in [start, end), from the window's arrays
  of request records (no second read of the rows): each request at the
  price in force at its timestamp for the version's provider model (``version.llm.provider`` /
  ``model_id``): ``tokens_in × input price + tokens_out × output price`` per one million tokens,
  in ``Decimal`` (exact: token sums are integers, prices decimals; rounded once, to the cent's
  ten-thousandth, at the end). The cost is *unknown* (``amount`` None, never 0) when the version
  has no LLM parts, when a request has no price in force, or when the prices of the range are in
  different currencies (never converted).
* ``daily_cost_upsert``: the day's ``CostRecord`` (source ``requests``, category ``inference``,
  external id ``requests:<version pk>:<YYYY-MM-DD>``) replaced with the daily window's cost, so
  recomputing a day or resending a batch never adds anything; a day whose cost became unknown
  loses its record.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import numpy as np
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.db import transaction

from mlops_portal import clock
from monitoring.choices import CostCategory, CostSource
from monitoring.models_cost import CostRecord
from monitoring.models_llm import LLMRequest, Price
from registry.models import ModelVersion
from registry.rules import is_admin
from registry.services.audit import AuditContext, audit_save

PER_TOKENS = Decimal(1_000_000)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
CENT_PART = Decimal("0.000001")  # CostRecord.amount's six decimal places
PRICE_FIELDS = ("provider", "model", "input_per_million", "output_per_million", "currency", "effective_from")


@transaction.atomic
def price_create(*, actor, context: AuditContext, **values: Any) -> Price:
    """A new price row (admins only; ``actor`` None: the system, e.g. the demo loader), audited
    ``price.created``; the same provider model and start twice is refused (a correction is a
    new row with a later start)."""
    if actor is not None and not is_admin(actor):
        raise PermissionDenied("Only an admin can set prices.")
    fields = {name: values[name] for name in PRICE_FIELDS}
    price = Price(
        **fields, created_by=actor if getattr(actor, "is_authenticated", False) else None, created_at=clock.now()
    )
    price.currency = price.currency.upper()
    audit_save(
        price,
        actor=actor,
        action="price.created",
        context=context,
        after={
            "provider": price.provider,
            "model": price.model,
            "input_per_million": str(price.input_per_million),
            "output_per_million": str(price.output_per_million),
            "currency": price.currency,
            "effective_from": price.effective_from.isoformat(),
        },
    )
    return price


def price_in_force(provider: str, model: str, at: datetime) -> Price | None:
    return (
        Price.objects.filter(provider=provider, model=model, effective_from__lte=at).order_by("-effective_from").first()
    )


def provider_model(version: ModelVersion) -> tuple[str, str] | None:
    """(provider, model id) of an LLM application's version; None without LLM parts."""
    try:
        llm = version.llm
    except ObjectDoesNotExist:
        return None
    return (llm.provider, llm.model_id) if llm.provider and llm.model_id else None


@dataclass
class Cost:
    """The cost of a version's requests over a range: ``amount`` None when unknown (``reason``)."""

    requests: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    amount: Decimal | None = None
    currency: str = ""
    reason: str = ""
    prices: list[dict] = field(default_factory=list)  # the prices used, with the tokens at each

    @property
    def known(self) -> bool:
        return self.amount is not None


def request_arrays(version: ModelVersion, start: datetime, end: datetime) -> dict[str, Any]:
    """The version's requests with ``start <= timestamp < end`` as arrays, in one query: latency,
    tokens in/out, feedback (NaN = none), flagged, and their timestamps (a list)."""
    rows = list(
        LLMRequest.objects.filter(version=version, timestamp__gte=start, timestamp__lt=end)
        .order_by()
        .values_list("timestamp", "latency_ms", "tokens_in", "tokens_out", "feedback", "safety_flags")
    )
    stamps, latency, tin, tout, feedback, flags = zip(*rows, strict=True) if rows else ([],) * 6
    return {
        "timestamp": list(stamps),
        "latency": np.array(latency, dtype=np.float64),
        "tokens_in": np.array(tin, dtype=np.int64),
        "tokens_out": np.array(tout, dtype=np.int64),
        "feedback": np.array(feedback, dtype=np.float64),  # None → NaN
        "flagged": np.array([bool(f) for f in flags], dtype=bool),
    }


def _micros(moments) -> np.ndarray:
    """Aware datetimes as integer microseconds since the epoch (exact, comparable)."""
    return np.array([(m - EPOCH) // MICROSECOND for m in moments], dtype=np.int64)


def _totals(arrays: dict[str, np.ndarray], mask: np.ndarray | None = None) -> tuple[int, int, int]:
    tin, tout = arrays["tokens_in"], arrays["tokens_out"]
    if mask is not None:
        tin, tout = tin[mask], tout[mask]
    return len(tin), int(tin.sum()), int(tout.sum())


def requests_cost(version: ModelVersion, start: datetime, end: datetime, arrays: dict | None = None) -> Cost:
    """The cost of the version's requests with ``start <= timestamp < end``, from their arrays
    (``request_arrays`` of the same range: the window's own when it computes, or read here):
    token sums per price in force, one query for the prices."""
    if arrays is None:
        arrays = request_arrays(version, start, end)
    cost = Cost(*_totals(arrays))
    if not cost.requests:
        cost.reason = "No requests."
        return cost
    pm = provider_model(version)
    if pm is None:
        cost.reason = "The version has no provider model (no LLM parts)."
        return cost
    prices = list(Price.objects.filter(provider=pm[0], model=pm[1], effective_from__lt=end).order_by("effective_from"))
    starts = [p.effective_from for p in prices]
    first = bisect.bisect_right(starts, start) - 1  # the price in force at ``start`` (-1: none)
    at = _micros(arrays["timestamp"]) if first < 0 or first + 1 < len(prices) else None  # only to split
    if first < 0:
        n = int((at < _micros([starts[0]])[0]).sum()) if prices else cost.requests
        if n:
            cost.reason = f"No price of {pm[0]}/{pm[1]} in force for {n} request(s)."
            return cost
        first = 0
    amount, currencies = Decimal(0), set()
    for i in range(first, len(prices)):
        price = prices[i]
        if at is None:  # one price for the whole range
            n, tin, tout = cost.requests, cost.tokens_in, cost.tokens_out
        else:
            until = prices[i + 1].effective_from if i + 1 < len(prices) else end
            lo, hi = _micros([max(start, price.effective_from), until])
            n, tin, tout = _totals(arrays, (at >= lo) & (at < hi))
        if not n:
            continue
        part = (Decimal(tin) * price.input_per_million + Decimal(tout) * price.output_per_million) / PER_TOKENS
        amount += part
        currencies.add(price.currency)
        cost.prices.append({"price": price.pk, "requests": n, "tokens_in": tin, "tokens_out": tout, "cost": str(part)})
    if len(currencies) > 1:
        cost.reason = f"Prices in different currencies ({', '.join(sorted(currencies))}): not converted."
        return cost
    cost.amount = amount.quantize(CENT_PART, rounding=ROUND_HALF_EVEN)
    cost.currency = currencies.pop()
    return cost


def cost_external_id(version: ModelVersion, day) -> str:
    return f"requests:{version.pk}:{day:%Y-%m-%d}"


def daily_cost_upsert(version: ModelVersion, day_start: datetime, cost: Cost) -> CostRecord | None:
    """Replace the day's inference ``CostRecord`` of the version with ``cost``, the cost of the
    day's stored requests (``requests_cost`` of the day; call inside the window's transaction).
    No record when the day has no requests or an unknown cost."""
    day = day_start.date()
    key = {"model_id": version.model_id, "source": CostSource.REQUESTS, "external_id": cost_external_id(version, day)}
    if not cost.known:
        CostRecord.objects.filter(**key).delete()
        return None
    record, _ = CostRecord.objects.update_or_create(
        **key,
        defaults={
            "version": version,
            "period_start": day,
            "period_end": day,
            "amount": cost.amount,
            "currency": cost.currency,
            "category": CostCategory.INFERENCE,
            "details": {
                "requests": cost.requests,
                "tokens_in": cost.tokens_in,
                "tokens_out": cost.tokens_out,
                "price_ids": [p["price"] for p in cost.prices],
                "prices": cost.prices,
            },
            "created_at": clock.now(),
        },
    )
    return record


__all__ = [
    "Cost",
    "cost_external_id",
    "daily_cost_upsert",
    "price_create",
    "price_in_force",
    "provider_model",
    "request_arrays",
    "requests_cost",
]
