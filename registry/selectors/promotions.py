"""Promotion reads: requests the user may see, gates, evidence and the model's stage timeline."""

from __future__ import annotations

import math
from typing import Any

from django.db.models import Count, Prefetch, Q, QuerySet
from django.shortcuts import get_object_or_404

from registry.choices import Decision, PromotionStatus, Stage
from registry.gates_fairness import fairness_gate, fairness_snapshot
from registry.gates_live import live_gate, live_policy_snapshot
from registry.models import ModelVersion, PromotionPolicy, PromotionRequest, RegisteredModel, Review, StageTransition

GATE_PASS = "pass"
GATE_FAIL = "fail"
GATE_NA = "na"

# Metric names whose smaller values are better (used for colouring non-primary metrics).
_LOWER_IS_BETTER_HINTS = ("loss", "error", "rmse", "mae", "mse", "mape", "brier", "latency")


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
        "require_metric_within_tolerance": policy.require_metric_within_tolerance,
        "metric_tolerance": policy.metric_tolerance,
        "require_reference_data": policy.require_reference_data,
        "require_monitoring": policy.require_monitoring,
        **fairness_snapshot(policy),
        **live_policy_snapshot(policy),
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


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def metric_higher_is_better(model: RegisteredModel, metric: str) -> bool:
    if metric == model.primary_metric:
        return model.primary_metric_higher_is_better
    name = metric.lower()
    return not any(hint in name for hint in _LOWER_IS_BETTER_HINTS)


def metric_comparison(candidate: ModelVersion, production: ModelVersion | None) -> list[dict[str, Any]]:
    """Candidate vs production offline metrics, primary metric first, with coloured differences.

    Each row: {metric, candidate, production, delta, direction: better|worse|same|"", primary}.
    """
    model = candidate.model
    cand = candidate.metrics if isinstance(candidate.metrics, dict) else {}
    prod = production.metrics if production is not None and isinstance(production.metrics, dict) else {}
    names = sorted(set(cand) | set(prod), key=lambda n: (n != model.primary_metric, n))
    rows = []
    for name in names:
        c, p = _number(cand.get(name)), _number(prod.get(name))
        delta = direction = None
        if c is not None and p is not None:
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
            }
        )
    return rows


def _gate(key: str, label: str, status: str, detail: str, required: bool) -> dict[str, Any]:
    return {"key": key, "label": label, "status": status, "detail": detail, "required": required}


GATE_LABELS = {
    "model_card": "Model card complete",
    "lineage": "Lineage present",
    "metric": "Offline primary metric not worse than production",
    "reference_data": "Reference data uploaded",
    "monitoring": "Monitoring configured",
}


def _metric_gate(candidate: ModelVersion, production: ModelVersion | None, snapshot: dict, target: str) -> dict:
    label = GATE_LABELS["metric"]
    required = bool(snapshot.get("require_metric_within_tolerance", True))
    if not required:
        return _gate("metric", label, GATE_NA, "Not required by the policy.", False)
    model = candidate.model
    metric = model.primary_metric
    if target != Stage.PRODUCTION:
        return _gate("metric", label, GATE_NA, f"Only checked for promotions to production (target: {target}).", False)
    if not metric:
        return _gate("metric", label, GATE_FAIL, "The model has no primary metric set.", True)
    cand = _number((candidate.metrics or {}).get(metric)) if isinstance(candidate.metrics, dict) else None
    if cand is None:
        return _gate("metric", label, GATE_FAIL, f"The candidate has no numeric '{metric}' value.", True)
    if production is None or production.pk == candidate.pk:
        return _gate("metric", label, GATE_PASS, f"{metric} = {cand:.4g}; no production version to compare.", True)
    prod = _number((production.metrics or {}).get(metric)) if isinstance(production.metrics, dict) else None
    if prod is None:
        return _gate(
            "metric", label, GATE_PASS, f"{metric} = {cand:.4g}; production v{production.version} has no value.", True
        )
    tolerance = float(snapshot.get("metric_tolerance", 0.0))
    worse_by = (prod - cand) if model.primary_metric_higher_is_better else (cand - prod)
    text = (
        f"{metric}: {cand:.4g} vs production v{production.version} {prod:.4g} "
        f"({'higher' if model.primary_metric_higher_is_better else 'lower'} is better, tolerance {tolerance:g})"
    )
    if worse_by > tolerance + 1e-12:
        return _gate("metric", label, GATE_FAIL, f"{text}: worse by {worse_by:.4g}.", True)
    return _gate("metric", label, GATE_PASS, text + ".", True)


