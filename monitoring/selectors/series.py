"""Metric rows as series on a window axis, for the model dashboard.

A dashboard reads its metric rows grouped per (version, feature, metric) into arrays
(``series_load``), picks per window the version to show (the one in production then, else
the newest with data) and places every series on that common axis (``WindowGrid``).

Granularity: daily windows computed by the monitoring engine are used when they exist;
otherwise a daily bucket is aggregated from the hourly windows in SQL (``rollup``): the worst
hour for drift and data quality (max PSI / JS / shares, min p-value), the sum for counts and
the mean for performance and label coverage. This keeps a 90-day page at 90 columns instead
of 2,160.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections import defaultdict
from datetime import UTC, datetime

import numpy as np
from django.contrib.postgres.aggregates import ArrayAgg
from django.db.models import Avg, Case, IntegerField, Max, Min, QuerySet, Sum, Value, When
from django.db.models.functions import TruncDay

from mlops_portal.db import epoch_seconds, is_postgresql
from registry.choices import Stage
from registry.models import StageTransition

from ..choices import Metric
from ..llm_metrics import AVERAGED as LLM_AVERAGED
from ..llm_metrics import SUMMED as LLM_SUMMED

CLASSIFICATION_METRICS = [Metric.ROC_AUC, Metric.ACCURACY, Metric.F1, Metric.PRECISION, Metric.RECALL]
REGRESSION_METRICS = [Metric.RMSE, Metric.MAE, Metric.R2]
# How a daily bucket summarises hourly windows, when daily windows were not computed.
_SUM_METRICS = {Metric.VOLUME, Metric.LABELLED, Metric.DRIFTED_FEATURES, *LLM_SUMMED}
_MIN_METRICS = {Metric.KS_P_VALUE, Metric.CHI2_P_VALUE}
_MEAN_METRICS = {Metric.LABEL_COVERAGE, Metric.LOG_LOSS, *CLASSIFICATION_METRICS, *REGRESSION_METRICS, *LLM_AVERAGED}


@dataclasses.dataclass
class Series:
    """One (version, feature, metric) series: window starts (epoch seconds) and values."""

    version_id: int
    feature: str
    metric: str
    ts: np.ndarray
    values: np.ndarray
    provisional: np.ndarray


def _floats(values) -> np.ndarray:
    return np.array(values, dtype="float64")  # None -> NaN


def series_load(qs: QuerySet, rollup: bool) -> list[Series]:
    """The metric rows of ``qs`` grouped per (version, feature, metric) into arrays.

    On PostgreSQL the grouping happens in the database (``array_agg``), so a week of hourly
    windows for 50 features arrives as ~200 rows of arrays instead of 33,000 rows. The daily
    roll-up of hourly windows, and other databases, group the rows here."""
    if rollup:
        return _group(_rollup_rows(qs))
    if is_postgresql():
        return _series_postgresql(qs)
    return _group(qs.order_by().values_list("window_start", "version_id", "feature", "metric", "value", "provisional"))


def _series_postgresql(qs: QuerySet) -> list[Series]:
    epoch = epoch_seconds("window_start")
    rows = (
        qs.order_by()
        .values("version_id", "feature", "metric")
        # no ORDER BY needed: the three aggregates of a group see its rows in the same
        # order, so ts[i], vs[i] and pv[i] belong together (and placement uses searchsorted)
        .annotate(ts=ArrayAgg(epoch), vs=ArrayAgg("value"), pv=ArrayAgg("provisional"))
        .values_list("version_id", "feature", "metric", "ts", "vs", "pv")
    )
    return [
        Series(v, f, m, np.asarray(ts, dtype="float64"), _floats(vs), np.asarray(pv, dtype=bool))
        for v, f, m, ts, vs, pv in rows
    ]


def _rollup_rows(qs: QuerySet):
    """Daily buckets of hourly rows: (day, version, feature, metric, value, provisional)."""
    rows = (
        qs.order_by()
        .annotate(bucket=TruncDay("window_start"))
        .values("bucket", "version_id", "feature", "metric")
        .annotate(
            hi=Max("value"),
            lo=Min("value"),
            total=Sum("value"),
            mean=Avg("value"),
            prov=Sum(Case(When(provisional=True, then=Value(1)), default=Value(0), output_field=IntegerField())),
        )
        .values_list("bucket", "version_id", "feature", "metric", "hi", "lo", "total", "mean", "prov")
    )
    for b, v, f, m, hi, lo, total, mean, prov in rows:
        yield b, v, f, m, _pick(m, hi, lo, total, mean), bool(prov)


def _pick(metric: str, hi, lo, total, mean):
    if metric in _SUM_METRICS:
        return total
    if metric in _MIN_METRICS:
        return lo
    if metric in _MEAN_METRICS:
        return mean
    return hi


def _group(rows) -> list[Series]:
    """Rows (window start, version, feature, metric, value, provisional) as series."""
    groups: dict[tuple, list] = defaultdict(list)
    for when, v, f, m, value, prov in rows:
        groups[(v, f, m)].append((when.timestamp(), value, prov))
    out = []
    for (v, f, m), items in groups.items():
        items.sort(key=lambda t: t[0])
        ts, values, prov = zip(*items, strict=True)
        out.append(Series(v, f, m, np.array(ts, dtype="float64"), _floats(values), np.array(prov, dtype=bool)))
    return out


def production_at(transitions: list[StageTransition]):
    """A function window_start -> id of the version in production then (None if none)."""
    events = sorted(transitions, key=lambda t: (t.created_at, t.id))
    times = [t.created_at for t in events]
    states = []
    live = None
    for t in events:
        if t.to_stage == Stage.PRODUCTION:
            live = t.version_id
        elif t.from_stage == Stage.PRODUCTION and t.version_id == live:
            live = None
        states.append(live)

    def at(when: datetime):
        i = bisect.bisect_right(times, when)
        return states[i - 1] if i else None

    return at


def preferred_versions(series: list[Series], live_at, version_number: dict[int, int]) -> dict[float, int]:
    """Per window (epoch seconds), the version to show: the one in production then (``live_at``,
    from ``production_at``), else the newest with data. Loops over windows, not over cells."""
    ids_present = {item.version_id for item in series}
    if len(ids_present) <= 1:  # the common case: one version reporting in this range
        only = next(iter(ids_present), None)
        all_ts = np.unique(np.concatenate([item.ts for item in series])) if series else np.zeros(0)
        return dict.fromkeys(all_ts.tolist(), only)
    present: dict[float, set[int]] = defaultdict(set)
    for item in series:
        for t in np.unique(item.ts).tolist():
            present[t].add(item.version_id)
    chosen = {}
    for window, ids in present.items():
        if len(ids) == 1:
            chosen[window] = next(iter(ids))
            continue
        live = live_at(datetime.fromtimestamp(window, tz=UTC))
        chosen[window] = live if live in ids else max(ids, key=lambda i: version_number.get(i, 0))
    return chosen


@dataclasses.dataclass(frozen=True)
class WindowGrid:
    """The dashboard's window axis and, per window, the version whose values it shows."""

    ts: np.ndarray  # window starts, epoch seconds, ascending
    versions: np.ndarray  # version id shown in each window

    @classmethod
    def of(cls, chosen: dict[float, int]) -> WindowGrid:
        ts = np.array(sorted(chosen), dtype="float64")
        return cls(ts=ts, versions=np.array([chosen[t] for t in ts.tolist()], dtype="int64"))

    @property
    def n(self) -> int:
        return len(self.ts)

    @property
    def windows(self) -> list[datetime]:
        return [datetime.fromtimestamp(t, tz=UTC) for t in self.ts.tolist()]

    def place(self, item: Series) -> tuple[np.ndarray, np.ndarray]:
        """Indexes of the item's windows, and which of its values are the shown version's."""
        idx = np.searchsorted(self.ts, item.ts)
        keep = self.versions[idx] == item.version_id
        return idx[keep], keep

    def empty(self, rows: int | None = None) -> np.ndarray:
        """An all-NaN array for one series (or ``rows`` series) on this axis."""
        return np.full(self.n if rows is None else (rows, self.n), np.nan)
