"""The audit log's single writer, and the chain's hashing rules.

The canonical encoding and hash live in ``registry.verify_export`` (standard
library only) so that offline verification and the server agree byte for byte.
"""

from __future__ import annotations

import codecs
import contextlib
import contextvars
import csv
import dataclasses
import hashlib
import io
import ipaddress
import json
import math
from collections.abc import Iterator
from typing import Any

import orjson
from django.core.exceptions import EmptyResultSet, ValidationError
from django.db import connection, transaction
from django.db.models import Count, Max, Min, TextField
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast
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
        from mlops_portal.net import client_ip  # REMOTE_ADDR unless a trusted proxy forwarded it

        ip = client_ip(request)
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
        object_repr=object_repr[:300].replace("\x00", "\ufffd"),
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


_HASHED = tuple(HASHED_FIELDS)
_BEFORE, _AFTER = _HASHED.index("before"), _HASHED.index("after")

# PostgreSQL renders the timestamp exactly as Python's datetime.isoformat() does for UTC
# (microseconds only when non-zero), so rows need no per-row datetime objects.
_PG_TIMESTAMP = (
    """to_char("registry_auditevent"."timestamp" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')"""
    """ || CASE WHEN extract(microseconds FROM "registry_auditevent"."timestamp")::bigint %% 1000000 <> 0"""
    """ THEN to_char("registry_auditevent"."timestamp" AT TIME ZONE 'UTC', '.US') ELSE '' END || '+00:00'"""
)

# The canonical JSON of the 16 hashed fields, keys in sorted order, as one format string:
# cheaper than building a dict and sorting it for every row.
_SORTED = sorted(_HASHED)
_CANONICAL_TEMPLATE = "{" + ",".join(f'"{k}":%s' for k in _SORTED) + "}"
_encode = json.encoder.encode_basestring  # the C encoder json.dumps(ensure_ascii=False) uses


def _canonical_value_json(text: str | None) -> str:
    """Canonical JSON for a stored JSON value given as text (or None)."""
    if text is None:
        return "null"
    return canonical_json(json.loads(text))


def _json_text_or_null(text: str | None) -> str:
    return "null" if text is None else text


def canonical_row_text(row) -> str:
    """canonical_json(payload) for a canonical row (16 hashed fields in HASHED_FIELDS order,
    timestamp as its ISO string, before/after already canonical JSON text). Written out
    field by field for speed; a test checks it against canonical_json on tricky values."""
    enc = _encode
    actor_id, model_id, ip = row[2], row[8], row[14]
    return _CANONICAL_TEMPLATE % (
        enc(row[4]),  # action
        "null" if actor_id is None else str(actor_id),
        enc(row[3]),  # actor_name
        row[11],  # after
        row[10],  # before
        "null" if ip is None else enc(ip),
        "null" if model_id is None else str(model_id),
        enc(row[9]),  # model_name
        enc(row[6]),  # object_id
        enc(row[7]),  # object_repr
        enc(row[5]),  # object_type
        enc(row[15]),  # prev_hash
        enc(row[12]),  # request_id
        str(row[0]),  # seq
        enc(row[13]),  # source
        enc(row[1]),  # timestamp
    )


assert _SORTED == [  # the order canonical_row_text writes
    "action", "actor_id", "actor_name", "after", "before", "ip", "model_id", "model_name", "object_id",
    "object_repr", "object_type", "prev_hash", "request_id", "seq", "source", "timestamp",
]  # fmt: skip


