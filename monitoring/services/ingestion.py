"""Ingestion services: reference data, predictions and ground-truth labels.

Each batch is validated as a whole against the version's feature schema; the first bad
row is reported (row number, field, reason) and nothing of a rejected batch is stored.
Accepted predictions are written with PostgreSQL ``COPY`` (psycopg 3 ``cursor.copy()``)
or ``bulk_create`` on SQLite, in the same transaction as the windows they make dirty and
the batch's one audit event. Computation is queued after commit; if the broker is down the
error is logged and the beat task ``monitoring_sweep_dirty_windows`` picks the windows up.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import logging
import math
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.csv as pa_csv
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from mlops_portal.queue import enqueue_on_commit
from monitoring.choices import Granularity, ProfileStatus
from monitoring.models import DirtyWindow, GroundTruth, MonitoringConfig, Prediction, ReferenceProfile
from registry.choices import FeatureType, TaskType
from registry.models import ModelVersion, RegisteredModel
from registry.services.audit import AuditContext, audit_record

from . import profiles

logger = logging.getLogger(__name__)

JSON_TYPES = ("application/json",)
NDJSON_TYPES = ("application/x-ndjson", "application/jsonl", "application/json-lines", "application/x-jsonlines")
CSV_TYPES = ("text/csv", "application/csv")
RESERVED_COLUMNS = {"prediction_id", "timestamp", "prediction", "score", "features"}
MAX_ID_LENGTH = 100
ID_QUERY_CHUNK = 5000


class BatchError(ValidationError):
    """A rejected batch: ``row`` is 1-based (line for JSON Lines and CSV data rows)."""

    def __init__(self, row: int | None, field: str, message: str):
        self.row, self.field, self.reason = row, field, message
        where = f"Row {row}, field '{field}': " if row is not None else f"Field '{field}': "
        super().__init__({field: [where + message]})
        self.details = {"row": row, "field": field, "reason": message}


class UnsupportedFormat(BatchError):
    """The Content-Type is none of JSON, JSON Lines or CSV (API: 415)."""


# --------------------------------------------------------------------------- enqueue helpers


def hour_floor(ts: datetime) -> datetime:
    return ts.replace(minute=0, second=0, microsecond=0)


def day_floor(ts: datetime) -> datetime:
    return ts.replace(hour=0, minute=0, second=0, microsecond=0)


def window_bounds(window_start: datetime, granularity: str) -> tuple[datetime, datetime]:
    start = hour_floor(window_start) if granularity == Granularity.HOURLY else day_floor(window_start)
    return start, start + (timedelta(hours=1) if granularity == Granularity.HOURLY else timedelta(days=1))


def windows_mark_dirty(*, version_id: int, hours: Iterable[datetime]) -> int:
    """Mark the hourly windows and their days dirty (call inside the ingesting transaction)."""
    now = timezone.now()
    hours = set(hours)
    days = {day_floor(h) for h in hours}
    marks = [
        DirtyWindow(version_id=version_id, window_start=h, granularity=Granularity.HOURLY, marked_at=now)
        for h in sorted(hours)
    ] + [DirtyWindow(version_id=version_id, window_start=d, granularity=Granularity.DAILY, marked_at=now) for d in days]
    if marks:
        DirtyWindow.objects.bulk_create(
            marks,
            update_conflicts=True,
            unique_fields=["version", "window_start", "granularity"],
            update_fields=["marked_at", "enqueued_at"],
            batch_size=1000,
        )
    return len(marks)


def _enqueue_sweep() -> None:
    from monitoring import tasks

    enqueue_on_commit(tasks.monitoring_sweep_dirty_windows)


# --------------------------------------------------------------------------- parsing


def _media_type(content_type: str) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def _loads(text: str):
    """orjson (fast); on its refusal the standard library decides, which also accepts the
    NaN/Infinity tokens some clients send, so validation can name their row and field."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def parse_records(body: bytes, content_type: str) -> tuple[list[Any], str]:
    """JSON array, JSON Lines or CSV body → list of raw records (dicts for JSON, dicts of strings for CSV)."""
    media = _media_type(content_type)
    if not body or not body.strip():
        raise BatchError(None, "body", "The request body is empty.")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BatchError(None, "body", f"The body is not UTF-8 text ({exc.reason} at byte {exc.start}).") from exc
    if media in NDJSON_TYPES:
        records = []
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append(_loads(line))
            except json.JSONDecodeError as exc:
                raise BatchError(lineno, "body", f"Invalid JSON: {exc.msg}.") from exc
        return records, "jsonl"
    if media in CSV_TYPES:
        reader = csv.DictReader(io.StringIO(text))
        try:
            if not reader.fieldnames:
                raise BatchError(None, "body", "The CSV has no header row.")
            records = []
            for row in reader:
                if None in row:
                    raise BatchError(reader.line_num - 1, "body", "More cells than header columns.")
                records.append(row)
        except csv.Error as exc:  # e.g. a lone carriage return as a line end
            raise BatchError(None, "body", f"Invalid CSV: {exc}.") from exc
        return records, "csv"
    if media in JSON_TYPES or not media:
        try:
            data = _loads(text)
        except json.JSONDecodeError as exc:
            raise BatchError(None, "body", f"Invalid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).") from exc
        if not isinstance(data, list):
            raise BatchError(None, "body", "Expected a JSON array of records.")
        return data, "json"
    raise UnsupportedFormat(
        None,
        "content_type",
        f"Unsupported Content-Type '{media}': use {', '.join(JSON_TYPES + NDJSON_TYPES[:1] + CSV_TYPES[:1])}.",
    )


