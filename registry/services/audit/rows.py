"""The chain's rows as ``ChainRow`` (one named row: the 16 hashed fields, then the hash), read
in seq order in keyset chunks, and the canonical JSON text of a row.

PostgreSQL formats the timestamp, ``ip`` and the JSON columns as text itself (no model
instances, no per-row datetime or dict); other databases (SQLite) read through the ORM.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, NamedTuple

from django.db import connection
from django.db.models import QuerySet, TextField
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast

from registry.models import AuditEvent
from registry.verify_export import HASHED_FIELDS, canonical_json


class ChainRow(NamedTuple):
    """One event as the chain sees it. ``timestamp`` is the ISO text that was hashed;
    ``before``/``after`` are JSON text or parsed values, as the row source says."""

    seq: int
    timestamp: str
    actor_id: int | None
    actor_name: str
    action: str
    object_type: str
    object_id: str
    object_repr: str
    model_id: int | None
    model_name: str
    before: Any
    after: Any
    request_id: str
    source: str
    ip: str | None
    prev_hash: str
    hash: str


HASHED = tuple(HASHED_FIELDS)
assert ChainRow._fields == (*HASHED, "hash")  # one order: the hashed fields, then the hash

# PostgreSQL renders the timestamp exactly as Python's datetime.isoformat() does for UTC
# (microseconds only when non-zero), so rows need no per-row datetime objects.
PG_TIMESTAMP = (
    """to_char("registry_auditevent"."timestamp" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')"""
    """ || CASE WHEN extract(microseconds FROM "registry_auditevent"."timestamp")::bigint %% 1000000 <> 0"""
    """ THEN to_char("registry_auditevent"."timestamp" AT TIME ZONE 'UTC', '.US') ELSE '' END || '+00:00'"""
)
# The hashed columns with the database's text forms in place of timestamp, before, after and ip.
PG_TEXT_COLUMNS = [
    "ts_text" if f == "timestamp" else f"{f}_text" if f in ("before", "after", "ip") else f for f in HASHED
]


def pg_text_values(queryset: QuerySet, *, json_null: bool = False) -> QuerySet:
    """PostgreSQL: ``queryset`` as tuples in ChainRow order, text columns formatted by the
    database. ``json_null`` writes a NULL before/after as the JSON text ``null``."""
    if json_null:
        before = RawSQL("""COALESCE("registry_auditevent"."before"::text, 'null')""", [])
        after = RawSQL("""COALESCE("registry_auditevent"."after"::text, 'null')""", [])
    else:
        before, after = Cast("before", TextField()), Cast("after", TextField())
    return queryset.annotate(
        ts_text=RawSQL(PG_TIMESTAMP, []),
        before_text=before,
        after_text=after,
        ip_text=RawSQL('host("registry_auditevent"."ip")', []),
    ).values_list(*PG_TEXT_COLUMNS, "hash")


# The canonical JSON of the 16 hashed fields, keys in sorted order, as one format string:
# cheaper than building a dict and sorting it for every row.
_SORTED = sorted(HASHED)
_CANONICAL_TEMPLATE = "{" + ",".join(f'"{k}":%s' for k in _SORTED) + "}"
_encode = json.encoder.encode_basestring  # the C encoder json.dumps(ensure_ascii=False) uses


def canonical_row_text(row: ChainRow) -> str:
    """canonical_json(payload) for a row whose before/after are already canonical JSON text.
    Written out field by field for speed; a test checks it against canonical_json on tricky values."""
    enc = _encode
    return _CANONICAL_TEMPLATE % (
        enc(row.action),
        "null" if row.actor_id is None else str(row.actor_id),
        enc(row.actor_name),
        row.after,
        row.before,
        "null" if row.ip is None else enc(row.ip),
        "null" if row.model_id is None else str(row.model_id),
        enc(row.model_name),
        enc(row.object_id),
        enc(row.object_repr),
        enc(row.object_type),
        enc(row.prev_hash),
        enc(row.request_id),
        str(row.seq),
        enc(row.source),
        enc(row.timestamp),
    )


assert _SORTED == [  # the order canonical_row_text writes
    "action", "actor_id", "actor_name", "after", "before", "ip", "model_id", "model_name", "object_id",
    "object_repr", "object_type", "prev_hash", "request_id", "seq", "source", "timestamp",
]  # fmt: skip


