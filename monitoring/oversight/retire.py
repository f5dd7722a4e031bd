"""Retirement of a model's production version (a suspend that leaves none in production)."""

from __future__ import annotations

from django.db import transaction

from mlops_portal import clock
from registry.choices import Stage
from registry.models import ModelVersion, RegisteredModel, StageTransition
from registry.services.audit import AuditContext
from registry.services.stages import PromotionConflict
from registry.services.webhooks import event_record


@transaction.atomic
def model_retire(*, model: RegisteredModel, actor, reason: str, context: AuditContext) -> StageTransition:
    """Archive the production version, leaving none: locks the model row then its versions
    (the promotions' lock order), records the stage transition (flagged for follow-up) and
    its ``stage.changed`` audit event and webhook."""
    model = RegisteredModel.objects.select_for_update().get(pk=model.pk)
    current = ModelVersion.objects.select_for_update().filter(model=model, stage=Stage.PRODUCTION).first()
    if current is None:
        raise PromotionConflict(f"{model.name} has no production version to retire.")
    now = clock.now()
    current.stage, current.stage_changed_at = Stage.ARCHIVED, now
    current.save(update_fields=["stage", "stage_changed_at"])
    transition = StageTransition(
        version=current,
        model=model,
        from_stage=Stage.PRODUCTION,
        to_stage=Stage.ARCHIVED,
        kind=StageTransition.Kind.ROLLBACK,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        reason=reason,
        needs_follow_up=True,
    )
    transition.full_clean()
    transition.save()
    payload = {
        "model": model.name,
        "version": current.version,
        "from_stage": Stage.PRODUCTION,
        "to_stage": Stage.ARCHIVED,
        "kind": "retirement",
        "reason": reason,
        "transition": transition.pk,
    }
    event_record(action="stage.changed", actor=actor, obj=current, model=model, context=context, payload=payload)
    return transition
