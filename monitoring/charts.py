"""Plotly figures for the monitoring pages, built from selector data.

Every function takes plain data (lists, numpy arrays, datetimes) that the
dashboard selectors produce, and returns a figure *dict* (``fig.to_plotly_json()``)
that the view hands to the template with ``json_script``; ``static/js/charts.js``
draws it with ``Plotly.newPlot``. No HTML, no inline script (strict CSP).

Traces and layouts are plain dicts, exactly what plotly.py's ``graph_objects`` would
emit (``tests/monitoring/test_charts.py`` runs every trace through them and compares), without
their per-property validation, which cost more than the rest of a 90-day page's Python.
Numeric arrays stay numpy arrays until ``_figure`` encodes them, as plotly.py does, as
base64 typed arrays (``{"dtype", "bdata", "shape"}``) that plotly.js decodes: a
90-day hourly heatmap of 50 features stays a few hundred kilobytes and is built
in milliseconds. Missing values are NaN in those arrays (gaps in the chart).

Time axes carry the same vertical markers everywhere: promotions, rollbacks and
alerts (``Marker``), so a reader sees which version was live when a metric moved.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go
from _plotly_utils.utils import convert_to_base64

if TYPE_CHECKING:
    from .dashboards import ModelDashboard, TierRollup

OK = "#15803d"
WARNING = "#d97706"
CRITICAL = "#b91c1c"
NO_DATA = "#d1d5db"
BRAND = "#2f5bea"
MUTED = "#6b7280"

STATUS_CODES = {"ok": 0, "warning": 1, "critical": 2}
MARKER_COLOURS = {"promotion": OK, "rollback": "#7c3aed", "alert": CRITICAL, "acknowledged": WARNING}

BASE_LAYOUT = {
    "font": {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12, "color": "#1d2330"},
    "margin": {"l": 60, "r": 20, "t": 70, "b": 40},
    "paper_bgcolor": "#ffffff",
    "plot_bgcolor": "#ffffff",
    "hovermode": "closest",
    "legend": {"orientation": "h", "y": -0.18},
    "xaxis": {"automargin": True, "gridcolor": "#eef0f3"},
    "yaxis": {"automargin": True, "gridcolor": "#eef0f3", "zerolinecolor": "#d1d5db"},
}


@dataclasses.dataclass(frozen=True)
class Marker:
    """A moment drawn as a vertical line on every time axis."""

    at: datetime
    kind: str  # promotion | rollback | alert
    label: str


def _iso(values: Sequence[datetime]) -> list[str]:
    return [v.isoformat() for v in values]


def _floats(values) -> np.ndarray:
    """A float64 array with None turned into NaN (a gap in the chart)."""
    return np.array(values, dtype="float64")  # numpy turns None into NaN


# The "Blues" scale as plotly.py expands a named colour scale (validated once, at import).
BLUES = go.Heatmap(colorscale="Blues").to_plotly_json()["colorscale"]


def _trace(kind: str, **props) -> dict:
    """A trace dict as ``go.<Kind>(**props).to_plotly_json()`` returns it (see the module doc)."""
    return {**props, "type": kind}


def _figure(traces: Sequence[dict], *, title: str, height: int = 340, **layout) -> dict:
    """Traces and layout are plain dicts (plotly.py's validation costs ~0.1 s per chart with
    shapes and annotations, too slow for a page budget of 300 ms); numpy arrays in the
    traces become typed arrays here."""
    merged = {**BASE_LAYOUT, "title": {"text": title, "x": 0, "font": {"size": 14}}, "height": height}
    for key, value in layout.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    data = list(traces)
    convert_to_base64(data)  # numpy arrays -> {"dtype", "bdata", "shape"}, as Figure.to_plotly_json does
    return {"data": data, "layout": merged}


def _markers(markers: Sequence[Marker], *, xref: str = "x") -> tuple[list[dict], list[dict]]:
    """Vertical lines across the whole plot height, labelled at the top: (shapes, annotations)."""
    shapes, annotations = [], []
    for m in markers:
        colour = MARKER_COLOURS.get(m.kind, MUTED)
        x = m.at.isoformat()
        shapes.append(
            {
                "type": "line",
                "xref": xref,
                "yref": "paper",
                "x0": x,
                "x1": x,
                "y0": 0,
                "y1": 1,
                "line": {"color": colour, "width": 1.5, "dash": "dot" if m.kind == "alert" else "dash"},
                "name": f"marker-{m.kind}",
            }
        )
        annotations.append(
            {
                "x": x,
                "y": 1,
                "xref": xref,
                "yref": "paper",
                "yanchor": "bottom",
                "xanchor": "left",
                "text": m.label,
                "showarrow": False,
                "font": {"size": 10, "color": colour},
                "textangle": -25,
                "hovertext": f"{m.kind}: {m.label} at {m.at:%Y-%m-%d %H:%M} UTC",
            }
        )
    return shapes, annotations


def _two_rows(top: float = 0.7, gap: float = 0.06) -> dict:
    """Layout of two stacked plots sharing the time axis (what make_subplots would build)."""
    return {
        "xaxis": {"anchor": "y", "domain": [0, 1], "matches": "x2", "showticklabels": False},
        "xaxis2": {"anchor": "y2", "domain": [0, 1], "automargin": True, "gridcolor": "#eef0f3"},
        "yaxis": {"anchor": "x", "domain": [1 - top + gap / 2, 1]},
        "yaxis2": {"anchor": "x2", "domain": [0, 1 - top - gap / 2], "automargin": True, "gridcolor": "#eef0f3"},
    }


def _threshold_line(y: float, *, colour: str, label: str, yref: str = "y") -> dict:
    return {
        "type": "line",
        "xref": "paper",
        "yref": yref,
        "x0": 0,
        "x1": 1,
        "y0": y,
        "y1": y,
        "line": {"color": colour, "width": 1, "dash": "dash"},
        "name": label,
        "label": {"text": label, "textposition": "end", "font": {"size": 10, "color": colour}},
    }


def _vertical_threshold(x: float, *, colour: str, label: str) -> dict:
    return {
        "type": "line",
        "xref": "x",
        "yref": "paper",
        "x0": x,
        "x1": x,
        "y0": 0,
        "y1": 1,
        "line": {"color": colour, "width": 1, "dash": "dash"},
        "name": label,
        "label": {"text": label, "textposition": "end", "font": {"size": 10, "color": colour}},
    }


def empty_figure(title: str, message: str) -> dict:
    """A blank chart that says why it is blank (no windows yet, no labels yet)."""
    return _figure(
        [],
        title=title,
        height=220,
        xaxis={"visible": False},
        yaxis={"visible": False},
        annotations=[{"text": message, "showarrow": False, "font": {"size": 13, "color": MUTED}}],
    )


def drift_heatmap(
    *,
    windows: Sequence[datetime],
    features: Sequence[str],
    status: np.ndarray,
    psi: np.ndarray,
    js: np.ndarray,
    pvalue: np.ndarray,
    markers: Sequence[Marker] = (),
) -> dict:
    """Features x windows, coloured by drift status (0 ok, 1 warning, 2 critical, NaN no data);
    hover shows PSI, Jensen-Shannon distance and the test's p-value for the cell."""
    if not len(windows) or not len(features):
        return empty_figure("Feature drift", "No computed windows in this range yet.")
    # float32 is plenty for a hover label and halves the page (a week x 50 features x 3 values)
    customdata = np.stack([psi, js, pvalue], axis=-1).astype("float32")
    colorscale = [
        [0.0, OK],
        [1 / 3, OK],
        [1 / 3, WARNING],
        [2 / 3, WARNING],
        [2 / 3, CRITICAL],
        [1.0, CRITICAL],
    ]
    trace = _trace(
        "heatmap",
        z=status.astype("float32"),
        x=_iso(windows),
        y=list(features),
        customdata=customdata,
        zmin=-0.5,
        zmax=2.5,
        colorscale=colorscale,
        xgap=1 if len(windows) <= 200 else 0,
        ygap=1,
        colorbar={"tickvals": [0, 1, 2], "ticktext": ["ok", "warning", "critical"], "thickness": 12, "len": 0.6},
        hovertemplate=(
            "<b>%{y}</b><br>window %{x}<br>PSI %{customdata[0]:.3f}<br>"
            "JS distance %{customdata[1]:.3f}<br>p-value %{customdata[2]:.3g}<extra></extra>"
        ),
        name="drift",
    )
    shapes, annotations = _markers(markers)
    height = max(320, min(900, 110 + 16 * len(features)))
    return _figure(
        [trace],
        title="Feature drift by window",
        height=height,
        yaxis={"autorange": "reversed", "gridcolor": "rgba(0,0,0,0)"},
        shapes=shapes,
        annotations=annotations,
    )


