"""Incident services: open, note, suspend, report, resolve, close, and the deadline reminders.

One service per transition: ``@transaction.atomic``, ``full_clean()``, a timeline event and
its audit event + webhook from one payload (``event_record``), all in one transaction. An
action that does not fit the incident's state raises ``IncidentConflict`` (API: 409).

States: open → (initial report) reported → (root cause) resolved → (final report) → closed.
A final report needs the root cause; closing a legally reportable incident needs the final
report. A suspend (governed rollback, or retirement leaving no production version) may come
at any time before closure.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from mlops_portal import clock
from monitoring.choices import IncidentEventKind, IncidentSeverity, IncidentStatus, ReportKind, SuspendMode
from monitoring.models import Alert
from registry.models import AuditEvent, RegisteredModel
from registry.services.audit import WORKER, AuditContext
from registry.services.webhooks import event_record

from . import deadlines, notify
from .models import Incident, IncidentEvent, IncidentReminder
from .rules import can_manage_incident
from .selectors import incident_windows, open_incident_of, period_windows

MAX_TEXT = 20_000
AWARE_SKEW = dt.timedelta(minutes=5)
EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATEST_YEAR = 9000  # the latest due date: leaves room for the date arithmetic done on it


class IncidentConflict(Exception):
    """The action does not fit the incident's current state."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def oversight_text(value: Any, field: str = "comment", *, required: bool = False) -> str:
    """A free-text field of an incident, review or finding: text, NUL removed, stripped, at most
    ``MAX_TEXT`` characters (a 400 naming ``field`` otherwise)."""
    if value is not None and not isinstance(value, str):
        raise ValidationError({field: "Must be text."})
    text = (value or "").replace("\x00", "").strip()
    if required and not text:
        raise ValidationError({field: "This field is required."})
    if len(text) > MAX_TEXT:
        raise ValidationError({field: f"At most {MAX_TEXT} characters."})
    return text


def _moment(value: dt.datetime | None, field: str, *, now: dt.datetime) -> dt.datetime | None:
    if value is None:
        return None
    if timezone.is_naive(value):
        raise ValidationError({field: "Give a time zone (e.g. 2026-03-01T09:00:00+01:00)."})
    try:
        value = value.astimezone(dt.UTC)
    except OverflowError as exc:
        raise ValidationError({field: "Out of range."}) from exc
    if value < EARLIEST:
        raise ValidationError({field: "Must be in 1970 or later."})
    if value > now + AWARE_SKEW:
        raise ValidationError({field: "Cannot be in the future."})
    return value


def due_moment(value: dt.datetime, field: str = "due_at", *, now: dt.datetime) -> dt.datetime:
    """A due date: with its time zone, in the future, no later than the year ``LATEST_YEAR``;
    each refusal names the limit it breaks."""
    if timezone.is_naive(value):
        raise ValidationError({field: "Give a time zone (e.g. 2030-03-01T09:00:00+01:00)."})
    if value.year > LATEST_YEAR:
        raise ValidationError({field: f"Must be in the year {LATEST_YEAR} or earlier."})
    if value <= now:
        raise ValidationError({field: "Must be in the future."})
    return value


def incident_payload(incident: Incident) -> dict[str, Any]:
    """What the audit log and the webhooks are told about an incident."""
    return {
        "incident": incident.pk,
        "model": incident.model.name,
        "version": incident.version.version if incident.version_id else None,
        "severity": incident.severity,
        "status": incident.status,
        "aware_at": incident.aware_at.isoformat(),
        "deadline": incident.deadline.isoformat() if incident.deadline else None,
        "time_zone": incident.time_zone,
        "url": notify.link(incident),
    }


def _record(
    incident: Incident, kind: str, *, actor, context: AuditContext, text: str = "", data: dict | None = None
) -> IncidentEvent:
    """The timeline event and its audit event + webhook (``incident.<kind>``), same payload."""
    payload = incident_payload(incident) | {"event": kind, "text": text, **(data or {})}
    event_record(
        action=f"incident.{kind}", actor=actor, obj=incident, model=incident.model, context=context, payload=payload
    )
    seq = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()
    event = IncidentEvent(
        incident=incident,
        kind=kind,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        text=text,
        data=data or {},
        audit_seq=seq,
        created_at=clock.now(),
    )
    event.full_clean()
    event.save()
    return event


