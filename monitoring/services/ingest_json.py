"""Prediction batches in JSON, decoded straight into columns by the version's feature schema.

The general reader (``ingest_parsing.parse_body``) builds a dict per record and per features
object, then takes them apart into columns; for a prediction batch that is most of its cost. Here
msgspec decodes a JSON array or JSON Lines body against record types made from the feature
schema: a numeric feature is decoded as a number (or null), a categorical one as a scalar, and
nothing else is accepted. No dict is built: the numeric features become one float64 block (NaN
for null or absent), the other fields lists, as ``RawBatch.features`` and ``RawBatch.columns``.

This reader only accepts. A body it refuses (a value of the wrong type, an unknown field or
feature, a missing ``features`` object, NaN or Infinity, an unpaired surrogate, broken JSON) goes
to the general reader, whose errors name the row and the field, and so does a body in which a key
may have been given twice (msgspec keeps the last): the keys it decoded, plus the colons inside
its strings, must account for every colon of the body, as in ``ingest_parsing``'s check.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from functools import lru_cache
from itertools import chain
from operator import attrgetter

import msgspec
import numpy as np

from registry.choices import FeatureType

from .ingest_parsing import (
    JSON_TYPES,
    NDJSON_TYPES,
    RawBatch,
    count_byte,
    escaped_colon,
    media_type,
    nonblank_lines,
    parse_body,
)

UNSET = msgspec.UNSET
ABSENT = float("nan")
"""A numeric feature's default: JSON has no NaN, so this marks a key the record did not give."""
SCALAR = str | int | float | bool | None | msgspec.UnsetType
REQUIRED = ("prediction_id", "timestamp", "features")
OPTIONAL = {
    "prediction": SCALAR,
    "score": float | None | msgspec.UnsetType,
    "subject_id": str | int | None | msgspec.UnsetType,
}
"""The record's optional top-level fields and what each may hold; ``prediction_id`` (text or an
integer), ``timestamp`` (text or epoch seconds) and ``features`` are required."""


def predictions_read(body: bytes, content_type: str, schema: dict[str, str]) -> RawBatch:
    """A prediction batch → ``RawBatch``: JSON decoded by ``schema`` (feature name → type) when it
    can be, everything else, and every refusal, by ``parse_body``."""
    media = media_type(content_type)
    if schema and media in JSON_TYPES + NDJSON_TYPES:
        batch = _typed(body.removeprefix(codecs.BOM_UTF8), "jsonl" if media in NDJSON_TYPES else "json", schema)
        if batch is not None:
            return batch
    return parse_body(body, content_type)


@lru_cache(maxsize=64)
def _decoder(features: tuple[tuple[str, str], ...]) -> tuple[msgspec.json.Decoder, msgspec.json.Decoder, dict]:
    """Decoders of a list of records and of one record for one feature schema, and each
    feature's attribute (the fields are renamed: a feature's name need not be an identifier)."""
    attributes = {name: f"f{j}" for j, (name, _) in enumerate(features)}
    feature_type = msgspec.defstruct(
        "Features",
        [
            (attributes[name], float | None, ABSENT)
            if kind == FeatureType.NUMERIC
            else (attributes[name], SCALAR, UNSET)
            for name, kind in features
        ],
        rename={attribute: name for name, attribute in attributes.items()},
        forbid_unknown_fields=True,
        gc=False,
    )
    record_type = msgspec.defstruct(
        "Record",
        [
            ("prediction_id", str | int),
            ("timestamp", str | int | float),
            ("features", feature_type),
            *((name, kind, UNSET) for name, kind in OPTIONAL.items()),
        ],
        forbid_unknown_fields=True,
        gc=False,
    )
    return msgspec.json.Decoder(list[record_type]), msgspec.json.Decoder(record_type), attributes


