"""One read per chart of the model dashboard, on the scope and window axis of
``dashboard_scope`` (see ``monitoring.selectors.dashboard``)."""

from __future__ import annotations

import dataclasses

import numpy as np
from django.db.models import F, Max
from django.db.models.fields.json import KeyTransform
from django.db.models.functions import TruncDay

from registry.choices import Stage
from registry.models import ModelVersion, RegisteredModel, StageTransition

from ..choices import PREDICTION_FEATURE, SCORE_FEATURE, AlertStatus, Granularity, Metric, ProfileStatus
from ..models import Alert, ReferenceProfile
from .bins import NO_BINS, DisplayBins, column_bins, window_bin_counts
from .dashboard_scope import (
    FINAL_METRICS,
    PREDICTION_COLUMNS,
    QUALITY_METRICS,
    DashboardScope,
    Marker,
)
from .series import Series, WindowGrid, production_at

# --------------------------------------------------------------------------- drift heatmap


@dataclasses.dataclass
class DriftCells:
    """Features x windows: drift status (0 ok, 1 warning, 2 critical, NaN no data) and the
    PSI, Jensen-Shannon distance and p-value behind it."""

    features: list[str]
    status: np.ndarray
    psi: np.ndarray
    js: np.ndarray
    p_value: np.ndarray

    def top(self, limit: int = 10) -> list[tuple[str, float, str]]:
        """(feature, PSI, status) of the latest window that has drift values, worst first."""
        return top_drifted(self.features, self.psi, self.status, limit)


def drift_cells(scope: DashboardScope, grid: WindowGrid, heat: list[Series]) -> DriftCells:
    """The drift heatmap's cells, features in the shown version's schema order."""
    schema_order = scope.current_version.feature_names if scope.current_version else []
    seen = {item.feature for item in heat}
    features = [f for f in schema_order if f in seen] + sorted(seen - set(schema_order))
    row = {f: i for i, f in enumerate(features)}
    psi, js, p_value, drifted = (grid.empty(len(features)) for _ in range(4))
    target = {
        Metric.PSI: psi,
        Metric.JS_DISTANCE: js,
        Metric.KS_P_VALUE: p_value,
        Metric.CHI2_P_VALUE: p_value,
        Metric.DRIFT_DETECTED: drifted,
    }
    for item in heat:
        idx, keep = grid.place(item)
        target[item.metric][row[item.feature], idx] = item.values[keep]
    t = scope.config
    with np.errstate(invalid="ignore"):
        status = np.where(np.isnan(psi) & np.isnan(drifted), np.nan, 0.0)
        status = np.where((drifted >= 1) | (psi >= t.psi_warning), 1.0, status)
        status = np.where(psi >= t.psi_critical, 2.0, status)
    return DriftCells(features=features, status=status, psi=psi, js=js, p_value=p_value)


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


# --------------------------------------------------------------------------- dataset-level charts


@dataclasses.dataclass
class DatasetSeries:
    """Dataset-level metrics per window (drift share, performance, coverage, volume), which
    windows are provisional (labels incomplete), and prediction drift (PSI of the score or
    prediction column; None when not computed)."""

    series: dict[str, np.ndarray]
    provisional: np.ndarray
    prediction_drift: np.ndarray | None


def dataset_series(grid: WindowGrid, dataset: list[Series]) -> DatasetSeries:
    series: dict[str, np.ndarray] = {}
    provisional = np.zeros(grid.n, dtype=bool)
    drift = None
    for item in dataset:
        idx, keep = grid.place(item)
        values = item.values[keep]
        if item.feature in PREDICTION_COLUMNS:
            drift = grid.empty() if drift is None else drift
            # the score column's drift wins over the predicted label's
            drift[idx] = values if item.feature == SCORE_FEATURE else np.where(np.isnan(drift[idx]), values, drift[idx])
            continue
        if item.metric not in series:
            series[item.metric] = grid.empty()
        series[item.metric][idx] = values
        if item.metric not in FINAL_METRICS:
            provisional[idx] |= item.provisional[keep]
    return DatasetSeries(series=series, provisional=provisional, prediction_drift=drift)


def quality_shares(scope: DashboardScope, grid: WindowGrid) -> dict[str, np.ndarray]:
    """Data quality per window: the worst feature's missing / out-of-range / unseen share
    (grouped in the database; one query). Kinds never measured are left out."""
    bucket = TruncDay("window_start") if scope.rollup else F("window_start")
    rows = (
        scope.metrics.filter(metric__in=list(QUALITY_METRICS))
        .exclude(feature="")
        .order_by()
        .annotate(bucket=bucket)
        .values("bucket", "metric")
        .annotate(worst=Max("value"))
        .values_list("bucket", "metric", "worst")
    )
    index = {w: i for i, w in enumerate(grid.windows)}
    quality = {label: grid.empty() for label in QUALITY_METRICS.values()}
    for bucket_at, metric, worst in rows:
        if bucket_at in index and worst is not None:
            quality[QUALITY_METRICS[metric]][index[bucket_at]] = worst
    return {k: v for k, v in quality.items() if not np.all(np.isnan(v))}


# --------------------------------------------------------------------------- distributions


@dataclasses.dataclass
class ReferenceColumns:
    """The display bins of the chosen feature and of the prediction column (the score when
    profiled, else the predicted label), from the shown version's reference profile."""

    feature: DisplayBins
    prediction_column: str | None
    prediction: DisplayBins
    ready: bool = True  # False: the version has no ready reference profile (nothing to bin against)


