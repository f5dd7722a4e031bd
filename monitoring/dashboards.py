"""Reads behind the dashboard pages (fleet overview, model dashboard, alerts page).

Selectors in the HackSoft sense: they take the user, return only what that user may
see (``registry.selectors.model_visible_q``), and do a constant number of queries
whatever the range: each chart's data is one aggregated query, grouped in the
database, never a query per window or per feature.

Granularity. Ranges up to 14 days can be shown hourly; longer ranges are shown
daily. Daily windows computed by the monitoring engine are used when they exist;
otherwise a daily bucket is aggregated from the hourly windows in SQL: the worst
hour for drift and data quality (max PSI / JS / shares, min p-value), the sum for
counts and the mean for performance and label coverage. This keeps a 90-day page
at 90 columns instead of 2,160.
"""

from __future__ import annotations

import bisect
import dataclasses
import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import numpy as np
from django import forms
from django.contrib.postgres.aggregates import ArrayAgg
from django.db import connection
from django.db.models import (
    Avg,
    Case,
    Count,
    F,
    FloatField,
    Func,
    IntegerField,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.fields.json import KeyTransform
from django.db.models.functions import Coalesce, TruncDay
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils import timezone

from registry.choices import RiskTier, Stage, TaskType
from registry.models import ModelVersion, RegisteredModel, StageTransition
from registry.selectors import model_list, model_visible_q

from .charts import Marker
from .choices import (
    PREDICTION_FEATURE,
    SCORE_FEATURE,
    AlertSeverity,
    AlertStatus,
    Granularity,
    HealthState,
    Metric,
    ProfileStatus,
)
from .estimation import ESTIMATED_METRICS
from .filters import AlertFilterSet
from .models import Alert, HealthStatus, MetricValue, MonitoringConfig, ReferenceProfile
from .selectors import alert_list, window_bin_counts

RANGES = {
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
}
HOURLY_MAX_SPAN = timedelta(days=14)
CUSTOM_MAX_SPAN = timedelta(days=366)
PREDICTION_COLUMNS = (SCORE_FEATURE, PREDICTION_FEATURE)
CLASSIFICATION_METRICS = [Metric.ROC_AUC, Metric.ACCURACY, Metric.F1, Metric.PRECISION, Metric.RECALL]
REGRESSION_METRICS = [Metric.RMSE, Metric.MAE, Metric.R2]
DATASET_METRICS = [
    Metric.VOLUME,
    Metric.DRIFT_SHARE,
    Metric.LABEL_COVERAGE,
    *CLASSIFICATION_METRICS,
    Metric.LOG_LOSS,
    *REGRESSION_METRICS,
]
DATASET_METRICS += ESTIMATED_METRICS  # the estimates drawn on the performance chart (charts_estimated)
HEATMAP_METRICS = [Metric.PSI, Metric.JS_DISTANCE, Metric.KS_P_VALUE, Metric.CHI2_P_VALUE, Metric.DRIFT_DETECTED]
QUALITY_METRICS = {
    Metric.MISSING_SHARE: "missing (worst feature)",
    Metric.OUT_OF_RANGE_SHARE: "out of range (worst feature)",
    Metric.UNSEEN_SHARE: "unseen categories (worst feature)",
}
# How a daily bucket summarises hourly windows, when daily windows were not computed.
_SUM_METRICS = {Metric.VOLUME, Metric.LABELLED, Metric.DRIFTED_FEATURES}
_MIN_METRICS = {Metric.KS_P_VALUE, Metric.CHI2_P_VALUE}
_MEAN_METRICS = {Metric.LABEL_COVERAGE, Metric.LOG_LOSS, *CLASSIFICATION_METRICS, *REGRESSION_METRICS}
HEALTH_ORDER = [HealthState.CRITICAL, HealthState.WARNING, HealthState.NO_DATA, HealthState.OK]


# --------------------------------------------------------------------------- query parsing


class DashboardRangeForm(forms.Form):
    """The range picker: a preset or a custom [start, end), the granularity and the feature."""

    range = forms.ChoiceField(choices=[(k, k) for k in RANGES] + [("custom", "custom")], required=False)
    start = forms.DateTimeField(required=False)
    end = forms.DateTimeField(required=False)
    granularity = forms.ChoiceField(
        choices=[("auto", "auto"), (Granularity.HOURLY, "hourly"), (Granularity.DAILY, "daily")], required=False
    )
    feature = forms.CharField(required=False, max_length=200)
    version = forms.IntegerField(required=False, min_value=1)

    def clean(self):
        data = super().clean()
        if data.get("range") == "custom":
            start, end = data.get("start"), data.get("end")
            if not start or not end:
                raise forms.ValidationError("A custom range needs a start and an end.")
            if start >= end:
                raise forms.ValidationError("The start must be before the end.")
            if end - start > CUSTOM_MAX_SPAN:
                raise forms.ValidationError("A custom range can span at most 366 days.")
        return data


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


def dashboard_query_parse(params, *, now: datetime | None = None) -> DashboardQuery:
    """Validate the range picker's GET parameters; raises forms.ValidationError on bad input."""
    form = DashboardRangeForm(params)
    if not form.is_valid():
        raise forms.ValidationError(form.errors.get_json_data())
    data = form.cleaned_data
    now = now or timezone.now()
    range_key = data.get("range") or "7d"
    if range_key == "custom":
        start, end = data["start"], data["end"]
    else:
        end = now
        # align to a window boundary, so "last 24 h" is 24 whole hourly windows
        start = (now - RANGES[range_key]).replace(minute=0, second=0, microsecond=0)
    requested = data.get("granularity") or "auto"
    notice = ""
    if requested == "auto":
        granularity = Granularity.HOURLY if end - start <= HOURLY_MAX_SPAN else Granularity.DAILY
    elif requested == Granularity.HOURLY and end - start > HOURLY_MAX_SPAN:
        granularity = Granularity.DAILY
        notice = "Hourly windows are shown for ranges up to 14 days; this range is shown daily."
    else:
        granularity = requested
    return DashboardQuery(
        range_key=range_key,
        start=start,
        end=end,
        granularity=granularity,
        requested_granularity=requested,
        feature=data.get("feature") or "",
        version=data.get("version"),
        notice=notice,
    )


# --------------------------------------------------------------------------- model dashboard


@dataclasses.dataclass
class Thresholds:
    """The model's thresholds (its MonitoringConfig, or the defaults when none is saved)."""

    psi_warning: float = 0.1
    psi_critical: float = 0.25
    p_value: float = 0.05
    drift_share_warning: float = 0.2
    drift_share_critical: float = 0.5
    label_coverage: float = 0.8
    performance_drop_warning: float = 0.05
    performance_drop_critical: float = 0.1

    @classmethod
    def of(cls, config: MonitoringConfig | None) -> Thresholds:
        if config is None:
            return cls()
        return cls(
            psi_warning=config.psi_warning,
            psi_critical=config.psi_critical,
            p_value=config.p_value_threshold,
            drift_share_warning=config.drift_share_warning,
            drift_share_critical=config.drift_share_critical,
            label_coverage=config.label_coverage_threshold,
            performance_drop_warning=config.performance_drop_warning,
            performance_drop_critical=config.performance_drop_critical,
        )


@dataclasses.dataclass
class ModelDashboard:
    """Everything the model dashboard draws, as arrays aligned on ``windows``."""

    model: RegisteredModel
    query: DashboardQuery
    versions: list[ModelVersion]
    current_version: ModelVersion | None
    config: MonitoringConfig | None
    thresholds: Thresholds
    health: HealthStatus | None
    markers: list[Marker]
    source: str  # "stored" (windows of the requested granularity) or "rollup" (daily from hourly)
    windows: list[datetime]
    features: list[str]
    status: np.ndarray
    psi: np.ndarray
    js: np.ndarray
    p_value: np.ndarray
    series: dict[str, np.ndarray]
    provisional: np.ndarray
    quality: dict[str, np.ndarray]
    prediction_drift: np.ndarray | None
    prediction_bins: list[str]
    prediction_shares: np.ndarray
    feature: str
    reference_labels: list[str]
    reference_counts: list[float]
    current_counts: list[float]
    open_alerts: list[Alert]

    @property
    def performance_metrics(self) -> list[str]:
        wanted = REGRESSION_METRICS if self.model_task == TaskType.REGRESSION else CLASSIFICATION_METRICS
        return [m for m in wanted if m in self.series and not np.all(np.isnan(self.series[m]))]

    @property
    def model_task(self) -> str:
        return self.current_version.task_type if self.current_version else TaskType.BINARY

    @property
    def top_drifted(self) -> list[tuple[str, float, str]]:
        """(feature, PSI, status) of the latest window with drift values, worst first (top 10)."""
        return top_drifted(self.features, self.psi, self.status)


def top_drifted(features: list[str], psi: np.ndarray, status: np.ndarray, limit: int = 10):
    """(feature, PSI, status) of the latest window that has drift values, worst first."""
    if not features or not psi.size:
        return []
    has = ~np.all(np.isnan(psi), axis=0)
    if not has.any():
        return []
    col = int(np.nonzero(has)[0][-1])
    names = {0: "ok", 1: "warning", 2: "critical"}
    items = [
        (f, float(psi[i, col]), names.get(int(status[i, col]), "no_data"))
        for i, f in enumerate(features)
        if not np.isnan(psi[i, col])
    ]
    items.sort(key=lambda t: t[1], reverse=True)
    return items[:limit]


def dashboard_model_get(*, user, name: str) -> RegisteredModel:
    """The model, if the user may see it (404 otherwise, so outsiders learn nothing).

    ``model_list``'s visibility, without its inventory summary (version counts and the like
    as subqueries, which the dashboard does not show)."""
    if not user.is_authenticated:
        raise Http404("No such model.")
    visible = RegisteredModel.objects.filter(model_visible_q(user)).select_related("owner", "team")
    return get_object_or_404(visible, name=name)


@dataclasses.dataclass
class _Series:
    """One (version, feature, metric) series: window starts (epoch seconds) and values."""

    version_id: int
    feature: str
    metric: str
    ts: np.ndarray
    values: np.ndarray
    provisional: np.ndarray


def _epoch(when: datetime) -> float:
    return when.timestamp()


def _series(qs: QuerySet, rollup: bool) -> list[_Series]:
    """The metric rows of ``qs`` grouped per (version, feature, metric) into arrays.

    On PostgreSQL the grouping happens in the database (``array_agg`` ordered by window),
    so a week of hourly windows for 50 features arrives as ~200 rows of arrays instead of
    33,000 rows. The daily roll-up of hourly windows, and SQLite, use the row path."""
    if not rollup and connection.vendor == "postgresql":
        # float8 in the database: EXTRACT gives numeric, which would arrive as Decimal objects
        epoch = Func(
            F("window_start"), template="EXTRACT(EPOCH FROM %(expressions)s)::float8", output_field=FloatField()
        )
        rows = (
            qs.order_by()
            .values("version_id", "feature", "metric")
            # no ORDER BY needed: the three aggregates of a group see its rows in the same
            # order, so ts[i], vs[i] and pv[i] belong together (and placement uses searchsorted)
            .annotate(ts=ArrayAgg(epoch), vs=ArrayAgg("value"), pv=ArrayAgg("provisional"))
            .values_list("version_id", "feature", "metric", "ts", "vs", "pv")
        )
        return [
            _Series(v, f, m, np.asarray(ts, dtype="float64"), _floats(vs), np.asarray(pv, dtype=bool))
            for v, f, m, ts, vs, pv in rows
        ]
    if rollup:
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
        flat = [
            (b, v, f, m, _pick(m, hi, lo, total, mean), bool(prov)) for b, v, f, m, hi, lo, total, mean, prov in rows
        ]
    else:
        flat = list(
            qs.order_by().values_list("window_start", "version_id", "feature", "metric", "value", "provisional")
        )
    groups: dict[tuple, list] = defaultdict(list)
    for when, v, f, m, value, prov in flat:
        groups[(v, f, m)].append((_epoch(when), value, prov))
    out = []
    for (v, f, m), items in groups.items():
        items.sort(key=lambda t: t[0])
        out.append(
            _Series(
                v,
                f,
                m,
                np.array([t[0] for t in items], dtype="float64"),
                _floats([t[1] for t in items]),
                np.array([t[2] for t in items], dtype=bool),
            )
        )
    return out


def _floats(values) -> np.ndarray:
    return np.array(values, dtype="float64")  # None -> NaN


def _pick(metric: str, hi, lo, total, mean):
    if metric in _SUM_METRICS:
        return total
    if metric in _MIN_METRICS:
        return lo
    if metric in _MEAN_METRICS:
        return mean
    return hi


def _production_at(transitions: list[StageTransition]):
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


def _preferred_versions(series: list[_Series], production_at, version_number: dict[int, int]) -> dict[float, int]:
    """Per window (epoch seconds), the version to show: the one in production then, else the
    newest with data. Cheap: it loops over windows, not over cells."""
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
        live = production_at(datetime.fromtimestamp(window, tz=UTC))
        chosen[window] = live if live in ids else max(ids, key=lambda i: version_number.get(i, 0))
    return chosen


def column_bins(column: dict | None) -> tuple[list[str], np.ndarray, np.ndarray | None]:
    """Display bins of one reference-profile column (layout: ``monitoring.services.profiles``).

    Numeric columns are shown on the coarse bins (``coarse_edges``, open tails), categorical
    ones as the top categories plus ``other``. Returns (labels, reference counts, fine→coarse
    map or None); window counts are stored on the fine bins and mapped with the same map.
    """
    if not isinstance(column, dict) or not column.get("counts"):
        return [], np.zeros(0), None
    fine = np.asarray(column["counts"], dtype="float64")
    if column.get("type") == "numeric":
        coarse_edges = column.get("coarse_edges") or []
        cmap = np.asarray(column.get("coarse_map") or np.arange(len(fine)), dtype=np.intp)
        width = int(cmap.max()) + 1 if cmap.size else 0
        bounds = [None, *coarse_edges, None]
        labels = [_interval(bounds[i], bounds[i + 1]) for i in range(width)]
        return labels, np.bincount(cmap, weights=fine, minlength=width), cmap
    labels = [str(c) for c in column.get("categories") or []] + ["other"]
    if len(labels) != len(fine):
        labels = [f"bin {i + 1}" for i in range(len(fine))]
    return labels, fine, None


def _fine_width(labels: list[str], cmap: np.ndarray | None) -> int:
    """How many fine bins a window's stored counts have for a column (see ``column_bins``)."""
    return len(cmap) if cmap is not None else len(labels)


def _to_display_rows(fine: np.ndarray, cmap: np.ndarray | None, width: int) -> np.ndarray:
    """Fine bin counts (rows, fine bins) summed onto the display bins (rows, width)."""
    if cmap is None:
        return fine
    out = np.zeros((fine.shape[0], width))
    np.add.at(out.T, cmap, fine.T)  # column cmap[j] += fine column j
    return out


def _interval(lo, hi) -> str:
    if lo is None and hi is None:
        return "all"
    if lo is None:
        return f"< {_fmt(hi)}"
    if hi is None:
        return f"≥ {_fmt(lo)}"
    return f"{_fmt(lo)} – {_fmt(hi)}"


def _fmt(value) -> str:
    if value is None:
        return "?"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if number in (float("inf"), float("-inf")):
        return "∞" if number > 0 else "−∞"
    return f"{number:.3g}"


def model_dashboard_data(*, user, name: str, query: DashboardQuery) -> ModelDashboard:
    """The per-model dashboard. A constant number of queries (about a dozen) for any range."""
    model = dashboard_model_get(user=user, name=name)
    versions = list(ModelVersion.objects.filter(model=model).order_by("version"))
    version_number = {v.pk: v.version for v in versions}
    config = MonitoringConfig.objects.filter(model=model).first()
    thresholds = Thresholds.of(config)
    health = HealthStatus.objects.filter(model=model).first()
    transitions = list(StageTransition.objects.filter(model=model).select_related("version").order_by("created_at"))
    production_at = _production_at(transitions)

    start, end = query.start, query.end
    # model *and* version ids: the planner can use either (model, metric, window_start) or
    # (version, granularity, window_start), whichever is narrower for this range
    metric_qs = MetricValue.objects.filter(
        model=model, version_id__in=list(version_number), window_start__gte=start, window_start__lt=end
    )
    if query.version:
        metric_qs = metric_qs.filter(version__version=query.version)

    # Which granularity is stored here? (one cheap query on the volume rows)
    stored = set(
        metric_qs.filter(metric=Metric.VOLUME, feature="").order_by().values_list("granularity", flat=True).distinct()
    )
    rollup = False
    source_granularity = query.granularity
    if query.granularity not in stored and Granularity.HOURLY in stored and query.granularity == Granularity.DAILY:
        rollup, source_granularity = True, Granularity.HOURLY
    metric_qs = metric_qs.filter(granularity=source_granularity)

    # 1. dataset-level series + prediction drift, 2. drift heatmap cells: grouped arrays
    dataset = _series(metric_qs.filter(feature="", metric__in=DATASET_METRICS), rollup)
    heat = _series(metric_qs.filter(metric__in=HEATMAP_METRICS).exclude(feature=""), rollup)
    # the prediction columns' PSI is prediction drift, not a heatmap row
    dataset += [item for item in heat if item.feature in PREDICTION_COLUMNS and item.metric == Metric.PSI]
    heat = [item for item in heat if item.feature not in PREDICTION_COLUMNS]
    # 3. data quality, worst feature per window (grouped in the database)
    bucket = TruncDay("window_start") if rollup else F("window_start")
    quality_rows = list(
        metric_qs.filter(metric__in=list(QUALITY_METRICS))
        .exclude(feature="")
        .order_by()
        .annotate(bucket=bucket)
        .values("bucket", "metric")
        .annotate(worst=Max("value"))
        .values_list("bucket", "metric", "worst")
    )

    chosen = _preferred_versions(dataset + heat, production_at, version_number)
    window_ts = np.array(sorted(chosen), dtype="float64")
    windows = [datetime.fromtimestamp(t, tz=UTC) for t in window_ts.tolist()]
    chosen_version = np.array([chosen[t] for t in window_ts.tolist()], dtype="int64")
    n = len(windows)

    def place(item: _Series):
        """Indexes of the item's windows, and which of its values are the chosen version's."""
        idx = np.searchsorted(window_ts, item.ts)
        keep = chosen_version[idx] == item.version_id
        return idx[keep], keep

    series: dict[str, np.ndarray] = {}
    provisional = np.zeros(n, dtype=bool)
    prediction_drift = None
    for item in dataset:
        idx, keep = place(item)
        values = item.values[keep]
        if item.feature in PREDICTION_COLUMNS:
            if prediction_drift is None:
                prediction_drift = np.full(n, np.nan)
            if item.feature == SCORE_FEATURE:
                prediction_drift[idx] = values
            else:
                prediction_drift[idx] = np.where(np.isnan(prediction_drift[idx]), values, prediction_drift[idx])
            continue
        arr = series.get(item.metric)
        if arr is None:
            arr = series[item.metric] = np.full(n, np.nan)
        arr[idx] = values
        if item.metric not in (Metric.VOLUME, Metric.DRIFT_SHARE, Metric.DRIFTED_FEATURES):
            provisional[idx] |= item.provisional[keep]

    current_version = _current_version(versions, query.version)
    schema_order = current_version.feature_names if current_version else []
    seen_features = {item.feature for item in heat}
    features = [f for f in schema_order if f in seen_features] + sorted(seen_features - set(schema_order))
    findex = {f: i for i, f in enumerate(features)}
    shape = (len(features), n)
    psi, js, p_value, drifted = (np.full(shape, np.nan) for _ in range(4))
    target = {
        Metric.PSI: psi,
        Metric.JS_DISTANCE: js,
        Metric.KS_P_VALUE: p_value,
        Metric.CHI2_P_VALUE: p_value,
        Metric.DRIFT_DETECTED: drifted,
    }
    for item in heat:
        idx, keep = place(item)
        target[item.metric][findex[item.feature], idx] = item.values[keep]
    with np.errstate(invalid="ignore"):
        status = np.where(np.isnan(psi) & np.isnan(drifted), np.nan, 0.0)
        status = np.where((drifted >= 1) | (psi >= thresholds.psi_warning), 1.0, status)
        status = np.where(psi >= thresholds.psi_critical, 2.0, status)

    index = {w: i for i, w in enumerate(windows)}
    quality = {label: np.full(n, np.nan) for label in QUALITY_METRICS.values()}
    for bucket_at, metric, worst in quality_rows:
        if bucket_at in index and worst is not None:
            quality[QUALITY_METRICS[metric]][index[bucket_at]] = worst
    quality = {k: v for k, v in quality.items() if not np.all(np.isnan(v))}

    # 4. reference vs current distribution for one feature, 5. prediction distribution over time
    feature = query.feature if query.feature in (schema_order or features) else ""
    if not feature and features:
        top = top_drifted(features, psi, status, limit=1)
        feature = top[0][0] if top else features[0]
    elif not feature and schema_order:
        feature = schema_order[0]
    reference_labels: list[str] = []
    reference_counts: list[float] = []
    current_counts: list[float] = []
    prediction_bins: list[str] = []
    prediction_shares = np.zeros((0, n))
    if current_version is not None:
        columns_json = KeyTransform("features", "profile")
        ref = (
            ReferenceProfile.objects.filter(version=current_version, status=ProfileStatus.READY)
            .annotate(
                col=KeyTransform(feature or "-", columns_json),
                score=KeyTransform(SCORE_FEATURE, columns_json),
                pred=KeyTransform(PREDICTION_FEATURE, columns_json),
            )
            .values_list("col", "score", "pred")
            .first()
        ) or (None, None, None)
        reference_labels, ref_counts, cmap = column_bins(_json(ref[0]))
        reference_counts = ref_counts.tolist()
        prediction_column, column = (
            (SCORE_FEATURE, ref[1]) if ref[1] else (PREDICTION_FEATURE, ref[2]) if ref[2] else (None, None)
        )
        prediction_bins, _ref, pmap = column_bins(_json(column)) if prediction_column else ([], None, None)
        # fine bins per feature; the prediction column the chart does not use still takes part
        # in choosing between stored daily and hourly counts (daily views read daily counts if
        # stored; the engine stores hourly counts, summed per day here)
        widths = dict.fromkeys(PREDICTION_COLUMNS, 0)
        widths[feature] = _fine_width(reference_labels, cmap)
        if prediction_column:
            widths[prediction_column] = _fine_width(prediction_bins, pmap)
        counts = window_bin_counts(
            version=current_version, features=widths, start=start, end=end, granularity=query.granularity
        )

        current = np.zeros(len(reference_labels))
        if feature in counts:
            current += _to_display_rows(counts[feature].counts.sum(axis=0, keepdims=True), cmap, len(reference_labels))[
                0
            ]
        current_counts = current.tolist()

        if prediction_column in counts and windows:
            rows = counts[prediction_column]
            keys = rows.starts
            if query.granularity == Granularity.DAILY:
                keys = np.floor(keys / 86400.0) * 86400.0
            # each window's bucket: the rows whose key is the window's start
            pos = np.searchsorted(window_ts, keys)
            hit = pos < n
            hit[hit] = window_ts[pos[hit]] == keys[hit]
            fine = np.zeros((n, rows.counts.shape[1]))
            np.add.at(fine, pos[hit], rows.counts[hit])
            matrix = _to_display_rows(fine, pmap, len(prediction_bins)).T
            totals = matrix.sum(axis=0)
            prediction_shares = np.divide(matrix, totals, out=np.full_like(matrix, np.nan), where=totals > 0)

    markers = _markers(transitions, model, start, end)
    open_alerts = list(
        Alert.objects.filter(model=model).exclude(status=AlertStatus.RESOLVED).order_by("-opened_at")[:20]
    )
    return ModelDashboard(
        model=model,
        query=query,
        versions=versions,
        current_version=current_version,
        config=config,
        thresholds=thresholds,
        health=health,
        markers=markers,
        source="rollup" if rollup else "stored",
        windows=windows,
        features=features,
        status=status,
        psi=psi,
        js=js,
        p_value=p_value,
        series=series,
        provisional=provisional,
        quality=quality,
        prediction_drift=prediction_drift,
        prediction_bins=prediction_bins,
        prediction_shares=prediction_shares,
        feature=feature,
        reference_labels=reference_labels,
        reference_counts=reference_counts,
        current_counts=current_counts,
        open_alerts=open_alerts,
    )


def _json(value):
    """KeyTransform values arrive decoded on PostgreSQL and as JSON text on some backends."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _current_version(versions: list[ModelVersion], wanted: int | None) -> ModelVersion | None:
    if wanted:
        return next((v for v in versions if v.version == wanted), None)
    production = next((v for v in versions if v.stage == Stage.PRODUCTION), None)
    return production or (versions[-1] if versions else None)


def _markers(transitions: list[StageTransition], model: RegisteredModel, start: datetime, end: datetime):
    markers = []
    for t in transitions:
        if not (start <= t.created_at < end):
            continue
        if t.kind == StageTransition.Kind.ROLLBACK and t.to_stage == Stage.PRODUCTION:
            markers.append(Marker(at=t.created_at, kind="rollback", label=f"rollback → v{t.version.version}"))
        elif t.to_stage == Stage.PRODUCTION:
            markers.append(Marker(at=t.created_at, kind="promotion", label=f"v{t.version.version} → production"))
    alerts = Alert.objects.filter(model=model, opened_at__gte=start, opened_at__lt=end).values_list(
        "opened_at", "severity", "kind"
    )
    for opened_at, severity, kind in alerts:
        markers.append(Marker(at=opened_at, kind="alert", label=f"{severity} {kind.replace('_', ' ')}"))
    markers.sort(key=lambda m: m.at)
    return markers


# --------------------------------------------------------------------------- fleet overview


class FleetFilterForm(forms.Form):
    """Filters and sorting of the fleet overview (GET)."""

    SORTS = {
        "name": ("name",),
        "health": ("health_rank", "name"),
        "risk": ("risk_rank", "name"),
        "alerts": ("-open_alerts", "name"),
        "last_window": (F("last_window").desc(nulls_last=True), "name"),
        "owner": ("owner__username", "name"),
    }

    q = forms.CharField(required=False, max_length=100)
    health = forms.ChoiceField(choices=[("", "any")] + list(HealthState.choices), required=False)
    risk_tier = forms.ChoiceField(choices=[("", "any")] + list(RiskTier.choices), required=False)
    team = forms.SlugField(required=False, max_length=100)
    owner = forms.CharField(required=False, max_length=150)
    sort = forms.ChoiceField(choices=[(k, k) for k in SORTS], required=False)


def fleet_models(*, user, filters: dict | None = None) -> QuerySet[RegisteredModel]:
    """Every model the user may see, with health, production version, last window and open
    alerts annotated in one query (subqueries, no per-row lookups)."""
    filters = filters or {}
    production = ModelVersion.objects.filter(model=OuterRef("pk"), stage=Stage.PRODUCTION).values("version")[:1]
    last_window = (
        MetricValue.objects.filter(model=OuterRef("pk"), metric=Metric.VOLUME, feature="")
        .order_by("-window_start")
        .values("window_end")[:1]
    )
    open_alerts = (
        Alert.objects.filter(model=OuterRef("pk"))
        .exclude(status=AlertStatus.RESOLVED)
        .order_by()
        .values("model")
        .annotate(c=Count("pk"))
        .values("c")
    )
    qs = (
        model_list(user=user)
        .prefetch_related(None)
        .select_related("health")
        .annotate(
            health_state=Coalesce(F("health__status"), Value(HealthState.NO_DATA)),
            production_version=Subquery(production),
            last_window=Subquery(last_window),
            open_alerts=Coalesce(Subquery(open_alerts), Value(0)),
            health_rank=Case(
                *[When(health__status=s, then=Value(i)) for i, s in enumerate(HEALTH_ORDER)],
                default=Value(HEALTH_ORDER.index(HealthState.NO_DATA)),
                output_field=IntegerField(),
            ),
            risk_rank=Case(
                When(risk_tier=RiskTier.HIGH, then=Value(0)),
                When(risk_tier=RiskTier.MEDIUM, then=Value(1)),
                default=Value(2),
                output_field=IntegerField(),
            ),
        )
    )
    if filters.get("q"):
        qs = qs.filter(name__icontains=filters["q"])
    if filters.get("health"):
        if filters["health"] == HealthState.NO_DATA:
            qs = qs.filter(Q(health__isnull=True) | Q(health__status=HealthState.NO_DATA))
        else:
            qs = qs.filter(health__status=filters["health"])
    if filters.get("risk_tier"):
        qs = qs.filter(risk_tier=filters["risk_tier"])
    if filters.get("team"):
        qs = qs.filter(team__slug=filters["team"])
    if filters.get("owner"):
        qs = qs.filter(owner__username=filters["owner"])
    return qs.order_by(*FleetFilterForm.SORTS[filters.get("sort") or "health"])


def fleet_health_counts(models) -> dict[str, int]:
    counts = {s.value: 0 for s in HEALTH_ORDER}
    for m in models:
        counts[m.health_state] = counts.get(m.health_state, 0) + 1
    return counts


@dataclasses.dataclass
class TierRollup:
    """Portfolio roll-up of one risk tier over the last 30 days."""

    tier: str
    models: int
    by_health: dict[str, int]
    red_hours: float  # mean hours per model with a critical alert open (last 30 days)
    red_share: float
    mtta_hours: float | None
    mttr_hours: float | None
    alerts: int


def fleet_rollup(*, user, now: datetime | None = None, days: int = 30) -> list[TierRollup]:
    """Per risk tier: models per health state, time in red (critical alert open) over the
    last ``days`` days, and mean time to acknowledge and to resolve the alerts opened then.

    Two queries: the visible models' tiers and health, and the alerts touching the period.
    """
    now = now or timezone.now()
    since = now - timedelta(days=days)
    model_rows = list(
        RegisteredModel.objects.filter(pk__in=model_list(user=user).values("pk"))
        .annotate(state=Coalesce(F("health__status"), Value(HealthState.NO_DATA)))
        .order_by()
        .values_list("pk", "risk_tier", "state")
    )
    tier_of = {pk: tier for pk, tier, _ in model_rows}
    alerts = list(
        Alert.objects.filter(model_id__in=list(tier_of))
        .filter(Q(opened_at__gte=since) | Q(resolved_at__isnull=True) | Q(resolved_at__gte=since))
        .order_by()
        .values_list("model_id", "severity", "opened_at", "acknowledged_at", "resolved_at")
    )
    red: dict[int, list[tuple[datetime, datetime]]] = defaultdict(list)
    ack: dict[str, list[float]] = defaultdict(list)
    resolve: dict[str, list[float]] = defaultdict(list)
    opened: dict[str, int] = defaultdict(int)
    for model_id, severity, opened_at, acknowledged_at, resolved_at in alerts:
        tier = tier_of[model_id]
        if severity == AlertSeverity.CRITICAL:
            red[model_id].append((max(opened_at, since), min(resolved_at or now, now)))
        if opened_at >= since:
            opened[tier] += 1
            if acknowledged_at:
                ack[tier].append((acknowledged_at - opened_at).total_seconds() / 3600)
            if resolved_at:
                resolve[tier].append((resolved_at - opened_at).total_seconds() / 3600)
    red_hours_by_model = {pk: _union_hours(spans) for pk, spans in red.items()}
    out = []
    for tier in RiskTier.values:
        members = [(pk, state) for pk, t, state in model_rows if t == tier]
        by_health = {s.value: 0 for s in HEALTH_ORDER}
        for _pk, state in members:
            by_health[state] = by_health.get(state, 0) + 1
        hours = [red_hours_by_model.get(pk, 0.0) for pk, _ in members]
        mean_red = float(np.mean(hours)) if hours else 0.0
        out.append(
            TierRollup(
                tier=tier,
                models=len(members),
                by_health=by_health,
                red_hours=mean_red,
                red_share=mean_red / (days * 24),
                mtta_hours=float(np.mean(ack[tier])) if ack[tier] else None,
                mttr_hours=float(np.mean(resolve[tier])) if resolve[tier] else None,
                alerts=opened[tier],
            )
        )
    return out


def _union_hours(spans: list[tuple[datetime, datetime]]) -> float:
    total = 0.0
    current_start = current_end = None
    for s, e in sorted(spans):
        if e <= s:
            continue
        if current_end is None or s > current_end:
            if current_end is not None:
                total += (current_end - current_start).total_seconds()
            current_start, current_end = s, e
        else:
            current_end = max(current_end, e)
    if current_end is not None:
        total += (current_end - current_start).total_seconds()
    return total / 3600


# --------------------------------------------------------------------------- alerts page


def alert_page_list(*, user, params) -> tuple[QuerySet[Alert], AlertFilterSet]:
    """The alerts page: ``monitoring.selectors.alert_list`` filtered by the API's
    ``AlertFilterSet``, plus two page conveniences: ``status=active`` (the default: open or
    acknowledged) and ``days`` (opened in the last N days). Raises ValidationError."""
    data = params.copy()
    status = data.get("status", "active")
    active = status == "active"
    if active:
        data.pop("status", None)
    days = (data.pop("days", None) or [""])[-1]
    if days:
        try:
            n = int(days)
        except ValueError:
            n = 0
        if not 1 <= n <= 365:
            raise forms.ValidationError({"days": ["A whole number of days between 1 and 365."]})
        data["opened_after"] = (timezone.now() - timedelta(days=n)).isoformat()
    filterset = AlertFilterSet(data, queryset=alert_list(user=user).select_related("model__owner"))
    if not filterset.is_valid():
        raise forms.ValidationError(filterset.errors.get_json_data())
    qs = filterset.qs
    if active:
        qs = qs.exclude(status=AlertStatus.RESOLVED)
    return qs, filterset


def alert_recently_resolved(*, user, days: int = 7) -> QuerySet[Alert]:
    """Alerts of visible models resolved in the last ``days`` days, newest first."""
    since = timezone.now() - timedelta(days=days)
    return (
        alert_list(user=user)
        .select_related("model__owner")
        .filter(status=AlertStatus.RESOLVED, resolved_at__gte=since)
        .order_by("-resolved_at", "-id")
    )
