"""Exports of the chain: CSV or JSON Lines, streamed in seq order in constant memory, ending
with a manifest that ``python -m registry.verify_export`` checks offline. The export itself
is recorded (``audit.exported``) before the first byte is streamed."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
from collections.abc import Iterator
from typing import Any

from django.core.exceptions import EmptyResultSet, ValidationError
from django.db import transaction
from django.db.models import Count, Max, Min

from mlops_portal import clock
from mlops_portal.db import copy_to_csv, is_postgresql, pg_prefixed_cells
from registry.models import AuditEvent, RegisteredModel
from registry.verify_export import (
    CELL_ESCAPE_MARKER,
    EXPORT_COLUMNS,
    FORMULA_QUOTE,
    MANIFEST_MARKER,
    QUOTED_STARTS,
    canonical_json,
    formula_quoted,
)

from .context import AuditContext
from .rows import ChainRow, canonical_row_text, canonical_rows, pg_text_values
from .writer import _jsonable, audit_head, audit_record

EXPORT_FORMATS = ("csv", "jsonl")


@dataclasses.dataclass
class ExportRange:
    """What an export contains, for its manifest: how many events and the hashes at both ends."""

    count: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    first_prev_hash: str | None = None
    last_hash: str | None = None

    def add(self, row: ChainRow) -> None:
        if self.first_seq is None:
            self.first_seq, self.first_prev_hash = row.seq, row.prev_hash
        self.last_seq, self.last_hash = row.seq, row.hash
        self.count += 1


def _copy_csv(queryset, *, chunk_bytes: int) -> Iterator[str]:
    """The CSV rows of ``queryset`` written by PostgreSQL's COPY, as UTF-8 text chunks, formulas
    neutralised by the database as ``_csv_rows_text`` does in Python."""
    try:
        sql, params = pg_text_values(queryset.order_by("seq"), json_null=True).query.sql_with_params()
    except EmptyResultSet:  # e.g. .none(): nothing to copy
        return
    sql, params = pg_prefixed_cells(sql, params, width=len(EXPORT_COLUMNS), starts=QUOTED_STARTS, prefix="'")
    yield from copy_to_csv(sql, params, chunk_bytes=chunk_bytes)


def _copy_range(bounded) -> ExportRange:
    """The manifest's range of a COPY export, from one aggregate and two index lookups."""
    stats = bounded.aggregate(count=Count("seq"), first=Min("seq"), last=Max("seq"))
    found = ExportRange(count=stats["count"], first_seq=stats["first"], last_seq=stats["last"])
    if found.count:
        found.first_prev_hash = AuditEvent.objects.filter(seq=found.first_seq).values_list("prev_hash", flat=True).get()
        found.last_hash = AuditEvent.objects.filter(seq=found.last_seq).values_list("hash", flat=True).get()
    return found


def _jsonl_line(row: ChainRow) -> str:
    # Valid JSON with every hashed field, the token and "hash" (the verifier re-canonicalises).
    # An empty token is not hashed, so canonical_row_text leaves it out: it is written here.
    return canonical_row_text(row)[:-1] + ("" if row.token else ',"token":""') + ',"hash":"' + row.hash + '"}\n'


def _manifest(
    found: ExportRange, *, head: tuple[int, str], filters: dict, exported_at: str, fmt: str, recorded_as: int | None
) -> dict:
    return {
        "count": found.count,
        "first_seq": found.first_seq,
        "last_seq": found.last_seq,
        "first_prev_hash": found.first_prev_hash,
        "last_hash": found.last_hash,
        "head_seq": head[0],
        "head_hash": head[1],
        # Only a seq range (or nothing) keeps the export a gap-free stretch of the chain.
        "contiguous": set(filters) <= {"from_seq", "to_seq"},
        **({"cell_escape": FORMULA_QUOTE} if fmt == "csv" else {}),
        "exported_at": exported_at,
        "filters": filters,
        "format": fmt,
        "hash_rule": "sha256(prev_hash || canonical_json(fields)); canonical_json = sorted keys, (',', ':'), UTF-8",
        "verify_with": "python -m registry.verify_export FILE",
        # the seq of this export's ``audit.exported`` event, which records its range and count in
        # the chain: ``python -m registry.verify_filtered FILE FULL_EXPORT`` checks a filtered
        # export against it
        **({"recorded_as": recorded_as} if recorded_as is not None else {}),
    }


def _csv_text(rows: list) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)  # csv writes None as an empty cell
    return buffer.getvalue()


def _csv_rows_text(rows: list) -> str:
    """Events as CSV rows, formulas neutralised (``formula_quoted``). Lines end in CRLF, so that the
    csv module quotes a cell holding a bare carriage return as COPY does (with "\\n" it does not,
    and the row would split when read back)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows([formula_quoted(cell) for cell in row] for row in rows)
    return buffer.getvalue()


def _python_rows(queryset, *, fmt: str, head_seq: int, chunk_size: int, found: ExportRange) -> Iterator[str]:
    """The rows written in Python (JSON Lines, and CSV off PostgreSQL), one chunk of text per
    ``chunk_size`` events; ``found`` collects the manifest's range."""
    batch: list = []
    for row in canonical_rows(queryset, chunk_size=chunk_size, up_to_seq=head_seq, canonical_values=False):
        batch.append(row if fmt == "csv" else _jsonl_line(row))
        found.add(row)
        if len(batch) >= chunk_size:
            yield _csv_rows_text(batch) if fmt == "csv" else "".join(batch)
            batch = []
    if batch:
        yield _csv_rows_text(batch) if fmt == "csv" else "".join(batch)


