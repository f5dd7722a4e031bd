"""Validation findings: a validator records one, the owner answers with remediation evidence,
the validator closes it on retest (or sends it back). Overdue findings escalate once (beat)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from mlops_portal import clock
from monitoring.choices import FindingSeverity, FindingStatus
from registry.models import RegisteredModel
from registry.services.audit import WORKER, AuditContext
from registry.services.webhooks import event_record

from . import notify
from .incidents import due_moment, oversight_text
from .models import Finding, PeriodicReview
from .reviews import ReviewConflict
from .rules import can_own_finding, can_remediate_finding, can_retest_finding, can_validate


def finding_payload(finding: Finding) -> dict[str, Any]:
    return {
        "finding": finding.pk,
        "model": finding.model.name,
        "severity": finding.severity,
        "status": finding.status,
        "owner": finding.owner.get_username(),
        "due_at": finding.due_at.isoformat(),
        "url": notify.link(finding),
    }


def _record(finding: Finding, what: str, *, actor, context: AuditContext, **extra) -> None:
    payload = finding_payload(finding) | extra
    event_record(
        action=f"finding.{what}", actor=actor, obj=finding, model=finding.model, context=context, payload=payload
    )


@transaction.atomic
def finding_create(
    *,
    model: RegisteredModel,
    actor,
    severity: str,
    description: str,
    owner,
    due_at: dt.datetime,
    context: AuditContext,
    review: PeriodicReview | None = None,
) -> Finding:
    """A validator (a reviewer who does not own the model) records a finding for ``owner`` to fix."""
    if not can_validate(actor, model):
        raise PermissionDenied("Only a reviewer who does not own the model may record findings on it.")
    if severity not in FindingSeverity.values:
        raise ValidationError({"severity": f"One of: {', '.join(FindingSeverity.values)}."})
    if owner is None or not owner.is_active or not can_own_finding(owner, model):
        raise ValidationError({"owner": "An active user who can see the model and answer findings (not an auditor)."})
    now = clock.now()
    due_at = due_moment(due_at, now=now)
    if review is not None and review.model_id != model.pk:
        raise ValidationError({"review": "The review must be of the same model."})
    finding = Finding(
        model=model,
        review=review,
        severity=severity,
        description=oversight_text(description, "description", required=True),
        owner=owner,
        due_at=due_at,
        created_by=actor,
        created_at=now,
    )
    finding.full_clean()
    finding.save()
    _record(finding, "created", actor=actor, context=context, description=finding.description)
    notify.mail_on_commit(
        model,
        f"[MLOps] Finding #{finding.pk} on {model.name} ({severity}), due {due_at:%Y-%m-%d}",
        f"{finding.description}\n\n{notify.link(finding)}\n",
        to=[e for e in [owner.email, model.owner.email] if e],
    )
    return finding


def _lock(finding: Finding) -> Finding:
    return Finding.objects.select_for_update(of=("self",)).select_related("model", "owner").get(pk=finding.pk)


@transaction.atomic
def finding_remediate(*, finding: Finding, actor, evidence: str, context: AuditContext) -> Finding:
    """The finding's owner (or the model's owner) answers with remediation evidence."""
    finding = _lock(finding)
    if not can_remediate_finding(actor, finding):
        raise PermissionDenied("Only the finding's owner, the model's owner or an admin may answer it.")
    if finding.status != FindingStatus.OPEN:
        raise ReviewConflict(f"Finding #{finding.pk} is {finding.get_status_display().lower()}, not open.")
    finding.remediation = oversight_text(evidence, "evidence", required=True)
    finding.remediated_by, finding.remediated_at = actor, clock.now()
    finding.status = FindingStatus.REMEDIATED
    finding.full_clean()
    finding.save()
    _record(finding, "remediated", actor=actor, context=context, evidence=finding.remediation)
    return finding


@transaction.atomic
def finding_retest(*, finding: Finding, actor, passed: bool, comment: str, context: AuditContext) -> Finding:
    """The validator retests: closed if it passed, back to open (with the reason) if not. Whoever
    wrote the remediation never signs it off (segregation of duties, as for promotions)."""
    finding = _lock(finding)
    if not can_retest_finding(actor, finding):
        raise PermissionDenied(
            "Only a reviewer who does not own the model, and did not remediate the finding, may retest it."
        )
    if finding.status != FindingStatus.REMEDIATED:
        raise ReviewConflict(f"Finding #{finding.pk} has no remediation to retest.")
    if not isinstance(passed, bool):
        raise ValidationError({"passed": "true or false."})
    finding.retest_comment = oversight_text(comment, required=not passed)
    if passed:
        finding.status, finding.closed_by, finding.closed_at = FindingStatus.CLOSED, actor, clock.now()
    else:
        finding.status = FindingStatus.OPEN
    finding.full_clean()
    finding.save()
    _record(finding, "closed" if passed else "reopened", actor=actor, context=context, comment=finding.retest_comment)
    return finding


@transaction.atomic
def finding_escalate(*, finding_id: int, now: dt.datetime | None = None) -> bool:
    """Escalate an overdue open finding once: audit, webhook and e-mail to the admins."""
    now = now or clock.now()
    finding = (
        Finding.objects.select_for_update(of=("self",)).select_related("model", "owner").filter(pk=finding_id).first()
    )
    if finding is None or finding.escalated_at or finding.status == FindingStatus.CLOSED or finding.due_at > now:
        return False
    finding.escalated_at = now
    finding.save(update_fields=["escalated_at"])
    _record(finding, "escalated", actor=None, context=WORKER)
    admins = get_user_model().objects.filter(is_superuser=True, is_active=True).exclude(email="")
    notify.mail_on_commit(
        finding.model,
        f"[MLOps] Overdue finding #{finding.pk} on {finding.model.name}",
        f"Due {finding.due_at:%Y-%m-%d %H:%M} UTC, still {finding.status}.\n\n{finding.description}\n",
        to=sorted({finding.owner.email, finding.model.owner.email, *admins.values_list("email", flat=True)} - {""}),
    )
    return True


def findings_escalate(now: dt.datetime | None = None) -> int:
    """Beat: every overdue, not yet escalated finding."""
    now = now or clock.now()
    ids = Finding.objects.filter(escalated_at__isnull=True, due_at__lt=now).exclude(status=FindingStatus.CLOSED)
    return sum(finding_escalate(finding_id=pk, now=now) for pk in ids.values_list("pk", flat=True))