def _canonical_value_json(text: str | None) -> str:
    """Canonical JSON for a stored JSON value given as text (or None)."""
    return "null" if text is None else canonical_json(json.loads(text))


def _json_text_or_null(text: str | None) -> str:
    return "null" if text is None else text


def canonical_rows(
    queryset, *, chunk_size: int, up_to_seq: int | None = None, canonical_values: bool = True
) -> Iterator[ChainRow]:
    """Rows of ``queryset`` in seq order, before/after as canonical JSON text (or, with
    ``canonical_values=False`` on PostgreSQL, the database's own valid JSON text, which the
    offline verifier re-canonicalises: a parse and a dump saved per value). Keyset chunks:
    constant memory, no long-lived cursor, each chunk an index range scan."""
    qs = queryset.order_by()
    if up_to_seq is not None:
        qs = qs.filter(seq__lte=up_to_seq)
    fast = connection.vendor == "postgresql"
    load = _canonical_value_json if canonical_values else _json_text_or_null
    last = 0
    while True:
        page = qs.filter(seq__gt=last).order_by("seq")
        page = pg_text_values(page) if fast else page.values_list(*HASHED, "hash")
        chunk = list(page[:chunk_size])
        if not chunk:
            return
        for values in chunk:
            row = ChainRow._make(values)
            if fast:
                yield row._replace(before=load(row.before), after=load(row.after))
            else:
                yield row._replace(
                    timestamp=row.timestamp.isoformat(),
                    before="null" if row.before is None else canonical_json(row.before),
                    after="null" if row.after is None else canonical_json(row.after),
                )
        last = chunk[-1][0]
        if len(chunk) < chunk_size:
            return


# Rows per libpq chunk while streaming (libpq >= 17): big enough to make the per-chunk cost
# vanish, small enough that PostgreSQL keeps producing rows while Python checks the last ones.
STREAM_ROWS = 2_000


def _bounded(last: int, up_to_seq: int | None) -> QuerySet:
    qs = AuditEvent.objects.filter(seq__gt=last)
    return qs if up_to_seq is None else qs.filter(seq__lte=up_to_seq)


def verify_rows_pg(up_to_seq: int | None, chunk_size: int) -> Iterator[ChainRow]:
    """PostgreSQL: every row in seq order, before/after as the database's JSON text. Keyset
    chunks of ``chunk_size`` rows (each an index range scan, no long-lived snapshot); each
    chunk is STREAMED (libpq chunked-rows mode), so the server formats the next rows while
    Python hashes these: the two run on two CPUs at once."""
    from psycopg import pq

    streaming = pq.version() >= 170000  # chunked rows mode needs libpq 17
    make = ChainRow._make
    last = 0
    while True:
        sql, params = pg_text_values(_bounded(last, up_to_seq).order_by("seq"))[:chunk_size].query.sql_with_params()
        count = 0
        with connection.cursor() as cursor:
            raw = cursor.cursor  # the psycopg cursor: tuples straight from its C row loader
            if streaming:
                rows = raw.stream(sql, params, size=min(chunk_size, STREAM_ROWS))
            else:
                raw.execute(sql, params)
                rows = iter(raw.fetchall())
            try:
                for values in rows:
                    count += 1
                    yield make(values)
            finally:
                # Stopped early (a broken link): read the rest of this chunk rather than let
                # psycopg cancel the query, which would abort the caller's transaction.
                for _ in rows:
                    pass
        if count < chunk_size:
            return
        last = values[0]


def verify_rows_orm(up_to_seq: int | None, chunk_size: int) -> Iterator[ChainRow]:
    """Other databases (SQLite): the same rows through the ORM, the timestamp as ISO text and
    before/after as the JSON values Django parsed."""
    last = 0
    while True:
        chunk = list(_bounded(last, up_to_seq).order_by("seq").values_list(*HASHED, "hash")[:chunk_size])
        for values in chunk:
            row = ChainRow._make(values)
            yield row._replace(timestamp=row.timestamp.isoformat())
        if len(chunk) < chunk_size:
            return
        last = chunk[-1][0]
