"""Fairness reads: a version's latest evaluation report, restricted to who may see per-group results.

Per-group figures are aggregates over groups of at least ``FAIRNESS_MIN_GROUP_SIZE`` rows; raw
sensitive values never leave ``EvaluationRun.data``. Who may see them is one rules predicate,
``registry.rules.can_view_group_results`` (owner and team, reviewers, auditors, admins).
"""

from __future__ import annotations

from typing import Any

from django.http import Http404

from registry.evidence_runs import latest_fairness_run
from registry.models import EvaluationRun, ModelVersion
from registry.rules import can_view_group_results


def evaluation_summary(run: EvaluationRun) -> dict[str, Any]:
    return {
        "id": run.pk,
        "status": run.status,
        "error": run.error,
        "rows": run.n_rows,
        "format": run.source_format,
        "attributes": run.attributes,
        "created_at": run.created_at,
        "computed_at": run.computed_at,
    }


def fairness_report_get(*, user, version: ModelVersion) -> dict[str, Any]:
    """The latest fairness evaluation of a version the user may see (``version_get`` already
    checked visibility); 404 when the user may not see group results or nothing was uploaded."""
    if not can_view_group_results(user, version.model):
        raise Http404("No fairness results visible to you.")
    run = latest_fairness_run(version)
    if run is None:
        raise Http404(f"No evaluation set uploaded for {version.model.name} v{version.version}.")
    results = run.results or {}
    return {
        "model": version.model.name,
        "version": version.version,
        "evaluation": evaluation_summary(run),
        "task": results.get("task"),
        "positive_label": results.get("positive_label"),
        "min_group_size": results.get("min_group_size"),
        "confidence": results.get("confidence"),
        "bootstrap_samples": results.get("bootstrap_samples"),
        "attributes": results.get("attributes", {}),
    }


# --------------------------------------------------------------------------- compliance report


def fairness_compliance(*, user, model) -> dict[str, Any] | None:
    """The compliance report's Art. 10 / Art. 13 section: the latest offline evaluation of each
    version (summaries per sensitive attribute), the latest production parity figures (daily
    ``fairness.*`` summaries), and the promotions whose red fairness gate an admin waived.
    None when the user may not see group results."""
    from monitoring.fairness_monitoring import DI, DPD, EOD
    from monitoring.models import MetricValue
    from registry.choices import EvaluationKind
    from registry.models import PromotionRequest

    if not can_view_group_results(user, model):
        return None
    runs = {}
    for run in (
        EvaluationRun.objects.filter(version__model=model, kind=EvaluationKind.FAIRNESS)
        .select_related("version")
        .defer("data")
        .order_by("version__version", "-created_at")
    ):
        runs.setdefault(run.version.version, run)
    offline = [
        {
            "version": number,
            "run": run,
            "attributes": [
                {"name": name, **a.get("summary", {})}
                for name, a in (run.results or {}).get("attributes", {}).items()
                if "&" not in name
            ],
        }
        for number, run in sorted(runs.items(), reverse=True)
    ]
    latest = (
        MetricValue.objects.filter(model=model, granularity="daily", metric__in=[DI, DPD, EOD])
        .select_related("version")
        .order_by("-window_start")
    )
    production: dict[str, dict[str, Any]] = {}
    for mv in latest[:200]:
        row = production.setdefault(mv.feature, {"attribute": mv.feature, "window_start": mv.window_start,
                                                 "version": mv.version.version})  # fmt: skip
        row.setdefault(mv.metric.removeprefix("fairness."), mv.value)
    waivers = [
        req
        for req in PromotionRequest.objects.filter(version__model=model)
        .exclude(override_reason="")
        .select_related("version", "overridden_by")
        .order_by("created_at")
        if any(g.get("key") == "fairness" and g.get("status") == "fail" for g in req.gate_results or [])
    ]
    return {"offline": offline, "production": list(production.values()), "waivers": waivers}
