"""Alerts (open on degrade, update, resolve once recovered, reopen, acknowledge) and retrain triggers.

An alert resolves after the model's ``alert_recovery_windows`` consecutive windows within
thresholds and reopens when its condition comes back within ``alert_reopen_windows`` windows
(``monitoring.services.alert_recovery``), so a figure that sits at its threshold does not flap.

Notifications go by e-mail (the model owner and ``MonitoringConfig.alert_recipients``) and
through the registry's signed webhooks, both after commit; each audited change and its
webhook come from one payload (``registry.services.webhooks.event_record``). A retrain
trigger fires on critical drift or an overdue cadence, at most once per
``retrain_cooldown_hours``; it is recorded (``RetrainTrigger``), audited, and the HTTP call to
``retrain_url`` is made by a Celery task after commit, through ``mlops_portal.outbound``
(status code and error class stored, never the answer).
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import EmailMessage, get_connection
from django.db import transaction

from mlops_portal import clock, outbound
from mlops_portal.queue import enqueue_on_commit
from monitoring.choices import AlertKind, AlertSeverity, AlertStatus, RetrainStatus
from monitoring.models import Alert, MonitoringConfig, RetrainTrigger
from registry.models import RegisteredModel
from registry.rules import can_change_model
from registry.services.audit import WORKER, AuditContext
from registry.services.webhooks import event_record

from .alert_recovery import Window, clear_windows_with, latest_judged, recovered, reopenable
from .config import monitoring_config_get

logger = logging.getLogger(__name__)

SEVERITY_ORDER = {AlertSeverity.WARNING: 1, AlertSeverity.CRITICAL: 2}
RETRAIN_TIMEOUT_SECONDS = 10
EVALUATED_ELSEWHERE = (AlertKind.BUDGET,)
"""Alert kinds that health reasons never open or resolve (``monitoring.services.budgets`` does)."""


class AlertStateConflict(ValidationError):
    """The alert is not in a state that allows the action (API: 409)."""


# --------------------------------------------------------------------------- notifications


def _send_mail(messages: list[EmailMessage]) -> None:
    try:
        get_connection().send_messages(messages)
    except Exception:  # noqa: BLE001 - a mail outage never breaks monitoring
        logger.exception("Could not send %d alert e-mail(s)", len(messages))


def _recipients(model: RegisteredModel) -> list[str]:
    config = MonitoringConfig.objects.filter(model=model).first()
    extra = list(config.alert_recipients) if config else []
    return sorted({e for e in [model.owner.email, *extra] if e})


def alert_payload(alert: Alert, event: str) -> dict[str, Any]:
    return {
        "event": event,
        "alert_id": alert.pk,
        "model": alert.model.name,
        "kind": alert.kind,
        "severity": alert.severity,
        "status": alert.status,
        "title": alert.title,
        "reasons": alert.reasons,
        "opened_at": alert.opened_at.isoformat(),
        "url": settings.PORTAL_BASE_URL.rstrip("/") + f"/monitoring/models/{alert.model.name}/",
    }


def alert_record(
    alert: Alert, event: str, *, context: AuditContext, actor=None, before: dict | None = None, mail: bool = True
) -> None:
    """Audit event ``alert.<event>``, its webhook from the same payload, and the e-mail, after commit."""
    payload = alert_payload(alert, event)
    event_record(
        action=f"alert.{event}",
        actor=actor,
        obj=alert,
        model=alert.model,
        context=context,
        before=before,
        payload=payload,
    )
    if not mail:
        return
    subject = f"[MLOps] {alert.model.name}: {alert.get_kind_display()} {alert.severity} alert {event}"
    body = json.dumps(payload, indent=2) + "\n"
    messages = [EmailMessage(subject=subject, body=body, to=[r]) for r in _recipients(alert.model)]
    if messages:
        transaction.on_commit(lambda: _send_mail(messages))


# --------------------------------------------------------------------------- alerts


def alert_title(kind: str, reasons: list[dict]) -> str:
    return (AlertKind(kind).label + ": " + " ".join(r["message"] for r in reasons))[:300]


def alert_open(
    *,
    model: RegisteredModel,
    kind: str,
    severity: str,
    reasons: list[dict],
    context: AuditContext,
    now,
    window: Window = None,
    recovery_windows: int = 1,
) -> Alert:
    """A new open alert for ``reasons``, recorded ``alert.opened`` (audit, webhook, e-mail)."""
    alert = Alert(
        model=model,
        kind=kind,
        severity=severity,
        status=AlertStatus.OPEN,
        title=alert_title(kind, reasons),
        reasons=reasons,
        opened_at=now,
        updated_at=now,
        judged_window=window[0] if window else None,
        recovery_windows=recovery_windows,
    )
    alert.full_clean()
    alert.save()
    alert_record(alert, "opened", context=context)
    return alert


def alert_resolve(alert: Alert, *, context: AuditContext, now) -> None:
    """Resolve an active alert, recorded ``alert.resolved``."""
    before = {"status": alert.status}
    alert.status, alert.resolved_at, alert.updated_at = AlertStatus.RESOLVED, now, now
    alert.save(update_fields=["status", "resolved_at", "updated_at", "clear_windows", "judged_window"])
    alert_record(alert, "resolved", context=context, before=before)


def alert_reopen(alert: Alert, *, severity: str, reasons: list[dict], context: AuditContext, now, window) -> Alert:
    """A resolved alert whose condition was found again soon after (``reopenable``): the same
    alert (its history, acknowledgement and review trigger), active again with the new reasons,
    recorded ``alert.reopened`` (audit and webhook). It stays acknowledged if it was, at the
    same severity or better: the owner took this episode on, so no e-mail; otherwise it is open
    again and the recipients, told it had resolved, are told it is back."""
    escalated = SEVERITY_ORDER[severity] > SEVERITY_ORDER[alert.severity]
    before = {"status": alert.status, "severity": alert.severity, "resolved_at": alert.resolved_at.isoformat()}
    alert.status = AlertStatus.ACKNOWLEDGED if alert.acknowledged_at and not escalated else AlertStatus.OPEN
    alert.severity, alert.reasons, alert.title = severity, reasons, alert_title(alert.kind, reasons)
    alert.resolved_at, alert.clear_windows, alert.judged_window = None, 0, window[0]
    alert.reopen_count += 1
    alert.reopened_at = alert.updated_at = now
    alert.full_clean()
    alert.save()
    alert_record(alert, "reopened", context=context, before=before, mail=alert.status == AlertStatus.OPEN)
    return alert


def _alert_update(alert: Alert, *, kind, items: list[dict], window, context, now) -> bool:
    """The active alert of ``kind`` found again with ``items``: new reasons, severity, and its
    recovery starts over. Returns whether its severity changed (recorded)."""
    severity = _worst(items)
    escalated = SEVERITY_ORDER[severity] > SEVERITY_ORDER[alert.severity]
    severity_changed = severity != alert.severity
    before = {"severity": alert.severity, "status": alert.status}
    alert.severity = severity
    alert.reasons = items
    alert.title = alert_title(kind, items)
    alert.updated_at = now
    alert.clear_windows, alert.judged_window = 0, latest_judged(alert, window)
    if escalated and alert.status == AlertStatus.ACKNOWLEDGED:
        alert.status = AlertStatus.OPEN  # a worse state needs a new acknowledgement
    fields = ["severity", "reasons", "title", "updated_at", "status", "clear_windows", "judged_window"]
    alert.save(update_fields=fields)
    if severity_changed:
        alert_record(alert, "escalated" if escalated else "deescalated", context=context, before=before, mail=escalated)
    return severity_changed


def _worst(items: list[dict]) -> str:
    return max((r["severity"] for r in items), key=lambda s: SEVERITY_ORDER[s])


def _recovery_progress(alert: Alert, window, needed: int, now) -> None:
    """Record a window within thresholds that does not resolve the alert yet (not audited: its
    state does not change, the page says how far its recovery has come). ``updated_at`` is the
    last time it was judged, as a held reason says ("not judged since")."""
    alert.clear_windows, alert.recovery_windows = clear_windows_with(alert, window), needed
    alert.judged_window, alert.updated_at = latest_judged(alert, window), now
    alert.save(update_fields=["clear_windows", "recovery_windows", "judged_window", "updated_at"])


def active_alerts(model: RegisteredModel) -> list[Alert]:
    """The model's active alerts of the kinds its health evaluation judges (all but
    ``EVALUATED_ELSEWHERE``), locked, by kind: what ``held_reasons`` and ``alerts_sync`` read."""
    return list(
        Alert.objects.select_for_update()
        .filter(model=model)
        .exclude(status=AlertStatus.RESOLVED)
        .exclude(kind__in=EVALUATED_ELSEWHERE)
        .order_by("kind")
    )


def alerts_sync(
    *,
    model: RegisteredModel,
    reasons: list[dict],
    evaluated: frozenset[str],
    window: Window = None,
    context: AuditContext = WORKER,
    now=None,
    active: list[Alert] | None = None,
) -> list[Alert]:
    """Open, update, reopen or resolve the model's alerts to match its current health reasons
    (all kinds but ``EVALUATED_ELSEWHERE``) found in ``window`` (start, end; None: no window).

    An active alert without a reason now is judged within thresholds only when ``evaluated``
    judged every one of its reasons (``judged_key``: its kind, and for a fairness reason its
    attribute): no data is not a recovery. It resolves when ``recovered``: a window kind after
    the model's ``alert_recovery_windows`` consecutive windows within thresholds, counted once
    per window (``clear_windows_with``); until then it stays active, recovering. A kind found
    again restarts its alert's recovery; found within ``alert_reopen_windows`` windows after its
    alert resolved, it reopens that alert (``reopenable``). An updated alert keeps its reasons
    that were not judged beside the new ones. ``active``: the ``active_alerts`` already read."""
    now = now or clock.now()
    config = monitoring_config_get(model=model)
    by_kind: dict[str, list[dict]] = {}
    for reason in reasons:
        by_kind.setdefault(reason["kind"], []).append(reason)
    active = {a.kind: a for a in (active_alerts(model) if active is None else active)}
    changed: list[Alert] = []
    for kind, items in by_kind.items():
        alert = active.get(kind)
        if alert is not None:
            found = {judged_key(kind, item) for item in items}
            items = items + [r for r in unjudged(alert, evaluated) if judged_key(kind, r) not in found]
            if _alert_update(alert, kind=kind, items=items, window=window, context=context, now=now):
                changed.append(alert)
            continue
        again = reopenable(model=model, kind=kind, window=window, reopen_windows=config.alert_reopen_windows)
        if again is not None:
            changed.append(
                alert_reopen(again, severity=_worst(items), reasons=items, context=context, now=now, window=window)
            )
            continue
        opened = alert_open(
            model=model, kind=kind, severity=_worst(items), reasons=items, context=context, now=now, window=window,
            recovery_windows=config.alert_recovery_windows,
        )  # fmt: skip
        changed.append(opened)
    for kind, alert in active.items():
        if kind in by_kind or kind not in evaluated or unjudged(alert, evaluated):
            continue
        if not recovered(alert, window, config.alert_recovery_windows):
            _recovery_progress(alert, window, config.alert_recovery_windows, now)
            continue
        alert.clear_windows, alert.judged_window = clear_windows_with(alert, window), latest_judged(alert, window)
        alert_resolve(alert, context=context, now=now)  # judged_window: the window that resolved it
        changed.append(alert)
    return changed


def judged_key(kind: str, reason: dict) -> str:
    """What an evaluation must have judged to speak for ``reason``: its kind, or, for a reason
    about one sensitive attribute (fairness), ``kind:attribute``."""
    attribute = reason.get("attribute")
    return f"{kind}:{attribute}" if attribute else kind


def unjudged(alert: Alert, evaluated: frozenset[str]) -> list[dict]:
    """The alert's reasons that an evaluation judging ``evaluated`` did not judge."""
    if alert.kind not in evaluated:
        return list(alert.reasons or [])
    return [reason for reason in alert.reasons or [] if judged_key(alert.kind, reason) not in evaluated]


