"""Promotion workflow: request, review (approve / reject), cancel, apply, rollback, policies.

Lock order, everywhere: the model row, then its versions, then the request row. Every stage
change of a model is serialised on the model row, so exactly one production version exists
at every moment even when approvals land at the same instant from several processes.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from registry import rules
from registry.choices import Decision, PromotionStatus, Stage
from registry.models import (
    MlflowModelLink,
    ModelVersion,
    PromotionPolicy,
    PromotionRequest,
    RegisteredModel,
    Review,
    StageTransition,
)
from registry.selectors.promotions import (
    failing_gates,
    policy_for_tier,
    policy_snapshot,
    promotion_gates,
    rollback_candidate,
)

from . import notifications
from .audit import AuditContext, audit_record, diff, model_snapshot
from .webhooks import webhook_dispatch

logger = logging.getLogger(__name__)

TARGET_STAGES = (Stage.STAGING, Stage.PRODUCTION, Stage.ARCHIVED)
MAX_TEXT = 10_000

POLICY_FIELDS = [
    "approvals_required",
    "approver_group",
    "require_model_card",
    "require_lineage",
    "require_metric_within_tolerance",
    "metric_tolerance",
    "require_reference_data",
    "require_monitoring",
    *("require_live_not_worse", "live_tolerance", "live_min_labelled_pairs"),  # registry/gates_live.py
]


class PromotionConflict(Exception):
    """The action does not fit the current state (not pending, already reviewed, red gates…)."""

    def __init__(self, message: str, details: dict | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}


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


def _clean_text(value: str | None, field: str, *, required: bool, label: str) -> str:
    text = (value or "").strip() if isinstance(value, str) or value is None else None
    if text is None:
        raise ValidationError({field: f"{label} must be text."})
    if required and not text:
        raise ValidationError({field: f"{label} is required."})
    if len(text) > MAX_TEXT:
        raise ValidationError({field: f"{label} is too long (at most {MAX_TEXT} characters)."})
    return text


def _lock_model(model_id: int) -> RegisteredModel:
    return RegisteredModel.objects.select_for_update().get(pk=model_id)


def _lock_versions(model: RegisteredModel) -> dict[int, ModelVersion]:
    return {v.pk: v for v in ModelVersion.objects.select_for_update().filter(model=model).order_by("pk")}


def _lock_request(pk: int) -> PromotionRequest:
    """Lock the model, its versions and the request (in that order); return the fresh request."""
    model_id = PromotionRequest.objects.filter(pk=pk).values_list("version__model_id", flat=True).first()
    if model_id is None:
        raise PromotionRequest.DoesNotExist(f"Promotion request {pk} does not exist.")
    model = _lock_model(model_id)
    versions = _lock_versions(model)
    req = PromotionRequest.objects.select_for_update().select_related("requested_by").get(pk=pk)
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


def _in_group(user, group: str) -> bool:
    return user.groups.filter(name=group).exists()


def _may_approve(user, snapshot: dict[str, Any]) -> bool:
    """Admins, or members of the policy's approver group."""
    return rules.is_admin(user) or _in_group(user, snapshot.get("approver_group") or rules.REVIEWER_GROUP)


def _check_reviewer(req: PromotionRequest, reviewer) -> None:
    if req.requested_by_id == reviewer.pk:
        raise PermissionDenied(
            "You requested this promotion, so you cannot review it: "
            "another reviewer must decide (segregation of duties)."
        )
    if not _may_approve(reviewer, req.policy_snapshot):
        group = req.policy_snapshot.get("approver_group") or rules.REVIEWER_GROUP
        raise PermissionDenied(f"Only members of the '{group}' group or admins may review this promotion.")


def _check_pending(req: PromotionRequest) -> None:
    if req.status != PromotionStatus.PENDING:
        reason = f" ({req.status_reason})" if req.status_reason else ""
        raise PromotionConflict(
            f"Request #{req.pk} is {req.get_status_display().lower()}, not pending{reason}.",
            {"status": req.status},
        )