def _typed(body: bytes, fmt: str, schema: dict[str, str]) -> RawBatch | None:
    """The batch, or None where the general reader must read it (see the module's docstring)."""
    array, record, attributes = _decoder(tuple(schema.items()))
    try:  # JSON Lines: each line alone, so that a line holding more, or less, than a record is refused
        records = list(map(record.decode, nonblank_lines(body))) if fmt == "jsonl" else array.decode(body)
    except msgspec.DecodeError:  # also msgspec.ValidationError
        return None
    if not records:
        return None
    columns = {name: list(map(attrgetter(name), records)) for name in (*REQUIRED[:2], *OPTIONAL)}
    objects = list(map(attrgetter("features"), records))
    numeric = [name for name, kind in schema.items() if kind == FeatureType.NUMERIC]
    block, numbers_given = _numbers(objects, [attributes[name] for name in numeric])
    texts = {name: list(map(attrgetter(attributes[name]), objects)) for name in schema if name not in numeric}
    if np.isinf(block).any():  # msgspec reads none (NaN marks what is missing): the validators refuse it
        return None
    if not _every_key_kept(body, len(records), numbers_given, (columns, texts), _named(objects, attributes)):
        return None
    present = {"features", *(name for name, values in columns.items() if _given(values))}
    for name in OPTIONAL:
        if name in present:
            columns[name] = _unset_as_none(columns[name])
        else:
            del columns[name]
    features = {name: block[:, j] for j, name in enumerate(numeric)}
    features |= {name: _unset_as_none(values) for name, values in texts.items()}
    return RawBatch(fmt=fmt, n=len(records), columns=columns, present=sorted(present), features=features)


def _every_key_kept(body: bytes, n: int, numbers_given: int, lists: tuple[dict, dict], named: Iterator) -> bool:
    """Whether the decoded records account for every colon of the body: one per key given (the
    required ones in each record, the numbers ``_numbers`` counted, every other value given:
    ``lists`` holds the top-level fields and the features other than numbers, by name), those
    within the feature names given (``named``) and those within decoded strings. A key given
    twice leaves a colon unaccounted for: msgspec kept only the last."""
    if escaped_colon(body):
        return False
    fields, texts = lists
    keys = len(REQUIRED) * n + numbers_given + sum(map(_given, texts.values()))
    keys += sum(_given(values) for name, values in fields.items() if name not in REQUIRED)
    keys += sum(name.count(":") * _given(values) for name, values in named)
    return count_byte(body, b":") == keys + _colons_in_text(chain(fields.values(), texts.values()))


def _numbers(objects: list, attributes: list[str]) -> tuple[np.ndarray, int]:
    """The numeric features as an n × k float64 block (NaN where null or absent), and how many
    values the records gave (null included)."""
    import pyarrow as pa  # imported on use: see registry/llm_stats.py

    if not attributes:
        return np.empty((len(objects), 0)), 0
    rows = map(attrgetter(*attributes), objects)
    flat = list(chain.from_iterable(rows) if len(attributes) > 1 else rows)
    array = pa.array(flat, type=pa.float64(), from_pandas=False)  # None → null, ABSENT stays NaN
    block = array.to_numpy(zero_copy_only=False)
    absent = int(np.count_nonzero(np.isnan(block))) - array.null_count
    return block.reshape(len(objects), len(attributes)), len(flat) - absent


def _named(objects: list, attributes: dict[str, str]):
    """(name, values) of the features whose name holds a colon (each given adds its colons)."""
    for name, attribute in attributes.items():
        if ":" in name:
            values = list(map(attrgetter(attribute), objects))
            yield name, [UNSET if value is ABSENT else value for value in values]


def _given(values: list) -> int:
    return len(values) - values.count(UNSET)


def _unset_as_none(values: list) -> list:
    return [None if value is UNSET else value for value in values] if UNSET in values else values


def _colons_in_text(columns) -> int:
    """The colons inside decoded strings (a timestamp has two): the body holds each as it is,
    unless it wrote one as an escape (``escaped_colon``)."""
    total = 0
    for values in columns:
        try:
            total += "".join(values).count(":")
        except TypeError:  # not all text
            total += "".join([value for value in values if type(value) is str]).count(":")
    return total


__all__ = ["predictions_read"]
