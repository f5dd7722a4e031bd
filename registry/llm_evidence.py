"""The evaluation evidence of an LLM application for the request page: the candidate's latest LLM
run (per-metric summaries with 95 % intervals, per-category safety pass rates and a Plotly bar
chart with the policy's floor) and the quality gate's paired comparison with production.

``None`` for models of kind ``ml``. Charts are built with ``plotly.graph_objects`` and handed to the
template as ``fig.to_plotly_json()`` (``json_script``; ``static/js/charts.js`` draws them), as
``registry.fairness_evidence`` does.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from registry.gates_llm import latest_llm_run, production_of, quality_comparison
from registry.llm_stats import METRIC_NAMES

METRIC_LABELS = {
    "correctness": "Correctness (mean)",
    "groundedness": "Groundedness (mean)",
    "safety_pass": "Safety pass rate",
    "refusal": "Refusal rate",
}
CHART_ID = "chart-llm-safety"


def safety_figure(categories: list[dict], *, floor: float) -> dict:
    """One bar per safety category (its pass rate, Wilson interval as error bars), red below the
    floor, with the floor as a dotted line."""
    names = [row["category"] for row in categories]
    rates = [row["rate"] for row in categories]
    fig = go.Figure(
        go.Bar(
            x=names,
            y=rates,
            marker_color=["#b91c1c" if rate < floor else "#15803d" for rate in rates],
            error_y={
                "type": "data",
                "symmetric": False,
                "array": [row["ci_high"] - row["rate"] for row in categories],
                "arrayminus": [row["rate"] - row["ci_low"] for row in categories],
            },
            customdata=[row["n"] for row in categories],
            hovertemplate="%{x}: %{y:.2%} of %{customdata} cases<extra></extra>",
            name="Safety pass rate",
        )
    )
    fig.add_hline(y=floor, line_dash="dot", line_color="#d97706", annotation_text=f"floor {floor:.0%}")
    low = min([*rates, floor, *(row["ci_low"] for row in categories)]) if categories else floor
    fig.update_layout(
        title={"text": "Safety pass rate by category", "x": 0, "font": {"size": 14}},
        height=320,
        margin={"l": 50, "r": 20, "t": 50, "b": 40},
        yaxis={"range": [max(0.0, low - 0.05), 1.005], "tickformat": ".0%"},
        showlegend=False,
        paper_bgcolor="#ffffff",
        plot_bgcolor="#ffffff",
    )
    return fig.to_plotly_json()


def _metric_rows(results: dict) -> list[dict[str, Any]]:
    return [
        {
            "key": name,
            "metric": METRIC_NAMES.get(name, name),
            "label": METRIC_LABELS.get(name, name),
            **summary,
        }
        for name, summary in (results.get("metrics") or {}).items()
    ]


def llm_evidence(*, version, snapshot: dict | None = None) -> dict[str, Any] | None:
    """The page context of an LLM application's evaluation evidence, or None (ML model)."""
    if not version.model.is_llm_app:
        return None
    snapshot = snapshot or {}
    floor = float(snapshot.get("llm_safety_category_floor", 0.97))
    run = latest_llm_run(version)
    context: dict[str, Any] = {"run": run, "floor": floor, "figures": {}, "comparison": None}
    context["min_pass_rate"] = float(snapshot.get("llm_safety_min_pass_rate", 0.99))
    context["tolerance"] = float(snapshot.get("llm_quality_tolerance", 0.02))
    if run is None:
        return context
    results = run.results or {}
    categories = results.get("safety_categories") or []
    context.update(metrics=_metric_rows(results), categories=categories, chart_id=CHART_ID)
    for row in categories:
        row["below_floor"] = row["rate"] < floor
    if categories:
        context["figures"] = {CHART_ID: safety_figure(categories, floor=floor)}
    production = production_of(version.model)
    if production is not None and production.pk != version.pk:
        comparison = quality_comparison(version, production)
        if comparison.get("production_run") is not None and comparison["paired"].get("n"):
            context["comparison"] = {**comparison, "production": production}
    return context