def _move_stage(
    *,
    version: ModelVersion,
    to_stage: str,
    kind: str,
    actor,
    reason: str,
    context: AuditContext,
    promotion_request: PromotionRequest | None = None,
    needs_follow_up: bool = False,
    now,
) -> StageTransition:
    from_stage = version.stage
    version.stage = to_stage
    version.stage_changed_at = now
    version.save(update_fields=["stage", "stage_changed_at"])
    transition = StageTransition(
        version=version,
        model=version.model,
        from_stage=from_stage,
        to_stage=to_stage,
        kind=kind,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        reason=reason,
        promotion_request=promotion_request,
        needs_follow_up=needs_follow_up,
    )
    transition.full_clean()
    transition.save()
    audit_record(
        actor=actor,
        action="stage.changed",
        obj=version,
        model=version.model,
        context=context,
        before={"stage": from_stage},
        after={
            "stage": to_stage,
            "kind": kind,
            "reason": reason,
            "promotion_request": promotion_request.pk if promotion_request else None,
            "transition": transition.pk,
        },
    )
    webhook_dispatch(
        event="stage.changed",
        model=version.model,
        actor=actor,
        payload={
            "model": version.model.name,
            "version": version.version,
            "from_stage": from_stage,
            "to_stage": to_stage,
            "kind": kind,
            "reason": reason,
            "promotion_request": promotion_request.pk if promotion_request else None,
        },
    )
    return transition


# ---------------------------------------------------------------- services


@transaction.atomic
def promotion_request(
    *, version: ModelVersion, target_stage: str, requester, justification: str, context: AuditContext
) -> PromotionRequest:
    """Open a request to move ``version`` to ``target_stage`` under the policy in force now."""
    model = _lock_model(version.model_id)
    versions = _lock_versions(model)
    version = versions[version.pk]
    version.model = model
    if not rules.can_request_promotion(requester, model):
        raise PermissionDenied("Only the model's owner or an admin may request a promotion.")
    if target_stage not in TARGET_STAGES:
        raise ValidationError(
            {"target_stage": f"Choose one of: {', '.join(str(s) for s in TARGET_STAGES)} (got '{target_stage}')."}
        )
    justification = _clean_text(justification, "justification", required=True, label="A justification")
    if version.stage == target_stage:
        raise ValidationError({"target_stage": f"{version} is already in {target_stage}."})
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
    audit_record(
        actor=requester,
        action="promotion.requested",
        obj=req,
        model=model,
        context=context,
        after={**_request_summary(req), "policy": req.policy_snapshot},
    )
    webhook_dispatch(
        event="promotion.requested", model=model, actor=requester, payload={"request": _request_summary(req)}
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
) -> Review:
    """Record one approval; apply the promotion at once when the policy's approvals are met.

    Red required gates refuse the approval unless an admin gives ``override_reason`` (recorded).
    """
    req = _lock_request(request.pk)
    _check_reviewer(req, reviewer)
    _check_pending(req)
    comment = _clean_text(comment, "comment", required=False, label="The comment")
    override_reason = _clean_text(override_reason, "override_reason", required=False, label="The override reason")
    if req.reviews.filter(reviewer=reviewer).exists():
        raise PromotionConflict(f"You have already reviewed request #{req.pk}.")
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
    fields = ["gate_results"]
    if red and override_reason:
        req.override_reason = override_reason
        req.overridden_by = reviewer
        fields += ["override_reason", "overridden_by"]
    req.save(update_fields=fields)
    approvals = _approvals(req)
    audit_record(
        actor=reviewer,
        action="promotion.approved",
        obj=req,
        model=req.version.model,
        context=context,
        after={
            "review": review.pk,
            "comment": comment,
            "approvals": approvals,
            "approvals_required": req.policy_snapshot.get("approvals_required", 1),
            "red_gates": [g["key"] for g in red],
            "override_reason": override_reason if red else "",
        },
    )
    webhook_dispatch(
        event="promotion.approved",
        model=req.version.model,
        actor=reviewer,
        payload={"request": _request_summary(req), "comment": comment, "approvals": approvals},
    )
    if approvals >= int(req.policy_snapshot.get("approvals_required", 1)):
        promotion_apply(request=req, actor=reviewer, context=context)
    return review


def _approvals(req: PromotionRequest) -> int:
    """Approvals from distinct reviewers who may approve under the snapshot (never the requester)."""
    reviews = req.reviews.filter(decision=Decision.APPROVE).exclude(reviewer=req.requested_by)
    reviewers = get_user_model().objects.filter(pk__in=reviews.values("reviewer_id")).distinct()
    return sum(1 for user in reviewers if _may_approve(user, req.policy_snapshot))