def _lock(incident: Incident, actor) -> Incident:
    locked = Incident.objects.select_for_update(of=("self",)).select_related("model", "version").get(pk=incident.pk)
    if not can_manage_incident(actor, locked.model):
        raise PermissionDenied("Only the model's owner or an admin may act on its incidents.")
    if locked.status == IncidentStatus.CLOSED:
        raise IncidentConflict(f"Incident #{locked.pk} is closed.")
    return locked


def _production_then(*, model: RegisteredModel, actor, moment: dt.datetime):
    """(version, promotion request, approvers) in production at ``moment`` (stage history);
    (None, None, []) when no version was in production then, whatever is in production now."""
    from registry.selectors.audit import inventory_as_of

    entry = next((e for e in inventory_as_of(user=actor, moment=moment) if e.model.pk == model.pk), None)
    if entry is None or entry.version is None:
        return None, None, []
    return entry.version, entry.promotion, [r.reviewer.get_username() for r in entry.approvals]


def _refuse_alerts_in_open_incident(alerts: list[Alert]) -> None:
    """An alert leads to one incident at a time: a second one would start its own Art. 73 clock,
    reminders and review for the same problem. The alerts are locked, so two submissions of the
    same form cannot both pass."""
    locked = Alert.objects.select_for_update().filter(pk__in=[a.pk for a in alerts]).order_by("pk")
    for alert in locked:
        if (incident := open_incident_of(alert)) is not None:
            raise IncidentConflict(
                f"Alert #{alert.pk} is already part of incident #{incident.pk} "
                f"({incident.get_status_display().lower()}): add to that incident instead."
            )


@transaction.atomic
def incident_open(
    *,
    model: RegisteredModel,
    actor,
    severity: str,
    aware_at: dt.datetime,
    summary: str,
    context: AuditContext,
    alerts: list[Alert] | tuple = (),
    began_at: dt.datetime | None = None,
    affected: str = "",
) -> Incident:
    """Open an incident on ``model``: its deadline from ``severity`` and ``aware_at``, the
    version in production when it began and who approved it, the alerts and windows involved."""
    if not can_manage_incident(actor, model):
        raise PermissionDenied("Only the model's owner or an admin may open an incident.")
    now = clock.now()
    if severity not in IncidentSeverity.values:
        raise ValidationError({"severity": f"One of: {', '.join(IncidentSeverity.values)}."})
    aware_at = _moment(aware_at, "aware_at", now=now)
    if aware_at is None:
        raise ValidationError({"aware_at": "This field is required."})
    alerts = list(alerts)
    if any(a.model_id != model.pk for a in alerts):
        raise ValidationError({"alerts": "Alerts must belong to the incident's model."})
    _refuse_alerts_in_open_incident(alerts)
    began_at = _moment(began_at, "began_at", now=now) or min([a.opened_at for a in alerts] + [aware_at])
    if began_at > aware_at:
        raise ValidationError({"began_at": "The problem cannot begin after you became aware of it."})
    zone = deadlines.model_time_zone(model)
    version, request, approvers = _production_then(model=model, actor=actor, moment=began_at)
    incident = Incident(
        model=model,
        version=version,
        promotion_request=request,
        approved_by=approvers,
        severity=severity,
        summary=oversight_text(summary, "summary", required=True),
        affected=oversight_text(affected, "affected", required=False),
        began_at=began_at,
        aware_at=aware_at,
        time_zone=zone,
        deadline=deadlines.reporting_deadline(severity=severity, aware_at=aware_at, zone=zone),
        windows=period_windows(model=model, began_at=began_at, aware_at=aware_at).rows(),  # as recorded when opened
        opened_by=actor,
    )
    incident.full_clean()
    incident.save()
    incident.alerts.set(alerts)
    data = {"alerts": [a.pk for a in alerts], "began_at": began_at.isoformat(), "approved_by": approvers}
    _record(incident, IncidentEventKind.OPENED, actor=actor, context=context, text=incident.summary, data=data)
    notify.incident_mail(incident, "opened")
    from .reviews import review_trigger

    review_trigger(model=model, kind="incident", incident=incident, actor=actor, context=context)
    return incident


@transaction.atomic
def incident_note(*, incident: Incident, actor, text: str, context: AuditContext) -> IncidentEvent:
    """An investigation note on the timeline."""
    incident = _lock(incident, actor)
    text = oversight_text(text, "text", required=True)
    incident.save(update_fields=["updated_at"])
    return _record(incident, IncidentEventKind.NOTE, actor=actor, context=context, text=text)