def _canonical_rows(
    queryset, *, chunk_size: int, up_to_seq: int | None = None, canonical_values: bool = True
) -> Iterator[tuple]:
    """Rows in seq order as (16 hashed fields..., hash), timestamp as ISO text and before/after
    as canonical JSON text. Fetched in keyset chunks (constant memory, no long-lived cursor,
    each chunk an index range scan). On PostgreSQL the database formats the text columns, so
    no model instances or datetime objects are made per row."""
    qs = queryset.order_by()
    if up_to_seq is not None:
        qs = qs.filter(seq__lte=up_to_seq)
    fast = connection.vendor == "postgresql"
    if fast:
        qs = qs.annotate(
            ts_text=RawSQL(_PG_TIMESTAMP, []),
            before_text=Cast("before", TextField()),
            after_text=Cast("after", TextField()),
            ip_text=RawSQL('host("registry_auditevent"."ip")', []),
        )
        columns = [
            "ts_text" if f == "timestamp" else f"{f}_text" if f in ("before", "after", "ip") else f for f in _HASHED
        ]
    else:
        columns = list(_HASHED)
    last = 0
    # Exports may carry before/after as the database's own JSON text (valid JSON; the
    # verifier re-canonicalises what it parses), which saves a parse and a dump per value.
    load = _canonical_value_json if canonical_values else _json_text_or_null
    while True:
        chunk = list(qs.filter(seq__gt=last).order_by("seq").values_list(*columns, "hash")[:chunk_size])
        if not chunk:
            return
        for row in chunk:
            row = list(row)
            if fast:
                row[_BEFORE] = load(row[_BEFORE])
                row[_AFTER] = load(row[_AFTER])
            else:
                row[1] = row[1].isoformat()
                row[_BEFORE] = "null" if row[_BEFORE] is None else canonical_json(row[_BEFORE])
                row[_AFTER] = "null" if row[_AFTER] is None else canonical_json(row[_AFTER])
            yield row
        last = chunk[-1][0]
        if len(chunk) < chunk_size:
            return


def audit_head() -> tuple[int, str]:
    """The chain's current head: (seq, hash), or (0, genesis) when empty."""
    last = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first()
    return (last[0], last[1]) if last else (0, GENESIS_HASH)


# Rows per libpq chunk while streaming (libpq >= 17): big enough to make the per-chunk cost
# vanish, small enough that PostgreSQL keeps producing rows while Python checks the last ones.
_STREAM_ROWS = 2_000


def _verify_rows_pg(up_to_seq: int | None, chunk_size: int) -> Iterator[tuple]:
    """PostgreSQL: rows in seq order as (16 hashed fields..., hash), the timestamp as ISO text
    and before/after as the database's JSON text, as plain tuples (no model instances, no
    per-row datetime or dict). Keyset chunks of ``chunk_size`` rows (each an index range scan,
    no long-lived snapshot); each chunk is STREAMED (libpq chunked-rows mode), so the server
    formats the next rows while Python hashes these: the two run on two CPUs at once."""
    columns = ["ts_text" if f == "timestamp" else f"{f}_text" if f in ("before", "after", "ip") else f for f in _HASHED]
    from psycopg import pq

    streaming = pq.version() >= 170000  # chunked rows mode needs libpq 17
    last = 0
    while True:
        qs = AuditEvent.objects.filter(seq__gt=last)
        if up_to_seq is not None:
            qs = qs.filter(seq__lte=up_to_seq)
        qs = (
            qs.annotate(
                ts_text=RawSQL(_PG_TIMESTAMP, []),
                before_text=Cast("before", TextField()),
                after_text=Cast("after", TextField()),
                ip_text=RawSQL('host("registry_auditevent"."ip")', []),
            )
            .order_by("seq")
            .values_list(*columns, "hash")[:chunk_size]
        )
        sql, params = qs.query.sql_with_params()
        count = 0
        with connection.cursor() as cursor:
            raw = cursor.cursor  # the psycopg cursor: tuples straight from its C row loader
            if streaming:
                rows = raw.stream(sql, params, size=min(chunk_size, _STREAM_ROWS))
            else:
                raw.execute(sql, params)
                rows = iter(raw.fetchall())
            try:
                for row in rows:
                    count += 1
                    yield row
            finally:
                # Stopped early (a broken link): read the rest of this chunk rather than let
                # psycopg cancel the query, which would abort the caller's transaction.
                for _ in rows:
                    pass
        if count < chunk_size:
            return
        last = row[0]


def _verify_rows_orm(up_to_seq: int | None, chunk_size: int) -> Iterator[tuple]:
    """Other databases (SQLite): the same rows through the ORM, the timestamp as ISO text and
    before/after as the JSON values Django parsed."""
    last = 0
    while True:
        qs = AuditEvent.objects.filter(seq__gt=last)
        if up_to_seq is not None:
            qs = qs.filter(seq__lte=up_to_seq)
        chunk = list(qs.order_by("seq").values_list(*_HASHED, "hash")[:chunk_size])
        for row in chunk:
            yield (row[0], row[1].isoformat(), *row[2:])
        if len(chunk) < chunk_size:
            return
        last = chunk[-1][0]