def held_reasons(
    *, active: list[Alert], reasons: list[dict], judged: frozenset[str], needed: int, window: Window = None
) -> list[dict]:
    """The reasons of the model's active alerts (``active_alerts``) that this evaluation did not
    find again, which the model's health keeps until the alert resolves (``needed``: the
    model's ``alert_recovery_windows``):

    * not judged (``unjudged``): no data is not a recovery; marked ``held``, the message saying
      since when it was not judged (the alert's last update);
    * judged within thresholds, but not ``recovered`` yet: marked ``recovering``, the message
      saying how many windows within thresholds it has of the ones it needs."""
    found = {judged_key(reason["kind"], reason) for reason in reasons}
    found_kinds = {reason["kind"] for reason in reasons}
    held = []
    for alert in active:
        items = unjudged(alert, judged)
        whole = [{"kind": alert.kind, "severity": alert.severity, "message": alert.title}]
        if not alert.reasons and alert.kind not in judged and alert.kind not in found:
            items = whole
        if (
            not items
            and alert.kind in judged
            and alert.kind not in found_kinds
            and not recovered(alert, window, needed)
        ):
            clear = clear_windows_with(alert, window)
            note = f" (alert still open, recovering: {clear} of {needed} windows within thresholds)"
            held += [
                {**item, "message": f"{item.get('message', alert.title)}{note}", "recovering": True}
                for item in alert.reasons or whole
            ]
            continue
        note = f" (alert still open, not judged since {alert.updated_at:%Y-%m-%d %H:%M} UTC: no data for it)"
        held += [
            {**item, "message": f"{item.get('message', alert.title)}{note}", "held": True}
            for item in items
            if judged_key(alert.kind, item) not in found
        ]
    return held


