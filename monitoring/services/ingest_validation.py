"""Column-wise validation of parsed batches (``RawBatch``) against a version's feature schema.

Each check runs over a whole column (set operations, numpy, pyarrow); when a column fails,
the first failing row is found and named with its field, so the client sees e.g.
``Row 7, field 'features.age': Expected a number, got str.`` Nothing of a failing batch is
stored. Rules, the same for JSON and CSV:

* ``prediction_id``: a string, or an integer stored as its decimal text (``12`` and ``"12"`` are
  one id, in predictions and labels alike), of 1–100 characters after trimming, unique in the
  batch, without NUL characters; booleans, floats, objects and arrays are refused.
* ``timestamp``: ISO 8601 (no offset means UTC) or, in JSON, epoch seconds; a UTC offset
  within −12:00…+14:00 (the offsets real time zones use); no later than
  ``INGEST_MAX_FUTURE`` seconds ahead of the server clock and no older than
  ``INGEST_MAX_AGE_DAYS`` days.
* numbers: finite (NaN and infinity refused; send null or an empty cell for a missing value).
* categories and class labels: strings, numbers or booleans (stored as text: ``1.0`` → ``"1"``,
  ``true`` → ``"1"``), without NUL characters.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import chain
from operator import itemgetter
from typing import Any

import numpy as np
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from mlops_portal import clock
from registry.choices import RESERVED_COLUMNS, FeatureType, TaskType

from .ingest_classes import Outcomes, classes_check, outcomes_of, scores_check
from .ingest_parsing import BatchError, RawBatch
from .subjects import MAX_SUBJECT_LENGTH, subject_hashes

MAX_ID_LENGTH = 100
LABEL_COLUMNS = ("prediction_id", "label")
LABEL_OPTIONAL = ("subject_id",)
MIN_OFFSET, MAX_OFFSET = timedelta(hours=-12), timedelta(hours=14)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_US = timedelta(microseconds=1)
NOT_FINITE = "NaN and infinity are not allowed; send null for a missing value."
_NUMBER_TYPES = {int, float, type(None)}
_TEXT_TYPES = {str, type(None)}


class TimedRows:
    """What a validated batch of timed rows answers from its ``ids`` and ``ts_us`` (UTC
    microseconds since the epoch): its length, the hours it touches and its time span."""

    ids: list[str]
    ts_us: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def hours(self) -> set[datetime]:
        return {EPOCH + timedelta(hours=int(h)) for h in np.unique(self.ts_us // 3_600_000_000)}

    def slices(self, seconds: int) -> set[datetime]:
        """The starts of the ``seconds``-long slices of prediction time its rows fall in."""
        return {EPOCH + timedelta(seconds=int(s) * seconds) for s in np.unique(self.ts_us // (seconds * 1_000_000))}

    def bounds(self) -> tuple[datetime, datetime]:
        return EPOCH + int(self.ts_us.min()) * ONE_US, EPOCH + int(self.ts_us.max()) * ONE_US


@dataclass
class PredictionBatch(TimedRows):
    """A validated batch, column by column: ids, UTC microseconds since the epoch, numeric
    features as float64 (NaN = missing), categories and class labels as text or None, the
    regression prediction and the score as float64 (NaN = missing)."""

    fmt: str
    ids: list[str]
    ts_us: np.ndarray
    numeric: dict[str, np.ndarray]
    categorical: dict[str, list]
    prediction: np.ndarray | list | None
    score: np.ndarray | None
    subjects: list[str | None] | None = None  # HMAC of each row's subject id (never the id)


@dataclass
class LabelBatch:
    fmt: str
    ids: list[str]
    labels: list
    subjects: list[str | None] | None = None  # HMAC of each row's subject id (never the id)


# --------------------------------------------------------------------------- one value (locating the failing row)


def _first_failure(values: list, check: Callable[[Any], Any], field: str) -> BatchError:
    """The error of the first value ``check`` refuses (only called once a column failed)."""
    for row, value in enumerate(values, start=1):
        try:
            check(value)
        except ValueError as exc:
            return BatchError(row, field, str(exc))
    return BatchError(None, field, "Invalid values.")


def _stamp_micros(value: Any) -> int:
    """One timestamp → UTC microseconds since the epoch; ValueError says what is wrong."""
    if isinstance(value, str):
        text = value.strip()
        try:
            ts = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"Not an ISO 8601 date-time: {text[:40]!r}.") from None
        offset = ts.utcoffset()
        if offset is None:
            ts = ts.replace(tzinfo=UTC)
        elif not MIN_OFFSET <= offset <= MAX_OFFSET:
            raise ValueError("UTC offset outside -12:00…+14:00.")
        return (ts - EPOCH) // ONE_US
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value != value or abs(value) > 1e12:  # NaN, infinity, or beyond year 33,000
            raise ValueError("Epoch seconds out of range.")
        return round(value * 1_000_000)
    if value is None or value == "":
        raise ValueError("Required: an ISO 8601 date-time or epoch seconds.")
    raise ValueError("Expected an ISO 8601 string or epoch seconds.")


_JSON_TYPES = {bool: "a boolean", float: "a float", dict: "an object", list: "an array"}


def _prediction_id(value: Any) -> str:
    """One id: a string as sent (trimmed) or an integer as its decimal text, so that 12 and "12"
    are the same id in predictions and labels; booleans, floats, objects and arrays are refused."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        if value is None:
            raise ValueError("Required.")
        raise ValueError(f"Expected a string or an integer, got {_JSON_TYPES.get(type(value), type(value).__name__)}.")
    value = value.strip()
    if not value:
        raise ValueError("Required.")
    if len(value) > MAX_ID_LENGTH:
        raise ValueError(f"At most {MAX_ID_LENGTH} characters.")
    if "\x00" in value:
        raise ValueError("NUL characters are not allowed.")
    return value


