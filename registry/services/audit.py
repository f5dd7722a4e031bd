"""The audit log's single writer, and the chain's hashing rules.

The canonical encoding and hash live in ``registry.verify_export`` (standard
library only) so that offline verification and the server agree byte for byte.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from registry.choices import AuditSource
from registry.models import AuditEvent, RegisteredModel
from registry.verify_export import GENESIS_HASH, event_hash

# Arbitrary constant key for pg_advisory_xact_lock: serialises appends.
_AUDIT_LOCK_KEY = 0x4D4C4F5053  # "MLOPS"


@dataclasses.dataclass(frozen=True)
class AuditContext:
    """Who acted and through what: passed explicitly into every service."""

    source: str = AuditSource.CLI
    request_id: str = ""
    ip: str | None = None

    @classmethod
    def from_request(cls, request, source: str = AuditSource.UI) -> AuditContext:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        ip = forwarded.split(",")[0].strip() if forwarded else request.META.get("REMOTE_ADDR")
        return cls(source=source, request_id=getattr(request, "id", ""), ip=ip or None)


WORKER = AuditContext(source=AuditSource.WORKER)
CLI = AuditContext(source=AuditSource.CLI)


def event_payload(event: AuditEvent) -> dict[str, Any]:
    """The fields covered by the hash, as plain JSON values."""
    return {
        "seq": event.seq,
        "timestamp": event.timestamp.isoformat(),
        "actor_id": event.actor_id,
        "actor_name": event.actor_name,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "object_repr": event.object_repr,
        "model_id": event.model_id,
        "model_name": event.model_name,
        "before": event.before,
        "after": event.after,
        "request_id": event.request_id,
        "source": event.source,
        "ip": event.ip,
        "prev_hash": event.prev_hash,
    }


def _lock_chain() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_AUDIT_LOCK_KEY])
    # SQLite: transactions are IMMEDIATE (settings), so writers are already serialised.


def audit_record(
    *,
    actor,
    action: str,
    context: AuditContext,
    obj=None,
    model: RegisteredModel | None = None,
    before: dict | None = None,
    after: dict | None = None,
    object_type: str = "",
    object_id: str = "",
    object_repr: str = "",
) -> AuditEvent:
    """Append one event to the chain. Must run inside the caller's transaction, so
    the change and its event commit together or not at all."""
    if not connection.in_atomic_block:
        raise RuntimeError("audit_record must be called inside the service's transaction")
    _lock_chain()
    last = AuditEvent.objects.order_by("-seq").values("seq", "hash").first()
    seq, prev_hash = (last["seq"] + 1, last["hash"]) if last else (1, GENESIS_HASH)
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or str(obj.pk)
        object_repr = object_repr or str(obj)[:300]
    if model is None and isinstance(obj, RegisteredModel):
        model = obj
    user = actor if getattr(actor, "is_authenticated", False) else None
    event = AuditEvent(
        seq=seq,
        # Microsecond precision is what both databases store, so the hash is stable.
        timestamp=timezone.now(),
        actor=user,
        actor_name=(user.get_username() if user else (str(actor) if actor else "system"))[:150],
        action=action,
        object_type=object_type,
        object_id=object_id,
        object_repr=object_repr[:300],
        model=model,
        model_name=model.name if model else "",
        before=_jsonable(before),
        after=_jsonable(after),
        request_id=context.request_id,
        source=context.source,
        ip=context.ip,
        prev_hash=prev_hash,
    )
    event.hash = event_hash(prev_hash, event_payload(event))
    event.save(force_insert=True)
    return event


def _jsonable(value):
    """Round-trip through the canonical encoder so what is stored equals what was hashed."""
    if value is None:
        return None
    import json

    from registry.verify_export import canonical_default

    return json.loads(json.dumps(value, default=canonical_default))


def model_snapshot(instance, fields: list[str]) -> dict[str, Any]:
    """Field values for before/after diffs (FKs as ids, M2M not included)."""
    out: dict[str, Any] = {}
    for name in fields:
        value = getattr(instance, name)
        if hasattr(value, "pk"):
            value = value.pk
        out[name] = value
    return _jsonable(out)


def diff(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Only the keys that changed, for compact before/after."""
    keys = [k for k in after if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in keys}, {k: after.get(k) for k in keys}


__all__ = ["AuditContext", "CLI", "WORKER", "audit_record", "diff", "event_payload", "model_snapshot", "transaction"]
