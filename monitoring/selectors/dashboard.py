"""The per-model dashboard: one read per chart, on a shared window axis.

``model_dashboard_data`` gathers the scope (``dashboard_scope``: the model, its versions,
thresholds and which stored windows to read), loads the metric series once and places them
on the window axis (``series.WindowGrid``), then asks one function per chart
(``dashboard_charts``):

- ``drift_cells``: the drift heatmap and the top drifted features;
- ``dataset_series``: dataset drift share, performance with label coverage, volume, and the
  prediction-drift line;
- ``quality_shares``: data quality (worst feature per window);
- ``feature_distribution`` and ``prediction_shares``: reference vs current bins of one
  feature, and the prediction distribution over time (``bins``), both of one version
  (``distribution_version``: the pinned one, or in live mode the one live at the end of the
  range, else the last with data in it, named in ``distribution_note``);
- ``dashboard_markers``: promotions, rollbacks and alerts drawn on every time axis.

A constant number of queries (about a dozen) for any range: each chart's data is one
aggregated query, grouped in the database, never a query per window or per feature.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

import numpy as np
from django.utils import timezone
from django.utils.http import urlencode

from registry.choices import TaskType
from registry.models import ModelVersion

from ..estimation import ESTIMATED_PREFIX
from ..forms import RANGES, DashboardQuery, custom_range, preset_start
from ..models import Alert, MonitoringConfig
from .dashboard_charts import (
    DatasetSeries,
    DriftCells,
    dashboard_markers,
    dataset_series,
    distribution_feature,
    distribution_version,
    drift_cells,
    feature_distribution,
    open_alerts,
    prediction_shares,
    quality_shares,
    reference_columns,
    window_counts,
)
from .dashboard_scope import DashboardScope, Marker, dashboard_scope, dashboard_series
from .series import CLASSIFICATION_METRICS, REGRESSION_METRICS

# --------------------------------------------------------------------------- the whole dashboard


@dataclasses.dataclass
class ModelDashboard:
    """Everything the model dashboard draws, as arrays aligned on ``windows``."""

    scope: DashboardScope
    windows: list[datetime]
    drift: DriftCells
    dataset: DatasetSeries
    quality: dict[str, np.ndarray]
    feature: str
    reference_labels: list[str]
    reference_counts: list[float]
    current_counts: list[float]
    prediction_bins: list[str]
    prediction_shares: np.ndarray
    markers: list[Marker]
    open_alerts: list[Alert]
    distribution_version: ModelVersion | None = None  # whose distributions are drawn
    distribution_note: str = ""  # names it in live mode
    reference_missing: bool = False  # the drawn version has no reference profile: no drift, no distributions

    # what the templates and charts read, from the scope and the chart parts
    @property
    def model(self):
        return self.scope.model

    @property
    def query(self) -> DashboardQuery:
        return self.scope.query

    @property
    def versions(self):
        return self.scope.versions

    @property
    def current_version(self):
        return self.scope.current_version

    @property
    def config(self) -> MonitoringConfig:
        return self.scope.config

    @property
    def health(self):
        return self.scope.health

    @property
    def features(self) -> list[str]:
        return self.drift.features

    @property
    def series(self) -> dict[str, np.ndarray]:
        return self.dataset.series

    def series_or_gap(self, name: str) -> np.ndarray:
        """The series of ``name``, or a gap (NaN) across the window axis when none is stored."""
        return self.dataset.series.get(name, np.full(len(self.windows), np.nan))

    @property
    def provisional(self) -> np.ndarray:
        return self.dataset.provisional

    @property
    def prediction_drift(self) -> np.ndarray | None:
        return self.dataset.prediction_drift

    @property
    def source(self) -> str:
        """ "stored" (windows of the requested granularity) or "rollup" (daily from hourly)."""
        return "rollup" if self.scope.rollup else "stored"

    @property
    def model_task(self) -> str:
        return self.current_version.task_type if self.current_version else TaskType.BINARY

    @property
    def performance_metrics(self) -> list[str]:
        wanted = REGRESSION_METRICS if self.model_task == TaskType.REGRESSION else CLASSIFICATION_METRICS
        return [m for m in wanted if m in self.series and not np.all(np.isnan(self.series[m]))]

    @property
    def newest_labelled(self) -> datetime | None:
        """When the performance chart is empty (no realized, no estimated value in the range):
        the start of the model's newest window with realized performance, if any."""
        estimated = any(k.startswith(ESTIMATED_PREFIX) and not np.all(np.isnan(v)) for k, v in self.series.items())
        return None if self.performance_metrics or estimated else self.scope.newest_labelled

    @property
    def newest_labelled_params(self) -> str:
        """The query string of one view holding the newest labelled window: the smallest preset
        that reaches it, else the week up to the end of its day."""
        at, params = self.newest_labelled, {"feature": self.feature, "version": self.query.version or ""}
        if at is None:
            return ""
        now = timezone.now()
        preset = next((k for k in RANGES if k != "24h" and at >= preset_start(k, now)), None)
        if preset:
            return urlencode({"range": preset, **params})
        end = at.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        return urlencode({**custom_range(end - timedelta(days=7), end), **params})

    @property
    def top_drifted(self) -> list[tuple[str, float, str]]:
        """(feature, PSI, status) of the latest window with drift values, worst first (top 10)."""
        return self.drift.top()


def model_dashboard_data(*, user, name: str, query: DashboardQuery) -> ModelDashboard:
    """The per-model dashboard (404 if the user may not see the model)."""
    scope = dashboard_scope(user=user, name=name, query=query)
    grid, dataset, heat = dashboard_series(scope)
    cells = drift_cells(scope, grid, heat)
    shown, note = distribution_version(scope, grid)
    feature = distribution_feature(scope, shown, cells)
    ref = reference_columns(shown, feature)
    counts = window_counts(scope, shown, feature, ref)
    return ModelDashboard(
        scope=scope,
        windows=grid.windows,
        drift=cells,
        dataset=dataset_series(grid, dataset),
        quality=quality_shares(scope, grid),
        feature=feature,
        reference_labels=ref.feature.labels,
        reference_counts=ref.feature.reference.tolist(),
        current_counts=feature_distribution(feature, ref.feature, counts),
        prediction_bins=ref.prediction.labels,
        prediction_shares=prediction_shares(scope, grid, ref, counts),
        markers=dashboard_markers(scope),
        open_alerts=open_alerts(scope.model),
        distribution_version=shown,
        distribution_note=note,
        reference_missing=shown is not None and not scope.model.is_llm_app and not ref.ready,
    )


__all__ = ["DashboardScope", "Marker", "ModelDashboard", "model_dashboard_data"]