def _exact_row_hash(row, json_text: bool) -> str:
    """The hash of a verify row by the reference rule: the standard library's canonical JSON
    (``registry.verify_export.canonical_json``), exactly what the writer hashed."""
    row = list(row)
    for i in (_BEFORE, _AFTER):
        value = row[i]
        row[i] = "null" if value is None else canonical_json(json.loads(value) if json_text else value)
    return hashlib.sha256((row[15] + canonical_row_text(row)).encode("utf-8")).hexdigest()


def _verify_chain(up_to_seq: int | None, chunk_size: int, progress=None) -> VerifyResult:
    """Recompute hashes and links from the genesis hash, in one pass in seq order.

    Fast path: each row's canonical JSON is written by orjson (sorted keys, compact, UTF-8 in
    one C call, before/after parsed by orjson). orjson writes every string exactly as the
    standard library does, but not every number (``1e-05`` is ``0.00001``, ``1e-07`` is
    ``1e-7``; integers beyond 64 bits are parsed as floats). So the fast text only ever
    CONFIRMS a row: when its hash matches the stored hash the row is intact (the fast text
    decodes to exactly the values it was made from, so equal text means equal values;
    an ``e+`` anywhere in it, where a lossy big integer would show, sends the row to the exact
    path too). Any other row is recomputed with the reference encoder
    (``_exact_row_hash``), and only that decides a break: no false alarm, no missed tamper.
    """
    json_text = connection.vendor == "postgresql"
    rows = _verify_rows_pg(up_to_seq, chunk_size) if json_text else _verify_rows_orm(up_to_seq, chunk_size)
    sha256 = hashlib.sha256
    loads, dumps, sort_keys = orjson.loads, orjson.dumps, orjson.OPT_SORT_KEYS
    keys = _HASHED
    before_i, after_i = _BEFORE, _AFTER
    expected_seq, expected_prev = 1, GENESIS_HASH
    count = pending = 0
    broken: tuple[int, str] | None = None
    try:
        for row in rows:
            seq = row[0]
            prev_hash = row[15]
            stored_hash = row[16]
            if seq != expected_seq:
                broken = expected_seq, f"seq {expected_seq} is missing (next is {seq})"
                break
            if prev_hash != expected_prev:
                broken = seq, f"prev_hash does not match the hash of seq {seq - 1}"
                break
            fields = dict(zip(keys, row, strict=False))  # the 16 hashed fields, not the hash
            try:
                if json_text:
                    before, after = row[before_i], row[after_i]
                    if before is not None:
                        fields["before"] = loads(before)
                    if after is not None:
                        fields["after"] = loads(after)
                text = dumps(fields, option=sort_keys)
            except (TypeError, ValueError):  # orjson refused (e.g. an integer beyond 64 bits)
                text = b"e+"
            if (
                b"e+" in text or sha256(prev_hash.encode("utf-8") + text).hexdigest() != stored_hash
            ) and _exact_row_hash(row, json_text) != stored_hash:
                broken = seq, "hash mismatch, the event was altered"
                break
            expected_prev = stored_hash
            expected_seq = seq + 1
            count += 1
            pending += 1
            if progress is not None and pending >= chunk_size:
                progress(pending)
                pending = 0
    finally:
        rows.close()
    if progress is not None and pending:
        progress(pending)
    if broken is None and up_to_seq is not None and expected_seq <= up_to_seq:
        broken = expected_seq, f"seq {expected_seq} is missing (the chain ends early)"
    if broken is not None:
        return _broken(count, expected_prev, *broken)
    return VerifyResult(
        ok=True,
        count=count,
        head_seq=count,
        head_hash=expected_prev,
        message=f"OK: {count} events, head seq {count}, head hash {expected_prev}",
    )


def audit_verify(
    *,
    chunk_size: int = 20_000,
    progress=None,
    up_to_seq: int | None = None,
) -> VerifyResult:
    """Recompute the whole chain from the genesis hash, in seq order.

    Detects an edited event (its hash no longer matches its fields), a deleted
    event (a gap in seq, and the next event's prev_hash no longer links) and
    reordered events (seq is hashed, and the links break). Reports the first
    broken link. ``progress`` is called with the number of rows checked.

    One pass in keyset chunks, in constant memory (see ``_verify_chain`` for the fast
    canonical JSON and its exact fallback). (A parallel, segmented check was tried and
    removed: it reported a false break in one CI environment, and a false tamper alarm is
    worse than a slower check.)
    """
    return _verify_chain(up_to_seq, chunk_size, progress)


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