def promotion_gates(request: PromotionRequest) -> list[dict[str, Any]]:
    """Every gate of the request's policy snapshot, evaluated now.

    Each gate: {key, label, status: pass|fail|na, detail, required}. Gates the policy does not
    require are shown as ``na``; retirement (target ``archived``) needs no gates.
    """
    version = request.version
    model = version.model
    snapshot = request.policy_snapshot or policy_snapshot(policy_for_tier(model.risk_tier))
    target = request.target_stage
    if target == Stage.ARCHIVED:
        reason = "Retirement needs no evidence."
        return [_gate(key, label, GATE_NA, reason, False) for key, label in GATE_LABELS.items()] + [
            fairness_gate(request, snapshot),
            live_gate(request, snapshot),
        ]
    gates = [
        _model_card_gate(model, snapshot),
        _lineage_gate(version, snapshot),
        _metric_gate(version, production_version(model), snapshot, target),
        _reference_data_gate(version, snapshot),
        _monitoring_gate(model, snapshot),
        fairness_gate(request, snapshot),
        live_gate(request, snapshot),
    ]
    return gates


def _not_required(key: str) -> dict[str, Any]:
    return _gate(key, GATE_LABELS[key], GATE_NA, "Not required by the policy.", False)


def _missing(pairs) -> list[str]:
    """The labels of the (label, value) pairs whose value is empty or blank."""
    return [label for label, value in pairs if not (value or "").strip()]


def _model_card_gate(model, snapshot: dict[str, Any]) -> dict[str, Any]:
    if not snapshot.get("require_model_card", True):
        return _not_required("model_card")
    missing = model.model_card_missing
    return _gate(
        "model_card",
        GATE_LABELS["model_card"],
        GATE_FAIL if missing else GATE_PASS,
        f"Missing: {', '.join(missing)}." if missing else "Description, intended use and limitations filled.",
        True,
    )


def _lineage_gate(version, snapshot: dict[str, Any]) -> dict[str, Any]:
    if not snapshot.get("require_lineage", True):
        return _not_required("lineage")
    if (parts := getattr(version, "llm", None)) is not None:  # an LLM application's parts are its artifact
        message = f"LLM parts, content hash {parts.content_hash[:12]}."
        return _gate("lineage", GATE_LABELS["lineage"], GATE_PASS, message, True)
    missing = _missing(
        (
            ("source commit", version.source_commit),
            ("training run id", version.training_run_id),
            ("training data reference", version.training_data_ref),
        )
    )
    return _gate(
        "lineage",
        GATE_LABELS["lineage"],
        GATE_FAIL if missing else GATE_PASS,
        f"Missing: {', '.join(missing)}."
        if missing
        else f"Commit {version.source_commit[:12]}, run {version.training_run_id}.",
        True,
    )


def _reference_data_gate(version, snapshot: dict[str, Any]) -> dict[str, Any]:
    if not snapshot.get("require_reference_data", False):
        return _not_required("reference_data")
    ok = version.reference_profile_at is not None
    return _gate(
        "reference_data",
        GATE_LABELS["reference_data"],
        GATE_PASS if ok else GATE_FAIL,
        f"Profiled {version.reference_profile_at:%Y-%m-%d %H:%M} UTC." if ok else "No reference data yet.",
        True,
    )


def _monitoring_gate(model, snapshot: dict[str, Any]) -> dict[str, Any]:
    if not snapshot.get("require_monitoring", False):
        return _not_required("monitoring")
    ok = model.monitoring_configured_at is not None
    return _gate(
        "monitoring",
        GATE_LABELS["monitoring"],
        GATE_PASS if ok else GATE_FAIL,
        "Monitoring is configured." if ok else "Monitoring is not configured for this model.",
        True,
    )


def failing_gates(gates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [g for g in gates if g["required"] and g["status"] == GATE_FAIL]


def promotion_evidence(request: PromotionRequest) -> dict[str, Any]:
    """Everything the request page shows side by side."""
    production = production_version(request.version.model)
    gates = promotion_gates(request)
    return {
        "production": production,
        "metrics": metric_comparison(request.version, production),
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
    """The most recent previously-approved production version that is not in production now
    and was not itself rolled back away from."""
    current = ModelVersion.objects.filter(model=model, stage=Stage.PRODUCTION).values_list("pk", flat=True).first()
    rolled_away = StageTransition.objects.filter(
        model=model, kind=StageTransition.Kind.ROLLBACK, from_stage=Stage.PRODUCTION
    ).values("version_id")
    entries = (
        StageTransition.objects.filter(
            model=model,
            to_stage=Stage.PRODUCTION,
            kind=StageTransition.Kind.PROMOTION,
            promotion_request__status=PromotionStatus.APPLIED,
        )
        .exclude(version_id=current)
        .exclude(version_id__in=rolled_away)
        .select_related("version")
        .order_by("-created_at", "-id")
    )
    for entry in entries:
        return entry.version
    return None
