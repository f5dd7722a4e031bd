"""The chain writer: ``audit_record`` appends one event, in the caller's transaction, linked to
the head by its hash. The canonical encoding and hash live in ``registry.verify_export``
(standard library only) so that offline verification and the server agree byte for byte."""

from __future__ import annotations

import json
import math
from typing import Any

from django.db import connection

from mlops_portal import clock
from mlops_portal.db import advisory_xact_lock
from registry.models import AuditEvent, ModelVersion, RegisteredModel
from registry.verify_export import GENESIS_HASH, canonical_default, event_hash, with_token

from .context import AuditContext

# Arbitrary constant key for pg_advisory_xact_lock: serialises appends.
_AUDIT_LOCK_KEY = 0x4D4C4F5053  # "MLOPS"


def event_payload(event: AuditEvent) -> dict[str, Any]:
    """The fields covered by the hash, as plain JSON values (the token only when there is one)."""
    fields = {
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
    return with_token(fields, event.token)


def _lock_chain() -> None:
    advisory_xact_lock(_AUDIT_LOCK_KEY)  # SQLite: IMMEDIATE transactions already serialise writers


def audit_head() -> tuple[int, str]:
    """The chain's current head: (seq, hash), or (0, genesis) when empty."""
    last = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first()
    return (last[0], last[1]) if last else (0, GENESIS_HASH)


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
    the change and its event commit together or not at all. ``model`` defaults to ``obj``
    itself for a registered model, and to its model for a version."""
    if not connection.in_atomic_block:
        raise RuntimeError("audit_record must be called inside the service's transaction")
    _lock_chain()
    seq, prev_hash = audit_head()
    seq += 1
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or str(obj.pk)
        object_repr = object_repr or str(obj)[:300]
    if model is None and isinstance(obj, RegisteredModel):
        model = obj
    elif model is None and isinstance(obj, ModelVersion):
        model = obj.model
    user = actor if getattr(actor, "is_authenticated", False) else None
    event = AuditEvent(
        seq=seq,
        # Microsecond precision is what both databases store, so the hash is stable.
        timestamp=clock.now(),
        actor=user,
        actor_name=(user.get_username() if user else (str(actor) if actor else "system"))[:150],
        action=action,
        object_type=object_type,
        object_id=object_id,
        object_repr=object_repr[:300].replace("\x00", "\ufffd"),
        model=model,
        model_name=model.name if model else "",
        before=_jsonable(before),
        after=_jsonable(after),
        request_id=context.request_id,
        source=context.source,
        # The database stores a blank address as NULL: hash what will be read back.
        ip=context.ip or None,
        token=context.token,
        prev_hash=prev_hash,
    )
    event.hash = event_hash(prev_hash, event_payload(event))
    event.save(force_insert=True)
    return event


def audit_save(
    obj,
    *,
    actor,
    action: str,
    context: AuditContext,
    model: RegisteredModel | None = None,
    before: dict | None = None,
    after: dict | None = None,
    exclude: list[str] | None = None,
) -> AuditEvent:
    """Validate and save ``obj``, then record ``action`` on it: the create/update step every
    service ends with, in the caller's transaction. ``exclude`` skips fields in ``full_clean``
    (e.g. a large JSON column validated elsewhere)."""
    obj.full_clean(exclude=exclude)
    obj.save()
    return audit_record(actor=actor, action=action, context=context, obj=obj, model=model, before=before, after=after)


def _jsonable(value):
    """Round-trip through the canonical encoder so what is stored equals what was hashed,
    and what the database gives back is what was stored (see ``_db_safe``)."""
    if value is None:
        return None
    return _db_safe(json.loads(json.dumps(value, default=canonical_default)))


def _db_safe(value):
    """Values that PostgreSQL's jsonb would refuse or rewrite, made stable: NUL characters
    (refused), NaN/Infinity (refused), -0.0 (read back as 0) and integral floats of 1e16
    and more (read back as integers, so their JSON text would change)."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
        if value == 0:
            return 0.0
        if value.is_integer() and abs(value) >= 1e16:
            return int(value)
        return value
    if isinstance(value, dict):
        return {_db_safe(k): _db_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_db_safe(v) for v in value]
    return value


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
