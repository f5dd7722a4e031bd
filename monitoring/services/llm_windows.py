"""Windows of an LLM application's request records: metrics, cost, health reasons.

``window_compute`` (``monitoring.services.windows``) calls ``llm_window_rows`` instead of the
prediction metrics for versions of ``llm_app`` models, stores the rows as ``MetricValue`` (same
upsert, same dirty marks and leases) and, for a daily window, ``llm_window_store`` replaces the
day's inference ``CostRecord`` in the same transaction, with the cost the rows were computed
with (the requests are read once per window). Metrics of a window (dataset-level,
feature ''):

* ``volume`` (requests; the name health and the dashboard read for every model);
* ``llm.latency_p50_ms``, ``llm.latency_p95_ms``: percentiles of latency (numpy's linear
  interpolation);
* ``llm.tokens_in``, ``llm.tokens_out``: sums;
* ``llm.cost``: the window's cost in ``llm.cost`` currency (null when unknown: no LLM parts, no
  price in force; never 0), and ``llm.cost_known`` (1/0);
* ``llm.feedback_mean`` over the requests with feedback (null when none), ``llm.feedback_count``;
* ``llm.safety_flag_rate``: share of requests with at least one safety flag.

``llm_reasons`` is one of health's window checks: p95 latency ≥ the config's warning/critical
milliseconds, safety-flag rate ≥ warning/critical, mean feedback below the floor (warning); each
kind judged only when the window has its metric.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np

from monitoring.choices import AlertKind, AlertSeverity, Granularity, Metric
from monitoring.llm_metrics import (
    COST,
    COST_KNOWN,
    FEEDBACK_COUNT,
    FEEDBACK_MEAN,
    LATENCY_P50,
    LATENCY_P95,
    LLM_METRICS,
    SAFETY_RATE,
    TOKENS_IN,
    TOKENS_OUT,
)
from registry.models import ModelVersion

from .llm_cost import Cost, daily_cost_upsert, request_arrays, requests_cost


def _row(metric: str, value) -> dict:
    return {"feature": "", "metric": metric, "value": None if value is None else float(value)}


def llm_window_rows(version: ModelVersion, start: datetime, end: datetime) -> tuple[list[dict], Cost]:
    """The metric rows of one window of request records, and its cost (reads only: one read of
    the requests, one of the prices)."""
    a = request_arrays(version, start, end)
    cost = requests_cost(version, start, end, a)
    n = len(a["latency"])
    rows = [_row(Metric.VOLUME, n)]
    if not n:
        return rows, cost
    p50, p95 = np.percentile(a["latency"], [50, 95])
    rated = a["feedback"][~np.isnan(a["feedback"])]
    rows += [
        _row(LATENCY_P50, p50),
        _row(LATENCY_P95, p95),
        _row(TOKENS_IN, int(a["tokens_in"].sum())),
        _row(TOKENS_OUT, int(a["tokens_out"].sum())),
        _row(COST, cost.amount),
        _row(COST_KNOWN, 1 if cost.known else 0),
        _row(FEEDBACK_MEAN, rated.mean() if rated.size else None),
        _row(FEEDBACK_COUNT, rated.size),
        _row(SAFETY_RATE, a["flagged"].mean()),
    ]
    return rows, cost


def llm_window_store(version: ModelVersion, granularity: str, start: datetime, cost: Cost) -> None:
    """What a window stores besides its metrics (inside its transaction): a day's cost record,
    with the cost ``llm_window_rows`` found."""
    if granularity == Granularity.DAILY:
        daily_cost_upsert(version, start, cost)


# --------------------------------------------------------------------------- health


def _reason(kind: str, severity: str, message: str, **extra) -> dict:
    return {"kind": kind, "severity": severity, "message": message, **extra}


def _level(value: float, warning: float, critical: float) -> tuple[str, float] | None:
    """(severity, the threshold crossed), or None below the warning threshold."""
    if value >= critical:
        return AlertSeverity.CRITICAL, critical
    return (AlertSeverity.WARNING, warning) if value >= warning else None


def _latency_message(value: float, limit: float) -> str:
    return f"p95 latency is {value:,.0f} ms (threshold {limit:,.0f} ms)."


def _safety_message(value: float, limit: float) -> str:
    return f"{value:.1%} of requests raised a safety flag (threshold {limit:.1%})."


# (kind, metric, warning field, critical field, message) of the thresholds crossed upwards
_UPPER_LIMITS = (
    (AlertKind.LLM_LATENCY, LATENCY_P95, "llm_latency_p95_warning_ms", "llm_latency_p95_critical_ms", _latency_message),
    (
        AlertKind.LLM_SAFETY,
        SAFETY_RATE,
        "llm_safety_flag_rate_warning",
        "llm_safety_flag_rate_critical",
        _safety_message,
    ),  # noqa: E501
)


def llm_reasons(window) -> tuple[frozenset[str], list[dict]]:
    """Health reasons of an LLM application's latest deciding window (``health.Window``), and the
    kinds judged: each one whose metric the window has (no feedback given is no judgement)."""
    if not getattr(window.model, "is_llm_app", False):
        return frozenset(), []
    config, reasons, judged = window.config, [], set()
    for kind, metric, warning, critical, message in _UPPER_LIMITS:
        value = window.get("", metric)
        if value is None:
            continue
        judged.add(kind)
        crossed = _level(value, getattr(config, warning), getattr(config, critical))
        if crossed:
            severity, limit = crossed
            reasons.append(_reason(kind, severity, message(value, limit), metric=metric, value=value, threshold=limit))
    mean, floor = window.get("", FEEDBACK_MEAN), config.llm_feedback_floor
    if mean is not None:
        judged.add(AlertKind.LLM_FEEDBACK)
    if mean is not None and mean < floor:
        message = f"Mean user feedback is {mean:+.2f}, below the floor {floor:+.2f}."
        extra = {"metric": FEEDBACK_MEAN, "value": mean, "threshold": floor}
        reasons.append(_reason(AlertKind.LLM_FEEDBACK, AlertSeverity.WARNING, message, **extra))
    return frozenset(judged), reasons


def llm_plan_signals(config) -> list[dict]:
    """The post-market plan's request signals of an LLM application (``plan_signals`` asks for an
    LLM application's only)."""
    return [
        {
            "signal": "llm_latency",
            "what": "Request latency p50/p95 per window",
            "thresholds": {
                "p95_warning_ms": config.llm_latency_p95_warning_ms,
                "p95_critical_ms": config.llm_latency_p95_critical_ms,
            },
        },
        {
            "signal": "llm_safety",
            "what": "Share of requests with a guardrail safety flag",
            "thresholds": {
                "warning": config.llm_safety_flag_rate_warning,
                "critical": config.llm_safety_flag_rate_critical,
            },
        },
        {
            "signal": "llm_feedback",
            "what": "Mean user feedback (-1 to +1)",
            "thresholds": {"floor": config.llm_feedback_floor},
        },
        {"signal": "llm_cost", "what": "Tokens in/out and inference cost at the price in force (never converted)"},
    ]


__all__ = ["llm_plan_signals", "LLM_METRICS", "llm_reasons", "llm_window_rows", "llm_window_store"]
