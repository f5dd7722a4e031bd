"""Periodic reviews (SR 26-2 ongoing monitoring and trigger-based review): open on the cadence of
the risk tier or on a trigger, attest (owner), validate (a reviewer who is not the owner; high
risk only), and the beat sweep that opens due reviews and reacts to critical alerts.

One service per transition, audited with its webhook in the same transaction. At most one
review per model is open (database constraint); a trigger on a model that has one attaches to
it and brings its due date forward.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max, Q

from mlops_portal import clock
from monitoring.choices import AlertKind, AlertSeverity, AlertStatus, ReviewStatus, ReviewTriggerKind
from monitoring.models import Alert
from registry.choices import RiskTier, Stage
from registry.models import RegisteredModel
from registry.services.audit import WORKER, AuditContext
from registry.services.webhooks import event_record

from . import notify
from .incidents import IncidentConflict, due_moment, oversight_text
from .models import Incident, PeriodicReview, ReviewTrigger
from .plan import review_cadence_days
from .rules import can_attest_review, can_validate, can_validate_review

TRIGGER_ALERT_KINDS = {AlertKind.DRIFT: ReviewTriggerKind.DRIFT_ALERT, AlertKind.PREDICTION_DRIFT: "drift_alert"}


class ReviewConflict(IncidentConflict):
    """The review is not in a state that allows the action (API: 409)."""


def _days(name: str, default: int) -> dt.timedelta:
    return dt.timedelta(days=int(getattr(settings, name, default)))


def review_payload(review: PeriodicReview) -> dict[str, Any]:
    return {
        "review": review.pk,
        "model": review.model.name,
        "trigger": review.trigger,
        "status": review.status,
        "due_at": review.due_at.isoformat(),
        "needs_validator": review.needs_validator,
        "url": notify.link(review),
    }


def _record(review: PeriodicReview, what: str, *, actor, context: AuditContext, **extra) -> None:
    payload = review_payload(review) | extra
    event_record(action=f"review.{what}", actor=actor, obj=review, model=review.model, context=context, payload=payload)


def _open(*, model, trigger: str, reason: str, due_at, actor, context: AuditContext) -> PeriodicReview:
    now = clock.now()
    review = PeriodicReview(
        model=model,
        owner=model.owner,
        trigger=trigger,
        reason=reason,
        needs_validator=model.risk_tier == RiskTier.HIGH,
        due_at=due_at,
        opened_at=now,
    )
    review.full_clean(validate_constraints=False)
    try:
        with transaction.atomic():
            review.save()
    except IntegrityError as exc:
        raise ReviewConflict(f"{model.name} already has an open review.") from exc
    _record(review, "opened", actor=actor, context=context, reason=reason)
    notify.mail_on_commit(
        model,
        f"[MLOps] Review of {model.name} due {due_at:%Y-%m-%d}",
        f"{reason}\n\n{notify.link(review)}\n",
    )
    return review


@transaction.atomic
def review_open(
    *, model: RegisteredModel, actor, reason: str, context: AuditContext, due_at=None, trigger: str = "manual"
) -> PeriodicReview:
    """A review requested by the owner, a validator or an admin (``manual``), or one they open
    ahead of its cadence (``scheduled``)."""
    if trigger not in (ReviewTriggerKind.MANUAL, ReviewTriggerKind.SCHEDULED):
        raise ValidationError({"trigger": "manual or scheduled."})
    if not (can_attest_review(actor, model) or can_validate(actor, model)):
        raise PermissionDenied("Only the owner, a validator or an admin may open a review.")
    reason = oversight_text(reason, "reason", required=True)
    now = clock.now()
    due_at = due_at or now + _days("REVIEW_TRIGGER_DUE_DAYS", 14)
    due_at = due_moment(due_at, now=now)
    RegisteredModel.objects.select_for_update().filter(pk=model.pk).first()
    return _open(model=model, trigger=trigger, reason=reason, due_at=due_at, actor=actor, context=context)


@transaction.atomic
def review_trigger(
    *,
    model: RegisteredModel,
    kind: str,
    actor=None,
    context: AuditContext = WORKER,
    alert: Alert | None = None,
    incident: Incident | None = None,
) -> PeriodicReview | None:
    """A trigger (critical drift alert, fairness breach, new incident) opens an unscheduled
    review, or brings the open one forward. Once per alert or incident (``ReviewTrigger``)."""
    if alert is not None and ReviewTrigger.objects.filter(alert=alert).exists():
        return None
    if incident is not None and ReviewTrigger.objects.filter(incident=incident).exists():
        return None
    RegisteredModel.objects.select_for_update().filter(pk=model.pk).first()
    now = clock.now()
    due_at = now + _days("REVIEW_TRIGGER_DUE_DAYS", 14)
    what = f"alert #{alert.pk}: {alert.title}" if alert else f"incident #{incident.pk}" if incident else kind
    reason = f"Triggered by {ReviewTriggerKind(kind).label.lower()} ({what})."
    review = (
        PeriodicReview.objects.select_for_update().filter(model=model).exclude(status=ReviewStatus.COMPLETED).first()
    )
    if review is None:
        review = _open(model=model, trigger=kind, reason=reason, due_at=due_at, actor=actor, context=context)
    else:
        review.due_at = min(review.due_at, due_at)
        review.save(update_fields=["due_at"])
        _record(review, "triggered", actor=actor, context=context, reason=reason)
    ReviewTrigger.objects.create(review=review, kind=kind, alert=alert, incident=incident, created_at=now)
    return review


def _lock(review: PeriodicReview) -> PeriodicReview:
    return (
        PeriodicReview.objects.select_for_update(of=("self",)).select_related("model", "model__owner").get(pk=review.pk)
    )


@transaction.atomic
def review_attest(
    *,
    review: PeriodicReview,
    actor,
    card_true: bool,
    intended_use_true: bool,
    context: AuditContext,
    comment: str = "",
) -> PeriodicReview:
    """The owner attests that the model card and the intended use are still true."""
    review = _lock(review)
    if not can_attest_review(actor, review.model):
        raise PermissionDenied("Only the model's owner or an admin may attest its review.")
    if review.status != ReviewStatus.OPEN:
        raise ReviewConflict(f"Review #{review.pk} is {review.get_status_display().lower()}, not open.")
    if card_true is not True or intended_use_true is not True:
        raise ValidationError(
            {"card_true": "Attest both, or update the model card and intended use first, then attest."}
        )
    now = clock.now()
    review.attestation = oversight_text(comment)
    review.attested_by, review.attested_at = actor, now
    review.status = ReviewStatus.ATTESTED if review.needs_validator else ReviewStatus.COMPLETED
    review.completed_at = None if review.needs_validator else now
    review.full_clean()
    review.save()
    _record(review, "attested", actor=actor, context=context, comment=review.attestation)
    return review


@transaction.atomic
def review_validate(*, review: PeriodicReview, actor, comment: str, context: AuditContext) -> PeriodicReview:
    """A validator (a reviewer who does not own the model, and did not attest this review) signs
    the revalidation: two people, as the owner's attestation and the validation are two checks."""
    review = _lock(review)
    if not can_validate_review(actor, review):
        raise PermissionDenied(
            "Only a reviewer who does not own the model, and did not attest this review, may sign its revalidation."
        )
    if review.status != ReviewStatus.ATTESTED:
        raise ReviewConflict(f"Review #{review.pk} needs the owner's attestation before it is validated.")
    now = clock.now()
    review.validation_comment = oversight_text(comment, required=True)
    review.validated_by, review.validated_at = actor, now
    review.status, review.completed_at = ReviewStatus.COMPLETED, now
    review.full_clean()
    review.save()
    _record(review, "validated", actor=actor, context=context, comment=review.validation_comment)
    return review


