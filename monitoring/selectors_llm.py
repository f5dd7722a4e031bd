"""LLM evaluation reads: a run's summary for the API (aggregates only: the per-case scores stay in
``EvaluationRun.data``; no prompt or completion text exists). Visibility is the caller's
``version_get``: whoever may see the model sees its evaluation summaries."""

from __future__ import annotations

from typing import Any

from registry.choices import EvaluationKind
from registry.models import EvaluationRun, ModelVersion

MAX_RUNS = 50


def llm_run_summary(run: EvaluationRun) -> dict[str, Any]:
    results = run.results or {}
    return {
        "id": run.pk,
        "kind": run.kind,
        "status": run.status,
        "evaluation_set": run.evaluation_set,
        "rows": run.n_rows,
        "format": run.source_format,
        "scores": run.attributes,
        "created_at": run.created_at,
        "computed_at": run.computed_at,
        "confidence": results.get("confidence"),
        "metrics": results.get("metrics", {}),
        "safety_categories": results.get("safety_categories", []),
    }


def evaluation_list(*, version: ModelVersion) -> dict[str, Any]:
    """The version's evaluation runs of either kind, newest first (at most ``MAX_RUNS``), each
    with its kind and status: an LLM run with its summaries, a fairness run as its upload answered
    (``evaluation_summary``; the per-group report is ``GET …/fairness/``, for who may see it)."""
    from monitoring.selectors_fairness import evaluation_summary

    runs = EvaluationRun.objects.filter(version=version).defer("data").order_by("-created_at", "-pk")[:MAX_RUNS]
    return {
        "model": version.model.name,
        "version": version.version,
        "results": [
            llm_run_summary(run) if run.kind == EvaluationKind.LLM else {"kind": run.kind, **evaluation_summary(run)}
            for run in runs
        ],
    }
