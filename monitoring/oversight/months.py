"""The post-market report's performance data by month (EU AI Act Art. 72): one row per calendar
month, one column per figure that applies to the model.

- Days are counted, never windows: only daily windows are read (an hour's window covers part of
  a day that its daily window covers again, so counting or averaging both double-counts).
- Only versions that have been in production are read: a staging or shadow version's windows
  are not post-market data.
- Each column names one metric: an ML model's drift (PSI), its primary metric realised and
  estimated, and the two parity figures of the promotion policy; an LLM application's requests,
  p95 latency, safety-flag rate and user feedback (it has no features, labels or estimates).
- A column without a value in any month is left out, never shown as a column of dashes.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from django.db.models import Aggregate, Avg, Count, Max, Min, Q, Sum
from django.db.models.functions import TruncMonth

from monitoring import llm_metrics
from monitoring.choices import Granularity, Metric
from monitoring.estimation import estimated_name
from monitoring.fairness_monitoring import DI, EOD
from monitoring.models import MetricValue
from registry.choices import Stage
from registry.models import ModelVersion, RegisteredModel


@dataclasses.dataclass(frozen=True)
class MonthColumn:
    """A column of the table: its heading, and the figures of each row shown in it ("a / b")."""

    heading: str
    figures: tuple[str, ...]
    decimals: int = 3


@dataclasses.dataclass
class MonthTable:
    """``rows``: ``{"month", "days", "cells": [(column, [value, …]), …]}``, oldest month first."""

    columns: list[MonthColumn]
    rows: list[dict[str, Any]]


def _value(metric: str, **extra) -> Q:
    return Q(metric=metric, **extra)


def _ml_columns(model: RegisteredModel) -> tuple[list[MonthColumn], dict[str, Aggregate]]:
    metric = model.primary_metric or Metric.ACCURACY
    realised, estimated = _value(metric, provisional=False), _value(estimated_name(metric))
    aggregates = {
        "psi_max": Max("value", filter=_value(Metric.PSI)),
        "psi_avg": Avg("value", filter=_value(Metric.PSI)),
        "perf_min": Min("value", filter=realised),
        "perf_avg": Avg("value", filter=realised),
        "estimated_avg": Avg("value", filter=estimated),
        "di_min": Min("value", filter=_value(DI)),
        "eod_max": Max("value", filter=_value(EOD)),
    }
    columns = [
        MonthColumn("Drift: PSI max / mean", ("psi_max", "psi_avg")),
        MonthColumn(f"Performance ({metric}): min / mean", ("perf_min", "perf_avg")),
        MonthColumn(f"Estimated {metric} (mean)", ("estimated_avg",)),
        MonthColumn("Fairness: disparate impact (min)", ("di_min",)),
        MonthColumn("Fairness: equalized odds difference (max)", ("eod_max",)),
    ]
    return columns, aggregates


def _llm_columns() -> tuple[list[MonthColumn], dict[str, Aggregate]]:
    aggregates = {
        "requests": Sum("value", filter=_value(Metric.VOLUME, feature="")),
        "p95_max": Max("value", filter=_value(llm_metrics.LATENCY_P95)),
        "p95_avg": Avg("value", filter=_value(llm_metrics.LATENCY_P95)),
        "safety_avg": Avg("value", filter=_value(llm_metrics.SAFETY_RATE)),
        "feedback_avg": Avg("value", filter=_value(llm_metrics.FEEDBACK_MEAN)),
    }
    columns = [
        MonthColumn("Requests", ("requests",), decimals=0),
        MonthColumn("Latency p95 (ms): worst day / mean of days", ("p95_max", "p95_avg"), decimals=0),
        MonthColumn("Safety-flag rate (mean of days)", ("safety_avg",)),
        MonthColumn("User feedback, −1 to +1 (mean of days)", ("feedback_avg",), decimals=2),
    ]
    return columns, aggregates


def _placed_versions(model: RegisteredModel):
    """The model's versions that are or have been in production."""
    placed = Q(stage=Stage.PRODUCTION) | Q(transitions__to_stage=Stage.PRODUCTION)
    return ModelVersion.objects.filter(model=model).filter(placed).values("pk")


def metric_months(model: RegisteredModel) -> MonthTable:
    """The table by month of ``model``'s daily windows (one query)."""
    columns, aggregates = _llm_columns() if model.is_llm_app else _ml_columns(model)
    rows = list(
        MetricValue.objects.filter(model=model, granularity=Granularity.DAILY, version__in=_placed_versions(model))
        .annotate(month=TruncMonth("window_start"))
        .values("month")
        .annotate(days=Count("window_start", distinct=True), **aggregates)
        .order_by("month")
    )
    shown = [c for c in columns if any(row[f] is not None for row in rows for f in c.figures)]
    return MonthTable(
        columns=shown,
        rows=[
            {"month": r["month"], "days": r["days"], "cells": [(c, [r[f] for f in c.figures]) for c in shown]}
            for r in rows
        ],
    )


__all__ = ["MonthColumn", "MonthTable", "metric_months"]