def _parse_timestamp(value: Any, row: int) -> datetime:
    if isinstance(value, bool) or value is None or value == "":
        raise BatchError(row, "timestamp", "Required: an ISO 8601 date-time or epoch seconds.")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise BatchError(row, "timestamp", "Must be finite.")
        try:
            return datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise BatchError(row, "timestamp", "Epoch seconds out of range.") from exc
    if not isinstance(value, str):
        raise BatchError(row, "timestamp", "Expected an ISO 8601 string.")
    try:
        ts = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise BatchError(row, "timestamp", f"Not an ISO 8601 date-time: {value[:40]!r}.") from exc
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC)


def _prediction_id(value: Any, row: int) -> str:
    if isinstance(value, bool) or value is None:
        raise BatchError(row, "prediction_id", "Required.")
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str):
        raise BatchError(row, "prediction_id", "Expected a string or an integer.")
    value = value.strip()
    if not value:
        raise BatchError(row, "prediction_id", "Required.")
    if len(value) > MAX_ID_LENGTH:
        raise BatchError(row, "prediction_id", f"At most {MAX_ID_LENGTH} characters.")
    return value


def _number(value: Any, row: int, field: str, *, from_text: bool) -> float | None:
    if value is None or (from_text and value == ""):
        return None
    if from_text:
        try:
            value = float(value)
        except ValueError as exc:
            raise BatchError(row, field, f"Expected a number, got {str(value)[:40]!r}.") from exc
    elif isinstance(value, bool) or not isinstance(value, int | float):
        raise BatchError(row, field, f"Expected a number, got {type(value).__name__}.")
    value = float(value)
    if not math.isfinite(value):
        raise BatchError(row, field, "NaN and infinity are not allowed; send null for a missing value.")
    return value