@transaction.atomic
def promotion_apply(*, request: PromotionRequest, actor, context: AuditContext) -> PromotionRequest:
    """Move the stage now (internal: called when approvals are met).

    For production the previous production version is archived first. Pending requests of
    older versions for the same target stage become stale (cancelled with a reason).
    """
    req = _lock_request(request.pk)
    _check_pending(req)
    required = int(req.policy_snapshot.get("approvals_required", 1))
    if _approvals(req) < required:
        raise PromotionConflict(
            f"Request #{req.pk} has {_approvals(req)} of {required} approvals; it cannot be applied."
        )
    model = req.version.model
    version = req.version
    now = timezone.now()
    moved = []
    if req.target_stage == Stage.PRODUCTION:
        for other in ModelVersion.objects.filter(model=model, stage=Stage.PRODUCTION).exclude(pk=version.pk):
            other.model = model
            moved.append(
                _move_stage(
                    version=other,
                    to_stage=Stage.ARCHIVED,
                    kind=StageTransition.Kind.ARCHIVED_BY_PROMOTION,
                    actor=actor,
                    reason=f"Superseded by v{version.version} (request #{req.pk}).",
                    promotion_request=req,
                    context=context,
                    now=now,
                )
            )
    moved.append(
        _move_stage(
            version=version,
            to_stage=req.target_stage,
            kind=StageTransition.Kind.PROMOTION,
            actor=actor,
            reason=req.justification,
            promotion_request=req,
            context=context,
            now=now,
        )
    )
    req.status = PromotionStatus.APPLIED
    req.decided_at = req.decided_at or now
    req.applied_at = now
    req.save(update_fields=["status", "decided_at", "applied_at"])
    audit_record(
        actor=actor,
        action="promotion.applied",
        obj=req,
        model=model,
        context=context,
        before={"status": PromotionStatus.PENDING},
        after={"status": req.status, "stage": req.target_stage, "transitions": [t.pk for t in moved]},
    )
    webhook_dispatch(event="promotion.applied", model=model, actor=actor, payload={"request": _request_summary(req)})
    stale = PromotionRequest.objects.select_for_update().filter(
        version__model=model,
        target_stage=req.target_stage,
        status=PromotionStatus.PENDING,
        version__version__lt=version.version,
    )
    for old in stale.select_related("version", "requested_by"):
        old.version.model = model
        _cancel(
            req=old,
            actor=actor,
            reason=f"Stale: v{version.version} was promoted to {req.target_stage} first (request #{req.pk}).",
            context=context,
            now=now,
        )
        notifications.notify_promotion_decided(old)
    notifications.notify_promotion_decided(req)
    if req.target_stage == Stage.PRODUCTION:
        _mlflow_writeback_on_commit(model)
    return req


@transaction.atomic
def promotion_reject(*, request: PromotionRequest, reviewer, comment: str, context: AuditContext) -> Review:
    """A rejection ends the request. The comment (the reason) is mandatory."""
    req = _lock_request(request.pk)
    _check_reviewer(req, reviewer)
    _check_pending(req)
    comment = _clean_text(comment, "comment", required=True, label="A comment explaining the rejection")
    if req.reviews.filter(reviewer=reviewer).exists():
        raise PromotionConflict(f"You have already reviewed request #{req.pk}.")
    review = Review(
        request=req, reviewer=reviewer, requester=req.requested_by, decision=Decision.REJECT, comment=comment
    )
    review.full_clean()
    review.save()
    req.status = PromotionStatus.REJECTED
    req.status_reason = comment
    req.decided_at = timezone.now()
    req.gate_results = promotion_gates(req)
    req.save(update_fields=["status", "status_reason", "decided_at", "gate_results"])
    audit_record(
        actor=reviewer,
        action="promotion.rejected",
        obj=req,
        model=req.version.model,
        context=context,
        before={"status": PromotionStatus.PENDING},
        after={"status": req.status, "review": review.pk, "comment": comment},
    )
    webhook_dispatch(
        event="promotion.rejected",
        model=req.version.model,
        actor=reviewer,
        payload={"request": _request_summary(req), "comment": comment},
    )
    notifications.notify_promotion_decided(req)
    return review


def _cancel(*, req: PromotionRequest, actor, reason: str, context: AuditContext, now) -> None:
    req.status = PromotionStatus.CANCELLED
    req.status_reason = reason
    req.decided_at = now
    req.save(update_fields=["status", "status_reason", "decided_at"])
    audit_record(
        actor=actor,
        action="promotion.cancelled",
        obj=req,
        model=req.version.model,
        context=context,
        before={"status": PromotionStatus.PENDING},
        after={"status": req.status, "reason": reason},
    )
    webhook_dispatch(
        event="promotion.cancelled",
        model=req.version.model,
        actor=actor,
        payload={"request": _request_summary(req), "reason": reason},
    )


