"""What every chart of a model dashboard reads from: the visible model, its versions and
thresholds, and the stored metric rows of the range, loaded once as series on one window axis."""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db.models import Max, Q, QuerySet

from registry.choices import Stage
from registry.models import ModelVersion, RegisteredModel, StageTransition
from registry.selectors.inventory import model_get

from ..choices import PREDICTION_FEATURE, SCORE_FEATURE, Granularity, Metric
from ..estimation import ESTIMATED_METRICS
from ..forms import DashboardQuery
from ..models import HealthStatus, MetricValue, MonitoringConfig
from ..services.config import monitoring_config_get
from .series import (
    CLASSIFICATION_METRICS,
    REGRESSION_METRICS,
    Series,
    WindowGrid,
    preferred_versions,
    production_at,
    series_load,
)

PREDICTION_COLUMNS = (SCORE_FEATURE, PREDICTION_FEATURE)
PERFORMANCE_METRICS = [*CLASSIFICATION_METRICS, *REGRESSION_METRICS]  # what the performance chart draws
WIDER_PRESETS = ("30d", "90d")  # what the default range may widen to
DATASET_METRICS = [
    Metric.VOLUME,
    Metric.DRIFT_SHARE,
    Metric.LABEL_COVERAGE,
    *CLASSIFICATION_METRICS,
    Metric.LOG_LOSS,
    *REGRESSION_METRICS,
    *ESTIMATED_METRICS,  # the estimates drawn dashed on the performance chart (monitoring/charts_estimated.py)
]
HEATMAP_METRICS = [Metric.PSI, Metric.JS_DISTANCE, Metric.KS_P_VALUE, Metric.CHI2_P_VALUE, Metric.DRIFT_DETECTED]
QUALITY_METRICS = {
    Metric.MISSING_SHARE: "missing (worst feature)",
    Metric.OUT_OF_RANGE_SHARE: "out of range (worst feature)",
    Metric.UNSEEN_SHARE: "unseen categories (worst feature)",
}
# Metrics that are never provisional (they do not wait for labels).
FINAL_METRICS = (Metric.VOLUME, Metric.DRIFT_SHARE, Metric.DRIFTED_FEATURES)


@dataclasses.dataclass(frozen=True)
class Marker:
    """A moment drawn as a vertical line on every time axis."""

    at: datetime
    kind: str  # promotion | rollback | alert
    label: str


@dataclasses.dataclass
class DashboardScope:
    """What every chart of one dashboard reads from: the model, the version shown, and the
    stored metric rows of the range (``metrics``, at ``source_granularity``)."""

    model: RegisteredModel
    query: DashboardQuery
    versions: list[ModelVersion]
    current_version: ModelVersion | None
    config: MonitoringConfig  # its thresholds: the saved config, or an unsaved one with the defaults
    health: HealthStatus | None
    transitions: list[StageTransition]
    metrics: QuerySet[MetricValue]
    rollup: bool  # daily buckets summarised from hourly windows
    newest_labelled: datetime | None = None  # start of the newest window with realized performance

    @property
    def version_number(self) -> dict[int, int]:
        return {v.pk: v.version for v in self.versions}


def dashboard_scope(*, user, name: str, query: DashboardQuery) -> DashboardScope:
    """The visible model (404 otherwise) and what its dashboard reads for ``query``.

    The query may change here, and the dashboard then reads and names the changed one: a
    default range widens to the newest window with performance (``_default_range``), and an
    automatic hourly view of a model that reports once a day is drawn daily (``_drawn_granularity``).
    A pinned version the model does not have is a ValidationError on ``version``."""
    model = model_get(user=user, name=name)
    versions = sorted(model.versions.all(), key=lambda v: v.version)
    if query.version and all(v.version != query.version for v in versions):
        raise ValidationError({"version": f"{model.name} has no version {query.version}."})
    # model *and* version ids: the planner can use either (model, metric, window_start) or
    # (version, granularity, window_start), whichever is narrower for this range
    rows = MetricValue.objects.filter(model=model, version_id__in=[v.pk for v in versions])
    if query.version:
        rows = rows.filter(version__version=query.version)
    newest = newest_performance(rows)
    query = _default_range(query, newest)
    metrics = rows.filter(window_start__gte=query.start, window_start__lt=query.end)
    query, stored = _drawn_granularity(query, metrics)
    rollup = query.granularity == Granularity.DAILY and Granularity.DAILY not in stored and Granularity.HOURLY in stored
    return DashboardScope(
        model=model,
        query=query,
        versions=versions,
        current_version=_current_version(versions, query.version),
        config=monitoring_config_get(model=model),
        health=HealthStatus.objects.filter(model=model).first(),
        transitions=list(StageTransition.objects.filter(model=model).select_related("version").order_by("created_at")),
        metrics=metrics.filter(granularity=Granularity.HOURLY if rollup else query.granularity),
        rollup=rollup,
        newest_labelled=newest[0],
    )