def top_drifted_features(
    *,
    features: Sequence[str],
    psi: Sequence[float],
    status: Sequence[str],
    warning: float,
    critical: float,
) -> dict:
    """The most drifted features of the latest window, ranked by PSI, with threshold lines."""
    if not features:
        return empty_figure("Top drifted features", "No drift computed yet.")
    colours = [{"ok": OK, "warning": WARNING, "critical": CRITICAL}.get(s, NO_DATA) for s in status]
    trace = _trace(
        "bar",
        x=_floats(psi),
        y=list(features),
        orientation="h",
        marker={"color": colours},
        hovertemplate="<b>%{y}</b><br>PSI %{x:.3f}<extra></extra>",
        name="PSI",
    )
    height = max(260, 110 + 22 * len(features))
    return _figure(
        [trace],
        title="Top drifted features (PSI, latest window)",
        height=height,
        yaxis={"autorange": "reversed"},
        shapes=[
            _vertical_threshold(warning, colour=WARNING, label=f"warning {warning:g}"),
            _vertical_threshold(critical, colour=CRITICAL, label=f"critical {critical:g}"),
        ],
    )


def feature_distribution(
    *,
    feature: str,
    labels: Sequence[str],
    reference: Sequence[float],
    current: Sequence[float],
    current_label: str = "current",
) -> dict:
    """Reference vs current share per bin (or category), from stored bin counts."""
    if not labels:
        return empty_figure(f"Distribution of {feature}", "No reference profile or counts for this feature.")
    ref = _floats(reference)
    cur = _floats(current)
    ref_share = ref / ref.sum() if np.nansum(ref) else ref
    cur_share = cur / cur.sum() if np.nansum(cur) else cur
    traces = [
        _trace("bar", x=list(labels), y=ref_share, name="reference", marker={"color": MUTED}, opacity=0.75),
        _trace("bar", x=list(labels), y=cur_share, name=current_label, marker={"color": BRAND}, opacity=0.85),
    ]
    return _figure(
        traces,
        title=f"Distribution of {feature}: reference vs {current_label}",
        barmode="group",
        yaxis={"tickformat": ".0%", "title": {"text": "share"}},
    )