@transaction.atomic
def alert_acknowledge(*, alert: Alert, actor, comment: str, context: AuditContext) -> Alert:
    """The owner (or an admin) acknowledges an open alert with a comment; audited."""
    alert = Alert.objects.select_for_update(of=("self",)).select_related("model").get(pk=alert.pk)
    if not can_change_model(actor, alert.model):
        raise PermissionDenied("Only the model's owner or an admin can acknowledge its alerts.")
    comment = (comment or "").strip()
    if not comment:
        raise ValidationError({"comment": "A comment is required to acknowledge an alert."})
    if len(comment) > 5000:
        raise ValidationError({"comment": "At most 5000 characters."})
    if alert.status != AlertStatus.OPEN:
        raise AlertStateConflict(f"Alert #{alert.pk} is {alert.status}; only open alerts can be acknowledged.")
    before = {"status": alert.status}
    now = clock.now()
    alert.status = AlertStatus.ACKNOWLEDGED
    alert.acknowledged_by = actor
    alert.acknowledged_at = now
    alert.acknowledge_comment = comment  # updated_at stays when it was last judged ("not judged since")
    alert.full_clean()
    alert.save()
    alert_record(alert, "acknowledged", context=context, actor=actor, before=before, mail=False)
    return alert


# --------------------------------------------------------------------------- retrain triggers