@transaction.atomic
def incident_suspend(*, incident: Incident, actor, mode: str, reason: str, context: AuditContext) -> Incident:
    """Art. 26(5): suspend use. ``rollback`` is the governed rollback to the previous approved
    version; ``retire`` archives the production version, leaving none. Never two in production
    (the database's one-production-version constraint holds either way)."""
    from registry.services.stages import PromotionConflict, model_rollback

    from .retire import model_retire

    incident = _lock(incident, actor)
    reason = oversight_text(reason, "reason", required=True)
    if mode not in SuspendMode.values:
        raise ValidationError({"mode": f"One of: {', '.join(SuspendMode.values)}."})
    model = incident.model
    current = model.versions.filter(stage="production").first()
    if current is None:
        raise IncidentConflict(f"{model.name} has no production version to suspend.")
    label = f"Incident #{incident.pk}: {reason}"
    try:
        if mode == SuspendMode.ROLLBACK:
            restored = model_rollback(model=model, actor=actor, reason=label, context=context).version
        else:
            model_retire(model=model, actor=actor, reason=label, context=context)
            restored = None
    except PromotionConflict as exc:
        raise IncidentConflict(exc.message) from exc
    incident.suspended_at = clock.now()
    incident.save(update_fields=["suspended_at", "updated_at"])
    data = {"mode": mode, "from_version": current.version, "to_version": restored.version if restored else None}
    _record(incident, IncidentEventKind.SUSPENDED, actor=actor, context=context, text=reason, data=data)
    return incident


def report_snapshot(incident: Incident, kind: str, now: dt.datetime) -> dict[str, Any]:
    """The report's content as filed (kept on the timeline; the PDF is rendered from it)."""
    model = incident.model
    return {
        "kind": kind,
        "filed_at": now.isoformat(),
        "on_time": incident.deadline is None or now <= incident.deadline,
        "provider": getattr(settings, "INCIDENT_PROVIDER_NAME", "") or model.team.name,
        "deployer": getattr(settings, "INCIDENT_DEPLOYER_NAME", "") or model.team.name,
        "system": model.name,
        "ai_act_category": model.ai_act_category,
        "intended_use": model.intended_use,
        "version": incident.version.version if incident.version_id else None,
        "approved_by": incident.approved_by,
        "summary": incident.summary,
        "began_at": incident.began_at.isoformat(),
        "aware_at": incident.aware_at.isoformat(),
        "deadline": incident.deadline.isoformat() if incident.deadline else None,
        "affected": incident.affected,
        "corrective_actions": incident.corrective_actions,
        "root_cause": incident.root_cause,
        "suspended_at": incident.suspended_at.isoformat() if incident.suspended_at else None,
        "status": incident.status,
        "windows": incident_windows(incident).as_dict(),  # the metric windows of its period, as its page says them
    }


@transaction.atomic
def incident_report(
    *,
    incident: Incident,
    actor,
    kind: str,
    context: AuditContext,
    affected: str | None = None,
    corrective_actions: str | None = None,
) -> IncidentEvent:
    """File the initial (may be incomplete) or the final (complete) Art. 73 report."""
    incident = _lock(incident, actor)
    if kind not in ReportKind.values:
        raise ValidationError({"kind": f"One of: {', '.join(ReportKind.values)}."})
    if affected is not None:
        incident.affected = oversight_text(affected, "affected", required=False)
    if corrective_actions is not None:
        incident.corrective_actions = oversight_text(corrective_actions, "corrective_actions", required=False)
    now = clock.now()
    if kind == ReportKind.INITIAL:
        if incident.status != IncidentStatus.OPEN:
            raise IncidentConflict(f"Incident #{incident.pk} already has its initial report or root cause.")
        incident.initial_report_at, incident.status = now, IncidentStatus.REPORTED
    else:
        if incident.status != IncidentStatus.RESOLVED or incident.final_report_at:
            raise IncidentConflict(
                f"Incident #{incident.pk}: the final report needs the root cause first, and is filed once."
            )
        incident.final_report_at = now
    incident.full_clean()
    incident.save()
    snapshot = report_snapshot(incident, kind, now)
    event_kind = IncidentEventKind.REPORT_INITIAL if kind == ReportKind.INITIAL else IncidentEventKind.REPORT_FINAL
    return _record(incident, event_kind, actor=actor, context=context, data={"report": snapshot})


