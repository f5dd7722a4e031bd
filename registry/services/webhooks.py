"""Outgoing webhooks: delivery rows written in the caller's transaction, sent by a Celery task.

Every POST carries ``X-MLOps-Event`` and ``X-MLOps-Signature: sha256=<hex HMAC-SHA256 of the
raw body with the webhook's secret>``. Receivers verify with::

    hmac.compare_digest(header, "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest())

``webhook_dispatch`` is the one entry point for every event, including the monitoring
engine's alerts (``alert.opened`` …) and retrain triggers (``retrain.triggered``);
``event_record`` records an audit event and dispatches its webhook from the same payload.

Delivery goes through ``mlops_portal.outbound`` (the outbound-URL policy, checked again right
before connecting; no redirects). Only the status code and a short error class are stored,
never the receiver's answer. Retries (exponential backoff with jitter) are Celery's own
options on ``registry.tasks.webhook_deliver``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import uuid
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Q

from mlops_portal import clock, outbound
from mlops_portal.queue import enqueue_on_commit
from registry import rules, tasks
from registry.choices import DeliveryStatus, WebhookEvent
from registry.models import RegisteredModel, Webhook, WebhookDelivery

from .audit import AuditContext, audit_record, diff, model_snapshot

USER_AGENT = "MLOps-Portal-Webhooks/1"
TIMEOUT_SECONDS = 10
MAX_ATTEMPTS = tasks.WEBHOOK_MAX_RETRIES + 1  # first try + Celery's retries
WEBHOOK_FIELDS = ["name", "url", "model", "events", "is_active"]


def event_category(event: str) -> str:
    """``promotion.approved`` → ``promotion``; a rollback is a stage event."""
    if event == "rollback":
        return WebhookEvent.STAGE
    return event.split(".", 1)[0]


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def encode_body(payload: dict[str, Any]) -> bytes:
    """The exact bytes sent (and signed): compact, sorted JSON."""
    return json.dumps(payload, cls=DjangoJSONEncoder, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _actor_json(actor) -> dict[str, Any] | None:
    if actor is None or not getattr(actor, "is_authenticated", False):
        return {"id": None, "username": str(actor) if actor else "system"}
    return {"id": actor.pk, "username": actor.get_username(), "name": actor.get_full_name()}


def webhooks_for(*, event: str, model: RegisteredModel | None):
    """Active webhooks (global, or for this model) whose events filter accepts ``event``."""
    hooks = Webhook.objects.filter(is_active=True)
    hooks = hooks.filter(Q(model__isnull=True) | Q(model=model)) if model is not None else hooks.filter(model=None)
    category = event_category(event)
    return [h for h in hooks.order_by("pk") if not h.events or category in h.events or event in h.events]


def webhook_dispatch(
    *, event: str, model: RegisteredModel | None, payload: dict[str, Any], actor=None
) -> list[WebhookDelivery]:
    """Create one delivery per matching webhook and send them after the transaction commits.

    Call it inside the service's transaction: if the change rolls back, nothing is sent.
    """
    hooks = webhooks_for(event=event, model=model)
    deliveries = []
    for hook in hooks:
        delivery_id = uuid.uuid4().hex
        body = {
            "id": delivery_id,
            "event": event,
            "timestamp": clock.now().isoformat(),
            "model": model.name if model is not None else None,
            "actor": _actor_json(actor),
            "data": payload,
        }
        delivery = WebhookDelivery(webhook=hook, event=event, payload=json.loads(encode_body(body)))
        delivery.full_clean()
        delivery.save()
        enqueue_on_commit(tasks.webhook_deliver, delivery.pk)
        deliveries.append(delivery)
    return deliveries


def event_record(
    *,
    action: str,
    actor,
    obj,
    model: RegisteredModel | None,
    context: AuditContext,
    payload: dict[str, Any],
    before: dict[str, Any] | None = None,
    event: str | None = None,
) -> list[WebhookDelivery]:
    """Record the audit event ``action`` (``after`` = ``payload``) and dispatch webhook ``event``
    (default: the same name) with the same payload, in the caller's transaction.

    The one helper for "this happened, tell the log and the subscribers": both read the same
    dict, so the audit log and the webhook can never disagree on what happened."""
    audit_record(actor=actor, action=action, obj=obj, model=model, context=context, before=before, after=payload)
    return webhook_dispatch(event=event or action, model=model, payload=payload, actor=actor)


def _attempt(hook: Webhook, delivery: WebhookDelivery, body: bytes) -> tuple[int | None, str]:
    """One POST through the outbound policy: ``(status code, error class)``; never the body."""
    try:
        answer = outbound.request(
            "POST",
            hook.url,
            body=body,
            headers={
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                "X-MLOps-Event": delivery.event,
                "X-MLOps-Delivery": str(delivery.payload.get("id", delivery.pk)),
                "X-MLOps-Signature": sign(hook.secret, body),
            },
            timeout=TIMEOUT_SECONDS,
        )
    except outbound.OutboundError as exc:
        return None, exc.error_class
    return answer.status, "" if answer.ok else outbound.error_class_for_status(answer.status)


def webhook_deliver(*, delivery_id: int, final_attempt: bool) -> str:
    """One delivery attempt. Returns the delivery status afterwards (``pending`` = retry it).

    Idempotent: a delivered (or failed-for-good) delivery is not sent again. Each attempt is
    appended to ``attempt_log`` with its status code and error class.
    """
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(of=("self",))
            .select_related("webhook")
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None:  # its webhook was deleted meanwhile
            return "missing"
        if delivery.status != DeliveryStatus.PENDING:
            return delivery.status
        hook = delivery.webhook
        body = encode_body(delivery.payload)
        delivery.attempts += 1
        delivery.save(update_fields=["attempts"])
        attempt = delivery.attempts
    started = clock.now()
    status_code, error_class = _attempt(hook, delivery, body)
    ok = not error_class
    finished = clock.now()
    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery_id)
        delivery.last_status_code = status_code
        delivery.last_error_class = error_class
        if ok:
            delivery.status = DeliveryStatus.DELIVERED
            delivery.delivered_at = finished
        elif final_attempt:
            delivery.status = DeliveryStatus.FAILED
        entry = {
            "attempt": attempt,
            "at": started.isoformat(),
            "duration_ms": int((finished - started).total_seconds() * 1000),
            "status_code": status_code,
            "error": error_class,
            "outcome": "delivered" if ok else ("failed" if final_attempt else "retry"),
        }
        delivery.attempt_log = [*(delivery.attempt_log or []), entry]
        delivery.save(update_fields=["last_status_code", "last_error_class", "status", "delivered_at", "attempt_log"])
    return delivery.status


# ---------------------------------------------------------------- admin-facing services


@transaction.atomic
def webhook_redeliver(*, delivery: WebhookDelivery, actor, context: AuditContext) -> WebhookDelivery:
    """Send a failed delivery again (admins only): a fresh round of attempts, same signed body."""
    if not rules.is_admin(actor):
        raise PermissionDenied("Only admins may manage webhooks.")
    delivery = WebhookDelivery.objects.select_for_update(of=("self",)).select_related("webhook").get(pk=delivery.pk)
    if delivery.status != DeliveryStatus.FAILED:
        raise ValidationError({"status": f"Only failed deliveries can be sent again (this one is {delivery.status})."})
    delivery.status = DeliveryStatus.PENDING
    delivery.save(update_fields=["status"])
    audit_record(
        actor=actor,
        action="webhook.redelivered",
        obj=delivery,
        model=delivery.webhook.model,
        context=context,
        before={"status": DeliveryStatus.FAILED},
        after={"status": DeliveryStatus.PENDING, "event": delivery.event, "attempts_so_far": delivery.attempts},
    )
    enqueue_on_commit(tasks.webhook_deliver, delivery.pk)
    return delivery


def _check_url(url: str) -> None:
    """Save-time outbound policy check (delivery checks again)."""
    try:
        outbound.validate_url(url)
    except ValidationError as exc:
        raise ValidationError({"url": exc.messages}) from exc


def _check_events(events) -> list[str]:
    if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
        raise ValidationError({"events": "A list of event names."})
    unknown = sorted({e for e in events if event_category(e) not in WebhookEvent.values})
    if unknown:
        raise ValidationError(
            {"events": f"Unknown event(s): {', '.join(unknown)}. Valid: {', '.join(WebhookEvent.values)}."}
        )
    return sorted(set(events))


@transaction.atomic
def webhook_create(
    *,
    name: str,
    url: str,
    actor,
    context: AuditContext,
    model: RegisteredModel | None = None,
    events: list[str] | None = None,
    secret: str = "",
    is_active: bool = True,
) -> Webhook:
    """Register a webhook (admins only). A random secret is generated unless one is given."""
    if not rules.is_admin(actor):
        raise PermissionDenied("Only admins may manage webhooks.")
    hook = Webhook(
        name=name,
        url=url,
        secret=secret or secrets.token_hex(32),
        model=model,
        events=_check_events(events or []),
        is_active=is_active,
        created_by=actor,
    )
    hook.full_clean()
    _check_url(hook.url)
    hook.save()
    audit_record(
        actor=actor,
        action="webhook.created",
        obj=hook,
        model=model,
        context=context,
        after=model_snapshot(hook, WEBHOOK_FIELDS),
    )
    return hook


@transaction.atomic
def webhook_update(*, webhook: Webhook, actor, changes: dict[str, Any], context: AuditContext) -> Webhook:
    """Change a webhook (admins only). The secret never appears in the audit log."""
    if not rules.is_admin(actor):
        raise PermissionDenied("Only admins may manage webhooks.")
    allowed = set(WEBHOOK_FIELDS) | {"secret"}
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise ValidationError({"__all__": f"Unknown webhook field(s): {', '.join(unknown)}."})
    hook = Webhook.objects.select_for_update().get(pk=webhook.pk)
    before = model_snapshot(hook, WEBHOOK_FIELDS)
    for field, value in changes.items():
        if field == "events":
            value = _check_events(value or [])
        setattr(hook, field, value)
    hook.full_clean()
    if "url" in changes:
        _check_url(hook.url)
    hook.save()
    changed_before, changed_after = diff(before, model_snapshot(hook, WEBHOOK_FIELDS))
    if "secret" in changes:
        changed_after["secret"] = "rotated"
    if changed_after:
        audit_record(
            actor=actor,
            action="webhook.updated",
            obj=hook,
            model=hook.model,
            context=context,
            before=changed_before,
            after=changed_after,
        )
    return hook


@transaction.atomic
def webhook_delete(*, webhook: Webhook, actor, context: AuditContext) -> None:
    if not rules.is_admin(actor):
        raise PermissionDenied("Only admins may manage webhooks.")
    hook = Webhook.objects.select_for_update().get(pk=webhook.pk)
    audit_record(
        actor=actor,
        action="webhook.deleted",
        obj=hook,
        model=hook.model,
        context=context,
        before=model_snapshot(hook, WEBHOOK_FIELDS),
    )
    hook.delete()