def _retrain_reason(reasons: list[dict]) -> dict | None:
    for reason in reasons:
        if (
            reason["kind"] in (AlertKind.DRIFT, AlertKind.PREDICTION_DRIFT)
            and reason["severity"] == AlertSeverity.CRITICAL
        ):
            return reason
    for reason in reasons:
        if reason["kind"] == AlertKind.CADENCE:
            return reason
    return None


def retrain_consider(
    *, model: RegisteredModel, version, reasons: list[dict], context: AuditContext = WORKER, now=None
) -> RetrainTrigger | None:
    """Fire a retrain trigger on critical drift or an overdue cadence, once per cool-down.

    Called by ``health_evaluate``, which holds the model's config row lock (taken before any
    audit event), so two evaluations of one model never both see the cool-down as passed."""
    reason = _retrain_reason(reasons)
    if reason is None:
        return None
    now = now or clock.now()
    config = monitoring_config_get(model=model)
    cooldown = timedelta(hours=config.retrain_cooldown_hours)
    if RetrainTrigger.objects.filter(model=model, fired_at__gt=now - cooldown).exists():
        return None
    trigger = RetrainTrigger.objects.create(
        model=model,
        version=version,
        reason=reason["message"][:300],
        details={"kind": reason["kind"], "severity": reason["severity"], "reasons": reasons},
        url=config.retrain_url,
        status=RetrainStatus.PENDING if config.retrain_url else RetrainStatus.NO_URL,
        fired_at=now,
    )
    deliveries = event_record(
        action="retrain.triggered",
        actor=None,
        obj=trigger,
        model=model,
        context=context,
        payload=retrain_payload(trigger),
    )
    if deliveries:
        trigger.delivery_ref = ",".join(str(d.pk) for d in deliveries)[:100]
        trigger.save(update_fields=["delivery_ref"])
    if config.retrain_url:
        from monitoring import tasks

        enqueue_on_commit(tasks.retrain_trigger_send, trigger.pk)
    return trigger


def retrain_payload(trigger: RetrainTrigger) -> dict[str, Any]:
    return {
        "event": "retrain",
        "trigger_id": trigger.pk,
        "model": trigger.model.name,
        "version": trigger.version.version if trigger.version else None,
        "reason": trigger.reason,
        "details": trigger.details,
        "fired_at": trigger.fired_at.isoformat(),
        "status": trigger.status,
    }


def retrain_trigger_send(*, trigger_id: int) -> RetrainTrigger | None:
    """POST the trigger to the pipeline URL through the outbound policy (idempotent: a sent
    trigger is not re-sent). Stores the status code and an error class, never the answer."""
    trigger = RetrainTrigger.objects.select_related("model", "version").filter(pk=trigger_id).first()
    if trigger is None or trigger.status != RetrainStatus.PENDING or not trigger.url:
        return trigger
    body = json.dumps(retrain_payload(trigger), sort_keys=True).encode("utf-8")
    try:
        answer = outbound.request(
            "POST",
            trigger.url,
            body=body,
            headers={"Content-Type": "application/json", "X-MLOps-Trigger-Id": str(trigger.pk)},
            timeout=RETRAIN_TIMEOUT_SECONDS,
        )
    except outbound.OutboundError as exc:
        status, code, error_class = RetrainStatus.FAILED, None, exc.error_class
    else:
        status = RetrainStatus.SENT if answer.ok else RetrainStatus.FAILED
        code, error_class = answer.status, "" if answer.ok else outbound.error_class_for_status(answer.status)
    RetrainTrigger.objects.filter(pk=trigger.pk).update(status=status, response_code=code, error_class=error_class)
    trigger.refresh_from_db()
    return trigger