@transaction.atomic
def promotion_cancel(*, request: PromotionRequest, actor, context: AuditContext, comment: str = "") -> PromotionRequest:
    """The requester (or an admin) withdraws a pending request."""
    req = _lock_request(request.pk)
    if not rules.can_cancel_promotion(actor, req):
        raise PermissionDenied("Only the requester or an admin may cancel this request.")
    _check_pending(req)
    comment = _clean_text(comment, "comment", required=False, label="The comment")
    reason = comment or f"Cancelled by {actor.get_username()}."
    _cancel(req=req, actor=actor, reason=reason, context=context, now=timezone.now())
    return req


@transaction.atomic
def model_rollback(*, model: RegisteredModel, actor, reason: str, context: AuditContext) -> StageTransition:
    """Restore the most recent previously-approved production version; archive the current one.

    Both transitions are of kind ``rollback`` and flagged for follow-up review.
    """
    model = _lock_model(model.pk)
    versions = _lock_versions(model)
    if not rules.can_rollback(actor, model):
        raise PermissionDenied("Only the model's owner, a reviewer or an admin may roll back.")
    reason = _clean_text(reason, "reason", required=True, label="A reason for the rollback")
    current = next((v for v in versions.values() if v.stage == Stage.PRODUCTION), None)
    if current is None:
        raise PromotionConflict(f"{model.name} has no production version to roll back.")
    target = rollback_candidate(model)
    if target is None:
        raise PromotionConflict(f"{model.name} has no previously approved production version to restore.")
    target = versions[target.pk]
    current.model = target.model = model
    now = timezone.now()
    archived = _move_stage(
        version=current,
        to_stage=Stage.ARCHIVED,
        kind=StageTransition.Kind.ROLLBACK,
        actor=actor,
        reason=reason,
        context=context,
        needs_follow_up=True,
        now=now,
    )
    restored = _move_stage(
        version=target,
        to_stage=Stage.PRODUCTION,
        kind=StageTransition.Kind.ROLLBACK,
        actor=actor,
        reason=reason,
        context=context,
        needs_follow_up=True,
        now=now,
    )
    audit_record(
        actor=actor,
        action="rollback",
        obj=model,
        context=context,
        before={"production_version": current.version},
        after={
            "production_version": target.version,
            "reason": reason,
            "transitions": [archived.pk, restored.pk],
            "needs_follow_up": True,
        },
    )
    webhook_dispatch(
        event="rollback",
        model=model,
        actor=actor,
        payload={"model": model.name, "from_version": current.version, "to_version": target.version, "reason": reason},
    )
    notifications.notify_rollback(model=model, restored=target, archived=current, actor=actor, reason=reason)
    _mlflow_writeback_on_commit(model)
    return restored


def _mlflow_writeback_on_commit(model: RegisteredModel) -> None:
    """Models imported from MLflow: move the production alias there once this change commits
    (the periodic sync retries if the server is down)."""
    if not MlflowModelLink.objects.filter(model=model, server__enabled=True).exists():
        return
    from registry.tasks import mlflow_writeback_model

    def enqueue() -> None:
        try:
            mlflow_writeback_model.delay(model.pk)
        except Exception:  # broker down: the periodic sync writes it back later
            logger.warning("could not enqueue the MLflow write-back for %s", model.name, exc_info=True)

    transaction.on_commit(enqueue)


@transaction.atomic
def policy_update(*, policy: PromotionPolicy, actor, changes: dict[str, Any], context: AuditContext) -> PromotionPolicy:
    """Change a tier's policy (admins only). Requests already open keep their snapshot."""
    if not rules.can_manage_policies(actor):
        raise PermissionDenied("Only admins may change promotion policies.")
    unknown = sorted(set(changes) - set(POLICY_FIELDS))
    if unknown:
        raise ValidationError({"__all__": f"Unknown policy field(s): {', '.join(unknown)}."})
    policy = PromotionPolicy.objects.select_for_update().get(pk=policy.pk)
    before = model_snapshot(policy, POLICY_FIELDS)
    for field, value in changes.items():
        setattr(policy, field, value)
    policy.updated_by = actor
    policy.full_clean()
    if not Group.objects.filter(name=policy.approver_group).exists():
        raise ValidationError({"approver_group": f"There is no group named '{policy.approver_group}'."})
    policy.save()
    after = model_snapshot(policy, POLICY_FIELDS)
    changed_before, changed_after = diff(before, after)
    if changed_after:
        audit_record(
            actor=actor,
            action="policy.updated",
            obj=policy,
            context=context,
            before=changed_before,
            after={**changed_after, "risk_tier": policy.risk_tier},
        )
    return policy