def _copy_csv(queryset, *, chunk_bytes: int) -> Iterator[str]:
    """The CSV rows of ``queryset`` written by PostgreSQL's COPY, as UTF-8 text chunks."""
    columns = ["ts_text" if f == "timestamp" else f"{f}_text" if f in ("before", "after", "ip") else f for f in _HASHED]
    qs = (
        queryset.annotate(
            ts_text=RawSQL(_PG_TIMESTAMP, []),
            before_text=RawSQL("""COALESCE("registry_auditevent"."before"::text, 'null')""", []),
            after_text=RawSQL("""COALESCE("registry_auditevent"."after"::text, 'null')""", []),
            ip_text=RawSQL('host("registry_auditevent"."ip")', []),
        )
        .order_by("seq")
        .values_list(*columns, "hash")
    )
    try:
        sql, params = qs.query.sql_with_params()
    except EmptyResultSet:  # e.g. .none(): nothing to copy
        return
    decoder = codecs.getincrementaldecoder("utf-8")()
    pending: list[bytes] = []
    size = 0
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)", params) as copy:
            for data in copy:
                pending.append(bytes(data))
                size += len(data)
                if size >= chunk_bytes:
                    yield decoder.decode(b"".join(pending))
                    pending, size = [], 0
    yield decoder.decode(b"".join(pending), final=True)


def audit_export_rows(
    queryset=None,
    *,
    fmt: str = "csv",
    filters: dict | None = None,
    head: tuple[int, str] | None = None,
    exported_at: str | None = None,
    chunk_size: int = 5_000,
    use_copy: bool = True,
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
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")

    def drain() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    if fmt == "csv":
        writer.writerow(EXPORT_COLUMNS)
        yield drain()
    if fmt == "csv" and connection.vendor == "postgresql" and use_copy:
        # PostgreSQL writes the CSV rows itself (COPY ... TO STDOUT): the same cells as the
        # Python path, at the database's own speed; the manifest comes from one aggregate.
        bounded = queryset.order_by().filter(seq__lte=head_seq)
        yield from _copy_csv(bounded, chunk_bytes=chunk_size * 400)
        stats = bounded.aggregate(count=Count("seq"), first=Min("seq"), last=Max("seq"))
        count, first_seq, last_seq = stats["count"], stats["first"], stats["last"]
        if count:
            first_prev = AuditEvent.objects.filter(seq=first_seq).values_list("prev_hash", flat=True).get()
            last_hash = AuditEvent.objects.filter(seq=last_seq).values_list("hash", flat=True).get()
    batch: list = []
    rows = (
        ()
        if (fmt == "csv" and connection.vendor == "postgresql" and use_copy)
        else _canonical_rows(queryset, chunk_size=chunk_size, up_to_seq=head_seq, canonical_values=False)
    )
    for row in rows:
        if fmt == "csv":
            batch.append(row)  # csv writes None as an empty cell
        else:
            # Valid JSON with every hashed field plus "hash" (the verifier re-canonicalises).
            batch.append(canonical_row_text(row)[:-1] + ',"hash":"' + row[16] + '"}\n')
        if first_seq is None:
            first_seq, first_prev = row[0], row[15]
        last_seq, last_hash = row[0], row[16]
        count += 1
        if len(batch) >= chunk_size:
            if fmt == "csv":
                writer.writerows(batch)
                yield drain()
            else:
                yield "".join(batch)
            batch = []
    if batch:
        if fmt == "csv":
            writer.writerows(batch)
            yield drain()
        else:
            yield "".join(batch)
    manifest = {
        "count": count,
        "first_seq": first_seq,
        "last_seq": last_seq,
        "first_prev_hash": first_prev,
        "last_hash": last_hash,
        "head_seq": head_seq,
        "head_hash": head_hash,
        # Only a seq range (or nothing) keeps the export a gap-free stretch of the chain.
        "contiguous": set(filters) <= {"from_seq", "to_seq"},
        "exported_at": exported_at,
        "filters": filters,
        "format": fmt,
        "hash_rule": "sha256(prev_hash || canonical_json(fields)); canonical_json = sorted keys, (',', ':'), UTF-8",
        "verify_with": "python -m registry.verify_export FILE",
    }
    if fmt == "csv":
        writer.writerow([MANIFEST_MARKER, canonical_json(manifest)])
        yield drain()
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