def label_string(value: Any) -> str:
    """Class labels are stored as strings: True → '1', 1.0 → '1', 'churn' → 'churn'."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _category(value: Any, row: int, field: str, *, from_text: bool) -> str | None:
    if value is None or (from_text and value == ""):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        raise BatchError(row, field, "NaN and infinity are not allowed; send null for a missing value.")
    if isinstance(value, dict | list):
        raise BatchError(row, field, "Expected a category (string or number), got an object/array.")
    return label_string(value)


def _class_or_value(value: Any, row: int, field: str, task_type: str, *, from_text: bool):
    if task_type == TaskType.REGRESSION:
        return _number(value, row, field, from_text=from_text)
    return _category(value, row, field, from_text=from_text)


_NUMBER_TYPES = {float, int, type(None)}
_CATEGORY_TYPES = {str, type(None)}


def _finite_numbers(values: list) -> bool:
    types = set(map(type, values))
    if not types <= _NUMBER_TYPES:
        return False
    if float not in types:
        return True
    arr = np.array(values, dtype=np.float64)  # None → NaN
    return int(np.isnan(arr).sum()) == values.count(None) and not np.isinf(arr).any()


def _fast_validate(records: list[Any], schema: dict[str, str], task_type: str) -> list[tuple] | None:
    """Whole-batch checks with C-level list/set operations; None means "something is off",
    and the row-by-row validator then finds and names the first problem."""
    try:
        if set(map(type, records)) != {dict}:
            return None
        if not all(r.keys() <= RESERVED_COLUMNS for r in records):
            return None
        ids = [r["prediction_id"] for r in records]
        feats = [r["features"] for r in records]
        stamps = [r["timestamp"] for r in records]
    except KeyError:
        return None
    if set(map(type, ids)) != {str} or len(set(ids)) != len(ids):
        return None
    if min(map(len, ids)) == 0 or max(map(len, ids)) > MAX_ID_LENGTH or any(i != i.strip() for i in ids):
        return None
    if set(map(type, feats)) != {dict}:
        return None
    allowed = set(schema)
    if not all(f.keys() <= allowed for f in feats):
        return None
    for name, ftype in schema.items():
        values = [f.get(name) for f in feats]
        if ftype == FeatureType.NUMERIC:
            if not _finite_numbers(values):
                return None
        elif not set(map(type, values)) <= _CATEGORY_TYPES:
            return None
    predictions = [r.get("prediction") for r in records]
    if task_type == TaskType.REGRESSION:
        if not _finite_numbers(predictions):
            return None
    else:
        types = set(map(type, predictions))
        if not types <= {str, int, bool, type(None)}:
            return None
        if types - _CATEGORY_TYPES:
            predictions = [None if p is None else label_string(p) for p in predictions]
    scores = [r.get("score") for r in records]
    if not _finite_numbers(scores):
        return None
    if set(map(type, stamps)) != {str}:
        return None
    try:
        parsed = [datetime.fromisoformat(t) for t in stamps]
    except ValueError:
        return None
    parsed = [(t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)) for t in parsed]
    return list(zip(ids, parsed, feats, predictions, scores, strict=True))


def validate_predictions(records: list[Any], *, version: ModelVersion, fmt: str) -> list[tuple]:
    """→ list of (prediction_id, timestamp, features, prediction, score); raises BatchError."""
    if fmt != "csv" and records and version.feature_schema:
        schema = {f["name"]: f.get("type", FeatureType.NUMERIC) for f in version.feature_schema}
        rows = _fast_validate(records, schema, version.task_type)
        if rows is not None:
            return rows
    return _validate_rows(records, version=version, fmt=fmt)


def _validate_rows(records: list[Any], *, version: ModelVersion, fmt: str) -> list[tuple]:
    """Row by row, naming the first bad row and field."""
    schema = {f["name"]: f.get("type", FeatureType.NUMERIC) for f in version.feature_schema}
    if not schema:
        raise BatchError(None, "feature_schema", "The version has no feature schema; register one first.")
    from_text = fmt == "csv"
    task_type = version.task_type
    if not records:
        raise BatchError(None, "body", "The batch has no records.")
    if from_text:
        header = set(records[0].keys())
        unknown = header - RESERVED_COLUMNS - set(schema)
        if unknown:
            raise BatchError(None, sorted(unknown)[0], "Unknown column: not in the version's feature schema.")
        for required in ("prediction_id", "timestamp"):
            if required not in header:
                raise BatchError(None, required, "Column missing from the CSV header.")
    seen: set[str] = set()
    rows = []
    numeric = [name for name, t in schema.items() if t == FeatureType.NUMERIC]
    categorical = [name for name, t in schema.items() if t != FeatureType.NUMERIC]
    for i, rec in enumerate(records, start=1):
        if not isinstance(rec, dict):
            raise BatchError(i, "record", "Expected an object.")
        pid = _prediction_id(rec.get("prediction_id"), i)
        if pid in seen:
            raise BatchError(i, "prediction_id", f"Duplicate prediction id {pid!r} within the batch.")
        seen.add(pid)
        ts = _parse_timestamp(rec.get("timestamp"), i)
        if from_text:
            raw = rec
        else:
            raw = rec.get("features")
            if not isinstance(raw, dict):
                raise BatchError(i, "features", "Required: an object of feature name → value.")
            for key in raw:
                if key not in schema:
                    raise BatchError(i, f"features.{key}", "Unknown feature: not in the version's feature schema.")
            extra = set(rec) - RESERVED_COLUMNS
            if extra:
                raise BatchError(i, sorted(extra)[0], "Unknown field.")
        features: dict[str, Any] = {}
        for name in numeric:
            features[name] = _number(raw.get(name), i, f"features.{name}", from_text=from_text)
        for name in categorical:
            features[name] = _category(raw.get(name), i, f"features.{name}", from_text=from_text)
        prediction = _class_or_value(rec.get("prediction"), i, "prediction", task_type, from_text=from_text)
        score = _number(rec.get("score"), i, "score", from_text=from_text)
        rows.append((pid, ts, features, prediction, score))
    return rows


def _existing_prediction_ids(version_id: int, ids: list[str]) -> list[str]:
    found: list[str] = []
    for start in range(0, len(ids), ID_QUERY_CHUNK):
        chunk = ids[start : start + ID_QUERY_CHUNK]
        found.extend(
            Prediction.objects.filter(version_id=version_id, prediction_id__in=chunk).values_list(
                "prediction_id", flat=True
            )
        )
    return found


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
COPY_CHUNK_ROWS = 5000
_COPY_SPECIALS = ("\\", "\t", "\n", "\r")


def _copy_text(value: str) -> str:
    """Escape for COPY's text format (backslash, tab, newline, carriage return)."""
    return value.translate(_COPY_ESCAPES)