def prediction_distribution(
    *,
    windows: Sequence[datetime],
    bin_labels: Sequence[str],
    shares: np.ndarray,
    drift: np.ndarray | None = None,
    markers: Sequence[Marker] = (),
) -> dict:
    """Share of predictions per score bin in each window (bins x windows), with the
    prediction-drift PSI as a line on a second axis when it is known."""
    if not len(windows) or not len(bin_labels):
        return empty_figure("Prediction distribution", "No predictions in this range yet.")
    traces = [
        _trace(
            "heatmap",
            z=shares.astype("float64"),
            x=_iso(windows),
            y=list(bin_labels),
            colorscale=BLUES,
            colorbar={"title": {"text": "share"}, "tickformat": ".0%", "thickness": 12, "len": 0.6, "x": 1.16},
            hovertemplate="bin %{y}<br>window %{x}<br>share %{z:.1%}<extra></extra>",
            name="prediction share",
        )
    ]
    layout = {}
    if drift is not None:
        traces.append(
            _trace(
                "scatter",
                x=_iso(windows),
                y=drift.astype("float64"),
                yaxis="y2",
                mode="lines",
                line={"color": CRITICAL, "width": 1.5},
                name="prediction drift (PSI)",
                hovertemplate="PSI %{y:.3f}<extra></extra>",
            )
        )
        layout["yaxis2"] = {"overlaying": "y", "side": "right", "showgrid": False, "title": {"text": "PSI"}}
    shapes, annotations = _markers(markers)
    return _figure(
        traces,
        title="Prediction distribution over time",
        shapes=shapes,
        annotations=annotations,
        margin={"r": 90},
        **layout,
    )