@transaction.atomic
def incident_resolve(
    *, incident: Incident, actor, root_cause: str, context: AuditContext, corrective_actions: str = ""
) -> Incident:
    """Record the root cause (and corrective actions): the incident is resolved."""
    incident = _lock(incident, actor)
    if incident.status not in (IncidentStatus.OPEN, IncidentStatus.REPORTED):
        raise IncidentConflict(f"Incident #{incident.pk} already has its root cause.")
    incident.root_cause = oversight_text(root_cause, "root_cause", required=True)
    actions = oversight_text(corrective_actions, "corrective_actions", required=False)
    incident.corrective_actions = actions or incident.corrective_actions
    incident.status, incident.resolved_at = IncidentStatus.RESOLVED, clock.now()
    incident.full_clean()
    incident.save()
    data = {"corrective_actions": incident.corrective_actions}
    _record(incident, IncidentEventKind.RESOLVED, actor=actor, context=context, text=incident.root_cause, data=data)
    return incident


@transaction.atomic
def incident_close(*, incident: Incident, actor, context: AuditContext, comment: str = "") -> Incident:
    """Close a resolved incident; one with a legal deadline needs its final report first."""
    incident = _lock(incident, actor)
    comment = oversight_text(comment, "comment", required=False)
    if incident.status != IncidentStatus.RESOLVED:
        raise IncidentConflict(f"Incident #{incident.pk} needs its root cause before it can be closed.")
    if incident.severity in deadlines.LEGAL_DAYS and not incident.final_report_at:
        raise IncidentConflict(f"Incident #{incident.pk} needs its final report (Art. 73) before it can be closed.")
    incident.status, incident.closed_at = IncidentStatus.CLOSED, clock.now()
    incident.full_clean()
    incident.save()
    _record(incident, IncidentEventKind.CLOSED, actor=actor, context=context, text=comment)
    return incident


# --------------------------------------------------------------------------- reminders


def reminders_due(now: dt.datetime | None = None) -> list[tuple[int, int]]:
    """(incident id, percent) of every reminder whose time has come and was not sent."""
    now = now or clock.now()
    due = []
    open_ones = Incident.objects.filter(
        status=IncidentStatus.OPEN, deadline__isnull=False, initial_report_at__isnull=True
    ).values_list("pk", "aware_at", "deadline")
    sent = set(IncidentReminder.objects.values_list("incident_id", "percent"))
    for pk, aware_at, deadline in open_ones:
        for percent in deadlines.REMINDER_PERCENTS:
            if (pk, percent) not in sent and deadlines.reminder_at(
                aware_at=aware_at, deadline=deadline, percent=percent
            ) <= now:
                due.append((pk, percent))
    return due


@transaction.atomic
def incident_reminder_send(*, incident_id: int, percent: int, now: dt.datetime | None = None) -> bool:
    """Send one reminder once: the marker row is written in the same transaction as the
    audit event, the webhook and the queued e-mail; a second call finds it and does nothing."""
    now = now or clock.now()
    locked = Incident.objects.select_for_update(of=("self",)).select_related("model", "version")
    incident = locked.filter(pk=incident_id).first()
    if incident is None or incident.status != IncidentStatus.OPEN or incident.deadline is None:
        return False
    if IncidentReminder.objects.filter(incident=incident, percent=percent).exists():
        return False
    if deadlines.reminder_at(aware_at=incident.aware_at, deadline=incident.deadline, percent=percent) > now:
        return False
    IncidentReminder.objects.create(incident=incident, percent=percent, sent_at=now)
    left = incident.deadline - now
    until = f"{incident.deadline:%Y-%m-%d %H:%M} UTC"
    text = f"{percent}% of the reporting period has passed; {_duration(left)} left until {until}."
    _record(incident, IncidentEventKind.REMINDER, actor=None, context=WORKER, text=text, data={"percent": percent})
    notify.incident_mail(incident, f"reminder {percent}%", text=text)
    return True


def incident_reminders_send(now: dt.datetime | None = None) -> int:
    """Every due reminder, each in its own transaction (the beat task)."""
    return sum(incident_reminder_send(incident_id=pk, percent=p, now=now) for pk, p in reminders_due(now))


def _duration(delta: dt.timedelta) -> str:
    seconds = max(int(delta.total_seconds()), 0)
    days, rest = divmod(seconds, 86400)
    return f"{days} d {rest // 3600} h"
