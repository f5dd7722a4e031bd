"""Storing validated batches: predictions by PostgreSQL ``COPY`` with the ORM path beside it
(SQLite), labels by upsert, and the digests of stored prediction batches.

The two prediction writers store the same values: features as one JSON object per row in
schema order (numbers as float, missing values as null), class predictions as JSON text,
regression predictions and scores as floats. Both run inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import orjson
from django.db import IntegrityError, connection, transaction

from monitoring.models import GroundTruth, IngestBatch, Prediction

from . import partitions
from .ingest_validation import EPOCH, ONE_US, LabelBatch, PredictionBatch
from .raw_digests import digests_add

ID_QUERY_CHUNK = 5000
COPY_CHUNK_ROWS = 5000
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_COPY_SPECIALS = ("\\", "\t", "\n", "\r")


def predictions_store(*, version_id: int, batch: PredictionBatch, received_at: datetime) -> None:
    """Insert the rows (a prediction id already stored raises ``IntegrityError``).

    On PostgreSQL the table is partitioned by day, which rules out a unique constraint on
    (version, prediction id) there: the batch's days get their partitions if missing, and the
    COPY's trigger writes the rows' keys into ``monitoring_predictionkey``, whose primary key
    refuses an id already stored (or being stored by a concurrent batch) in any partition; it
    inserts them sorted, so batches sharing ids cannot deadlock (migration 0028). Concurrent
    batches of a version COPY side by side; the version's lock, taken after the COPY and held
    until commit, serializes only the read-modify-write of the days' digests (taken before
    the COPY, it held a batch's COPY and commit back behind the other's: 34,761 against
    46,289 rows/s in ``python -m bench monitoring_ingest``)."""
    if connection.vendor == "postgresql":
        table = Prediction._meta.db_table
        partitions.ensure_for_micros(table=table, ts_us_min=int(batch.ts_us.min()), ts_us_max=int(batch.ts_us.max()))
        _copy_predictions(version_id, batch, received_at)
        partitions.version_lock(version_id)
    else:
        Prediction.objects.bulk_create(_prediction_objects(version_id, batch, received_at), batch_size=2000)
    digests_add(version_id=version_id, ids=batch.ids, ts_us=batch.ts_us)


def existing_prediction_ids(version_id: int, ids: list[str]) -> set[str]:
    """The ids of ``ids`` stored for the version: from the keys table on PostgreSQL."""
    if partitions.is_partitioned(Prediction._meta.db_table):
        return partitions.prediction_keys_stored(version_id=version_id, ids=ids)
    found: set[str] = set()
    for start in range(0, len(ids), ID_QUERY_CHUNK):
        found.update(
            Prediction.objects.filter(
                version_id=version_id, prediction_id__in=ids[start : start + ID_QUERY_CHUNK]
            ).values_list("prediction_id", flat=True)
        )
    return found


@dataclass
class LabelChanges:
    """What storing a label batch did: the ids stored anew, the ids whose label (or subject)
    changed with their old and new label, and the ids resent unchanged (not written again)."""

    new: list[str] = field(default_factory=list)
    changed: list[tuple[str, Any, Any]] = field(default_factory=list)  # (prediction id, before, after)
    unchanged: list[str] = field(default_factory=list)

    @property
    def written(self) -> list[str]:
        return self.new + [pid for pid, _, _ in self.changed]


def _stored_labels(model, ids: list[str], *, partitioned: bool) -> dict[str, tuple[Any, str | None]]:
    """The stored (label, subject hash) of these ids (the (model, prediction_id) index). On the
    partitioned table the stored ids are found first by ``partitions.stored_ids``'s probes."""
    found: dict[str, tuple[Any, str | None]] = {}
    for start in range(0, len(ids), ID_QUERY_CHUNK):
        chunk = ids[start : start + ID_QUERY_CHUNK]
        if partitioned:
            chunk = sorted(partitions.stored_ids(table=GroundTruth._meta.db_table, version_id=model.pk, ids=chunk))
            if not chunk:
                continue
        rows = GroundTruth.objects.filter(model=model, prediction_id__in=chunk)
        found.update(
            (pid, (label, subject))
            for pid, label, subject in rows.values_list("prediction_id", "label", "subject_hash")
        )
    return found