def performance_over_time(
    *,
    windows: Sequence[datetime],
    metrics: dict[str, np.ndarray],
    coverage: np.ndarray,
    provisional: np.ndarray,
    coverage_threshold: float | None = None,
    thresholds: dict[str, tuple[float, str]] | None = None,
    markers: Sequence[Marker] = (),
) -> dict:
    """Performance metrics per window (top) and label coverage (bottom).

    Provisional windows (label coverage below the model's threshold) are drawn as
    hollow markers on a dotted line and called provisional in the hover, so nobody
    mistakes a half-labelled window for a final number.
    """
    if not len(windows) or not metrics:
        return empty_figure("Performance", "No labelled predictions in this range yet.")
    x = _iso(windows)
    palette = [BRAND, "#0891b2", "#9333ea", "#ea580c", "#16a34a", "#be123c", "#4b5563"]
    prov = provisional.astype(bool)
    traces = []
    for i, (name, values) in enumerate(metrics.items()):
        values = values.astype("float64")
        colour = palette[i % len(palette)]
        traces.append(
            _trace(
                "scatter",
                x=x,
                y=np.where(prov, np.nan, values),
                mode="lines+markers",
                name=name,
                legendgroup=name,
                line={"color": colour, "width": 2},
                marker={"size": 4},
                hovertemplate=f"{name} %{{y:.3f}}<extra>final</extra>",
            )
        )
        traces.append(
            _trace(
                "scatter",
                x=x,
                y=np.where(prov, values, np.nan),
                mode="lines+markers",
                name=f"{name} (provisional)",
                legendgroup=name,
                line={"color": colour, "width": 1, "dash": "dot"},
                marker={"size": 6, "symbol": "circle-open"},
                hovertemplate=f"{name} %{{y:.3f}}<extra>provisional: labels incomplete</extra>",
            )
        )
    traces.append(
        _trace(
            "bar",
            x=x,
            y=coverage.astype("float64"),
            xaxis="x2",
            yaxis="y2",
            name="label coverage",
            marker={"color": np.where(prov, NO_DATA, "#93c5fd").tolist()},
            hovertemplate="label coverage %{y:.0%}<extra></extra>",
        )
    )
    shapes = []
    if coverage_threshold is not None:
        shapes.append(
            _threshold_line(coverage_threshold, colour=MUTED, label=f"final at {coverage_threshold:.0%}", yref="y2")
        )
    for name, (value, kind) in (thresholds or {}).items():
        colour = CRITICAL if kind == "critical" else WARNING
        shapes.append(_threshold_line(value, colour=colour, label=f"{name} {value:g}", yref="y"))
    marker_shapes, annotations = _markers(markers)
    layout = _two_rows(top=0.7)
    layout["yaxis"]["title"] = {"text": "metric"}
    layout["yaxis2"].update(title={"text": "coverage"}, tickformat=".0%", range=[0, 1.05])
    return _figure(
        traces,
        title="Performance over time (hollow = provisional)",
        height=440,
        shapes=shapes + marker_shapes,
        annotations=annotations,
        **layout,
    )


def drift_share_over_time(
    *,
    windows: Sequence[datetime],
    share: np.ndarray,
    warning: float | None,
    critical: float | None,
    markers: Sequence[Marker] = (),
) -> dict:
    """Dataset drift: the share of drifted features per window, with threshold lines."""
    if not len(windows):
        return empty_figure("Dataset drift", "No computed windows in this range yet.")
    trace = _trace(
        "scatter",
        x=_iso(windows),
        y=share.astype("float64"),
        mode="lines",
        fill="tozeroy",
        line={"color": BRAND, "width": 1.5},
        name="share of drifted features",
        hovertemplate="%{y:.0%} of features drifted<extra></extra>",
    )
    shapes = []
    if warning is not None:
        shapes.append(_threshold_line(warning, colour=WARNING, label=f"warning {warning:.0%}"))
    if critical is not None:
        shapes.append(_threshold_line(critical, colour=CRITICAL, label=f"critical {critical:.0%}"))
    marker_shapes, annotations = _markers(markers)
    return _figure(
        [trace],
        title="Dataset drift (share of drifted features)",
        yaxis={"tickformat": ".0%", "rangemode": "tozero"},
        shapes=shapes + marker_shapes,
        annotations=annotations,
    )


def volume_and_quality(
    *,
    windows: Sequence[datetime],
    volume: np.ndarray,
    quality: dict[str, np.ndarray],
    markers: Sequence[Marker] = (),
) -> dict:
    """Predictions per window (top) and data-quality shares (bottom)."""
    if not len(windows):
        return empty_figure("Volume and data quality", "No computed windows in this range yet.")
    x = _iso(windows)
    traces = [_trace("bar", x=x, y=volume.astype("float64"), name="predictions", marker={"color": "#93c5fd"})]
    palette = [WARNING, CRITICAL, "#7c3aed", MUTED]
    for i, (name, values) in enumerate(quality.items()):
        traces.append(
            _trace(
                "scatter",
                x=x,
                y=values.astype("float64"),
                xaxis="x2",
                yaxis="y2",
                mode="lines",
                name=name,
                line={"color": palette[i % len(palette)], "width": 1.5},
                hovertemplate=f"{name} %{{y:.2%}}<extra></extra>",
            )
        )
    shapes, annotations = _markers(markers)
    layout = _two_rows(top=0.5, gap=0.1)
    layout["yaxis"]["title"] = {"text": "predictions"}
    layout["yaxis2"].update(title={"text": "share of rows"}, tickformat=".1%", rangemode="tozero")
    return _figure(
        traces, title="Volume and data quality", height=420, shapes=shapes, annotations=annotations, **layout
    )


