"""The audit log's single writer, and the chain's hashing rules.

The canonical encoding and hash live in ``registry.verify_export`` (standard
library only) so that offline verification and the server agree byte for byte.
"""

from __future__ import annotations

import contextlib
import contextvars
import csv
import dataclasses
import hashlib
import ipaddress
import json
from collections.abc import Iterator
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from registry.choices import AuditSource
from registry.models import AuditEvent, RegisteredModel
from registry.verify_export import (
    EXPORT_COLUMNS,
    GENESIS_HASH,
    HASHED_FIELDS,
    MANIFEST_MARKER,
    canonical_default,
    canonical_json,
    csv_cells,
    event_hash,
)

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
        ip = _clean_ip(forwarded.split(",")[0]) if forwarded else None
        ip = ip or _clean_ip(request.META.get("REMOTE_ADDR"))
        return cls(source=source, request_id=str(getattr(request, "id", "") or "")[:64], ip=ip)


def _clean_ip(value) -> str | None:
    """A valid address in the database's own text form, or None (a forged
    X-Forwarded-For must neither break the insert nor the hash)."""
    try:
        address = ipaddress.ip_address(str(value or "").strip())
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped
    return str(address)


WORKER = AuditContext(source=AuditSource.WORKER)
CLI = AuditContext(source=AuditSource.CLI)

# Who is acting, for changes that are only seen through signals (role changes made with
# ``user.groups.add``): code that changes roles wraps the change in ``acting_as``.
_acting: contextvars.ContextVar[tuple[Any, AuditContext] | None] = contextvars.ContextVar("audit_acting", default=None)


@contextlib.contextmanager
def acting_as(actor, context: AuditContext):
    """Attribute signal-audited changes (role changes) made inside the block to ``actor``."""
    token = _acting.set((actor, context))
    try:
        yield
    finally:
        _acting.reset(token)


def current_actor(default_context: AuditContext) -> tuple[Any, AuditContext]:
    """The actor set by ``acting_as``, or (None, default_context)."""
    return _acting.get() or (None, default_context)


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
        # The database stores a blank address as NULL: hash what will be read back.
        ip=context.ip or None,
        prev_hash=prev_hash,
    )
    event.hash = event_hash(prev_hash, event_payload(event))
    event.save(force_insert=True)
    return event


def _jsonable(value):
    """Round-trip through the canonical encoder so what is stored equals what was hashed."""
    if value is None:
        return None
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


# ---------------------------------------------------------------- chain verification


@dataclasses.dataclass
class VerifyResult:
    """Outcome of recomputing the chain: ok, how far it got, and the first broken link."""

    ok: bool
    count: int
    head_seq: int
    head_hash: str
    broken_seq: int | None = None
    message: str = ""


_HASHED = tuple(f for f in HASHED_FIELDS)
# Database columns in HASHED_FIELDS order (ForeignKeys by their *_id column).
_COLUMNS = tuple(HASHED_FIELDS)


def _rows_in_seq_order(queryset, *, chunk_size: int, up_to_seq: int | None = None):
    """(payload-tuple, hash) rows in seq order, fetched in keyset chunks: constant memory,
    no long-lived cursor, each chunk an index range scan on the primary key."""
    qs = queryset.order_by()
    if up_to_seq is not None:
        qs = qs.filter(seq__lte=up_to_seq)
    last = 0
    while True:
        chunk = list(qs.filter(seq__gt=last).order_by("seq").values_list(*_COLUMNS, "hash")[:chunk_size])
        if not chunk:
            return
        yield from chunk
        last = chunk[-1][0]
        if len(chunk) < chunk_size:
            return


def _payload(row) -> dict[str, Any]:
    payload = dict(zip(_HASHED, row, strict=False))
    payload["timestamp"] = payload["timestamp"].isoformat()
    return payload


def audit_head() -> tuple[int, str]:
    """The chain's current head: (seq, hash), or (0, genesis) when empty."""
    last = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first()
    return (last[0], last[1]) if last else (0, GENESIS_HASH)


def audit_verify(*, chunk_size: int = 20_000, progress=None, up_to_seq: int | None = None) -> VerifyResult:
    """Recompute the whole chain from the genesis hash, in seq order.

    Detects an edited event (its hash no longer matches its fields), a deleted
    event (a gap in seq, and the next event's prev_hash no longer links) and
    reordered events (seq is hashed, and the links break). Stops at the first
    broken link. ``progress`` is called with the number of rows checked per chunk.
    """
    sha256 = hashlib.sha256
    dumps = json.dumps
    expected_prev = GENESIS_HASH
    expected_seq = 1
    count = 0
    pending = 0
    for row in _rows_in_seq_order(AuditEvent.objects.all(), chunk_size=chunk_size, up_to_seq=up_to_seq):
        seq = row[0]
        stored_hash = row[-1]
        payload = dict(zip(_HASHED, row, strict=False))
        payload["timestamp"] = row[1].isoformat()
        if seq != expected_seq:
            return _broken(count, expected_prev, expected_seq, f"seq {expected_seq} is missing (next is {seq})")
        if payload["prev_hash"] != expected_prev:
            return _broken(count, expected_prev, seq, f"seq {seq}: prev_hash does not match the hash of seq {seq - 1}")
        text = dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=canonical_default)
        if sha256((expected_prev + text).encode("utf-8")).hexdigest() != stored_hash:
            return _broken(count, expected_prev, seq, f"seq {seq}: hash mismatch, the event was altered")
        expected_prev = stored_hash
        expected_seq = seq + 1
        count += 1
        pending += 1
        if progress is not None and pending >= chunk_size:
            progress(pending)
            pending = 0
    if progress is not None and pending:
        progress(pending)
    return VerifyResult(
        ok=True,
        count=count,
        head_seq=expected_seq - 1,
        head_hash=expected_prev,
        message=f"OK: {count} events, head seq {expected_seq - 1}, head hash {expected_prev}",
    )


