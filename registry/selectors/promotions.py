"""Promotion reads: requests the user may see, gates, evidence and the model's stage timeline."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.shortcuts import get_object_or_404

from registry import gates_fairness, gates_live, gates_metric
from registry.choices import Decision, PromotionStatus, Stage
from registry.evidence_runs import request_metrics
from registry.gates_fairness import fairness_gate, fairness_snapshot
from registry.gates_live import live_gate, live_policy_snapshot
from registry.gates_llm import QUALITY_LABEL, llm_policy_snapshot, quality_gate, safety_gate
from registry.gates_metric import metric_gate, metric_policy_snapshot, number, snapshot_tolerance, tolerance_words
from registry.models import (
    AuditEvent,
    LLMAppVersion,
    ModelVersion,
    PromotionPolicy,
    PromotionRequest,
    RegisteredModel,
    Review,
    StageTransition,
)

GATE_PASS = "pass"
GATE_FAIL = "fail"
GATE_NA = "na"

# Metric names whose smaller values are better (used for colouring non-primary metrics): errors and
# losses, and an LLM application's refusals, latency, cost and harmful output.
_LOWER_IS_BETTER_HINTS = (
    "loss",
    "error",
    "rmse",
    "mae",
    "mse",
    "mape",
    "brier",
    "latency",
    "refusal",
    "cost",
    "toxic",
    "violation",
    "hallucination",
    "unsafe",
)


def policy_for_tier(risk_tier: str) -> PromotionPolicy:
    """The policy in force for a risk tier (created by migration; if somehow missing, the same
    defaults the migrations give: high risk needs two approvals and the fairness gate)."""
    policy = PromotionPolicy.objects.filter(risk_tier=risk_tier).first()
    if policy is None:
        high = risk_tier == "high"
        policy = PromotionPolicy(risk_tier=risk_tier, approvals_required=2 if high else 1, require_fairness=high)
    return policy


def policy_snapshot(policy: PromotionPolicy) -> dict[str, Any]:
    """The policy's rules as plain JSON, frozen onto a request when it is opened."""
    return {
        "risk_tier": policy.risk_tier,
        "approvals_required": policy.approvals_required,
        "approver_group": policy.approver_group,
        "require_model_card": policy.require_model_card,
        "require_lineage": policy.require_lineage,
        **metric_policy_snapshot(policy),
        "require_reference_data": policy.require_reference_data,
        "require_monitoring": policy.require_monitoring,
        **fairness_snapshot(policy),
        **live_policy_snapshot(policy),
        **llm_policy_snapshot(policy),
    }


APPROVED = Q(decision=Decision.APPROVE)


def promotion_approvals(request: PromotionRequest) -> int:
    """The request's approvals: its approving reviews. The one count, used by the request page,
    the review queue, the API and the service that applies the promotion.

    Each approval was checked against the snapshot's approver group when it was given (the
    requester can never review: rule and database constraint), so it stands even if its author
    later leaves the group. Uses the ``approvals`` annotation of ``promotion_list`` when present."""
    annotated = getattr(request, "approvals", None)
    if annotated is not None:
        return annotated
    return request.reviews.filter(APPROVED).count()


def promotion_decision(request: PromotionRequest) -> dict[str, Any] | None:
    """How a decided request ended, for its page (None while pending): who decided and when.
    Rejected: the reviewer who rejected it; approved or applied: its approvers; cancelled: who
    cancelled it (its audit event's actor: the requester, an admin, or ``system`` when a later
    version's promotion made it stale)."""
    if request.status == PromotionStatus.PENDING:
        return None
    if request.status == PromotionStatus.CANCELLED:
        by = list(
            AuditEvent.objects.filter(
                action="promotion.cancelled", object_type=PromotionRequest._meta.label_lower, object_id=str(request.pk)
            )
            .order_by("-seq")
            .values_list("actor_name", flat=True)[:1]
        )
    else:
        decision = Decision.REJECT if request.status == PromotionStatus.REJECTED else Decision.APPROVE
        reviews = sorted(request.reviews.all(), key=lambda r: (r.created_at, r.pk))
        by = [r.reviewer.get_username() for r in reviews if r.decision == decision]
    verb = "approved" if request.status == PromotionStatus.APPLIED else request.get_status_display().lower()
    return {"verb": verb, "by": by, "at": request.decided_at}


def promotion_list(*, user) -> QuerySet[PromotionRequest]:
    """Requests on models the user may see, newest first, with what lists need joined in."""
    if not user.is_authenticated:
        return PromotionRequest.objects.none()
    qs = PromotionRequest.objects.filter(version__model__in=RegisteredModel.objects.visible_to(user))
    return qs.select_related("version__model__team", "version__model__owner", "requested_by").annotate(
        # promotion_approvals' count, for a whole list in one query
        approvals=Count("reviews", filter=Q(reviews__decision=Decision.APPROVE), distinct=True)
    )