def _copy_lines(rows: list[tuple], prefix: str, suffix: str) -> str:
    """COPY text lines of validated rows (the row-by-row form; ``_CsvBatch`` builds the same text
    column by column)."""
    dumps = orjson.dumps
    return "".join(
        [
            prefix
            + _copy_text(pid)
            + "\t"
            + ts.isoformat()
            + "\t"
            + _copy_text(dumps(features).decode())
            + "\t"
            + ("\\N" if prediction is None else _copy_text(dumps(prediction).decode()))
            + "\t"
            + ("\\N" if score is None else repr(float(score)))
            + suffix
            for pid, ts, features, prediction, score in rows
        ]
    )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US_PER_HOUR = 3_600_000_000


def _utc_micros(timestamps: list[datetime]) -> np.ndarray:
    """Microseconds since the epoch of UTC datetimes (all already UTC: a naive Arrow type
    converts without per-value time-zone lookups)."""
    return pa.array(timestamps, type=pa.timestamp("us")).to_numpy().view(np.int64)


def _iso_texts(micros: np.ndarray) -> np.ndarray:
    """``datetime.isoformat()`` of UTC datetimes without the '+00:00' (the line templates add
    it): whole seconds carry no fraction, the others six digits."""
    stamps = micros.view("datetime64[us]")
    texts = np.datetime_as_string(stamps, unit="us").astype(object)
    whole = (micros % 1_000_000) == 0
    if whole.any():
        texts[whole] = np.datetime_as_string(stamps[whole], unit="s")
    return texts


