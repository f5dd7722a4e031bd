"""The figures of each page, keyed by the id of the element they are drawn into."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..selectors.dashboard import ModelDashboard
from ..selectors.fleet import TierRollup
from ..selectors.series import production_at
from . import figures
from .base import empty_figure


def _offline_values(d: ModelDashboard, primary: str) -> float | np.ndarray | None:
    """The primary metric's offline value the windows are held to: the shown version's, or in
    live mode (no version pinned) per window the value of the version live in that window (a
    stepped line when a promotion falls inside the range)."""
    shown = (d.current_version.metrics or {}).get(primary) if d.current_version else None
    shown = float(shown) if isinstance(shown, (int, float)) else None
    if d.query.version or not len(d.windows):
        return shown
    live_at = production_at(d.scope.transitions)
    offline = {v.pk: (v.metrics or {}).get(primary) for v in d.versions}
    values = np.array(
        [v if isinstance(v := offline.get(live_at(w)), (int, float)) else np.nan for w in d.windows], dtype="float64"
    )
    known = values[~np.isnan(values)]
    if not len(known) or np.all(known == known[0]) and len(known) == len(values):
        return float(known[0]) if len(known) else shown
    return values


def _performance_thresholds(d: ModelDashboard, metrics: dict) -> dict[str, tuple[float | np.ndarray, str]]:
    """The primary metric's warning and critical lines: its offline value minus the allowed drop."""
    t = d.config
    primary = d.model.primary_metric
    offline = _offline_values(d, primary) if primary in metrics else None
    if offline is None:
        return {}
    sign = -1 if d.model.primary_metric_higher_is_better else 1
    return {
        f"{primary} warning": (offline + sign * t.performance_drop_warning, "warning"),
        f"{primary} critical": (offline + sign * t.performance_drop_critical, "critical"),
    }


NO_REFERENCE = "No reference profile for this version: drift is measured against it."
REFERENCE_CHARTS = {
    "chart-drift-heatmap": "Feature drift",
    "chart-top-drifted": "Top drifted features",
    "chart-drift-share": "Dataset drift",
    "chart-prediction-distribution": "Prediction distribution",
}


def model_dashboard_figures(d: ModelDashboard) -> dict[str, dict]:
    """Every chart of the per-model dashboard, keyed by the id of its container."""
    from monitoring.charts_estimated import with_estimates  # it draws with this package's helpers

    volume = {
        "chart-volume-quality": figures.volume_and_quality(
            windows=d.windows,
            volume=d.series_or_gap("volume"),
            quality=d.quality,  # only the kinds measured: none for an LLM app's requests
            markers=d.markers,
            unit="requests" if d.model.is_llm_app else "predictions",
        )
    }
    if d.model.is_llm_app:  # request records, no features: its panels are monitoring/charts_llm.py's
        return volume
    t = d.config
    top = d.top_drifted
    metrics = {m: d.series[m] for m in d.performance_metrics}
    n = len(d.windows)
    drawn = {
        "chart-drift-heatmap": figures.drift_heatmap(
            windows=d.windows,
            features=d.drift.features,
            status=d.drift.status,
            psi=d.drift.psi,
            js=d.drift.js,
            pvalue=d.drift.p_value,
            markers=d.markers,
        ),
        "chart-top-drifted": figures.top_drifted_features(
            features=[f for f, _, _ in top],
            psi=[v for _, v, _ in top],
            status=[s for _, _, s in top],
            warning=t.psi_warning,
            critical=t.psi_critical,
        ),
        "chart-drift-share": figures.drift_share_over_time(
            windows=d.windows,
            share=d.series_or_gap("drift_share"),
            warning=t.drift_share_warning,
            critical=t.drift_share_critical,
            markers=d.markers,
        ),
        "chart-feature-distribution": figures.feature_distribution(
            feature=d.feature or "—",
            labels=d.reference_labels,
            reference=d.reference_counts,
            current=d.current_counts,
            current_label="selected range",
        ),
        "chart-prediction-distribution": figures.prediction_distribution(
            windows=d.windows if d.prediction_shares.shape[1:] == (n,) else [],
            bin_labels=d.prediction_bins,
            shares=d.prediction_shares,
            drift=d.prediction_drift,
            markers=d.markers,
        ),
        "chart-performance": with_estimates(  # estimated.* dashed under the realized values
            figures.performance_over_time(
                windows=d.windows,
                metrics=metrics,
                coverage=d.series_or_gap("label_coverage"),
                provisional=d.provisional,
                coverage_threshold=t.label_coverage_threshold,
                thresholds=_performance_thresholds(d, metrics),
                markers=d.markers,
            ),
            d,
        ),
        **volume,
    }
    if d.reference_missing:  # nothing to bin against: say so where the drift would be drawn
        drawn |= {chart: empty_figure(title, NO_REFERENCE) for chart, title in REFERENCE_CHARTS.items()}
    return drawn


def fleet_figures(rollup: Sequence[TierRollup]) -> dict[str, dict]:
    """The fleet overview's roll-up chart."""
    tiers = [r.tier for r in rollup]
    states = list(rollup[0].by_health) if rollup else []
    return {
        "chart-fleet-health": figures.health_by_tier(
            tiers=tiers, counts={s: [r.by_health.get(s, 0) for r in rollup] for s in states}
        )
    }
