"""The LLM panels of a model dashboard (LLM applications only): latency p50/p95, tokens in and
out, cost per day, feedback score and safety-flag rate over the dashboard's range.

Reads the dashboard's scope (``dashboard_scope``: the visible model, the range, the version
pinned or live, the stored windows of the drawn granularity) — nothing outside what the user
may see. The window metrics (``monitoring.llm_metrics``) are placed on one window axis with
the version live at each window (``series.preferred_versions``), as the other charts do. Cost
per day is the sum of the model's daily inference ``CostRecord`` amounts (``Decimal``) over the
days the cost panel counts (``DashboardQuery.cost_days``): one currency drawn, the others named;
days whose cost is unknown (no provider model or no price) are counted and named, never drawn
as 0. Three queries.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from datetime import date, datetime
from decimal import Decimal

import numpy as np

from monitoring.choices import CostCategory, CostSource

from ..choices import Granularity, Metric
from ..llm_metrics import COST_KNOWN, LLM_METRICS
from ..models import MonitoringConfig
from ..models_cost import CostRecord
from .dashboard_scope import Marker
from .series import WindowGrid, preferred_versions, production_at, series_load


@dataclasses.dataclass
class LLMPanels:
    """What the LLM panels draw: window series on ``windows``, cost per day on ``cost_days``."""

    windows: list[datetime]
    series: dict[str, np.ndarray]
    cost_days: list[date]
    cost_amounts: list[Decimal]
    currency: str
    cost_note: str
    config: MonitoringConfig
    markers: list[Marker]

    @property
    def empty(self) -> bool:
        return not self.windows


def _window_series(scope) -> tuple[list[datetime], dict[str, np.ndarray]]:
    items = series_load(scope.metrics.filter(feature="", metric__in=[Metric.VOLUME, *LLM_METRICS]), scope.rollup)
    if not items:
        return [], {}
    grid = WindowGrid.of(preferred_versions(items, production_at(scope.transitions), scope.version_number))
    series = {}
    for item in items:
        values = series.setdefault(item.metric, grid.empty())
        idx, keep = grid.place(item)
        values[idx] = item.values[keep]
    return grid.windows, series


def _cost_per_day(scope) -> tuple[list[date], list[Decimal], str, str]:
    """(days, amounts, currency drawn, note) from the model's daily inference cost records."""
    query = scope.query
    first, last = query.cost_days  # the days the cost panel counts (forms.range_days)
    records = CostRecord.objects.filter(
        model=scope.model,
        source=CostSource.REQUESTS,
        category=CostCategory.INFERENCE,
        period_start__gte=first,
        period_start__lte=last,
    )
    if query.version:
        records = records.filter(version__version=query.version)
    totals: dict[str, dict[date, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for day, amount, currency in records.order_by("period_start").values_list("period_start", "amount", "currency"):
        totals[currency][day] += amount
    if not totals:
        return [], [], "", ""
    currency = max(totals, key=lambda c: len(totals[c]))
    note = ""
    if len(totals) > 1:
        others = ", ".join(sorted(c for c in totals if c != currency))
        note = f"Costs in {others} are not drawn (never converted)."
    days = sorted(totals[currency])
    return days, [totals[currency][d] for d in days], currency, note


def _unknown_note(scope, series: dict[str, np.ndarray], windows: list[datetime]) -> str:
    known = series.get(COST_KNOWN)
    volume = series.get(Metric.VOLUME)
    if known is None or volume is None:
        return ""
    unknown = int(np.count_nonzero((known == 0) & (volume > 0)))
    if not unknown:
        return ""
    unit = "day" if scope.query.granularity == Granularity.DAILY or scope.rollup else "window"
    return (
        f"Cost unknown for {unknown} {unit}{'s' if unknown != 1 else ''} with requests: the version has no "
        "provider model or no price was in force (see /api/v1/prices/)."
    )


def llm_panels(d) -> LLMPanels | None:
    """The LLM panels of a ``ModelDashboard`` (None unless the model is an LLM application)."""
    scope = d.scope
    if not scope.model.is_llm_app:
        return None
    windows, series = _window_series(scope)
    days, amounts, currency, note = _cost_per_day(scope)
    notes = [n for n in (_unknown_note(scope, series, windows), note) if n]
    return LLMPanels(
        windows=windows,
        series=series,
        cost_days=days,
        cost_amounts=amounts,
        currency=currency,
        cost_note=" ".join(notes),
        config=scope.config,
        markers=d.markers,
    )


__all__ = ["LLMPanels", "llm_panels"]