def _hours(micros: np.ndarray) -> set[datetime]:
    return {_EPOCH + timedelta(hours=int(h)) for h in np.unique(micros // _US_PER_HOUR)}


def _bounds(micros: np.ndarray) -> tuple[datetime, datetime]:
    return _EPOCH + timedelta(microseconds=int(micros.min())), _EPOCH + timedelta(microseconds=int(micros.max()))


def _copy_ids(ids: list[str]) -> list[str]:
    joined = "".join(ids)
    return [_copy_text(i) for i in ids] if any(c in joined for c in _COPY_SPECIALS) else ids


def _line_template(prefix: str, middle: str, suffix: str, rows: int) -> str:
    return (prefix.replace("%", "%%") + middle + suffix.replace("%", "%%")) * rows


class _RowBatch:
    """Validated rows as tuples (pid, timestamp, features, prediction, score): JSON bodies and
    the CSV bodies the column-wise path leaves to the row-by-row validator."""

    def __init__(self, rows: list[tuple]):
        self.rows = rows
        self.ids = [r[0] for r in rows]
        self.ts_us = _utc_micros([r[1] for r in rows])

    def __len__(self) -> int:
        return len(self.rows)

    def hours(self) -> set[datetime]:
        return _hours(self.ts_us)

    def bounds(self) -> tuple[datetime, datetime]:
        return _bounds(self.ts_us)

    def copy_chunks(self, prefix: str, suffix: str) -> Iterable[str]:
        """The text of ``_copy_lines``, built a column at a time per chunk."""
        dumps = orjson.dumps
        for begin in range(0, len(self.rows), COPY_CHUNK_ROWS):
            chunk = self.rows[begin : begin + COPY_CHUNK_ROWS]
            m = len(chunk)
            cells = np.empty((m, 5), dtype=object)
            cells[:, 0] = _copy_ids(self.ids[begin : begin + m])
            cells[:, 1] = _iso_texts(self.ts_us[begin : begin + m])
            # orjson never writes a raw newline, tab or carriage return: one join, one escape, one split
            # (each decoded at once: keeping thousands of orjson's bytes alive is several times slower)
            features = "\n".join([dumps(r[2]).decode() for r in chunk])
            if "\\" in features:
                features = features.replace("\\", "\\\\")
            cells[:, 2] = features.split("\n")
            cells[:, 3] = [("\\N" if p is None else _copy_text(dumps(p).decode())) for p in (r[3] for r in chunk)]
            cells[:, 4] = [("\\N" if v is None else repr(float(v))) for v in (r[4] for r in chunk)]
            yield _line_template(prefix, "%s\t%s+00:00\t%s\t%s\t%s", suffix, m) % tuple(cells.ravel().tolist())


class _CsvBatch:
    """A CSV batch validated column by column (pyarrow's CSV reader + numpy checks).

    Holds exactly what the row-by-row validator would return for the same body: ``rows``
    materialises those tuples (SQLite), ``copy_chunks`` renders the same COPY text as
    ``_copy_lines`` without building them (PostgreSQL)."""

    def __init__(
        self,
        *,
        ids: list[str],
        timestamps: list[datetime],
        numeric: dict[str, pa.ChunkedArray | None],
        categorical: dict[str, list | None],
        prediction: pa.ChunkedArray | list | None,
        score: pa.ChunkedArray | None,
    ):
        self.ids = ids
        self.n = len(ids)
        self.timestamps = timestamps
        self.numeric = numeric
        self.categorical = categorical
        self.prediction = prediction
        self.score = score
        self.ts_us = _utc_micros(timestamps)

    def __len__(self) -> int:
        return self.n

    # -- what the row-by-row path returns

    @property
    def rows(self) -> list[tuple]:
        n = self.n
        columns = [(name, col.to_pylist() if col is not None else [None] * n) for name, col in self.numeric.items()]
        columns += [(name, col if col is not None else [None] * n) for name, col in self.categorical.items()]
        names = [name for name, _ in columns]
        features = [dict(zip(names, values, strict=True)) for values in zip(*(c for _, c in columns), strict=True)]
        prediction = self._prediction_values()
        score = self.score.to_pylist() if self.score is not None else [None] * n
        return list(zip(self.ids, self.timestamps, features, prediction, score, strict=True))

    def _prediction_values(self) -> list:
        if self.prediction is None:
            return [None] * self.n
        if isinstance(self.prediction, list):
            return self.prediction
        return self.prediction.to_pylist()

    def hours(self) -> set[datetime]:
        return _hours(self.ts_us)

    def bounds(self) -> tuple[datetime, datetime]:
        return _bounds(self.ts_us)

    # -- COPY text, column by column

    def _number_texts(self, values: np.ndarray) -> np.ndarray:
        """orjson's text of each float of a 2-D array (NaN, i.e. a missing value, → 'null'), as
        orjson writes them inside a features object."""
        n, k = values.shape
        if n == 0 or k == 0:
            return np.empty((n, k), dtype=object)
        text = orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY)[2:-2].decode()
        return np.array(text.replace("],[", ",").split(","), dtype=object).reshape(n, k)

    @staticmethod
    def _mapped(values: list, mapping) -> list:
        """Map the few distinct values of a column once (categories, class labels)."""
        texts = {v: mapping(v) for v in set(values)}
        return [texts[v] for v in values]

    def copy_chunks(self, prefix: str, suffix: str) -> Iterable[str]:
        """The COPY text in chunks of COPY_CHUNK_ROWS lines: one line template with a %s per
        cell, filled from a (rows × cells) grid of texts built column by column."""
        n = self.n
        dumps = orjson.dumps
        numeric_names = list(self.numeric)
        categorical_names = list(self.categorical)
        ids = _copy_ids(self.ids)
        stamps = _iso_texts(self.ts_us)
        numbers = np.full((n, len(numeric_names)), np.nan)
        for j, name in enumerate(numeric_names):
            if self.numeric[name] is not None:
                numbers[:, j] = self.numeric[name].to_numpy()
        categories = [
            self._mapped(col, lambda v: "null" if v is None else _copy_text(dumps(v).decode()))
            if col is not None
            else None
            for col in self.categorical.values()
        ]
        if self.prediction is None:
            predictions = None
        elif isinstance(self.prediction, list):
            predictions = self._mapped(self.prediction, lambda v: "\\N" if v is None else _copy_text(dumps(v).decode()))
        else:
            predictions = self.prediction.to_numpy()
        scores = self.score.to_numpy() if self.score is not None else None
        keys = [_copy_text(dumps(name).decode()).replace("%", "%%") for name in numeric_names + categorical_names]
        line = (
            prefix.replace("%", "%%")
            + "%s\t%s+00:00\t{"
            + ",".join(f"{key}:%s" for key in keys)
            + "}\t%s\t%s"
            + suffix.replace("%", "%%")
        )
        width = 2 + len(keys) + 2
        for begin in range(0, n, COPY_CHUNK_ROWS):
            end = min(begin + COPY_CHUNK_ROWS, n)
            cells = np.empty((end - begin, width), dtype=object)
            cells[:, 0] = ids[begin:end]
            cells[:, 1] = stamps[begin:end]
            cells[:, 2 : 2 + len(numeric_names)] = self._number_texts(numbers[begin:end])
            for j, texts in enumerate(categories, start=2 + len(numeric_names)):
                cells[:, j] = texts[begin:end] if texts is not None else "null"
            if predictions is None:
                cells[:, -2] = "\\N"
            elif isinstance(predictions, list):
                cells[:, -2] = predictions[begin:end]
            else:
                texts = self._number_texts(predictions[begin:end].reshape(-1, 1))[:, 0]
                texts[texts == "null"] = "\\N"
                cells[:, -2] = texts
            if scores is None:
                cells[:, -1] = "\\N"
            else:
                chunk = scores[begin:end]
                texts = np.array(list(map(repr, chunk.tolist())), dtype=object)
                texts[np.isnan(chunk)] = "\\N"
                cells[:, -1] = texts
            yield (line * (end - begin)) % tuple(cells.ravel().tolist())


def _schema(version: ModelVersion) -> dict[str, str]:
    return {f["name"]: f.get("type", FeatureType.NUMERIC) for f in version.feature_schema or []}


def _finite_or_null(column: pa.ChunkedArray) -> bool:
    """True when every value is finite or missing (missing values read as NaN here)."""
    values = column.to_numpy()
    return int(np.count_nonzero(~np.isfinite(values))) == column.null_count


def _csv_fast(body: bytes, schema: dict[str, str], task_type: str) -> _CsvBatch | None:
    """Validate a CSV batch column by column. None means "not certain": the body is then parsed
    and validated row by row, which accepts the same batches (giving the same rows) and names the
    first bad row and field of the others. Only plain CSV takes this path: no quoting, '\\n' or
    '\\r\\n' line ends, a unique header of known columns, and every cell valid."""
    if body.startswith(codecs.BOM_UTF8):
        body = body[len(codecs.BOM_UTF8) :]
    if not schema or set(schema) & RESERVED_COLUMNS:
        return None
    if b'"' in body or b"\x00" in body or body.count(b"\r") != body.count(b"\r\n"):
        return None
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    first_line = body.partition(b"\n")[0].removesuffix(b"\r")
    if not first_line:
        return None
    header = first_line.decode().split(",")
    allowed = set(schema) | {"prediction_id", "timestamp", "prediction", "score"}
    if len(set(header)) != len(header) or not set(header) <= allowed:
        return None
    if "prediction_id" not in header or "timestamp" not in header:
        return None
    numeric_names = [name for name, t in schema.items() if t == FeatureType.NUMERIC]
    categorical_names = [name for name, t in schema.items() if t != FeatureType.NUMERIC]
    regression = task_type == TaskType.REGRESSION
    types = {"prediction_id": pa.string(), "timestamp": pa.string(), "score": pa.float64()}
    types["prediction"] = pa.float64() if regression else pa.string()
    types.update(dict.fromkeys(numeric_names, pa.float64()))
    types.update(dict.fromkeys(categorical_names, pa.string()))
    try:
        table = pa_csv.read_csv(
            pa.py_buffer(body),
            read_options=pa_csv.ReadOptions(use_threads=False),
            parse_options=pa_csv.ParseOptions(
                delimiter=",", quote_char=False, escape_char=False, newlines_in_values=False, ignore_empty_lines=True
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types={name: types[name] for name in header},
                null_values=[""],
                strings_can_be_null=True,
                check_utf8=True,
            ),
        )
    except (pa.ArrowException, ValueError):
        return None
    if table.column_names != header or table.num_rows == 0:
        return None
    ids = table.column("prediction_id").to_pylist()
    if set(map(type, ids)) != {str} or len(set(ids)) != len(ids):
        return None
    if min(map(len, ids)) == 0 or max(map(len, ids)) > MAX_ID_LENGTH or any(i != i.strip() for i in ids):
        return None
    stamps = table.column("timestamp").to_pylist()
    if None in stamps:
        return None
    try:
        parsed = list(map(datetime.fromisoformat, map(str.strip, stamps)))
        timestamps = [(t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)) for t in parsed]
    except (ValueError, OverflowError):
        return None
    present = set(header)
    numeric = {name: table.column(name) if name in present else None for name in numeric_names}
    if not all(_finite_or_null(col) for col in numeric.values() if col is not None):
        return None
    categorical = {name: table.column(name).to_pylist() if name in present else None for name in categorical_names}
    prediction = None
    if "prediction" in present:
        prediction = table.column("prediction")
        if regression:
            if not _finite_or_null(prediction):
                return None
        else:
            prediction = prediction.to_pylist()
    score = table.column("score") if "score" in present else None
    if score is not None and not _finite_or_null(score):
        return None
    return _CsvBatch(
        ids=ids, timestamps=timestamps, numeric=numeric, categorical=categorical, prediction=prediction, score=score
    )