def labels_store(*, model, batch: LabelBatch, received_at: datetime) -> LabelChanges:
    """Upsert the labels (a re-sent label replaces the old one; an identical one is left as it
    is) → what changed.

    On PostgreSQL the labels table is partitioned by day on ``received_at``, which rules out a
    unique constraint on (model, prediction id): under a per-model lock held until commit, the
    batch's ids already stored are read (an index probe per id and partition), the old rows of
    changed labels deleted and the new and changed ones inserted. SQLite keeps the constraint
    and an ``ON CONFLICT`` upsert."""
    ids = batch.ids
    subjects = batch.subjects or [None] * len(ids)
    table = GroundTruth._meta.db_table
    partitioned = partitions.is_partitioned(table)
    if partitioned:
        partitions.label_lock(model.pk)
    stored = _stored_labels(model, ids, partitioned=partitioned)
    changes = LabelChanges()
    objs = []
    for pid, label, subject in zip(ids, batch.labels, subjects, strict=True):
        if pid not in stored:
            changes.new.append(pid)
        elif stored[pid] == (label, subject):
            changes.unchanged.append(pid)
            continue
        else:
            changes.changed.append((pid, stored[pid][0], label))
        objs.append(
            GroundTruth(model=model, prediction_id=pid, label=label, received_at=received_at, subject_hash=subject)
        )
    if partitioned:
        changed = [pid for pid, _, _ in changes.changed]
        for start in range(0, len(changed), ID_QUERY_CHUNK):
            GroundTruth.objects.filter(model=model, prediction_id__in=changed[start : start + ID_QUERY_CHUNK]).delete()
        GroundTruth.objects.bulk_create(objs, batch_size=2000)  # makes sure today's partition exists
        return changes
    GroundTruth.objects.bulk_create(
        objs,
        update_conflicts=True,
        unique_fields=["model", "prediction_id"],
        update_fields=["label", "received_at", "subject_hash"],
        batch_size=2000,
    )
    return changes


def labelled_prediction_times(*, model, ids: list[str]) -> Iterable[tuple[int, datetime]]:
    """(version id, timestamp) of the predictions of ``model`` with these ids."""
    table = Prediction._meta.db_table
    if partitions.is_partitioned(table):
        versions = list(model.versions.values_list("pk", flat=True))
        for start in range(0, len(ids), ID_QUERY_CHUNK):
            yield from partitions.stored_times(version_ids=versions, ids=ids[start : start + ID_QUERY_CHUNK])
        return
    for start in range(0, len(ids), ID_QUERY_CHUNK):
        yield from Prediction.objects.filter(
            version__model=model, prediction_id__in=ids[start : start + ID_QUERY_CHUNK]
        ).values_list("version_id", "timestamp")


# --------------------------------------------------------------------------- batch digests


def ingest_batch_find(*, version_id: int, digest: str) -> IngestBatch | None:
    return IngestBatch.objects.filter(version_id=version_id, digest=digest).first()


def ingest_batch_record(*, version_id: int, digest: str, summary: dict, received_at: datetime) -> IngestBatch | None:
    """Record a stored batch's digest; None when the same body was recorded meanwhile (a
    concurrent resend: the unique (version, digest) constraint waits for the first one's commit)."""
    batch = IngestBatch(
        version_id=version_id, digest=digest, rows=summary["rows"], summary=summary, received_at=received_at
    )
    batch.full_clean(validate_unique=False, validate_constraints=False)
    try:
        with transaction.atomic():
            batch.save()
    except IntegrityError:
        return None
    return batch


# --------------------------------------------------------------------------- ORM (SQLite)


def _prediction_objects(version_id: int, batch: PredictionBatch, received_at: datetime) -> Iterable[Prediction]:
    n = len(batch)
    columns = [(name, np.where(np.isnan(v), None, v).tolist()) for name, v in batch.numeric.items()]
    columns += list(batch.categorical.items())
    names = [name for name, _ in columns]
    rows = zip(*(values for _, values in columns), strict=True) if columns else iter([()] * n)
    predictions = _nullable(batch.prediction, n)
    scores = _nullable(batch.score, n)
    subjects = batch.subjects or [None] * n
    for i, values in enumerate(rows):
        yield Prediction(
            version_id=version_id,
            prediction_id=batch.ids[i],
            timestamp=EPOCH + int(batch.ts_us[i]) * ONE_US,
            features=dict(zip(names, values, strict=True)),
            prediction=predictions[i],
            score=scores[i],
            received_at=received_at,
            subject_hash=subjects[i],
        )


def _nullable(values, n: int) -> list:
    if values is None:
        return [None] * n
    if isinstance(values, np.ndarray):
        return np.where(np.isnan(values), None, values).tolist()
    return values


# --------------------------------------------------------------------------- COPY (PostgreSQL)


def _copy_predictions(version_id: int, batch: PredictionBatch, received_at: datetime) -> None:
    """``COPY … FROM STDIN`` (psycopg 3 ``cursor.copy()``) of the text ``copy_chunks`` builds."""
    table = Prediction._meta.db_table
    columns = "version_id, prediction_id, timestamp, features, prediction, score, subject_hash, received_at"
    sql = f"COPY {table} ({columns}) FROM STDIN"
    prefix, suffix = f"{version_id}\t", f"\t{received_at.isoformat()}\n"
    # wrap_database_errors turns psycopg's UniqueViolation into Django's IntegrityError
    with connection.cursor() as cursor, connection.wrap_database_errors:
        with cursor.cursor.copy(sql) as copy:  # the psycopg 3 cursor under Django's wrapper
            for chunk in copy_chunks(batch, prefix, suffix):
                copy.write(chunk)


def _copy_text(value: str) -> str:
    """Escape for COPY's text format (backslash, tab, newline, carriage return)."""
    return value.translate(_COPY_ESCAPES)