# --------------------------------------------------------------------------- schedule (beat)


def next_review_due(model: RegisteredModel) -> dt.datetime | None:
    """When a production model's next scheduled review is due: its cadence after the last
    completed review, or after it went into production."""
    production = model.versions.filter(stage=Stage.PRODUCTION).first()
    if production is None:
        return None
    last = PeriodicReview.objects.filter(model=model, status=ReviewStatus.COMPLETED).aggregate(t=Max("completed_at"))
    start = last["t"] or production.stage_changed_at or production.created_at
    return start + dt.timedelta(days=review_cadence_days(model.risk_tier))


@transaction.atomic
def review_schedule(*, model_id: int, now: dt.datetime | None = None) -> PeriodicReview | None:
    """Open the scheduled review of one model when it is near due (``REVIEW_OPEN_DAYS_BEFORE``)."""
    now = now or clock.now()
    model = RegisteredModel.objects.select_for_update(of=("self",)).select_related("owner").filter(pk=model_id).first()
    if model is None or PeriodicReview.objects.filter(model=model).exclude(status=ReviewStatus.COMPLETED).exists():
        return None
    due = next_review_due(model)
    if due is None or due - _days("REVIEW_OPEN_DAYS_BEFORE", 14) > now:
        return None
    days = review_cadence_days(model.risk_tier)
    reason = f"Scheduled review ({model.get_risk_tier_display().lower()} risk: every {days} days)."
    return _open(
        model=model, trigger=ReviewTriggerKind.SCHEDULED, reason=reason, due_at=due, actor=None, context=WORKER
    )


def trigger_alerts() -> list[Alert]:
    """Critical drift alerts and fairness alerts (a parity breach is a warning, and is a trigger
    at any severity) that have not opened or advanced a review yet."""
    critical_drift = Q(kind__in=list(TRIGGER_ALERT_KINDS), severity=AlertSeverity.CRITICAL)
    return list(
        Alert.objects.filter(critical_drift | Q(kind=AlertKind.FAIRNESS))
        .exclude(status=AlertStatus.RESOLVED)
        .exclude(pk__in=ReviewTrigger.objects.filter(alert__isnull=False).values("alert_id"))
        .select_related("model")
    )


def reviews_sweep(now: dt.datetime | None = None) -> int:
    """Beat: open due scheduled reviews, and react to critical alerts. Returns reviews touched."""
    touched = 0
    for alert in trigger_alerts():
        kind = TRIGGER_ALERT_KINDS.get(alert.kind, ReviewTriggerKind.FAIRNESS)
        touched += review_trigger(model=alert.model, kind=kind, alert=alert) is not None
    ids = RegisteredModel.objects.filter(versions__stage=Stage.PRODUCTION).values_list("pk", flat=True)
    for model_id in ids:
        touched += review_schedule(model_id=model_id, now=now) is not None
    return touched