def prediction_batch(body: bytes, content_type: str, *, version: ModelVersion) -> tuple[_RowBatch | _CsvBatch, str]:
    """Parse and validate a batch of predictions → (batch, format); raises BatchError naming
    the first bad row and field. Plain CSV is validated column by column, the rest row by row."""
    if _media_type(content_type) in CSV_TYPES:
        batch = _csv_fast(body, _schema(version), version.task_type)
        if batch is not None:
            return batch, "csv"
    records, fmt = parse_records(body, content_type)
    return _RowBatch(validate_predictions(records, version=version, fmt=fmt)), fmt


def _copy_predictions(version_id: int, batch: _RowBatch | _CsvBatch, received_at: datetime) -> None:
    """PostgreSQL ``COPY … FROM STDIN`` (psycopg 3 ``cursor.copy()``), text format built here in
    chunks: cheaper per row than ``write_row``'s per-value adaptation."""
    table = Prediction._meta.db_table
    prefix = f"{version_id}\t"
    suffix = f"\t{received_at.isoformat()}\n"
    # wrap_database_errors turns psycopg's UniqueViolation into Django's IntegrityError
    with connection.cursor() as cursor, connection.wrap_database_errors:
        raw = cursor.cursor  # the psycopg 3 cursor
        sql = (
            f"COPY {table} (version_id, prediction_id, timestamp, features, prediction, score, received_at) FROM STDIN"
        )
        with raw.copy(sql) as copy:
            for text in batch.copy_chunks(prefix, suffix):
                copy.write(text)