def audit_export_rows(
    queryset=None,
    *,
    fmt: str = "csv",
    filters: dict | None = None,
    head: tuple[int, str] | None = None,
    exported_at: str | None = None,
    chunk_size: int = 5_000,
    use_copy: bool = True,
    recorded_as: int | None = None,
    counted: ExportRange | None = None,
) -> Iterator[str]:
    """Stream an export of ``queryset`` (default: the whole chain) in seq order, as text
    chunks (one per ``chunk_size`` events), ending with the manifest. Constant memory.

    Only events up to the head at the time of the call are exported, so the range is
    fixed even while others keep appending. ``verify_export`` checks the output.
    ``counted``: the range already counted up to that head (``audit_export``), which the COPY
    path then does not count again.
    """
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"format must be one of {', '.join(EXPORT_FORMATS)}")
    queryset = AuditEvent.objects.all() if queryset is None else queryset
    head = head or audit_head()
    filters = dict(filters or {})
    if fmt == "csv":
        yield _csv_text([EXPORT_COLUMNS, [CELL_ESCAPE_MARKER, FORMULA_QUOTE]])
    if fmt == "csv" and is_postgresql() and use_copy:
        # PostgreSQL writes the CSV rows itself (COPY ... TO STDOUT): the same cells as the
        # Python path, at the database's own speed; the manifest comes from one aggregate.
        bounded = queryset.order_by().filter(seq__lte=head[0])
        yield from _copy_csv(bounded, chunk_bytes=chunk_size * 400)
        found = counted or _copy_range(bounded)
    else:
        found = ExportRange()
        yield from _python_rows(queryset, fmt=fmt, head_seq=head[0], chunk_size=chunk_size, found=found)
    exported_at = exported_at or clock.now().isoformat()
    manifest = _manifest(found, head=head, filters=filters, exported_at=exported_at, fmt=fmt, recorded_as=recorded_as)
    if fmt == "csv":
        yield _csv_text([[MANIFEST_MARKER, canonical_json(manifest)]])
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
def audit_export(*, actor, queryset, filters: dict[str, Any], fmt: str, context: AuditContext) -> AuditExport:
    """Record ``audit.exported`` (filters, the seq range and how many events it holds) and
    return the streaming export, whose manifest names that event (``recorded_as``).

    The event is written BEFORE streaming starts, in the request's transaction; the
    export covers events up to the head before that event (so it never contains itself).
    A filtered export leaves events out, so its own file cannot show that none of its events
    was removed: the chain's record of its count can (``registry.verify_filtered``).
    """
    if fmt not in EXPORT_FORMATS:
        raise ValidationError({"format": f"Choose one of: {', '.join(EXPORT_FORMATS)}."})
    head_seq, head_hash = audit_head()
    now = clock.now()
    clean_filters = {k: _jsonable(v) for k, v in filters.items() if v not in (None, "", [])}
    found = _copy_range(queryset.order_by().filter(seq__lte=head_seq))
    contents = {"count": found.count, "first_seq": found.first_seq, "last_seq": found.last_seq}
    event = audit_record(
        actor=actor,
        action="audit.exported",
        context=context,
        object_type="registry.auditevent",
        object_repr=f"audit export ({fmt}) up to seq {head_seq}",
        after={"format": fmt, "filters": clean_filters, "up_to_seq": head_seq, "head_hash": head_hash, **contents},
    )
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    return AuditExport(
        event=event,
        fmt=fmt,
        filename=f"audit-{stamp}-to-{head_seq}.{fmt}",
        content_type="text/csv; charset=utf-8" if fmt == "csv" else "application/jsonl; charset=utf-8",
        stream=audit_export_rows(
            queryset,
            fmt=fmt,
            filters=clean_filters,
            head=(head_seq, head_hash),
            exported_at=now.isoformat(),
            recorded_as=event.seq,
            counted=found,
        ),
    )


@transaction.atomic
def compliance_report_record_export(
    *, model: RegisteredModel, actor, context: AuditContext, fmt: str, content: bytes
) -> AuditEvent:
    """Record that a model's compliance report was exported (PDF download), with the file's
    SHA-256: a copy whose digest is not in the log is not the one the portal gave out."""
    return audit_record(
        actor=actor,
        action="audit.report_exported",
        context=context,
        obj=model,
        after={"format": fmt, "head_seq": audit_head()[0], **file_digest(content)},
    )


def file_digest(content: bytes) -> dict:
    """What an export event records of the file it gave out."""
    return {"sha256": hashlib.sha256(content).hexdigest(), "bytes": len(content)}
