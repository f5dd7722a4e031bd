"""Promotion workflow: request, review (approve / reject), cancel, apply. Stage changes and
rollback live in ``stages.py``, policies in ``policies.py``.

Lock order, everywhere: the model row, then its versions, then the request row. Every stage
change of a model is serialised on the model row, so exactly one production version exists
at every moment even when approvals land at the same instant from several processes.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from mlops_portal import clock
from registry import rules
from registry.choices import Decision, EvaluationStatus, PromotionStatus, Stage
from registry.evidence_runs import latest_run
from registry.models import (
    ModelVersion,
    PromotionRequest,
    Review,
    StageTransition,
)
from registry.selectors.promotions import (
    failing_gates,
    policy_for_tier,
    policy_snapshot,
    production_version,
    promotion_approvals,
    promotion_gates,
)

from . import notifications
from .audit import AuditContext
from .stages import (
    PromotionConflict,
    clean_text,
    lock_model,
    lock_versions,
    mlflow_writeback_on_commit,
    stage_move,
)
from .webhooks import event_record

logger = logging.getLogger(__name__)

TARGET_STAGES = (Stage.STAGING, Stage.PRODUCTION, Stage.ARCHIVED)


class GatesFailed(PromotionConflict):
    """Required gates are red and no admin override was given."""

    def __init__(self, gates: list[dict[str, Any]]):
        names = ", ".join(g["label"] for g in gates)
        super().__init__(
            f"Required gates are red: {names}. Fix them, or an admin may approve with an override reason.",
            {"gates": [{"key": g["key"], "label": g["label"], "detail": g["detail"]} for g in gates]},
        )
        self.gates = gates


# ---------------------------------------------------------------- helpers


def _lock_request(pk: int) -> PromotionRequest:
    """Lock the model, its versions and the request (in that order); return the fresh request."""
    model_id = PromotionRequest.objects.filter(pk=pk).values_list("version__model_id", flat=True).first()
    if model_id is None:
        raise PromotionRequest.DoesNotExist(f"Promotion request {pk} does not exist.")
    model = lock_model(model_id)
    versions = lock_versions(model)
    req = PromotionRequest.objects.select_for_update(of=("self",)).select_related("requested_by").get(pk=pk)
    req.version = versions[req.version_id]
    req.version.model = model
    return req


def _request_summary(req: PromotionRequest) -> dict[str, Any]:
    return {
        "id": req.pk,
        "model": req.version.model.name,
        "version": req.version.version,
        "target_stage": req.target_stage,
        "status": req.status,
        "requested_by": req.requested_by.get_username(),
        "justification": req.justification,
    }


def _request_event(
    req: PromotionRequest, action: str, *, actor, context: AuditContext, details: dict, decided: bool = False
) -> None:
    """The request's audit event and webhook ``action``, from one payload: the request's summary
    and ``details``. A decided request (no longer pending) adds its status and that it was pending."""
    payload = {"request": _request_summary(req)}
    before = None
    if decided:
        payload["status"] = req.status
        before = {"status": PromotionStatus.PENDING}
    event_record(
        actor=actor,
        action=action,
        obj=req,
        model=req.version.model,
        context=context,
        before=before,
        payload=payload | details,
    )


def _check_reviewer(req: PromotionRequest, reviewer) -> None:
    """``rules.can_review_promotion``, with the reason when it says no: 403 for the requester, the
    model's owner and anyone outside the snapshot's approver group, 409 (after the pending check) for a second
    review by the same person."""
    if rules.is_requester(reviewer, req):
        raise PermissionDenied(
            "You requested this promotion, so you cannot review it: "
            "another reviewer must decide (segregation of duties)."
        )
    if rules.is_request_model_owner(reviewer, req):
        raise PermissionDenied(
            "You own this model, so you cannot review its promotion: "
            "another reviewer must decide (segregation of duties)."
        )
    if not rules.may_approve_under_policy(reviewer, req):
        raise PermissionDenied(
            f"Only members of the '{rules.approver_group(req)}' group or admins may review this promotion."
        )
    _check_pending(req)
    if not rules.can_review_promotion(reviewer, req):
        raise PromotionConflict(f"You have already reviewed request #{req.pk}.")


def _check_production_seen(req: PromotionRequest, seen: int | None) -> int | None:
    """Refuse an approval given on a comparison with a production version that has since left;
    return the version in production (the one the approval is compared with; None if none)."""
    current = production_version(req.version.model)
    now = current.version if current is not None else 0
    if seen is None or now == seen:
        return now or None
    now_text, seen_text = (f"v{n}" if n else "no version" for n in (now, seen))
    raise PromotionConflict(
        f"Production is now {now_text}; the page you approved from compared the candidate with {seen_text}. "
        "Reload the page and review the new comparison.",
        {"production_seen": seen, "production": now},
    )


def _record_evidence(req: PromotionRequest) -> list[str]:
    """Record on ``req`` the evidence it is decided on now: the version's latest evaluation run, if
    computed (one still computing showed no results: it never becomes the evidence), and its
    offline metrics (``registry.evidence_runs``: a decided request's page, gates and API read them,
    whatever is uploaded since). Returns the fields to save."""
    run = latest_run(req.version)
    req.evaluation_run = run if run is not None and run.status == EvaluationStatus.DONE else None  # results seen
    metrics = req.version.metrics
    req.decided_metrics = dict(metrics) if isinstance(metrics, dict) else {}
    return ["evaluation_run", "decided_metrics"]


def _check_pending(req: PromotionRequest) -> None:
    if req.status != PromotionStatus.PENDING:
        reason = f" ({req.status_reason})" if req.status_reason else ""
        raise PromotionConflict(
            f"Request #{req.pk} is {req.get_status_display().lower()}, not pending{reason}.",
            {"status": req.status},
        )


@transaction.atomic
def promotion_request(
    *, version: ModelVersion, target_stage: str, requester, justification: str, context: AuditContext
) -> PromotionRequest:
    """Open a request to move ``version`` to ``target_stage`` under the policy in force now."""
    model = lock_model(version.model_id)
    versions = lock_versions(model)
    version = versions[version.pk]
    version.model = model
    if not rules.can_request_promotion(requester, model):
        raise PermissionDenied("Only the model's owner or an admin may request a promotion.")
    if target_stage not in TARGET_STAGES:
        raise ValidationError(
            {"target_stage": f"Choose one of: {', '.join(str(s) for s in TARGET_STAGES)} (got '{target_stage}')."}
        )
    justification = clean_text(justification, "justification", required=True, label="A justification")
    if version.stage == target_stage:
        raise PromotionConflict(f"{version} is already in {target_stage}.", {"stage": version.stage})
    pending = PromotionRequest.objects.filter(version=version, status=PromotionStatus.PENDING).first()
    if pending is not None:
        raise PromotionConflict(
            f"{version} already has a pending request (#{pending.pk} to {pending.target_stage}); "
            "cancel it or wait for its decision.",
            {"pending_request": pending.pk},
        )
    policy = policy_for_tier(model.risk_tier)
    req = PromotionRequest(
        version=version,
        target_stage=target_stage,
        requested_by=requester,
        justification=justification,
        status=PromotionStatus.PENDING,
        policy_snapshot=policy_snapshot(policy),
    )
    req.full_clean()
    req.save()
    _request_event(
        req, "promotion.requested", actor=requester, context=context, details={"policy": req.policy_snapshot}
    )
    notifications.notify_promotion_requested(req)
    return req


@transaction.atomic
def promotion_approve(
    *,
    request: PromotionRequest,
    reviewer,
    comment: str = "",
    context: AuditContext,
    override_reason: str | None = None,
    production_seen: int | None = None,
) -> Review:
    """Record one approval; apply the promotion at once when the policy's approvals are met.

    Red required gates refuse the approval unless an admin gives ``override_reason`` (recorded).
    ``production_seen`` is the production version the reviewer's page compared the candidate with
    (0: none); if production has changed since, the approval is refused (``PromotionConflict``).
    """
    req = _lock_request(request.pk)
    _check_reviewer(req, reviewer)
    compared_with = _check_production_seen(req, production_seen)
    comment = clean_text(comment, "comment", required=False, label="The comment")
    override_reason = clean_text(override_reason, "override_reason", required=False, label="The override reason")
    gates = promotion_gates(req)
    red = failing_gates(gates)
    if override_reason and not rules.is_admin(reviewer):
        raise PermissionDenied("Only an admin may override red gates.")
    if red and not override_reason:
        raise GatesFailed(red)
    review = Review(
        request=req, reviewer=reviewer, requester=req.requested_by, decision=Decision.APPROVE, comment=comment
    )
    review.full_clean()
    review.save()
    req.gate_results = gates
    fields = ["gate_results", *_record_evidence(req)]
    if red and override_reason:
        req.override_reason = override_reason
        req.overridden_by = reviewer
        fields += ["override_reason", "overridden_by"]
    req.save(update_fields=fields)
    approvals = promotion_approvals(req)
    _request_event(
        req,
        "promotion.approved",
        actor=reviewer,
        context=context,
        details={
            "review": review.pk,
            "comment": comment,
            "approvals": approvals,
            "approvals_required": req.policy_snapshot.get("approvals_required", 1),
            "compared_with_production": compared_with,
            "red_gates": [g["key"] for g in red],
            "override_reason": override_reason if red else "",
            "evaluation_run": req.evaluation_run_id,
        },
    )
    if approvals >= int(req.policy_snapshot.get("approvals_required", 1)):
        promotion_apply(request=req, actor=reviewer, context=context)
    return review


@transaction.atomic
def promotion_apply(*, request: PromotionRequest, actor, context: AuditContext) -> PromotionRequest:
    """Move the stage now (internal: called when approvals are met).

    For production the previous production version is archived first. Pending requests of
    older versions for the same target stage become stale (cancelled with a reason).
    """
    req = _lock_request(request.pk)
    _check_pending(req)
    required = int(req.policy_snapshot.get("approvals_required", 1))
    approvals = promotion_approvals(req)
    if approvals < required:
        raise PromotionConflict(f"Request #{req.pk} has {approvals} of {required} approvals; it cannot be applied.")
    model = req.version.model
    version = req.version
    now = clock.now()
    moves = []  # the superseded production versions leave first: one production version at a time
    if req.target_stage == Stage.PRODUCTION:
        superseded = f"Superseded by v{version.version} (request #{req.pk})."
        for other in ModelVersion.objects.filter(model=model, stage=Stage.PRODUCTION).exclude(pk=version.pk):
            moves.append((other, Stage.ARCHIVED, StageTransition.Kind.ARCHIVED_BY_PROMOTION, superseded))
    moves.append((version, req.target_stage, StageTransition.Kind.PROMOTION, req.justification))
    moved = []
    for moving, to_stage, kind, reason in moves:
        moving.model = model
        moved.append(
            stage_move(
                version=moving,
                to_stage=to_stage,
                kind=kind,
                actor=actor,
                reason=reason,
                promotion_request=req,
                context=context,
                now=now,
            )
        )
    req.status = PromotionStatus.APPLIED
    req.decided_at = req.decided_at or now
    req.applied_at = now
    req.save(update_fields=["status", "decided_at", "applied_at"])
    details = {"stage": req.target_stage, "transitions": [t.pk for t in moved]}
    _request_event(req, "promotion.applied", actor=actor, context=context, details=details, decided=True)
    _cancel_stale(applied=req, actor=actor, context=context, now=now)
    notifications.notify_promotion_decided(req)
    if req.target_stage == Stage.PRODUCTION:
        mlflow_writeback_on_commit(model)
    return req


@transaction.atomic
def promotion_reject(*, request: PromotionRequest, reviewer, comment: str, context: AuditContext) -> Review:
    """A rejection ends the request. The comment (the reason) is mandatory."""
    req = _lock_request(request.pk)
    _check_reviewer(req, reviewer)
    comment = clean_text(comment, "comment", required=True, label="A comment explaining the rejection")
    review = Review(
        request=req, reviewer=reviewer, requester=req.requested_by, decision=Decision.REJECT, comment=comment
    )
    review.full_clean()
    review.save()
    recorded = _record_evidence(req)  # before the gates: a decided request's gates read it
    req.status = PromotionStatus.REJECTED
    req.status_reason = comment
    req.decided_at = clock.now()
    req.gate_results = promotion_gates(req)
    req.save(update_fields=["status", "status_reason", "decided_at", "gate_results", *recorded])
    details = {"review": review.pk, "comment": comment, "evaluation_run": req.evaluation_run_id}
    _request_event(req, "promotion.rejected", actor=reviewer, context=context, details=details, decided=True)
    notifications.notify_promotion_decided(req)
    return review


def _cancel_stale(*, applied: PromotionRequest, actor, context: AuditContext, now) -> None:
    """Pending requests of older versions for the stage just applied become stale (cancelled)."""
    model, version = applied.version.model, applied.version
    stale = PromotionRequest.objects.select_for_update(of=("self",)).filter(
        version__model=model,
        target_stage=applied.target_stage,
        status=PromotionStatus.PENDING,
        version__version__lt=version.version,
    )
    for old in stale.select_related("version", "requested_by"):
        old.version.model = model
        _cancel(
            req=old,
            actor=actor,
            reason=f"Stale: v{version.version} was promoted to {applied.target_stage} first (request #{applied.pk}).",
            context=context,
            now=now,
        )
        notifications.notify_promotion_decided(old)


def _cancel(*, req: PromotionRequest, actor, reason: str, context: AuditContext, now) -> None:
    """Cancel: the gates are frozen as at the cancellation, as a decision freezes them."""
    recorded = _record_evidence(req)  # before the gates: a decided request's gates read it
    req.status = PromotionStatus.CANCELLED
    req.status_reason = reason
    req.decided_at = now
    req.gate_results = promotion_gates(req)
    req.save(update_fields=["status", "status_reason", "decided_at", "gate_results", *recorded])
    details = {"reason": reason, "evaluation_run": req.evaluation_run_id}
    _request_event(req, "promotion.cancelled", actor=actor, context=context, details=details, decided=True)


@transaction.atomic
def promotion_cancel(*, request: PromotionRequest, actor, context: AuditContext, comment: str = "") -> PromotionRequest:
    """The requester (or an admin) withdraws a pending request."""
    req = _lock_request(request.pk)
    if not rules.can_cancel_promotion(actor, req):
        raise PermissionDenied("Only the requester or an admin may cancel this request.")
    _check_pending(req)
    comment = clean_text(comment, "comment", required=False, label="The comment")
    reason = comment or f"Cancelled by {actor.get_username()}."
    _cancel(req=req, actor=actor, reason=reason, context=context, now=clock.now())
    return req