def promotion_get(*, user, pk: int) -> PromotionRequest:
    """One request the user may see, or 404 (never reveal that it exists)."""
    qs = promotion_list(user=user).prefetch_related(
        Prefetch("reviews", queryset=Review.objects.select_related("reviewer"))
    )
    return get_object_or_404(qs, pk=pk)


def promotion_counts(*, user) -> dict[str, int]:
    """Requests per status that the user may see (review queue header)."""
    rows = promotion_list(user=user).order_by().values("status").annotate(n=Count("pk", distinct=True))
    counts = {status: 0 for status in PromotionStatus.values}
    for row in rows:
        counts[row["status"]] = row["n"]
    return counts


def production_version(model: RegisteredModel) -> ModelVersion | None:
    return ModelVersion.objects.filter(model=model, stage=Stage.PRODUCTION).first()


def metric_higher_is_better(model: RegisteredModel, metric: str) -> bool:
    if metric == model.primary_metric:
        return model.primary_metric_higher_is_better
    name = metric.lower()
    return not any(hint in name for hint in _LOWER_IS_BETTER_HINTS)


def is_count(metric: str) -> bool:
    """A count stored among the offline metrics (``test_rows``, ``n_rows``, ``train_rows``…): the
    size of a data set, context for the metrics, never better or worse for being larger."""
    name = metric.lower()
    return name in ("rows", "n", "samples") or name.startswith("n_") or name.endswith(("_rows", "_samples", "_count"))


def metric_comparison(
    candidate: ModelVersion, production: ModelVersion | None, candidate_metrics: dict | None = None
) -> list[dict[str, Any]]:
    """Candidate vs production offline metrics, primary metric first and counts (``is_count``)
    last, with coloured differences. ``candidate_metrics``: the candidate's metrics to show when not
    its metrics now (a decided request's, ``registry.evidence_runs.request_metrics``).

    Each row: {metric, candidate, production, delta, direction: better|worse|same|"", primary,
    count}. A count has no delta nor direction: it is shown beside the metrics, not compared.
    """
    model = candidate.model
    cand = candidate_metrics if candidate_metrics is not None else candidate.metrics
    cand = cand if isinstance(cand, dict) else {}
    prod = production.metrics if production is not None and isinstance(production.metrics, dict) else {}
    names = sorted(set(cand) | set(prod), key=lambda n: (n != model.primary_metric, is_count(n), n))
    rows = []
    for name in names:
        count = is_count(name) and name != model.primary_metric
        c, p = number(cand.get(name)), number(prod.get(name))
        delta = direction = None
        if c is not None and p is not None and not count:
            delta = c - p
            if abs(delta) < 1e-12:
                direction = "same"
            else:
                better = delta > 0 if metric_higher_is_better(model, name) else delta < 0
                direction = "better" if better else "worse"
        rows.append(
            {
                "metric": name,
                "candidate": cand.get(name),
                "production": prod.get(name) if production is not None else None,
                "delta": delta,
                "direction": direction or "",
                "primary": name == model.primary_metric,
                "count": count,
            }
        )
    return rows


def _gate(key: str, label: str, status: str, detail: str, required: bool) -> dict[str, Any]:
    return {"key": key, "label": label, "status": status, "detail": detail, "required": required}


GATE_LABELS = {
    "model_card": "Model card complete",
    "lineage": "Lineage present",
    "metric": gates_metric.LABEL,
    "reference_data": "Reference data uploaded",
    "monitoring": "Monitoring configured",
}


def request_policy(request: PromotionRequest) -> dict[str, Any]:
    """The rules a request is judged by: its frozen snapshot, or the tier's policy now."""
    return request.policy_snapshot or policy_snapshot(policy_for_tier(request.version.model.risk_tier))


def metric_tolerance(request: PromotionRequest, production: ModelVersion | None = None) -> dict[str, Any] | None:
    """The tolerance the gates apply to the candidate's primary metric under the request's policy,
    with the gate that applies it: the quality gate's (paired correctness, absolute) for an LLM
    application, the metric gate's otherwise; None when the policy requires neither. ``mode`` says
    how the value reads and ``text`` says it in words, a relative one against ``production``'s value."""
    snapshot = request_policy(request)
    model = request.version.model
    if model.is_llm_app:
        if not snapshot.get("require_llm_quality", True):
            return None
        value = float(snapshot.get("llm_quality_tolerance", 0.02))
        return {"value": value, "mode": "absolute", "text": f"{value:g}", "gate": QUALITY_LABEL}
    if not snapshot.get("require_metric_within_tolerance", True):
        return None
    value, mode = snapshot_tolerance(snapshot)
    metrics = production.metrics if production is not None and isinstance(production.metrics, dict) else {}
    text = tolerance_words(value, mode, number(metrics.get(model.primary_metric)))
    return {"value": value, "mode": mode, "text": text, "gate": GATE_LABELS["metric"]}