def health_by_tier(*, tiers: Sequence[str], counts: dict[str, Sequence[int]]) -> dict:
    """Portfolio roll-up: models per health state, stacked per risk tier."""
    colours = {"ok": OK, "warning": WARNING, "critical": CRITICAL, "no_data": NO_DATA}
    traces = [
        _trace(
            "bar",
            x=list(tiers),
            y=np.array(values, dtype="int64"),
            name=status.replace("_", " "),
            marker={"color": colours.get(status, MUTED)},
            hovertemplate=f"%{{y}} {status.replace('_', ' ')}<extra>%{{x}} risk</extra>",
        )
        for status, values in counts.items()
    ]
    return _figure(traces, title="Models by health and risk tier", height=300, barmode="stack", yaxis={"dtick": 1})


def model_dashboard_figures(d: ModelDashboard) -> dict[str, dict]:
    """Every chart of the per-model dashboard, keyed by the id of its container."""
    from .charts_estimated import with_estimates

    t = d.thresholds
    top = d.top_drifted
    metrics = {m: d.series[m] for m in d.performance_metrics}
    perf_thresholds = {}
    primary = d.model.primary_metric
    offline = (d.current_version.metrics or {}).get(primary) if d.current_version else None
    if primary in metrics and isinstance(offline, (int, float)):
        sign = -1 if d.model.primary_metric_higher_is_better else 1
        perf_thresholds[f"{primary} warning"] = (offline + sign * t.performance_drop_warning, "warning")
        perf_thresholds[f"{primary} critical"] = (offline + sign * t.performance_drop_critical, "critical")
    n = len(d.windows)
    return {
        "chart-drift-heatmap": drift_heatmap(
            windows=d.windows,
            features=d.features,
            status=d.status,
            psi=d.psi,
            js=d.js,
            pvalue=d.p_value,
            markers=d.markers,
        ),
        "chart-top-drifted": top_drifted_features(
            features=[f for f, _, _ in top],
            psi=[v for _, v, _ in top],
            status=[s for _, _, s in top],
            warning=t.psi_warning,
            critical=t.psi_critical,
        ),
        "chart-drift-share": drift_share_over_time(
            windows=d.windows,
            share=d.series.get("drift_share", np.full(n, np.nan)),
            warning=t.drift_share_warning,
            critical=t.drift_share_critical,
            markers=d.markers,
        ),
        "chart-feature-distribution": feature_distribution(
            feature=d.feature or "—",
            labels=d.reference_labels,
            reference=d.reference_counts,
            current=d.current_counts,
            current_label="selected range",
        ),
        "chart-prediction-distribution": prediction_distribution(
            windows=d.windows if d.prediction_shares.shape[1:] == (n,) else [],
            bin_labels=d.prediction_bins,
            shares=d.prediction_shares,
            drift=d.prediction_drift,
            markers=d.markers,
        ),
        "chart-performance": with_estimates(  # estimated.* dashed under the realized values
            performance_over_time(
                windows=d.windows,
                metrics=metrics,
                coverage=d.series.get("label_coverage", np.full(n, np.nan)),
                provisional=d.provisional,
                coverage_threshold=t.label_coverage,
                thresholds=perf_thresholds,
                markers=d.markers,
            ),
            d,
        ),
        "chart-volume-quality": volume_and_quality(
            windows=d.windows,
            volume=d.series.get("volume", np.full(n, np.nan)),
            quality=d.quality,
            markers=d.markers,
        ),
    }


def fleet_figures(rollup: Sequence[TierRollup]) -> dict[str, dict]:
    """The fleet overview's roll-up chart."""
    tiers = [r.tier for r in rollup]
    states = list(rollup[0].by_health) if rollup else []
    return {
        "chart-fleet-health": health_by_tier(
            tiers=tiers, counts={s: [r.by_health.get(s, 0) for r in rollup] for s in states}
        )
    }


__all__ = [
    "fleet_figures",
    "model_dashboard_figures",
    "Marker",
    "drift_heatmap",
    "drift_share_over_time",
    "empty_figure",
    "feature_distribution",
    "health_by_tier",
    "performance_over_time",
    "prediction_distribution",
    "top_drifted_features",
    "volume_and_quality",
]
