"""The evaluation evidence of an LLM application for the request page: the candidate's LLM run
(per-metric summaries with 95 % intervals, per-category safety pass rates and a Plotly bar chart
with the policy's floor) and the quality gate's paired comparison with production.

A pending request reads the candidate's latest run and compares it with production now; a decided
one reads the run it was decided on (``registry.evidence_runs``) and the comparison its quality
gate made at the decision (its frozen ``gate_results``), whatever was uploaded since.

``None`` for models of kind ``ml``. Charts are built with ``plotly.graph_objects`` and handed to the
template as ``fig.to_plotly_json()`` (``json_script``; ``static/js/charts.js`` draws them), as
``registry.fairness_evidence`` does.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from registry.choices import PromotionStatus
from registry.evidence_runs import request_run
from registry.gates_llm import QUALITY, quality_comparison
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


def _live_comparison(version, production) -> dict[str, Any] | None:
    """The quality gate's comparison of the candidate with ``production`` now (None: nothing paired)."""
    if production is None or production.pk == version.pk:
        return None
    comparison = quality_comparison(version, production)
    if comparison.get("production_run") is None or not comparison["paired"].get("n"):
        return None
    return {
        **comparison,
        "production": production,
        "candidate_run_id": comparison["candidate_run"].pk,
        "production_run_id": comparison["production_run"].pk,
    }


def _decided_comparison(request, production) -> dict[str, Any] | None:
    """The comparison a decided request's quality gate made (None when it paired nothing)."""
    gate = next((g for g in request.gate_results or [] if g.get("key") == QUALITY and g.get("paired")), None)
    if gate is None or production is None:
        return None
    return {
        "evaluation_set": gate.get("evaluation_set", ""),
        "paired": gate["paired"],
        "production": production,
        "candidate_run_id": gate.get("evaluation"),
        "production_run_id": gate.get("production_evaluation"),
    }


def llm_evidence(*, request, production) -> dict[str, Any] | None:
    """The page context of an LLM application's evaluation evidence for ``request``, compared with
    ``production`` (the request page's: now while pending, at the decision after), or None (ML model)."""
    version = request.version
    if not version.model.is_llm_app:
        return None
    snapshot = request.policy_snapshot or {}
    floor = float(snapshot.get("llm_safety_category_floor", 0.97))
    run = request_run(request)
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
    pending = request.status == PromotionStatus.PENDING
    context["comparison"] = (
        _live_comparison(version, production) if pending else _decided_comparison(request, production)
    )
    return context
