"""Estimated performance on the dashboard's performance chart.

``with_estimates(figure, dashboard)`` adds, for each ``estimated.<metric>`` series of the
dashboard (CBPE / DLE, see ``monitoring.estimation``), a dashed line and its 95% band (a
filled area between ``.lower`` and ``.upper``) under the realized traces. The estimate is
drawn only in windows whose label coverage is below the model's threshold: where the
realized value is final it replaces the estimate. Every estimated trace is named and hovered
as "estimated", and the title says so, so no figure that is not realized passes for one.
When no window has labels yet, the chart is built from the estimates alone.
"""

from __future__ import annotations

import numpy as np

from monitoring.estimation import estimated_name

from .charts.base import figure, iso, trace

SHOWN = ("roc_auc", "accuracy", "f1", "mae", "rmse")
BAND = "rgba(100, 116, 139, 0.18)"
COLOUR = "#64748b"


def _estimate_traces(x: list[str], series: dict, mask: np.ndarray) -> list[dict]:
    traces = []
    for metric in SHOWN:
        values = series.get(estimated_name(metric))
        if values is None or np.all(np.isnan(values)):
            continue
        lower = series.get(estimated_name(metric, "lower"), np.full(len(x), np.nan))
        upper = series.get(estimated_name(metric, "upper"), np.full(len(x), np.nan))
        shown = [np.where(mask, v.astype("float64"), np.nan) for v in (values, lower, upper)]
        group = f"estimated {metric}"
        # the band's two edges: invisible lines, filled between, never hovered
        edge = {"mode": "lines", "line": {"width": 0}, "legendgroup": group, "hoverinfo": "skip"}
        traces += [
            trace("scatter", x=x, y=shown[2], showlegend=False, name=f"{metric} estimated upper", **edge),
            trace(
                "scatter", x=x, y=shown[1], fill="tonexty", fillcolor=BAND, name=f"{metric} estimated 95% band", **edge
            ),
            trace(
                "scatter",
                x=x,
                y=shown[0],
                mode="lines+markers",
                name=f"{metric} (estimated)",
                legendgroup=group,
                line={"color": COLOUR, "width": 2, "dash": "dash"},
                marker={"size": 4, "symbol": "diamond-open"},
                hovertemplate=f"{metric} %{{y:.3f}}<extra>estimated: no labels yet</extra>",
                meta={"estimated": True},
            ),
        ]
    return traces


def with_estimates(performance: dict, dashboard) -> dict:
    """The performance chart with the estimated series drawn under the realized ones."""
    n = len(dashboard.windows)
    if not n:
        return performance
    coverage = dashboard.series_or_gap("label_coverage").astype("float64")
    threshold = dashboard.config.label_coverage_threshold
    final = np.nan_to_num(coverage, nan=0.0) >= (threshold if threshold is not None else 1.0)
    x = iso(dashboard.windows)
    traces = _estimate_traces(x, dashboard.series, ~final)
    if not traces:
        return performance
    data = performance.get("data") or []
    if not any(t.get("type") == "bar" for t in data):  # no labelled window yet: the estimates alone, one plot
        yaxis = {"title": {"text": "metric (estimated)"}}
        return figure(traces, title="Performance over time: estimated (no labels yet)", yaxis=yaxis)
    out = {**performance, "data": traces + list(data)}
    title = dict(out["layout"].get("title") or {})
    title["text"] = "Performance over time (hollow = provisional, dashed = estimated)"
    out["layout"] = {**out["layout"], "title": title}
    return out
