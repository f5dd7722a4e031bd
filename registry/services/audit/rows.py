"""The chain's rows as ``ChainRow`` (one named row: the 16 hashed fields, the token, which is
hashed when set, then the hash), read in seq order in keyset chunks, and the canonical JSON text
of a row.

PostgreSQL formats the timestamp, ``ip`` and the JSON columns as text itself (no model
instances, no per-row datetime or dict); other databases (SQLite) read through the ORM.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, NamedTuple

from django.db.models import QuerySet

from mlops_portal.db import is_postgresql, pg_inet_text, pg_iso_timestamp, pg_json_text, stream_rows
from registry.models import AuditEvent
from registry.verify_export import EXPORT_COLUMNS, HASHED_FIELDS, TOKEN_FIELD, canonical_json


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
    token: str
    hash: str


HASHED = tuple(HASHED_FIELDS)
assert ChainRow._fields == EXPORT_COLUMNS  # one order: the hashed fields, the token, then the hash

# The hashed columns with the database's text forms in place of timestamp, before, after and ip.
PG_TEXT_COLUMNS = [
    "ts_text" if f == "timestamp" else f"{f}_text" if f in ("before", "after", "ip") else f for f in HASHED
]


def pg_text_values(queryset: QuerySet, *, json_null: bool = False) -> QuerySet:
    """PostgreSQL: ``queryset`` as tuples in ChainRow order, text columns formatted by the
    database. ``json_null`` writes a NULL before/after as the JSON text ``null``."""
    table = '"registry_auditevent"'
    return queryset.annotate(
        ts_text=pg_iso_timestamp(f'{table}."timestamp"'),
        before_text=pg_json_text("before", f'{table}."before"', json_null=json_null),
        after_text=pg_json_text("after", f'{table}."after"', json_null=json_null),
        ip_text=pg_inet_text(f'{table}."ip"'),
    ).values_list(*PG_TEXT_COLUMNS, TOKEN_FIELD, "hash")


# The canonical JSON of the 16 hashed fields, keys in sorted order, as one format string:
# cheaper than building a dict and sorting it for every row.
_SORTED = sorted(HASHED)
_CANONICAL_TEMPLATE = "{" + ",".join(f'"{k}":%s' for k in _SORTED) + "}"
_encode = json.encoder.encode_basestring  # the C encoder json.dumps(ensure_ascii=False) uses


def canonical_row_text(row: ChainRow) -> str:
    """canonical_json(payload) for a row whose before/after are already canonical JSON text.
    Written out field by field for speed; a test checks it against canonical_json on tricky values.
    A token, when the row has one, sorts after every other key ("token" > "timestamp")."""
    enc = _encode
    text = _CANONICAL_TEMPLATE % (
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
    return f'{text[:-1]},"token":{enc(row.token)}}}' if row.token else text


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
    fast = is_postgresql()
    load = _canonical_value_json if canonical_values else _json_text_or_null
    last = 0
    while True:
        page = qs.filter(seq__gt=last).order_by("seq")
        page = pg_text_values(page) if fast else page.values_list(*HASHED, TOKEN_FIELD, "hash")
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


def _bounded(last: int, up_to_seq: int | None) -> QuerySet:
    qs = AuditEvent.objects.filter(seq__gt=last)
    return qs if up_to_seq is None else qs.filter(seq__lte=up_to_seq)


def verify_rows_pg(up_to_seq: int | None, chunk_size: int) -> Iterator[ChainRow]:
    """PostgreSQL: every row in seq order, before/after as the database's JSON text. Keyset
    chunks of ``chunk_size`` rows (each an index range scan, no long-lived snapshot); each
    chunk is STREAMED (``mlops_portal.db.stream_rows``), so the server formats the next rows
    while Python hashes these: the two run on two CPUs at once."""
    make = ChainRow._make
    last = 0
    while True:
        sql, params = pg_text_values(_bounded(last, up_to_seq).order_by("seq"))[:chunk_size].query.sql_with_params()
        count = 0
        rows = stream_rows(sql, params, chunk_rows=chunk_size)
        try:
            for values in rows:
                count += 1
                yield make(values)
        finally:
            rows.close()  # stopped early (a broken link): the rest of the chunk is drained
        if count < chunk_size:
            return
        last = values[0]


def verify_rows_orm(up_to_seq: int | None, chunk_size: int) -> Iterator[ChainRow]:
    """Other databases (SQLite): the same rows through the ORM, the timestamp as ISO text and
    before/after as the JSON values Django parsed."""
    last = 0
    while True:
        chunk = list(_bounded(last, up_to_seq).order_by("seq").values_list(*HASHED, TOKEN_FIELD, "hash")[:chunk_size])
        for values in chunk:
            row = ChainRow._make(values)
            yield row._replace(timestamp=row.timestamp.isoformat())
        if len(chunk) < chunk_size:
            return
        last = chunk[-1][0]
