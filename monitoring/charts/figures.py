"""One function per chart: plain data in, a figure dict out (see ``monitoring.charts``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np

from ..selectors.dashboard import Marker
from .base import (
    BLUES,
    BRAND,
    CRITICAL,
    MUTED,
    NO_DATA,
    OK,
    WARNING,
    empty_figure,
    figure,
    floats,
    iso,
    line_trace,
    marker_lines,
    threshold_line,
    trace,
    two_rows,
    vertical_threshold,
    warning_and_critical,
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
    main = trace(
        "heatmap",
        z=status.astype("float32"),
        x=iso(windows),
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
    shapes, annotations = marker_lines(markers, windows=windows)
    height = max(320, min(900, 110 + 16 * len(features)))
    return figure(
        [main],
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
    main = trace(
        "bar",
        x=floats(psi),
        y=list(features),
        orientation="h",
        marker={"color": colours},
        hovertemplate="<b>%{y}</b><br>PSI %{x:.3f}<extra></extra>",
        name="PSI",
    )
    height = max(260, 110 + 22 * len(features))
    return figure(
        [main],
        title="Top drifted features (PSI, latest window)",
        height=height,
        yaxis={"autorange": "reversed"},
        shapes=[
            vertical_threshold(warning, colour=WARNING, label=f"warning {warning:g}", row=1),
            vertical_threshold(critical, colour=CRITICAL, label=f"critical {critical:g}"),
        ],
        margin={"t": 92},  # room for the two rows of threshold labels under the title
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
    ref = floats(reference)
    cur = floats(current)
    ref_share = ref / ref.sum() if np.nansum(ref) else ref
    cur_share = cur / cur.sum() if np.nansum(cur) else cur
    traces = [
        trace("bar", x=list(labels), y=ref_share, name="reference", marker={"color": MUTED}, opacity=0.75),
        trace("bar", x=list(labels), y=cur_share, name=current_label, marker={"color": BRAND}, opacity=0.85),
    ]
    return figure(
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
        trace(
            "heatmap",
            z=shares.astype("float64"),
            x=iso(windows),
            y=list(bin_labels),
            colorscale=BLUES,
            colorbar={"title": {"text": "share"}, "tickformat": ".0%", "thickness": 12, "len": 0.6, "x": 1.24},
            hovertemplate="bin %{y}<br>window %{x}<br>share %{z:.1%}<extra></extra>",
            name="prediction share",
        )
    ]
    layout = {}
    if drift is not None:
        hover = "PSI %{y:.3f}<extra></extra>"
        traces.append(
            line_trace(iso(windows), drift, name="prediction drift (PSI)", colour=CRITICAL, hover=hover, yaxis="y2")
        )
        layout["yaxis2"] = {
            "overlaying": "y",
            "side": "right",
            "showgrid": False,
            "tickformat": ".2f",
            "title": {"text": "PSI", "standoff": 4},
        }
    shapes, annotations = marker_lines(markers, windows=windows)
    return figure(
        traces,
        title="Prediction distribution over time",
        shapes=shapes,
        annotations=annotations,
        margin={"r": 120},
        **layout,
    )


PALETTE = [BRAND, "#0891b2", "#9333ea", "#ea580c", "#16a34a", "#be123c", "#4b5563"]


def _final_and_provisional(name: str, x: list[str], values: np.ndarray, prov: np.ndarray, colour: str) -> list[dict]:
    """One metric as two traces: final windows (solid) and provisional ones (hollow, dotted)."""
    return [
        trace(
            "scatter",
            x=x,
            y=np.where(prov, np.nan, values),
            mode="lines+markers",
            name=name,
            legendgroup=name,
            line={"color": colour, "width": 2},
            marker={"size": 4},
            hovertemplate=f"{name} %{{y:.3f}}<extra>final</extra>",
        ),
        trace(
            "scatter",
            x=x,
            y=np.where(prov, values, np.nan),
            mode="lines+markers",
            name=f"{name} (provisional)",
            legendgroup=name,
            line={"color": colour, "width": 1, "dash": "dot"},
            marker={"size": 6, "symbol": "circle-open"},
            hovertemplate=f"{name} %{{y:.3f}}<extra>provisional: labels incomplete</extra>",
        ),
    ]


def performance_over_time(
    *,
    windows: Sequence[datetime],
    metrics: dict[str, np.ndarray],
    coverage: np.ndarray,
    provisional: np.ndarray,
    coverage_threshold: float | None = None,
    thresholds: dict[str, tuple[float | np.ndarray, str]] | None = None,
    markers: Sequence[Marker] = (),
) -> dict:
    """Performance metrics per window (top) and label coverage (bottom); a threshold is a
    horizontal line, or a stepped one when it is given per window.

    Provisional windows (label coverage below the model's threshold) are drawn as
    hollow markers on a dotted line and called provisional in the hover, so nobody
    mistakes a half-labelled window for a final number.
    """
    if not len(windows) or not metrics:
        return empty_figure("Performance", "No labelled predictions in this range yet.")
    x = iso(windows)
    prov = provisional.astype(bool)
    traces = []
    for i, (name, values) in enumerate(metrics.items()):
        traces += _final_and_provisional(name, x, values.astype("float64"), prov, PALETTE[i % len(PALETTE)])
    traces.append(
        trace(
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
            threshold_line(coverage_threshold, colour=MUTED, label=f"final at {coverage_threshold:.0%}", yref="y2")
        )
    for name, (value, kind) in (thresholds or {}).items():
        colour = CRITICAL if kind == "critical" else WARNING
        if np.ndim(value):  # per window: the offline value of the version live then (live mode)
            line = {"color": colour, "width": 1, "dash": "dash", "shape": "hv"}
            hover = f"{name} %{{y:.4g}} (the version live then)<extra></extra>"
            traces.append(trace("scatter", x=x, y=value, mode="lines", name=name, line=line, hovertemplate=hover))
        else:
            shapes.append(threshold_line(value, colour=colour, label=f"{name} {value:g}", yref="y"))
    marker_shapes, annotations = marker_lines(markers, windows=windows)
    layout = two_rows(top=0.7)
    layout["yaxis"]["title"] = {"text": "metric"}
    layout["yaxis2"].update(title={"text": "coverage"}, tickformat=".0%", range=[0, 1.05])
    return figure(
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
    hover = "%{y:.0%} of features drifted<extra></extra>"
    main = line_trace(iso(windows), share, name="share of drifted features", colour=BRAND, hover=hover, fill="tozeroy")
    shapes = warning_and_critical(warning, critical, label="{kind} {value:.0%}")
    marker_shapes, annotations = marker_lines(markers, windows=windows)
    return figure(
        [main],
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
    unit: str = "predictions",
) -> dict:
    """Predictions per window (top) and data-quality shares (bottom); the volume alone, full
    height, when there are no quality shares (an LLM application's requests)."""
    if not len(windows):
        return empty_figure("Volume and data quality", "No computed windows in this range yet.")
    x = iso(windows)
    traces = [trace("bar", x=x, y=volume.astype("float64"), name=unit, marker={"color": "#93c5fd"})]
    if not quality:
        shapes, annotations = marker_lines(markers, windows=windows)
        yaxis = {"title": {"text": unit}, "rangemode": "tozero"}
        return figure(traces, title=f"Volume ({unit} per window)", shapes=shapes, annotations=annotations, yaxis=yaxis)
    palette = [WARNING, CRITICAL, "#7c3aed", MUTED]
    for i, (name, values) in enumerate(quality.items()):
        colour, hover = palette[i % len(palette)], f"{name} %{{y:.2%}}<extra></extra>"
        traces.append(line_trace(x, values, name=name, colour=colour, hover=hover, xaxis="x2", yaxis="y2"))
    shapes, annotations = marker_lines(markers, windows=windows)
    layout = two_rows(top=0.5, gap=0.1)
    layout["yaxis"]["title"] = {"text": "predictions"}
    layout["yaxis2"].update(title={"text": "share of rows"}, tickformat=".1%", rangemode="tozero")
    return figure(traces, title="Volume and data quality", height=420, shapes=shapes, annotations=annotations, **layout)


def health_by_tier(*, tiers: Sequence[str], counts: dict[str, Sequence[int]]) -> dict:
    """Portfolio roll-up: models per health state, stacked per risk tier."""
    colours = {"ok": OK, "warning": WARNING, "critical": CRITICAL, "no_data": NO_DATA}
    traces = [
        trace(
            "bar",
            x=list(tiers),
            y=np.array(values, dtype="int64"),
            name=status.replace("_", " "),
            marker={"color": colours.get(status, MUTED)},
            hovertemplate=f"%{{y}} {status.replace('_', ' ')}<extra>%{{x}} risk</extra>",
        )
        for status, values in counts.items()
    ]
    return figure(traces, title="Models by health and risk tier", height=300, barmode="stack", yaxis={"dtick": 1})