def _broken(count: int, last_good_hash: str, seq: int, message: str) -> VerifyResult:
    return VerifyResult(
        ok=False,
        count=count,
        head_seq=seq - 1,
        head_hash=last_good_hash,
        broken_seq=seq,
        message=f"BROKEN at seq {seq}: {message}",
    )


# ---------------------------------------------------------------- export

EXPORT_FORMATS = ("csv", "jsonl")


class _Echo:
    """A file-like object whose write returns the text, for csv.writer in a generator."""

    def write(self, value: str) -> str:
        return value


def audit_export_rows(
    queryset=None,
    *,
    fmt: str = "csv",
    filters: dict | None = None,
    head: tuple[int, str] | None = None,
    exported_at: str | None = None,
    chunk_size: int = 5_000,
) -> Iterator[str]:
    """Stream an export of ``queryset`` (default: the whole chain) in seq order, as text
    chunks (one per ``chunk_size`` events), ending with the manifest. Constant memory.

    Only events up to the head at the time of the call are exported, so the range is
    fixed even while others keep appending. ``verify_export`` checks the output.
    """
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"format must be one of {', '.join(EXPORT_FORMATS)}")
    queryset = AuditEvent.objects.all() if queryset is None else queryset
    head_seq, head_hash = head or audit_head()
    exported_at = exported_at or timezone.now().isoformat()
    filters = dict(filters or {})
    count = 0
    first_seq = last_seq = None
    first_prev = last_hash = None
    writer = csv.writer(_Echo(), lineterminator="\n")
    if fmt == "csv":
        yield writer.writerow(EXPORT_COLUMNS)
    batch: list[str] = []
    for row in _rows_in_seq_order(queryset, chunk_size=chunk_size, up_to_seq=head_seq):
        payload = _payload(row)
        hash_ = row[-1]
        if fmt == "csv":
            batch.append(writer.writerow(csv_cells(payload, hash_)))
        else:
            payload["hash"] = hash_
            batch.append(canonical_json(payload) + "\n")
        if first_seq is None:
            first_seq, first_prev = row[0], row[-2]
        last_seq, last_hash = row[0], hash_
        count += 1
        if len(batch) >= chunk_size:
            yield "".join(batch)
            batch = []
    if batch:
        yield "".join(batch)
    manifest = {
        "count": count,
        "first_seq": first_seq,
        "last_seq": last_seq,
        "first_prev_hash": first_prev,
        "last_hash": last_hash,
        "head_seq": head_seq,
        "head_hash": head_hash,
        "contiguous": not filters,
        "exported_at": exported_at,
        "filters": filters,
        "format": fmt,
        "hash_rule": "sha256(prev_hash || canonical_json(fields)); canonical_json = sorted keys, (',', ':'), UTF-8",
        "verify_with": "python -m registry.verify_export FILE",
    }
    if fmt == "csv":
        yield writer.writerow([MANIFEST_MARKER, canonical_json(manifest)])
    else:
        yield canonical_json({"manifest": manifest}) + "\n"


@dataclasses.dataclass
class AuditExport:
    """A started export: its audit event is written; ``stream`` yields the file."""

    event: AuditEvent
    fmt: str
    filename: str
    content_type: str
    stream: Iterator[str]


@transaction.atomic
def audit_export(*, actor, queryset, filters: dict, fmt: str, context: AuditContext) -> AuditExport:
    """Record ``audit.exported`` (filters and the seq range) and return the streaming export.

    The event is written BEFORE streaming starts, in the request's transaction; the
    export covers events up to the head before that event (so it never contains itself).
    """
    if fmt not in EXPORT_FORMATS:
        raise ValidationError({"format": f"Choose one of: {', '.join(EXPORT_FORMATS)}."})
    head_seq, head_hash = audit_head()
    now = timezone.now()
    clean_filters = {k: _jsonable(v) for k, v in filters.items() if v not in (None, "", [])}
    event = audit_record(
        actor=actor,
        action="audit.exported",
        context=context,
        object_type="registry.auditevent",
        object_repr=f"audit export ({fmt}) up to seq {head_seq}",
        after={"format": fmt, "filters": clean_filters, "up_to_seq": head_seq, "head_hash": head_hash},
    )
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    return AuditExport(
        event=event,
        fmt=fmt,
        filename=f"audit-{stamp}-to-{head_seq}.{fmt}",
        content_type="text/csv; charset=utf-8" if fmt == "csv" else "application/jsonl; charset=utf-8",
        stream=audit_export_rows(
            queryset, fmt=fmt, filters=clean_filters, head=(head_seq, head_hash), exported_at=now.isoformat()
        ),
    )


@transaction.atomic
def compliance_report_record_export(*, model: RegisteredModel, actor, context: AuditContext, fmt: str) -> AuditEvent:
    """Record that a model's compliance report was exported (PDF download)."""
    return audit_record(
        actor=actor,
        action="audit.report_exported",
        context=context,
        obj=model,
        after={"format": fmt, "head_seq": audit_head()[0]},
    )


__all__ = [
    "AuditContext",
    "AuditExport",
    "CLI",
    "WORKER",
    "VerifyResult",
    "acting_as",
    "current_actor",
    "audit_export",
    "audit_export_rows",
    "audit_head",
    "audit_record",
    "audit_verify",
    "compliance_report_record_export",
    "diff",
    "event_payload",
    "model_snapshot",
    "transaction",
]
