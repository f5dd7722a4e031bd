"""The model dashboard's fairness chart: each group's selection rate over time, the attribute's
disparate impact (dotted) against its threshold, with the promotion/rollback/alert markers
(labelled as on the other time axes, ``monitoring.charts.markers``).

Built with ``plotly.graph_objects`` and returned as ``fig.to_plotly_json()`` for the page's
``figures`` blob (``static/js/charts.js`` draws it). Reads daily windows for ranges the dashboard
shows daily and hourly windows otherwise (the dashboard's own granularity).
"""

from __future__ import annotations

from collections import defaultdict

import plotly.graph_objects as go

from monitoring.charts.base import marker_lines
from monitoring.fairness_monitoring import DI, PREFIX
from monitoring.models import MetricValue

CHART_ID = "chart-fairness-groups"


def group_rates_over_time(series: dict[str, tuple[list, list]], *, threshold: float, markers=()) -> dict:
    """``series``: name → (window starts, values); names ``sex=F`` are groups, ``sex`` the attribute's DI."""
    fig = go.Figure()
    for name, (xs, ys) in sorted(series.items()):
        is_group = "=" in name
        fig.add_trace(
            go.Scatter(
                x=[x.isoformat() for x in xs], y=ys, mode="lines+markers" if len(xs) < 60 else "lines",
                name=f"selection rate {name}" if is_group else f"disparate impact {name}",
                line={"dash": "solid" if is_group else "dot", "width": 2 if is_group else 3},
            )
        )  # fmt: skip
    fig.add_hline(y=threshold, line_dash="dash", line_color="#d97706", annotation_text=f"threshold {threshold:.2f}")
    shapes, annotations = marker_lines(markers, windows=[x for xs, _ in series.values() for x in xs])
    for shape in shapes:
        fig.add_shape(shape)
    for annotation in annotations:
        fig.add_annotation(annotation)
    fig.update_layout(
        title={"text": "Fairness: selection rate per group and disparate impact", "x": 0, "font": {"size": 14}},
        height=340, yaxis={"range": [0, 1.05]}, legend={"orientation": "h", "y": -0.2},
        margin={"l": 60, "r": 20, "t": 70, "b": 40}, paper_bgcolor="#ffffff", plot_bgcolor="#ffffff",
    )  # fmt: skip
    return fig.to_plotly_json()


def fairness_figures(d) -> dict[str, dict]:
    """{CHART_ID: figure} for a ``ModelDashboard`` whose model has production fairness figures, else {}."""
    from registry.selectors.promotions import policy_for_tier

    rows = (
        MetricValue.objects.filter(
            model=d.model,
            granularity=d.query.granularity,
            window_start__gte=d.query.start,
            window_start__lt=d.query.end,
            metric__in=[PREFIX + "selection_rate", DI],
        )
        .order_by("window_start")
        .values_list("feature", "window_start", "value")
    )
    series: dict[str, tuple[list, list]] = defaultdict(lambda: ([], []))
    for feature, start, value in rows:
        series[feature][0].append(start)
        series[feature][1].append(value)
    if not series:
        return {}
    threshold = policy_for_tier(d.model.risk_tier).fairness_min_disparate_impact
    return {CHART_ID: group_rates_over_time(dict(series), threshold=threshold, markers=d.markers)}