def promotion_gates(request: PromotionRequest) -> list[dict[str, Any]]:
    """Every gate of the request's policy snapshot, evaluated now.

    Each gate: {key, label, status: pass|fail|na, detail, required}. Gates the policy does not
    require are shown as ``na``; retirement (target ``archived``) needs no gates.
    """
    version = request.version
    model = version.model
    snapshot = request_policy(request)
    target = request.target_stage
    if target == Stage.ARCHIVED:
        reason = "Retirement needs no evidence."
        return [_gate(key, label, GATE_NA, reason, False) for key, label in GATE_LABELS.items()] + [
            fairness_gate(request, snapshot),
            live_gate(request, snapshot),
            safety_gate(request, snapshot),
            quality_gate(request, snapshot),
        ]
    if model.is_llm_app:  # the gates of tabular models: their evidence does not exist for an LLM application
        metric, reference_data, fairness, live = (_gate(k, label, GATE_NA, why, False) for k, label, why in LLM_NA)
    else:
        metric = metric_gate(version, request_metrics(request), production_version(model), snapshot, target)
        reference_data = _reference_data_gate(version, snapshot)
        fairness, live = fairness_gate(request, snapshot), live_gate(request, snapshot)
    return [
        _model_card_gate(model, snapshot),
        _lineage_gate(version, snapshot),
        metric,
        reference_data,
        _monitoring_gate(model, snapshot),
        fairness,
        live,
        safety_gate(request, snapshot),
        quality_gate(request, snapshot),
    ]


#: Why each gate of tabular models is "not applicable" to an LLM application.
LLM_NA = (
    ("metric", GATE_LABELS["metric"], "An LLM application is compared with production case by case (quality gate)."),
    ("reference_data", GATE_LABELS["reference_data"], "An LLM application has no feature distribution to profile."),
    (
        gates_fairness.KEY,
        gates_fairness.LABEL,
        "Group parity is for tabular models; the safety gate checks categories.",
    ),
    (gates_live.KEY, gates_live.LABEL, "Live paired predictions are for tabular models; the quality gate pairs cases."),
)


def _not_required(key: str) -> dict[str, Any]:
    return _gate(key, GATE_LABELS[key], GATE_NA, "Not required by the policy.", False)


def _required(key: str, ok: bool, detail: str) -> dict[str, Any]:
    """A gate the policy requires: passed when ``ok``, failed otherwise; ``detail`` says why."""
    return _gate(key, GATE_LABELS[key], GATE_PASS if ok else GATE_FAIL, detail, True)


def _missing(pairs) -> list[str]:
    """The labels of the (label, value) pairs whose value is empty or blank."""
    return [label for label, value in pairs if not (value or "").strip()]


def _model_card_gate(model, snapshot: dict[str, Any]) -> dict[str, Any]:
    if not snapshot.get("require_model_card", True):
        return _not_required("model_card")
    missing = model.model_card_missing
    detail = f"Missing: {', '.join(missing)}." if missing else "Description, intended use and limitations filled."
    return _required("model_card", not missing, detail)


def _lineage_gate(version, snapshot: dict[str, Any]) -> dict[str, Any]:
    if not snapshot.get("require_lineage", True):
        return _not_required("lineage")
    if version.model.is_llm_app:  # not trained: identified by its source commit or its parts' content hash
        return _llm_lineage_gate(version)
    missing = _missing(
        (
            ("source commit", version.source_commit),
            ("training run id", version.training_run_id),
            ("training data reference", version.training_data_ref),
        )
    )
    if missing:
        return _required("lineage", False, f"Missing: {', '.join(missing)}.")
    return _required("lineage", True, f"Commit {version.source_commit[:12]}, run {version.training_run_id}.")


def _llm_lineage_gate(version) -> dict[str, Any]:
    """An LLM application is not trained: its lineage is its source commit or its parts' content
    hash (``version.llm``, when the parts were registered)."""
    commit = (version.source_commit or "").strip()
    parts = LLMAppVersion.objects.filter(version=version).values_list("content_hash", flat=True).first()
    found = ", ".join(([f"commit {commit[:12]}"] if commit else []) + ([f"parts {parts[:12]}"] if parts else []))
    if not found:
        return _required("lineage", False, "Missing: source commit or the parts' content hash.")
    return _required("lineage", True, f"{found[:1].upper()}{found[1:]} (an LLM application is not trained).")


