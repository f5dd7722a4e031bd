"""Which evaluation run and which offline metrics a promotion request's evidence is read from.

While a request is pending: the version's latest run and its metrics now (neither can change
then: an upload or an edit answers 409, but a first run is taken while the request waits for it).
Once the request left pending (applied, rejected or cancelled): what the service recorded when it
did, ``PromotionRequest.evaluation_run`` and ``decided_metrics``, so that runs uploaded and metrics
written since never change a decided request's page, gates or API (a new request on the same
version reads the latest again). ``decided_metrics`` is null for requests decided before it was
recorded: their page reads the version's metrics, as it always did.

The run is an LLM application's latest computed LLM run (the safety gate's evidence) or a classic
model's latest fairness evaluation (the fairness gate's), with the per-case ``data`` deferred.
"""

from __future__ import annotations

from registry.choices import EvaluationKind, EvaluationStatus, PromotionStatus
from registry.models_evaluation import EvaluationRun


def llm_runs(version):
    """The version's computed LLM evaluation runs, newest first (the per-case data deferred)."""
    return EvaluationRun.objects.filter(version=version, kind=EvaluationKind.LLM, status=EvaluationStatus.DONE).defer(
        "data"
    )


def latest_llm_run(version, evaluation_set: str | None = None) -> EvaluationRun | None:
    runs = llm_runs(version)
    return (runs.filter(evaluation_set=evaluation_set) if evaluation_set else runs).first()


def latest_fairness_run(version) -> EvaluationRun | None:
    return EvaluationRun.objects.filter(version=version, kind=EvaluationKind.FAIRNESS).defer("data").first()


def latest_run(version) -> EvaluationRun | None:
    """The run a decision on ``version`` is made on now (see the module's docstring)."""
    return latest_llm_run(version) if version.model.is_llm_app else latest_fairness_run(version)


def request_run(request) -> EvaluationRun | None:
    """The run ``request``'s evidence is read from: the latest while pending, the recorded one after."""
    if request.status == PromotionStatus.PENDING:
        return latest_run(request.version)
    if request.evaluation_run_id is None:
        return None
    return EvaluationRun.objects.defer("data").filter(pk=request.evaluation_run_id).first()


def request_metrics(request) -> dict:
    """The candidate's offline metrics ``request`` is read with: now while pending, as decided after."""
    if request.status != PromotionStatus.PENDING and request.decided_metrics is not None:
        return request.decided_metrics
    metrics = request.version.metrics
    return metrics if isinstance(metrics, dict) else {}