def label_string(value: Any) -> str:
    """Class labels and categories are stored as text: True → '1', 1.0 → '1', 'churn' → 'churn'."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _category(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        if value is not None and "\x00" in value:
            raise ValueError("NUL characters are not allowed.")
        return value
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(NOT_FINITE)
    if not isinstance(value, int | float):
        raise ValueError("Expected a category (string or number), got an object/array.")
    return label_string(value)


def _number(value: Any) -> float | None:
    """A JSON number (or null)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"Expected a number, got {type(value).__name__}.")
    try:
        value = float(value)
    except OverflowError:
        raise ValueError("Beyond the range of a 64-bit float.") from None
    if not math.isfinite(value):
        raise ValueError(NOT_FINITE)
    return value


def _number_text(value: str | None) -> float | None:
    """A CSV cell as a number, read as the column is read (pyarrow's cast)."""
    import pyarrow as pa  # imported on use: see registry/llm_stats.py
    import pyarrow.compute as pc

    if value is None:
        return None
    try:
        number = pc.cast(pa.array([value.strip()], type=pa.string()), pa.float64())[0].as_py()
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        raise ValueError(f"Expected a number, got {value[:40]!r}.") from None
    if not math.isfinite(number):
        raise ValueError(NOT_FINITE)
    return number


# --------------------------------------------------------------------------- whole columns