def _reference_data_gate(version, snapshot: dict[str, Any]) -> dict[str, Any]:
    if not snapshot.get("require_reference_data", False):
        return _not_required("reference_data")
    ok = version.reference_profile_at is not None
    detail = f"Profiled {version.reference_profile_at:%Y-%m-%d %H:%M} UTC." if ok else "No reference data yet."
    return _required("reference_data", ok, detail)


def _monitoring_gate(model, snapshot: dict[str, Any]) -> dict[str, Any]:
    if not snapshot.get("require_monitoring", False):
        return _not_required("monitoring")
    ok = model.monitoring_configured_at is not None
    return _required(
        "monitoring", ok, "Monitoring is configured." if ok else "Monitoring is not configured for this model."
    )


def failing_gates(gates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [g for g in gates if g["required"] and g["status"] == GATE_FAIL]


def production_version_at_decision(request: PromotionRequest) -> ModelVersion | None:
    """The version in production when a decided request was decided, before its own stage moves:
    the one whose latest transition up to then moved it into production (the rule of the
    inventory as of a date, ``registry.selectors.audit.inventory_as_of``)."""
    own = StageTransition.objects.filter(promotion_request=request).order_by("created_at", "id").first()
    moment = own.created_at if own is not None else request.decided_at
    if moment is None:  # decided before decisions were stamped: the best answer is today's
        return production_version(request.version.model)
    before = Q(created_at__lt=moment) | Q(created_at=moment, pk__lt=own.pk) if own else Q(created_at__lte=moment)
    return _production_then(request.version.model_id, before)


def production_version_at_request(request: PromotionRequest) -> ModelVersion | None:
    """The version in production when the request was made (as ``production_version_at_decision``)."""
    return _production_then(request.version.model_id, Q(created_at__lte=request.created_at))


def _production_then(model_id: int, before: Q) -> ModelVersion | None:
    """The version whose latest transition among those ``before`` moved it into production."""
    latest = StageTransition.objects.filter(before, version=OuterRef("pk")).order_by("-created_at", "-id")
    return (
        ModelVersion.objects.filter(model_id=model_id)
        .annotate(stage_then=Subquery(latest.values("to_stage")[:1]), since=Subquery(latest.values("created_at")[:1]))
        .filter(stage_then=Stage.PRODUCTION)
        .order_by("-since", "-pk")
        .first()
    )


def promotion_evidence(request: PromotionRequest) -> dict[str, Any]:
    """Everything the request page shows side by side: the candidate against the production
    version of the moment (for a decided request, the one in production at its decision, and the
    candidate's metrics as decided)."""
    pending = request.status == PromotionStatus.PENDING
    production = production_version(request.version.model) if pending else production_version_at_decision(request)
    gates = promotion_gates(request)
    return {
        "production": production,
        "metrics": metric_comparison(request.version, production, request_metrics(request)),
        "tolerance": metric_tolerance(request, production),
        "gates": gates,
        "failing_gates": failing_gates(gates),
    }


def model_timeline(*, model: RegisteredModel) -> QuerySet[StageTransition]:
    """Every stage transition of the model, newest first, with the approvals behind it."""
    return (
        StageTransition.objects.filter(model=model)
        .select_related("version", "actor", "promotion_request__requested_by")
        .prefetch_related(
            Prefetch(
                "promotion_request__reviews",
                queryset=Review.objects.select_related("reviewer").order_by("created_at"),
            )
        )
    )


def rollback_candidate(model: RegisteredModel) -> ModelVersion | None:
    """The version production ran before the current one that was approved for production
    through the workflow (an applied promotion request), walking further back past versions that
    were not: the target of the entry into production, by an applied request, that is newest and
    not of the current version, and that no rollback has since taken out of production.

    A version rolled back away from is skipped until a later request approves it again: that
    newer approval is then its entry (the older one is followed by the rollback)."""
    current = ModelVersion.objects.filter(model=model, stage=Stage.PRODUCTION).values_list("pk", flat=True).first()
    rolled_away_since = StageTransition.objects.filter(
        model=model,
        version_id=OuterRef("version_id"),
        kind=StageTransition.Kind.ROLLBACK,
        from_stage=Stage.PRODUCTION,
    ).filter(Q(created_at__gt=OuterRef("created_at")) | Q(created_at=OuterRef("created_at"), pk__gt=OuterRef("pk")))
    entry = (
        StageTransition.objects.filter(
            model=model,
            to_stage=Stage.PRODUCTION,
            kind=StageTransition.Kind.PROMOTION,
            promotion_request__status=PromotionStatus.APPLIED,
        )
        .exclude(version_id=current)
        .exclude(Exists(rolled_away_since))
        .select_related("version")
        .order_by("-created_at", "-id")
        .first()
    )
    return entry.version if entry is not None else None
