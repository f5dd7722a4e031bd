"""The demo's production traffic of an LLM application: prices and four weeks of request records.

``load_llm_requests(model, days=28, today=…)``:

* seeds the prices of OpenAI's ``gpt-4.1-mini`` and ``gpt-4.1`` (USD per one million tokens),
  with one price change of ``gpt-4.1`` ten days before ``today`` (a new price row: the days
  before keep the old price), plus a price for any other provider model a version names;
* sends each day's request records (deterministic: seeded by the day) through the ordinary
  ingestion service for the version in production that day (the stage history; without one,
  v1 until three weeks ago and the newest version after). The change of hosted model brings a
  clear p95 latency regression (v1 on the small model answers in ~0.7 s at p50 and ~1.3 s at
  p95; v2 on the large one ~1.4 s and ~2.8 s, above the default 2,000 ms warning);
* computes the windows (the worker's computation, inline: every day, and the hours of the last
  week; the worker's sweep computes the older hours) and the model's health, so the
  dashboard's LLM panels, the daily cost records and the latency alert are there at once.

``llm_steps`` gives the same on the story's days for ``manage.py load_demo``: the prices before
the first day, each day's requests sent at midnight after it (their windows and health then).

Idempotent: prices are skipped when present, a day already sent is acknowledged as a duplicate
by ingestion, and recomputed windows replace their rows.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import numpy as np
import orjson
from django.contrib.auth import get_user_model
from django.db.models import Q

from mlops_portal import queue
from monitoring.choices import Granularity
from monitoring.models import DirtyWindow, Price
from monitoring.services.health import health_evaluate
from monitoring.services.llm_cost import price_create, provider_model
from monitoring.services.llm_requests import llm_requests_ingest
from monitoring.services.windows import window_compute
from registry.choices import AuditSource
from registry.models import ModelVersion, RegisteredModel, StageTransition
from registry.services.audit import AuditContext

CONTEXT = AuditContext(source=AuditSource.CLI, request_id="load_demo")
SWITCH_DAYS_AGO = 21  # v2 in production from about three weeks ago (without a stage history)
PRICE_CHANGE_DAYS_AGO = 10
HOURLY_DAYS = 7  # hourly windows computed at once for the last week; the worker computes the older ones
#: (provider, model) → [(days before today it starts, input, output)] in USD per 1M tokens
PRICES = {
    ("openai", "gpt-4.1-mini"): [(400, "0.40", "1.60")],
    ("openai", "gpt-4.1"): [(400, "2.00", "8.00"), (PRICE_CHANGE_DAYS_AGO, "1.80", "7.20")],
}
DEFAULT_PRICE = ("1.00", "3.00")
FLAGS = ("pii", "jailbreak", "toxicity", "off_topic")


def _day_start(today: date | datetime, days_ago: int) -> datetime:
    base = today.date() if isinstance(today, datetime) else today
    return datetime.combine(base - timedelta(days=days_ago), time.min, tzinfo=UTC)


def _seed_prices(versions: list[ModelVersion], today, created: dict[str, int], only=lambda days_ago: True) -> None:
    admin = get_user_model().objects.filter(is_superuser=True).order_by("pk").first()
    wanted = dict(PRICES)
    for version in versions:
        pm = provider_model(version)
        if pm is not None and pm not in wanted:
            wanted[pm] = [(400, *DEFAULT_PRICE)]
    for (provider, model), rows in wanted.items():
        for days_ago, inp, out in filter(lambda row: only(row[0]), rows):
            start = _day_start(today, days_ago)
            if Price.objects.filter(provider=provider, model=model, effective_from=start).exists():
                continue
            price_create(
                actor=admin,
                context=CONTEXT,
                provider=provider,
                model=model,
                input_per_million=Decimal(inp),
                output_per_million=Decimal(out),
                currency="USD",
                effective_from=start,
            )
            created["prices"] = created.get("prices", 0) + 1


def _version_of_day(model: RegisteredModel, versions: list[ModelVersion], today):
    """day start → the version in production at noon that day (the stage history, else the rule)."""
    from monitoring.selectors.series import production_at

    live_at = production_at(list(StageTransition.objects.filter(model=model)))
    by_pk = {v.pk: v for v in versions}
    switch = _day_start(today, SWITCH_DAYS_AGO)

    def pick(day: datetime) -> ModelVersion:
        live = by_pk.get(live_at(day + timedelta(hours=12)))
        if live is not None:
            return live
        return versions[0] if day < switch or len(versions) == 1 else versions[-1]

    return pick


def _day_records(version: ModelVersion, day: datetime, rank: int) -> list[dict]:
    """One day of requests (deterministic): business-hours traffic, retrieval-sized prompts,
    slower answers from a later version's larger model."""
    rng = np.random.default_rng(int(day.strftime("%Y%m%d")))
    n = int(rng.integers(260, 340) * (0.6 if day.weekday() >= 5 else 1.0))
    hours = rng.choice(24, size=n, p=_hour_weights())
    seconds = np.sort(hours * 3600 + rng.integers(0, 3600, size=n))
    slow = 1.0 if rank == 0 else 2.0  # the model change: p50 0.7 s → 1.4 s, p95 1.3 s → 2.8 s
    latency = np.round(rng.lognormal(np.log(700 * slow), 0.38, size=n), 1)
    tokens_in = rng.lognormal(np.log(1200), 0.35, size=n).astype(int) + 50
    tokens_out = rng.lognormal(np.log(220), 0.5, size=n).astype(int) + 5
    rated = rng.random(n) < 0.3
    liked = rng.random(n) < (0.78 if rank == 0 else 0.7)
    flagged = rng.random(n) < 0.012
    records = []
    for i in range(n):
        record = {
            "request_id": f"{version.model.name}-{day:%Y%m%d}-{i:04d}",
            "timestamp": (day + timedelta(seconds=int(seconds[i]))).isoformat(),
            "tokens_in": int(tokens_in[i]),
            "tokens_out": int(tokens_out[i]),
            "latency_ms": float(latency[i]),
            "feedback": (1 if liked[i] else -1) if rated[i] else None,
            "safety_flags": [FLAGS[int(rng.integers(0, len(FLAGS)))]] if flagged[i] else [],
        }
        records.append(record)
    return records