def _insert_predictions(version_id: int, batch: _RowBatch | _CsvBatch, received_at: datetime) -> None:
    if connection.vendor == "postgresql":
        _copy_predictions(version_id, batch, received_at)
        return
    Prediction.objects.bulk_create(
        (
            Prediction(
                version_id=version_id,
                prediction_id=pid,
                timestamp=ts,
                features=features,
                prediction=prediction,
                score=score,
                received_at=received_at,
            )
            for pid, ts, features, prediction, score in batch.rows
        ),
        batch_size=2000,
    )


@transaction.atomic
def predictions_ingest(
    *, version: ModelVersion, body: bytes, content_type: str, actor, context: AuditContext
) -> dict[str, Any]:
    """Validate and store one batch of predictions; mark its windows dirty; one audit event."""
    batch, fmt = prediction_batch(body, content_type, version=version)
    received_at = timezone.now()
    try:
        with transaction.atomic():
            _insert_predictions(version.pk, batch, received_at)
    except IntegrityError as exc:
        ids = batch.ids
        existing = set(_existing_prediction_ids(version.pk, ids))
        for i, pid in enumerate(ids, start=1):
            if pid in existing:
                raise BatchError(
                    i, "prediction_id", f"Prediction id {pid!r} was already stored for this version."
                ) from exc
        raise
    hours = batch.hours()
    marked = windows_mark_dirty(version_id=version.pk, hours=hours)
    first, last = batch.bounds()
    summary = {
        "rows": len(batch),
        "format": fmt,
        "first_timestamp": first.isoformat(),
        "last_timestamp": last.isoformat(),
        "hourly_windows": len(hours),
        "dirty_windows": marked,
    }
    audit_record(
        actor=actor,
        action="predictions.ingested",
        context=context,
        obj=version,
        model=version.model,
        after=summary,
    )
    _enqueue_sweep()
    return summary


# --------------------------------------------------------------------------- labels


