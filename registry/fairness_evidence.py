"""The fairness evidence of a version for the pages (request page, compliance report): the latest
evaluation run's per-group table and a Plotly chart of the groups, for users who may see
per-group results (``rules.can_view_group_results``); ``None`` otherwise or when nothing was uploaded.

On the request page (``request_fairness``) the candidate's run is the one the request reads
(``registry.evidence_runs``: the latest while pending, the one it was decided on after), and each
group's row carries production's results for the same group beside it: production's latest
computed fairness evaluation (for a decided request, its latest by the decision). Groups too
small to report stay "too small" on either side.

Charts are built with ``plotly.graph_objects`` and handed to the template as ``fig.to_plotly_json()``
(``json_script``; ``static/js/charts.js`` draws them), as the monitoring pages do.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from registry.choices import EvaluationKind, EvaluationStatus, PromotionStatus
from registry.evidence_runs import latest_fairness_run, request_run
from registry.gates_fairness import group_label
from registry.models_evaluation import EvaluationRun
from registry.rules import can_view_group_results

RATES = (
    ("selection_rate", "Selection rate", "#2f5bea"),
    ("tpr", "True positive rate", "#15803d"),
    ("fpr", "False positive rate", "#b91c1c"),
)
SUMMARY_KEYS = (
    ("disparate_impact", "Disparate impact"),
    ("demographic_parity_difference", "Demographic parity difference"),
    ("equalized_odds_difference", "Equalized odds difference"),
    ("mae_ratio", "Largest ratio of group MAEs"),
)


def fairness_figure(attribute: str, groups: list[dict], *, min_di: float | None = None) -> dict:
    """Grouped bars of each group's selection rate, TPR and FPR (regression: MAE); too-small
    groups are left out. The four-fifths line sits at ``min_di`` × the highest selection rate."""
    shown = [g for g in groups if not g.get("too_small")]
    names = [g["group"] for g in shown]
    fig = go.Figure()
    if shown and "mae" in shown[0]:
        fig.add_trace(go.Bar(name="MAE", x=names, y=[g["mae"] for g in shown], marker_color="#2f5bea"))
    else:
        for key, label, colour in RATES:
            fig.add_trace(go.Bar(name=label, x=names, y=[g.get(key) for g in shown], marker_color=colour))
        rates = [g["selection_rate"] for g in shown if g.get("selection_rate") is not None]
        if min_di is not None and rates:
            fig.add_hline(
                y=min_di * max(rates),
                line_dash="dot",
                line_color="#d97706",
                annotation_text=f"{min_di:.0%} of the highest selection rate",
            )
    fig.update_layout(
        title={"text": f"Groups of {attribute.replace('&', ' × ')}", "x": 0, "font": {"size": 14}},
        barmode="group",
        height=320,
        margin={"l": 50, "r": 20, "t": 50, "b": 40},
        legend={"orientation": "h", "y": -0.2},
        yaxis={"range": [0, 1]} if "mae" not in (shown or [{}])[0] else {},
        paper_bgcolor="#ffffff",
        plot_bgcolor="#ffffff",
    )
    return fig.to_plotly_json()


def fairness_evidence(*, user, version, snapshot: dict | None = None) -> dict[str, Any] | None:
    """The page context of ``version``'s latest fairness evaluation, or None."""
    if not can_view_group_results(user, version.model):
        return None
    run = latest_fairness_run(version)
    if run is None:
        return None
    return _run_context(run, snapshot)


def _run_context(run, snapshot: dict | None) -> dict[str, Any]:
    min_di = float((snapshot or {}).get("fairness_min_disparate_impact", 0.8))
    attributes, figures = [], {}
    for i, (name, result) in enumerate((run.results or {}).get("attributes", {}).items()):
        summary = result.get("summary", {})
        intervals = summary.get("intervals") or {}
        rows = [
            {"key": key, "label": label, "value": summary[key], "interval": intervals.get(key)}
            for key, label in SUMMARY_KEYS
            if summary.get(key) is not None
        ]
        chart_id = f"chart-fairness-{i}"
        figures[chart_id] = fairness_figure(name, result.get("groups", []), min_di=min_di)
        attributes.append(
            {
                "name": name,
                "label": name.replace("&", " × "),
                "groups": result.get("groups", []),
                "summary": rows,
                "lowest": group_label(name, summary.get("lowest_group")) if summary.get("lowest_group") else "",
                "highest": group_label(name, summary.get("highest_group")) if summary.get("highest_group") else "",
                "chart_id": chart_id,
            }
        )
    regression = (run.results or {}).get("task") == "regression"
    return {
        "run": run,
        "attributes": attributes,
        "figures": figures,
        "results": run.results or {},
        "regression": regression,
        "cols": 3 if regression else 6,  # a side's columns: n and the rates (regression: MAE, mean signed error)
    }


def production_fairness_run(request, production) -> EvaluationRun | None:
    """Production's latest computed fairness evaluation (by the decision, for a decided request)."""
    runs = EvaluationRun.objects.filter(
        version=production, kind=EvaluationKind.FAIRNESS, status=EvaluationStatus.DONE
    ).defer("data")
    if request.status != PromotionStatus.PENDING and request.decided_at is not None:
        runs = runs.filter(computed_at__lte=request.decided_at)  # its results were there to see
    return runs.first()


def _side_by_side(candidate: list[dict], production: list[dict] | None) -> list[dict[str, Any]]:
    """One row per group, the candidate's groups first: {group, candidate, production} (None: the
    group is not in that side's results)."""
    theirs = {g["group"]: g for g in production or []}
    rows = [{"group": g["group"], "candidate": g, "production": theirs.pop(g["group"], None)} for g in candidate]
    return rows + [{"group": name, "candidate": None, "production": g} for name, g in theirs.items()]


def request_fairness(*, user, request, production) -> dict[str, Any] | None:
    """The request page's fairness evidence: the candidate's run the request reads, its groups
    beside ``production``'s (the version the page compares with; None: there is none)."""
    version = request.version
    if not can_view_group_results(user, version.model):
        return None
    run = request_run(request)
    if run is None or run.kind != EvaluationKind.FAIRNESS:
        return None
    context = _run_context(run, request.policy_snapshot)
    production = production if production is not None and production.pk != version.pk else None
    prod_run = production_fairness_run(request, production) if production is not None else None
    prod_attributes = (prod_run.results or {}).get("attributes", {}) if prod_run is not None else {}
    for attribute in context["attributes"]:
        theirs = prod_attributes.get(attribute["name"], {}).get("groups") if prod_run is not None else None
        attribute["rows"] = _side_by_side(attribute["groups"], theirs)
    context.update(production=production, production_run=prod_run)
    context["sides"] = ["candidate", "production"] if prod_run is not None else ["candidate"]
    return context