def _hour_weights() -> np.ndarray:
    weights = np.array([1, 1, 1, 1, 1, 2, 3, 5, 8, 10, 10, 9, 8, 9, 10, 10, 9, 7, 5, 4, 3, 2, 2, 1], dtype=float)
    return weights / weights.sum()


def _compute_windows(versions: list[ModelVersion], hours_since: datetime) -> int:
    """The dirty windows of these versions (what the worker does), hours before days: every day,
    and the hours from ``hours_since`` on (the dashboard's default week); older hours are left
    to the worker's sweep."""
    marks = DirtyWindow.objects.filter(version__in=versions).filter(
        Q(granularity=Granularity.DAILY) | Q(window_start__gte=hours_since)
    )
    todo = list(marks.order_by("-granularity", "window_start").values_list("version_id", "window_start", "granularity"))
    for version_id, start, granularity in todo:
        window_compute(version_id=version_id, window_start=start, granularity=granularity, mark_day=False)
    return len(todo)


def load_llm_requests(model: RegisteredModel, *, days: int = 28, today: date | datetime) -> dict[str, int]:
    """Prices, ``days`` days of request records up to yesterday, windows and health (see the module)."""
    created: dict[str, int] = {}
    versions = sorted(model.versions.all(), key=lambda v: v.version)
    if not versions:
        return created
    _seed_prices(versions, today, created)
    pick = _version_of_day(model, versions, today)
    rank = {v.pk: i for i, v in enumerate(versions)}
    with queue.hold():  # the days in, then one sweep of their windows and one health evaluation
        for days_ago in range(days, 0, -1):
            day = _day_start(today, days_ago)
            version = pick(day)
            body = orjson.dumps(_day_records(version, day, rank[version.pk]))
            answer = llm_requests_ingest(
                version=version, body=body, content_type="application/json", actor=model.owner, context=CONTEXT
            )
            if "duplicate_of_batch" not in answer:
                created["llm requests"] = created.get("llm requests", 0) + answer["rows"]
    created["llm windows"] = _compute_windows(versions, hours_since=_day_start(today, HOURLY_DAYS))
    health_evaluate(model=model)
    return created


def _assistant() -> tuple[RegisteredModel | None, list[ModelVersion]]:
    from registry.demo_llm import SUPPORT_ASSISTANT

    model = RegisteredModel.objects.filter(name=SUPPORT_ASSISTANT, kind="llm_app").select_related("owner").first()
    return model, sorted(model.versions.all(), key=lambda v: v.version) if model else []


def _prices_step(today, created: dict[str, int], only) -> None:
    _model, versions = _assistant()
    if versions:
        _seed_prices(versions, today, created, only)


def _day_step(days_ago: int, today, created: dict[str, int]) -> None:
    """The day ``days_ago`` days before ``today``: its requests, sent at midnight after it, for
    the version in production that day; its windows and the health computed inline if the
    worker's sweep has not (as ``load_llm_requests`` does)."""
    model, versions = _assistant()
    if model is None or not versions:
        return
    day = _day_start(today, days_ago)
    version = _version_of_day(model, versions, today)(day)
    rank = {v.pk: i for i, v in enumerate(versions)}
    body = orjson.dumps(_day_records(version, day, rank[version.pk]))
    with queue.hold():  # with ``sync``: the sweep of the day's windows, then one health evaluation
        answer = llm_requests_ingest(
            version=version, body=body, content_type="application/json", actor=model.owner, context=CONTEXT
        )
    if "duplicate_of_batch" in answer:
        return
    created["llm requests"] = created.get("llm requests", 0) + answer["rows"]
    # what the sweep queued by the ingestion left (all of it without ``sync``; with it, nothing
    # once the sweep ran at the commit): the day's cost record is there for the evening's budget
    computed = _compute_windows(versions, hours_since=_day_start(today, HOURLY_DAYS))
    if computed:
        created["llm windows"] = created.get("llm windows", 0) + computed
        health_evaluate(model=model)


def llm_steps(*, today, days: int = 28, created: dict[str, int]) -> list[tuple[datetime, Callable]]:
    """support-assistant's traffic on its days, as ``(moment, action)`` for the monitoring demo's
    day loop (each idempotent): the prices five minutes before the first day (a price change five
    minutes before it applies), each day's requests at midnight after the day."""
    first = _day_start(today, days)
    steps: list[tuple[datetime, Callable]] = [
        (first - timedelta(minutes=5), functools.partial(_prices_step, today, created, lambda ago: ago >= days))
    ]
    for days_ago in sorted({ago for rows in PRICES.values() for ago, *_ in rows if ago < days}, reverse=True):
        only = functools.partial(operator.eq, days_ago)
        steps.append(
            (_day_start(today, days_ago) - timedelta(minutes=5), functools.partial(_prices_step, today, created, only))
        )
    for days_ago in range(days, 0, -1):
        day_step = functools.partial(_day_step, days_ago, today, created)
        steps.append((_day_start(today, days_ago - 1), day_step))
    return steps


__all__ = ["llm_steps", "load_llm_requests"]