def newest_performance(rows: QuerySet[MetricValue]) -> tuple[datetime | None, datetime | None]:
    """The start of the newest window with realized performance, and with estimated (one query).

    The metrics are named in the WHERE as well as in the two filters: the (model, metric,
    window_start) index then reads only the model's performance rows instead of scanning every
    metric row of the model (178 ms → 10–20 ms at a million rows, docs/performance.md)."""
    found = rows.filter(
        feature="", value__isnull=False, metric__in=[*PERFORMANCE_METRICS, *ESTIMATED_METRICS]
    ).aggregate(
        realized=Max("window_start", filter=Q(metric__in=PERFORMANCE_METRICS)),
        estimated=Max("window_start", filter=Q(metric__in=ESTIMATED_METRICS)),
    )
    return found["realized"], found["estimated"]


def _default_range(query: DashboardQuery, newest: tuple[datetime | None, datetime | None]) -> DashboardQuery:
    """The default range (last 7 days) widened to the smallest preset holding the newest window
    with realized or estimated performance, so that late labels do not open on an empty chart."""
    shown = max((at for at in newest if at is not None), default=None)
    if not query.default_range or shown is None or shown >= query.start:
        return query
    for key in WIDER_PRESETS:
        wider = query.with_preset(key, f"The newest performance is from {shown:%Y-%m-%d}: showing the last {key}.")
        if shown >= wider.start:
            return wider
    return query


def _drawn_granularity(query: DashboardQuery, metrics: QuerySet[MetricValue]) -> tuple[DashboardQuery, set[str]]:
    """The query as drawn, and the granularities stored for it (one query on the volume rows).

    An automatic hourly view draws daily windows when the model has at most one hourly window
    a day in the range (a once-a-day scoring run: seven lonely hours read as daily columns)."""
    volume = metrics.filter(metric=Metric.VOLUME, feature="").order_by()
    if not (query.requested_granularity == "auto" and query.granularity == Granularity.HOURLY):
        return query, set(volume.values_list("granularity", flat=True).distinct())
    windows = set(volume.values_list("granularity", "window_start").distinct())
    stored = {granularity for granularity, _ in windows}
    hours_a_day = Counter(at.date() for granularity, at in windows if granularity == Granularity.HOURLY)
    if not stored or query.end - query.start <= timedelta(days=1) or max(hours_a_day.values(), default=0) > 1:
        return query, stored
    if not hours_a_day:
        return query.drawn_daily("Only daily windows are computed for this range: it is shown daily."), stored
    return query.drawn_daily("At most one hour a day has data in this range: it is shown daily."), stored


def _current_version(versions: list[ModelVersion], wanted: int | None) -> ModelVersion | None:
    if wanted:
        return next((v for v in versions if v.version == wanted), None)
    production = next((v for v in versions if v.stage == Stage.PRODUCTION), None)
    return production or (versions[-1] if versions else None)


def dashboard_series(scope: DashboardScope) -> tuple[WindowGrid, list[Series], list[Series]]:
    """The window axis, the dataset-level series (prediction drift included) and the
    per-feature drift series. Two queries."""
    dataset = series_load(scope.metrics.filter(feature="", metric__in=DATASET_METRICS), scope.rollup)
    heat = series_load(scope.metrics.filter(metric__in=HEATMAP_METRICS).exclude(feature=""), scope.rollup)
    # the prediction columns' PSI is prediction drift, not a heatmap row
    dataset += [item for item in heat if item.feature in PREDICTION_COLUMNS and item.metric == Metric.PSI]
    heat = [item for item in heat if item.feature not in PREDICTION_COLUMNS]
    chosen = preferred_versions(dataset + heat, production_at(scope.transitions), scope.version_number)
    return WindowGrid.of(chosen), dataset, heat