def ids_column(values: list, field: str = "prediction_id") -> list[str]:
    if set(map(type, values)) != {str}:
        try:
            values = [_prediction_id(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in values]
        except ValueError:
            raise _first_failure(values, _prediction_id, field) from None
        if set(map(type, values)) != {str}:
            raise _first_failure(values, _prediction_id, field)
    ids = list(map(str.strip, values))
    lengths = list(map(len, ids))
    if min(lengths) == 0 or max(lengths) > MAX_ID_LENGTH or "\x00" in "".join(ids):
        raise _first_failure(ids, _prediction_id, field)
    import pandas as pd  # imported on use: see registry/llm_stats.py

    duplicated = pd.Index(ids).duplicated()
    if duplicated.any():
        row = int(np.flatnonzero(duplicated)[0])
        what = field.replace("_", " ")  # "prediction id", "request id"
        raise BatchError(row + 1, field, f"Duplicate {what} {ids[row]!r} within the batch.")
    return ids


def _iso_micros(values: list) -> np.ndarray:
    """The usual column, ISO 8601 strings with real offsets, converted in C: the same result as
    ``_stamp_micros`` per value; anything else raises and takes the per-value conversion."""
    import pyarrow as pa  # imported on use: see registry/llm_stats.py

    parsed = list(map(datetime.fromisoformat, values))
    offsets = set(map(datetime.utcoffset, parsed)) - {None}
    if offsets and not MIN_OFFSET <= min(offsets) <= max(offsets) <= MAX_OFFSET:
        raise ValueError("offset")
    # pyarrow converts aware datetimes to UTC and reads naive ones as UTC
    return pa.array(parsed, type=pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_numpy()


def timestamps_column(values: list, *, now: datetime | None = None) -> np.ndarray:
    """→ int64 UTC microseconds; refuses bad values and times outside the plausible range."""
    import pyarrow as pa  # imported on use: see registry/llm_stats.py

    try:
        micros = _iso_micros(values)
    except (ValueError, TypeError, OverflowError, pa.ArrowException):
        try:
            micros = np.fromiter(map(_stamp_micros, values), dtype=np.int64, count=len(values))
        except (ValueError, OverflowError):
            raise _first_failure(values, _stamp_micros, "timestamp") from None
    now = now or clock.now()
    latest = (now + timedelta(seconds=settings.INGEST_MAX_FUTURE) - EPOCH) // ONE_US
    earliest = (now - timedelta(days=settings.INGEST_MAX_AGE_DAYS) - EPOCH) // ONE_US
    late, early = micros > latest, micros < earliest
    if late.any() or early.any():
        row = int(np.flatnonzero(late | early)[0])
        where = "in the future" if late[row] else "in the past"
        limit = (
            f"INGEST_MAX_FUTURE = {settings.INGEST_MAX_FUTURE} s ahead"
            if late[row]
            else f"INGEST_MAX_AGE_DAYS = {settings.INGEST_MAX_AGE_DAYS} days back"
        )
        raise BatchError(row + 1, "timestamp", f"Too far {where}: accepted up to {limit} of the server's clock.")
    return micros


def _subject_text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise ValueError(f"Expected a string, got {type(value).__name__}.")
    value = value.strip()
    if not 0 < len(value) <= MAX_SUBJECT_LENGTH or "\x00" in value:
        raise ValueError(f"A subject id is 1–{MAX_SUBJECT_LENGTH} characters without NUL.")
    return value


def subjects_column(values: list) -> list[str | None]:
    """Optional data-subject ids → their HMAC (``monitoring.services.subjects``); the id in
    clear goes no further than this function. A bad value is named by row, never echoed."""
    try:
        texts = list(map(_subject_text, values))
    except ValueError:
        raise _first_failure(values, _subject_text, "subject_id") from None
    try:
        return subject_hashes(texts)
    except ImproperlyConfigured as exc:
        raise BatchError(None, "subject_id", str(exc)) from None


def _json_numbers(values: list):
    """JSON numbers (no text) → a float64 pyarrow array, nulls kept."""
    import pyarrow as pa  # imported on use: see registry/llm_stats.py

    try:
        return pa.array(values, type=pa.float64(), from_pandas=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # an integer beyond float64's exact range
        return pa.array([None if v is None else float(v) for v in values], type=pa.float64())


def numbers_column(values, field: str, *, from_text: bool) -> np.ndarray:
    """→ float64 with NaN for missing values; refuses text that is no number, NaN, infinity.

    ``values``: a list, or for text a pyarrow string array (a CSV column: ``RawBatch.text_column``)."""
    import pyarrow as pa  # imported on use: see registry/llm_stats.py
    import pyarrow.compute as pc

    check = _number_text if from_text else _number
    try:
        if from_text:
            text = values if isinstance(values, pa.Array) else pa.array(values, type=pa.string())
            array = pc.cast(pc.utf8_trim_whitespace(text), pa.float64())
        elif set(map(type, values)) <= _NUMBER_TYPES:
            array = _json_numbers(values)
        else:
            raise ValueError
    except (ValueError, OverflowError, pa.ArrowInvalid):
        raise _first_failure(_python_values(values), check, field) from None
    numbers = array.to_numpy(zero_copy_only=False)
    if np.count_nonzero(~np.isfinite(numbers)) != array.null_count:
        raise _first_failure(_python_values(values), check, field)
    return numbers


def _python_values(values) -> list:
    return values if isinstance(values, list) else values.to_pylist()


def categories_column(values: list, field: str) -> list:
    """→ text or None per row (numbers and booleans as label text)."""
    if not set(map(type, values)) <= _TEXT_TYPES:
        try:
            texts = {v: _category(v) for v in set(values)}
        except (ValueError, TypeError):  # TypeError: an object or array is unhashable
            raise _first_failure(values, _category, field) from None
        values = [texts[v] for v in values]
    if "\x00" in "".join(v for v in values if v is not None):
        raise _first_failure(values, _category, field)
    return values


# --------------------------------------------------------------------------- batches


def feature_schema(version) -> dict[str, str]:
    return {f["name"]: f.get("type", FeatureType.NUMERIC) for f in version.feature_schema or []}


def _feature_objects(raw: RawBatch, schema: dict[str, str]) -> list[dict] | None:
    """Checks the batch's shape: JSON → each row's features object; CSV (one column per
    feature) or JSON decoded by type (``raw.features``) → None. Unknown fields, columns and
    feature names are refused."""
    if raw.features is not None:  # ingest_json decoded nothing else
        return None
    if raw.from_text:
        unknown = sorted(set(raw.present) - set(RESERVED_COLUMNS) - set(schema))
        if unknown or "features" in raw.present:
            name = unknown[0] if unknown else "features"
            raise BatchError(None, name, "Unknown column: not in the version's feature schema.")
        return None
    unknown = sorted(set(raw.present) - set(RESERVED_COLUMNS))
    if unknown:
        row = next((i for i, v in enumerate(raw.column(unknown[0]), start=1) if v is not None), None)
        raise BatchError(row, unknown[0], "Unknown field.")
    features = raw.column("features")
    if set(map(type, features)) != {dict}:
        row = next(i for i, f in enumerate(features, start=1) if not isinstance(f, dict))
        raise BatchError(row, "features", "Required: an object of feature name → value.")
    if not set().union(*features) <= schema.keys():
        row, key = next((i, k) for i, f in enumerate(features, start=1) for k in f if k not in schema)
        raise BatchError(row, f"features.{key}", "Unknown feature: not in the version's feature schema.")
    return features


def _rows_of(objects: list[dict], names: list[str]) -> list[tuple]:
    """The values of ``names`` in each object as a tuple (None where an object lacks one); one
    C-level lookup per object when every object has every name, the common case."""
    if not names:
        return [()] * len(objects)
    try:
        rows = list(map(itemgetter(*names), objects))
    except KeyError:
        return [tuple(obj.get(name) for name in names) for obj in objects]
    return [(value,) for value in rows] if len(names) == 1 else rows


def _feature_values(raw: RawBatch, schema: dict[str, str], objects: list[dict] | None) -> tuple[dict, dict]:
    """→ (numeric features as float64 arrays, categorical features as text lists), by name."""
    numeric_names = [name for name, ftype in schema.items() if ftype == FeatureType.NUMERIC]
    categorical_names = [name for name, ftype in schema.items() if ftype != FeatureType.NUMERIC]
    if raw.features is not None:  # numbers decoded as float64 already
        numeric = {n: raw.features[n] for n in numeric_names}
        categorical = {n: categories_column(raw.features[n], f"features.{n}") for n in categorical_names}
        return numeric, categorical
    if objects is None:
        numeric = {n: numbers_column(raw.text_column(n), f"features.{n}", from_text=True) for n in numeric_names}
        categorical = {n: categories_column(raw.column(n), f"features.{n}") for n in categorical_names}
        return numeric, categorical
    rows = _rows_of(objects, numeric_names)
    try:  # all numeric features as one block: one type check and one conversion for the batch
        block = numbers_column(list(chain.from_iterable(rows)), "features", from_text=False)
    except BatchError:  # name the first bad feature and row
        for j, name in enumerate(numeric_names):
            numbers_column([row[j] for row in rows], f"features.{name}", from_text=False)
        raise
    block = block.reshape(len(objects), len(numeric_names))
    numeric = {name: block[:, j] for j, name in enumerate(numeric_names)}
    columns = zip(*_rows_of(objects, categorical_names), strict=True) if categorical_names else ()
    categorical = {
        n: categories_column(list(v), f"features.{n}") for n, v in zip(categorical_names, columns, strict=True)
    }
    return numeric, categorical


def class_or_value(values: list, field: str, outcomes: Outcomes, *, from_text: bool):
    """Class labels as text among ``outcomes.classes``, or float64 values for a regression task."""
    if outcomes.task_type == TaskType.REGRESSION:
        return numbers_column(values, field, from_text=from_text)
    labels = categories_column(values, field)
    classes_check(labels, field, outcomes)
    return labels


def predictions_validate(raw: RawBatch, *, version, now: datetime | None = None) -> PredictionBatch:
    """The one validator of prediction batches; raises ``BatchError`` naming the first bad row and field.
    Predictions and scores are checked against what the version can produce (``ingest_classes``)."""
    schema = feature_schema(version)
    if not schema:
        raise BatchError(None, "feature_schema", "The version has no feature schema; register one first.")
    if raw.from_text:
        for required in ("prediction_id", "timestamp"):
            if required not in raw.present:
                raise BatchError(None, required, "Column missing from the CSV header.")
    objects = _feature_objects(raw, schema)
    ids = ids_column(raw.column("prediction_id"))
    ts_us = timestamps_column(raw.column("timestamp"), now=now)
    numeric, categorical = _feature_values(raw, schema, objects)
    prediction = score = None
    outcomes = outcomes_of(version)
    if "prediction" in raw.present:
        prediction = class_or_value(raw.column("prediction"), "prediction", outcomes, from_text=raw.from_text)
    if "score" in raw.present:
        score = numbers_column(raw.text_column("score"), "score", from_text=raw.from_text)
        scores_check(score, outcomes)
    subjects = subjects_column(raw.column("subject_id")) if "subject_id" in raw.present else None
    return PredictionBatch(
        fmt=raw.fmt,
        ids=ids,
        ts_us=ts_us,
        numeric=numeric,
        categorical=categorical,
        prediction=prediction,
        score=score,
        subjects=subjects,
    )


def labels_validate(raw: RawBatch, *, outcomes: Outcomes) -> LabelBatch:
    """Labels by prediction id: both columns required, nothing else; each label one of
    ``outcomes`` (the model's classes, or finite numbers for regression)."""
    for required in LABEL_COLUMNS:
        if raw.from_text and required not in raw.present:
            raise BatchError(None, required, "Column missing from the CSV header.")
    extra = sorted(set(raw.present) - set(LABEL_COLUMNS) - set(LABEL_OPTIONAL))
    if extra:
        if raw.from_text:
            raise BatchError(None, extra[0], "Unknown column.")
        row = next((i for i, v in enumerate(raw.column(extra[0]), start=1) if v is not None), None)
        raise BatchError(row, extra[0], "Unknown field.")
    ids = ids_column(raw.column("prediction_id"))
    values = raw.column("label")
    labels = class_or_value(values, "label", outcomes, from_text=raw.from_text)
    if None in values:
        raise BatchError(values.index(None) + 1, "label", "Required.")
    if isinstance(labels, np.ndarray):
        labels = labels.tolist()
    subjects = subjects_column(raw.column("subject_id")) if "subject_id" in raw.present else None
    return LabelBatch(fmt=raw.fmt, ids=ids, labels=labels, subjects=subjects)


__all__ = [
    "LabelBatch",
    "PredictionBatch",
    "label_string",
    "labels_validate",
    "predictions_validate",
]
