"""E-mail notifications of the promotion workflow (Django's e-mail backend; console by default).

Mails are sent only after the surrounding transaction commits, so nobody is told about a
change that was rolled back.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.db.models import Q

from registry import rules

logger = logging.getLogger(__name__)


def _url(path: str) -> str:
    return settings.PORTAL_BASE_URL.rstrip("/") + path


def _send(messages: list[EmailMessage]) -> None:
    if not messages:
        return
    try:
        get_connection().send_messages(messages)
    except Exception:  # a mail server outage must never undo or break a governed action
        logger.exception("Could not send %d notification e-mail(s)", len(messages))


def _send_on_commit(subject: str, body: str, recipients: list[str]) -> None:
    recipients = sorted({r for r in recipients if r})
    messages = [EmailMessage(subject=subject, body=body, to=[r]) for r in recipients]
    transaction.on_commit(lambda: _send(messages))


def reviewer_emails(*, group: str, exclude_user_ids: list[int]) -> list[str]:
    """Active members of the approver group (and admins), but never those excluded (the requester,
    the model's owner: ``rules.can_review_promotion``)."""
    users = get_user_model().objects.filter(is_active=True).exclude(email="")
    users = users.filter(Q(groups__name=group) | Q(is_superuser=True)).distinct()
    return list(users.exclude(pk__in=exclude_user_ids).values_list("email", flat=True))


def notify_promotion_requested(req) -> None:
    """Tell everyone who may approve that a request is waiting."""
    version = req.version
    group = req.policy_snapshot.get("approver_group") or rules.REVIEWER_GROUP
    subject = f"[MLOps] Review requested: {version.model.name} v{version.version} → {req.target_stage}"
    body = (
        f"{req.requested_by.get_username()} asks to promote {version.model.name} v{version.version} "
        f"to {req.target_stage}.\n\nJustification:\n{req.justification}\n\n"
        f"Approvals needed: {req.policy_snapshot.get('approvals_required', 1)} "
        f"(risk tier {req.policy_snapshot.get('risk_tier', version.model.risk_tier)}).\n"
        f"Review it: {_url(req.get_absolute_url())}\n"
    )
    excluded = [req.requested_by_id, version.model.owner_id]
    _send_on_commit(subject, body, reviewer_emails(group=group, exclude_user_ids=excluded))


def notify_promotion_decided(req) -> None:
    """Tell the requester how their request ended (applied or rejected)."""
    version = req.version
    subject = f"[MLOps] {version.model.name} v{version.version} → {req.target_stage}: {req.get_status_display()}"
    lines = [f"Your request #{req.pk} is now {req.get_status_display().lower()}."]
    if req.status_reason:
        lines.append(f"Reason: {req.status_reason}")
    for review in req.reviews.select_related("reviewer").order_by("created_at"):
        lines.append(f"- {review.reviewer.get_username()}: {review.decision} {review.comment}".rstrip())
    lines.append(f"Details: {_url(req.get_absolute_url())}")
    _send_on_commit(subject, "\n".join(lines) + "\n", [req.requested_by.email])


def notify_rollback(*, model, restored, archived, actor, reason: str) -> None:
    """Tell the owner and reviewers that production was rolled back (flagged for follow-up)."""
    subject = f"[MLOps] Rollback: {model.name} production v{archived.version} → v{restored.version}"
    body = (
        f"{actor.get_username()} rolled {model.name} back from v{archived.version} to v{restored.version}.\n"
        f"Reason: {reason}\nThis rollback is flagged for follow-up review.\n"
        f"Timeline: {_url(model.get_absolute_url())}\n"
    )
    recipients = reviewer_emails(group=rules.REVIEWER_GROUP, exclude_user_ids=[actor.pk])
    if model.owner.email and model.owner_id != actor.pk:
        recipients.append(model.owner.email)
    _send_on_commit(subject, body, recipients)
