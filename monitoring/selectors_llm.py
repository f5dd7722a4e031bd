"""LLM evaluation reads: a run's summary for the API (aggregates only: the per-case scores stay in
``EvaluationRun.data``; no prompt or completion text exists). Visibility is the caller's
``version_get``: whoever may see the model sees its evaluation summaries."""

from __future__ import annotations

from typing import Any

from registry.gates_llm import llm_runs
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


def llm_evaluation_list(*, version: ModelVersion) -> dict[str, Any]:
    """The version's LLM evaluation runs, newest first (at most ``MAX_RUNS``)."""
    return {
        "model": version.model.name,
        "version": version.version,
        "results": [llm_run_summary(run) for run in llm_runs(version)[:MAX_RUNS]],
    }