def distribution_version(scope: DashboardScope, grid: WindowGrid) -> tuple[ModelVersion | None, str]:
    """The version whose distributions are drawn, and a note naming it ("" when pinned).

    A pinned version shows its own. In live mode the windows may come from several versions,
    while a distribution compares one version's counts with its own reference: it is the
    version live at the end of the range when that one has data in the range, else the
    version of the last window with data (production now has none after a fresh promotion)."""
    if scope.query.version or not grid.n:
        return scope.current_version, ""
    by_id = {v.pk: v for v in scope.versions}
    live = production_at(scope.transitions)(scope.query.end)
    if not scope.transitions and scope.current_version and scope.current_version.stage == Stage.PRODUCTION:
        live = scope.current_version.pk  # in production without a recorded promotion (registered so)
    if live in set(grid.versions.tolist()):
        chosen, why = by_id[live], "the version live at the end of the range"
    else:
        chosen, why = by_id[int(grid.versions[-1])], "the last version with data in the range"
    return chosen, f"Distributions show v{chosen.version}, {why}."


def reference_columns(version: ModelVersion | None, feature: str) -> ReferenceColumns:
    """One query: only the three columns are read out of the profile's JSON."""
    if version is None:
        return ReferenceColumns(NO_BINS, None, NO_BINS, ready=False)
    columns = KeyTransform("features", "profile")
    row = (
        ReferenceProfile.objects.filter(version=version, status=ProfileStatus.READY)
        .annotate(
            col=KeyTransform(feature or "-", columns),
            score=KeyTransform(SCORE_FEATURE, columns),
            pred=KeyTransform(PREDICTION_FEATURE, columns),
        )
        .values_list("col", "score", "pred")
        .first()
    )
    if row is None:
        return ReferenceColumns(NO_BINS, None, NO_BINS, ready=False)
    column, prediction = (SCORE_FEATURE, row[1]) if row[1] else (PREDICTION_FEATURE, row[2]) if row[2] else (None, None)
    return ReferenceColumns(column_bins(row[0]), column, column_bins(prediction) if column else NO_BINS)


def window_counts(scope: DashboardScope, version: ModelVersion | None, feature: str, ref: ReferenceColumns):
    """The stored bin counts of the feature and the prediction column over the range (one query).

    Both prediction columns take part in choosing between stored daily and hourly counts
    (daily views read daily counts if stored; the engine stores hourly counts, summed per day)."""
    if version is None:
        return {}
    widths = dict.fromkeys(PREDICTION_COLUMNS, 0)
    widths[feature] = ref.feature.fine_width
    if ref.prediction_column:
        widths[ref.prediction_column] = ref.prediction.fine_width
    q = scope.query
    return window_bin_counts(version=version, features=widths, start=q.start, end=q.end, granularity=q.granularity)


def feature_distribution(feature: str, bins: DisplayBins, counts) -> list[float]:
    """The feature's counts over the whole range, on its display bins."""
    current = np.zeros(len(bins.labels))
    if feature in counts:
        current += bins.display_rows(counts[feature].counts.sum(axis=0, keepdims=True))[0]
    return current.tolist()


def prediction_shares(scope: DashboardScope, grid: WindowGrid, ref: ReferenceColumns, counts) -> np.ndarray:
    """Share of predictions per display bin in each window: (bins, windows), NaN where empty."""
    rows = counts.get(ref.prediction_column)
    if rows is None or not grid.n:
        return np.zeros((0, grid.n))
    keys = rows.starts
    if scope.query.granularity == Granularity.DAILY:
        keys = np.floor(keys / 86400.0) * 86400.0
    # each window's bucket: the rows whose key is the window's start
    pos = np.searchsorted(grid.ts, keys)
    hit = pos < grid.n
    hit[hit] = grid.ts[pos[hit]] == keys[hit]
    fine = np.zeros((grid.n, rows.counts.shape[1]))
    np.add.at(fine, pos[hit], rows.counts[hit])
    matrix = ref.prediction.display_rows(fine).T
    totals = matrix.sum(axis=0)
    return np.divide(matrix, totals, out=np.full_like(matrix, np.nan), where=totals > 0)


def distribution_feature(scope: DashboardScope, version: ModelVersion | None, cells: DriftCells) -> str:
    """The feature whose distribution is shown: the one asked for if known, else the most
    drifted, else the first of the schema (of ``version``, the one whose distribution is drawn)."""
    schema_order = version.feature_names if version else []
    if scope.query.feature in (schema_order or cells.features):
        return scope.query.feature
    if cells.features:
        top = cells.top(limit=1)
        return top[0][0] if top else cells.features[0]
    return schema_order[0] if schema_order else ""


# --------------------------------------------------------------------------- markers and alerts


def dashboard_markers(scope: DashboardScope) -> list[Marker]:
    """Promotions, rollbacks and alert openings inside the range, in time order."""
    start, end = scope.query.start, scope.query.end
    markers = []
    for t in scope.transitions:
        if not (start <= t.created_at < end):
            continue
        if t.kind == StageTransition.Kind.ROLLBACK and t.to_stage == Stage.PRODUCTION:
            markers.append(Marker(at=t.created_at, kind="rollback", label=f"rollback → v{t.version.version}"))
        elif t.to_stage == Stage.PRODUCTION:
            markers.append(Marker(at=t.created_at, kind="promotion", label=f"v{t.version.version} → production"))
    alerts = Alert.objects.filter(model=scope.model, opened_at__gte=start, opened_at__lt=end).values_list(
        "opened_at", "severity", "kind"
    )
    for opened_at, severity, kind in alerts:
        markers.append(Marker(at=opened_at, kind="alert", label=f"{severity} {kind.replace('_', ' ')}"))
    markers.sort(key=lambda m: m.at)
    return markers


def open_alerts(model: RegisteredModel, limit: int = 20) -> list[Alert]:
    return list(Alert.objects.filter(model=model).exclude(status=AlertStatus.RESOLVED).order_by("-opened_at")[:limit])
