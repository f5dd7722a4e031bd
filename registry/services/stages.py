"""Stage changes of model versions: the one writer of a stage (a transition row, the audit
event and the webhook from one place), the row locks every stage change takes, and rollback.

Lock order, everywhere: the model row, then its versions, then the request row.
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from mlops_portal import clock
from registry import rules
from registry.choices import Stage
from registry.models import MlflowModelLink, ModelVersion, PromotionRequest, RegisteredModel, StageTransition
from registry.selectors.promotions import rollback_candidate

from . import notifications
from .audit import AuditContext
from .webhooks import event_record

logger = logging.getLogger(__name__)

MAX_TEXT = 10_000


class PromotionConflict(Exception):
    """The action does not fit the current state (not pending, already reviewed, red gates…)."""

    def __init__(self, message: str, details: dict | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}


def clean_text(value: str | None, field: str, *, required: bool, label: str) -> str:
    text = (value or "").strip() if isinstance(value, str) or value is None else None
    if text is None:
        raise ValidationError({field: f"{label} must be text."})
    if required and not text:
        raise ValidationError({field: f"{label} is required."})
    if len(text) > MAX_TEXT:
        raise ValidationError({field: f"{label} is too long (at most {MAX_TEXT} characters)."})
    return text


def lock_model(model_id: int) -> RegisteredModel:
    return RegisteredModel.objects.select_for_update().get(pk=model_id)


def lock_versions(model: RegisteredModel) -> dict[int, ModelVersion]:
    return {v.pk: v for v in ModelVersion.objects.select_for_update().filter(model=model).order_by("pk")}


def stage_move(
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
    event_record(
        actor=actor,
        action="stage.changed",
        obj=version,
        model=version.model,
        context=context,
        before={"stage": from_stage},
        payload={
            "model": version.model.name,
            "version": version.version,
            "from_stage": from_stage,
            "to_stage": to_stage,
            "stage": to_stage,
            "kind": kind,
            "reason": reason,
            "promotion_request": promotion_request.pk if promotion_request else None,
            "transition": transition.pk,
        },
    )
    return transition


@transaction.atomic
def model_rollback(*, model: RegisteredModel, actor, reason: str, context: AuditContext) -> StageTransition:
    """Restore the most recent previously-approved production version; archive the current one.

    Both transitions are of kind ``rollback`` and flagged for follow-up review.
    """
    model = lock_model(model.pk)
    versions = lock_versions(model)
    if not rules.can_rollback(actor, model):
        raise PermissionDenied("Only the model's owner, a reviewer or an admin may roll back.")
    reason = clean_text(reason, "reason", required=True, label="A reason for the rollback")
    current = next((v for v in versions.values() if v.stage == Stage.PRODUCTION), None)
    if current is None:
        raise PromotionConflict(f"{model.name} has no production version to roll back.")
    target = rollback_candidate(model)
    if target is None:
        raise PromotionConflict(f"{model.name} has no previously approved production version to restore.")
    target = versions[target.pk]
    current.model = target.model = model
    now = clock.now()
    archived, restored = (  # the current version leaves first: one production version at a time
        stage_move(
            version=version,
            to_stage=to_stage,
            kind=StageTransition.Kind.ROLLBACK,
            actor=actor,
            reason=reason,
            context=context,
            needs_follow_up=True,
            now=now,
        )
        for version, to_stage in ((current, Stage.ARCHIVED), (target, Stage.PRODUCTION))
    )
    event_record(
        actor=actor,
        action="rollback",
        obj=model,
        model=model,
        context=context,
        before={"production_version": current.version},
        payload={
            "model": model.name,
            "from_version": current.version,
            "to_version": target.version,
            "production_version": target.version,
            "reason": reason,
            "transitions": [archived.pk, restored.pk],
            "needs_follow_up": True,
        },
    )
    notifications.notify_rollback(model=model, restored=target, archived=current, actor=actor, reason=reason)
    mlflow_writeback_on_commit(model)
    return restored


def mlflow_writeback_on_commit(model: RegisteredModel) -> None:
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