def validate_labels(records: list[Any], *, task_type: str, fmt: str) -> list[tuple[str, Any]]:
    from_text = fmt == "csv"
    if not records:
        raise BatchError(None, "body", "The batch has no records.")
    if from_text:
        header = set(records[0].keys())
        for required in ("prediction_id", "label"):
            if required not in header:
                raise BatchError(None, required, "Column missing from the CSV header.")
    seen: set[str] = set()
    out = []
    for i, rec in enumerate(records, start=1):
        if not isinstance(rec, dict):
            raise BatchError(i, "record", "Expected an object.")
        extra = set(rec) - {"prediction_id", "label"}
        if extra and not from_text:
            raise BatchError(i, sorted(extra)[0], "Unknown field.")
        pid = _prediction_id(rec.get("prediction_id"), i)
        if pid in seen:
            raise BatchError(i, "prediction_id", f"Duplicate prediction id {pid!r} within the batch.")
        seen.add(pid)
        label = _class_or_value(rec.get("label"), i, "label", task_type, from_text=from_text)
        if label is None:
            raise BatchError(i, "label", "Required.")
        out.append((pid, label))
    return out


@transaction.atomic
def labels_ingest(
    *, model: RegisteredModel, body: bytes, content_type: str, actor, context: AuditContext
) -> dict[str, Any]:
    """Store labels by prediction id (a re-sent label replaces the old one) and mark the
    windows of the matching predictions dirty, so late labels update their windows once."""
    records, fmt = parse_records(body, content_type)
    latest = model.versions.order_by("-version").first()
    task_type = latest.task_type if latest else TaskType.BINARY
    labels = validate_labels(records, task_type=task_type, fmt=fmt)
    now = timezone.now()
    ids = [pid for pid, _ in labels]
    existing: set[str] = set()
    for start in range(0, len(ids), ID_QUERY_CHUNK):
        existing.update(
            GroundTruth.objects.filter(model=model, prediction_id__in=ids[start : start + ID_QUERY_CHUNK]).values_list(
                "prediction_id", flat=True
            )
        )
    GroundTruth.objects.bulk_create(
        [GroundTruth(model=model, prediction_id=pid, label=label, received_at=now) for pid, label in labels],
        update_conflicts=True,
        unique_fields=["model", "prediction_id"],
        update_fields=["label", "received_at"],
        batch_size=2000,
    )
    matched = 0
    windows: dict[int, set[datetime]] = {}
    for start in range(0, len(ids), ID_QUERY_CHUNK):
        for version_id, ts in Prediction.objects.filter(
            version__model=model, prediction_id__in=ids[start : start + ID_QUERY_CHUNK]
        ).values_list("version_id", "timestamp"):
            matched += 1
            windows.setdefault(version_id, set()).add(hour_floor(ts))
    marked = sum(windows_mark_dirty(version_id=v, hours=hours) for v, hours in windows.items())
    summary = {
        "rows": len(labels),
        "new": len(labels) - len(existing),
        "updated": len(existing),
        "matched_predictions": matched,
        "dirty_windows": marked,
    }
    audit_record(actor=actor, action="labels.ingested", context=context, obj=model, after=summary)
    if marked:
        _enqueue_sweep()
    return summary


# --------------------------------------------------------------------------- reference data


@transaction.atomic
def reference_upload(
    *, version: ModelVersion, body: bytes, content_type: str, actor, context: AuditContext
) -> ReferenceProfile:
    """Validate reference data (CSV or Parquet) against the schema, store it as Parquet and
    queue the profile computation. Replaces an earlier upload of the same version."""
    df, fmt = profiles.read_table(body, _media_type(content_type))
    clean = profiles.reference_validate(df, version.feature_schema, version.task_type)
    buffer = io.BytesIO()
    clean.to_parquet(buffer, index=False)
    data = buffer.getvalue()
    config = MonitoringConfig.objects.filter(model_id=version.model_id).first()
    n_bins = config.n_bins if config else 10
    profile, _ = ReferenceProfile.objects.update_or_create(
        version=version,
        defaults={
            "status": ProfileStatus.PENDING,
            "error": "",
            "source_format": fmt,
            "n_rows": len(clean),
            "n_bins": n_bins,
            "data": data,
            "data_sha256": hashlib.sha256(body).hexdigest(),
            "profile": {},
            "uploaded_by": actor if getattr(actor, "is_authenticated", False) else None,
            "computed_at": None,
        },
    )
    audit_record(
        actor=actor,
        action="reference.uploaded",
        context=context,
        obj=version,
        model=version.model,
        after={
            "rows": len(clean),
            "format": fmt,
            "sha256": profile.data_sha256,
            "columns": [c for c in clean.columns],
        },
    )
    from monitoring import tasks

    enqueue_on_commit(tasks.profile_compute, profile.pk)
    return profile


__all__ = [
    "BatchError",
    "UnsupportedFormat",
    "labels_ingest",
    "predictions_ingest",
    "reference_upload",
    "window_bounds",
    "windows_mark_dirty",
]
