"""E-mails of incidents, reviews and findings, sent with Django's mail after commit (as the
alerts' are): the model owner, the admins and the monitoring recipients."""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMessage, get_connection
from django.db import transaction

from monitoring.models import MonitoringConfig

logger = logging.getLogger(__name__)


def link(obj) -> str:
    """The object's page as an absolute link (``PORTAL_BASE_URL`` + its path), for e-mails and
    the audit and webhook payloads."""
    return settings.PORTAL_BASE_URL.rstrip("/") + obj.get_absolute_url()


def _send(messages: list[EmailMessage]) -> None:
    try:
        get_connection().send_messages(messages)
    except Exception:  # noqa: BLE001 - a mail outage never undoes an incident's step
        logger.exception("Could not send %d oversight e-mail(s)", len(messages))


def recipients(model) -> list[str]:
    """The owner, active admins and the model's alert recipients."""
    admins = get_user_model().objects.filter(is_active=True, is_superuser=True).exclude(email="")
    config = MonitoringConfig.objects.filter(model=model).first()
    extra = list(config.alert_recipients) if config else []
    return sorted({e for e in [model.owner.email, *admins.values_list("email", flat=True), *extra] if e})


def mail_on_commit(model, subject: str, body: str, to: list[str] | None = None) -> None:
    messages = [EmailMessage(subject=subject, body=body, to=[r]) for r in (to or recipients(model))]
    if messages:
        transaction.on_commit(lambda: _send(messages))


def incident_mail(incident, what: str, text: str = "") -> None:
    from .incidents import incident_payload

    payload = incident_payload(incident)
    subject = f"[MLOps] Incident #{incident.pk} on {incident.model.name}: {what}"
    deadline = f"Reporting deadline (Art. 73): {incident.deadline:%Y-%m-%d %H:%M} UTC\n" if incident.deadline else ""
    body = f"{text}\n\n{deadline}{link(incident)}\n\n"
    mail_on_commit(incident.model, subject, body + json.dumps(payload, indent=2) + "\n")