def _copy_ids(ids: list[str]) -> list[str]:
    joined = "".join(ids)
    return [_copy_text(i) for i in ids] if any(c in joined for c in _COPY_SPECIALS) else ids


def _json_texts(values: list, none: str):
    """COPY-escaped JSON text of each value (each distinct value rendered once) → pyarrow strings."""
    import pyarrow as pa  # imported on use: see registry/llm_stats.py

    texts = {v: none if v is None else _copy_text(orjson.dumps(v).decode()) for v in set(values)}
    return pa.array([texts[v] for v in values], type=pa.string())


def _number_columns(numbers: np.ndarray, *, trailing_comma: bool) -> list:
    """orjson's text of each float of a (rows × columns) array (NaN, a missing value → null), one
    pyarrow string array per column. One orjson call for the block; the values are cut at its
    commas without a Python string per value, so each keeps the comma that follows it, except
    the last column's values when ``trailing_comma`` is false."""
    import pyarrow as pa  # imported on use: see registry/llm_stats.py
    import pyarrow.compute as pc

    n, k = numbers.shape
    if k == 0:
        return []
    text = orjson.dumps(np.ascontiguousarray(numbers.T), option=orjson.OPT_SERIALIZE_NUMPY)
    flat = text[2:-2].replace(b"],[", b",") + b","  # column after column, a comma after each value
    ends = np.flatnonzero(np.frombuffer(flat, dtype=np.uint8) == ord(",")).astype(np.int32) + 1
    offsets = np.concatenate([np.zeros(1, dtype=np.int32), ends])
    values = pa.StringArray.from_buffers(n * k, pa.py_buffer(offsets.tobytes()), pa.py_buffer(flat))
    columns = [values.slice(j * n, n) for j in range(k)]
    if not trailing_comma:
        columns[-1] = pc.utf8_slice_codeunits(columns[-1], 0, -1)
    return columns


def _float_cells(values: np.ndarray | None):
    """COPY text of an optional float column (NaN → \\N)."""
    if values is None:
        return "\\N"
    import pyarrow as pa  # imported on use: see registry/llm_stats.py
    import pyarrow.compute as pc

    (texts,) = _number_columns(values.reshape(-1, 1), trailing_comma=False)
    return pc.if_else(pa.array(np.isnan(values)), "\\N", texts)


def _line_parts(batch: PredictionBatch, prefix: str, suffix: str) -> list:
    """The pieces of every COPY line, in order: text (the same in every line) or a pyarrow
    string array (one value per row)."""
    import pyarrow as pa  # imported on use: see registry/llm_stats.py

    stamps = pa.array(batch.ts_us, type=pa.timestamp("us")).cast(pa.string())  # '2026-01-02 03:04:05.000006'
    parts = [prefix, pa.array(_copy_ids(batch.ids), type=pa.string()), "\t", stamps, "+00:00\t{"]
    names = list(batch.numeric) + list(batch.categorical)
    keys = [_copy_text(orjson.dumps(name).decode()) + ":" for name in names]
    numbers = np.column_stack(list(batch.numeric.values())) if batch.numeric else np.empty((len(batch), 0))
    columns = _number_columns(numbers, trailing_comma=bool(batch.categorical))
    columns += [_json_texts(values, "null") for values in batch.categorical.values()]
    for j, (key, column) in enumerate(zip(keys, columns, strict=True)):
        # a number carries the comma after it; a category gets the one before it
        comma = "," if j > len(batch.numeric) else ""
        parts += [comma + key, column]
    parts.append("}\t")
    if isinstance(batch.prediction, list):
        parts.append(_json_texts(batch.prediction, "\\N"))
    else:
        parts.append(_float_cells(batch.prediction))
    parts += ["\t", _float_cells(batch.score), "\t"]
    if batch.subjects is None:
        parts.append("\\N")
    else:
        parts.append(pa.array(["\\N" if s is None else s for s in batch.subjects], type=pa.string()))
    parts.append(suffix)
    return parts


def copy_chunks(batch: PredictionBatch, prefix: str, suffix: str) -> Iterable[memoryview]:
    """The COPY text, COPY_CHUNK_ROWS lines at a time: every line joined column-wise by pyarrow
    (``binary_join_element_wise``) into one buffer, handed out in slices without copies."""
    import pyarrow.compute as pc  # imported on use: see registry/llm_stats.py

    lines = pc.binary_join_element_wise(*_line_parts(batch, prefix, suffix), "")
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)[lines.offset : lines.offset + len(lines) + 1]
    data = memoryview(lines.buffers()[2])
    for begin in range(0, len(lines), COPY_CHUNK_ROWS):
        end = min(begin + COPY_CHUNK_ROWS, len(lines))
        yield data[offsets[begin] : offsets[end]]


__all__ = [
    "copy_chunks",
    "existing_prediction_ids",
    "ingest_batch_find",
    "ingest_batch_record",
    "labelled_prediction_times",
    "labels_store",
    "predictions_store",
]
