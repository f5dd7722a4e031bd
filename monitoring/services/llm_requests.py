"""Ingestion of an LLM application's request records (``POST …/versions/{v}/requests/``).

The same path as predictions (``monitoring.services.ingestion``): the body is parsed by
``ingest_parsing.parse_body`` (JSON array, JSON Lines or CSV, same limits, BOM skipped, short or
long CSV rows refused), checked column by column with ``ingest_validation``'s column checks
(ids, timestamps, finite numbers), and stored all-or-nothing with the windows it makes dirty and
one audit event (``llm_requests.ingested``). Errors name the first bad row and field.

Fields of a record:

* ``request_id``: 1–100 characters, unique in the batch and per version;
* ``timestamp``: as for predictions (ISO 8601 or epoch seconds, within the accepted range);
* ``tokens_in``, ``tokens_out``: whole numbers from 0 to 2,147,483,647;
* ``latency_ms``: a finite number ≥ 0 (milliseconds);
* ``feedback`` (optional): a number in [-1, 1] (-1 thumbs down, +1 thumbs up; a [0, 1] rating
  fits too), null or an empty cell when the user gave none;
* ``safety_flags`` (optional): a list of short names (1–64 characters, at most 20); in CSV one
  cell with the names separated by ``;``.

Nothing else: request text (``prompt``, ``completion``…) is refused, never stored. Only
versions of an LLM application (``RegisteredModel.kind == "llm_app"``) take request records.

Resending is safe, as for predictions: a body already stored for the version is answered with
the stored batch's summary and ``duplicate_of_batch``; a different batch that reuses stored
request ids is refused, naming the row.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from django.db import IntegrityError, transaction

from mlops_portal import clock
from mlops_portal.gc_pause import gc_paused
from monitoring.models_llm import FEEDBACK_MAX, FEEDBACK_MIN, LLMRequest
from registry.models import ModelVersion
from registry.services.audit import AuditContext

from .ingest_parsing import BatchError, RawBatch, parse_body
from .ingest_validation import EPOCH, ONE_US, TimedRows, ids_column, numbers_column, timestamps_column
from .ingestion import batch_record, batch_summary, stored_answer

REQUIRED = ("request_id", "timestamp", "tokens_in", "tokens_out", "latency_ms")
OPTIONAL = ("feedback", "safety_flags")
TEXT_FIELDS = {"prompt", "completion", "response", "input", "output", "messages", "text", "answer", "question"}
MAX_TOKENS = 2_147_483_647  # a PostgreSQL integer
MAX_FLAGS, MAX_FLAG_LENGTH, FLAG_SEPARATOR = 20, 64, ";"
ID_CHUNK = 5000


class NotAnLLMApplication(BatchError):
    """The version belongs to a model that is not an LLM application (API: 400)."""


@dataclass
class LLMRequestBatch(TimedRows):
    """A validated batch: ids, UTC microseconds, integer token counts, latency (float64),
    feedback (float64, NaN = none) and each row's safety flags."""

    fmt: str
    ids: list[str]
    ts_us: np.ndarray
    tokens_in: np.ndarray
    tokens_out: np.ndarray
    latency_ms: np.ndarray
    feedback: np.ndarray
    safety_flags: list[list[str]]


# --------------------------------------------------------------------------- validation


def _check_fields(raw: RawBatch) -> None:
    """Required columns present (CSV: in the header); no other field, request text named as such."""
    if raw.from_text:
        for required in REQUIRED:
            if required not in raw.present:
                raise BatchError(None, required, "Column missing from the CSV header.")
    unknown = sorted(set(raw.present) - set(REQUIRED) - set(OPTIONAL))
    if not unknown:
        return
    name = next((n for n in unknown if n.lower() in TEXT_FIELDS), unknown[0])
    row = None if raw.from_text else next((i for i, v in enumerate(raw.column(name), 1) if v is not None), None)
    if name.lower() in TEXT_FIELDS:
        raise BatchError(row, name, "Request text is not accepted: send token counts, latency, feedback and flags.")
    raise BatchError(row, name, "Unknown column." if raw.from_text else "Unknown field.")


def _shown(limit: float) -> str:
    """A limit as people write it: 2147483647, not 2.14748e+09; 0.5 as 0.5."""
    return str(int(limit)) if float(limit).is_integer() else f"{limit:g}"


def _bounded(
    raw: RawBatch, field: str, *, low: float, high: float, whole: bool = False, required: bool = True
) -> np.ndarray:
    """A numeric column (finite, as ``numbers_column`` reads it) within [low, high]."""
    values = numbers_column(raw.text_column(field), field, from_text=raw.from_text)
    missing = np.isnan(values)
    if required and missing.any():
        raise BatchError(int(np.flatnonzero(missing)[0]) + 1, field, "Required.")
    present = np.where(missing, low, values)
    if whole:
        bad = present != np.floor(present)
        if bad.any():
            raise BatchError(int(np.flatnonzero(bad)[0]) + 1, field, "Expected a whole number.")
    for bad, message in (
        (present < low, f"Must be at least {_shown(low)}."),
        (present > high, f"Must be at most {_shown(high)}."),
    ):
        if bad.any():
            raise BatchError(int(np.flatnonzero(bad)[0]) + 1, field, message)
    return values


def _flag_list(value: Any, *, from_text: bool) -> list[str]:
    if value is None:
        return []
    if from_text:
        value = [part for part in value.split(FLAG_SEPARATOR) if part.strip()]
    if not isinstance(value, list):
        raise ValueError("Expected a list of short strings.")
    if len(value) > MAX_FLAGS:
        raise ValueError(f"At most {MAX_FLAGS} flags.")
    flags = []
    for flag in value:
        if not isinstance(flag, str):
            raise ValueError(f"Expected a list of short strings, got an item of type {type(flag).__name__}.")
        flag = flag.strip()
        if not 0 < len(flag) <= MAX_FLAG_LENGTH or "\x00" in flag:
            raise ValueError(f"A flag is 1–{MAX_FLAG_LENGTH} characters without NUL.")
        flags.append(flag)
    return flags


def _flags_column(raw: RawBatch) -> list[list[str]]:
    flags = []
    for row, value in enumerate(raw.column("safety_flags"), start=1):
        try:
            flags.append(_flag_list(value, from_text=raw.from_text))
        except ValueError as exc:
            raise BatchError(row, "safety_flags", str(exc)) from None
    return flags


def llm_requests_validate(raw: RawBatch, *, now: datetime | None = None) -> LLMRequestBatch:
    """The one validator of request-record batches; raises ``BatchError`` naming the first bad row and field."""
    _check_fields(raw)
    ids = ids_column(raw.column("request_id"), "request_id")
    ts_us = timestamps_column(raw.column("timestamp"), now=now)
    tokens_in = _bounded(raw, "tokens_in", low=0, high=MAX_TOKENS, whole=True)
    tokens_out = _bounded(raw, "tokens_out", low=0, high=MAX_TOKENS, whole=True)
    latency = _bounded(raw, "latency_ms", low=0, high=1e12)
    feedback = _bounded(raw, "feedback", low=FEEDBACK_MIN, high=FEEDBACK_MAX, required=False)
    return LLMRequestBatch(
        fmt=raw.fmt,
        ids=ids,
        ts_us=ts_us,
        tokens_in=tokens_in.astype(np.int64),
        tokens_out=tokens_out.astype(np.int64),
        latency_ms=latency,
        feedback=feedback,
        safety_flags=_flags_column(raw),
    )


# --------------------------------------------------------------------------- storing


def _request_objects(version_id: int, batch: LLMRequestBatch, received_at: datetime) -> list[LLMRequest]:
    feedback = np.where(np.isnan(batch.feedback), None, batch.feedback).tolist()
    return [
        LLMRequest(
            version_id=version_id,
            request_id=rid,
            timestamp=EPOCH + int(ts) * ONE_US,
            tokens_in=tin,
            tokens_out=tout,
            latency_ms=latency,
            feedback=fb,
            safety_flags=flags,
            received_at=received_at,
        )
        for rid, ts, tin, tout, latency, fb, flags in zip(
            batch.ids,
            batch.ts_us.tolist(),
            batch.tokens_in.tolist(),
            batch.tokens_out.tolist(),
            batch.latency_ms.tolist(),
            feedback,
            batch.safety_flags,
            strict=True,
        )
    ]


def _raise_already_stored(version_id: int, ids: list[str], exc: IntegrityError) -> None:
    existing: set[str] = set()
    for start in range(0, len(ids), ID_CHUNK):
        existing.update(
            LLMRequest.objects.filter(version_id=version_id, request_id__in=ids[start : start + ID_CHUNK]).values_list(
                "request_id", flat=True
            )
        )
    for row, rid in enumerate(ids, start=1):
        if rid in existing:
            raise BatchError(row, "request_id", f"Request id {rid!r} was already stored for this version.") from exc
    raise exc


def _require_llm_app(version: ModelVersion) -> None:
    if not version.model.is_llm_app:
        raise NotAnLLMApplication(
            None,
            "version",
            f"{version.model.name} v{version.version} is a version of an ML model: request records are for "
            "LLM applications (kind llm_app); send predictions instead.",
        )


@gc_paused()  # see predictions_ingest
@transaction.atomic
def llm_requests_ingest(
    *, version: ModelVersion, body: bytes, content_type: str, actor, context: AuditContext, now: datetime | None = None
) -> dict[str, Any]:
    """Validate and store one batch of request records; mark its windows dirty; one audit event.

    A body already stored for this version is acknowledged, not stored again: the answer is the
    stored batch's summary plus ``duplicate_of_batch``."""
    _require_llm_app(version)
    digest = hashlib.sha256(body).hexdigest()
    if (stored := stored_answer(version_id=version.pk, digest=digest)) is not None:
        return stored
    batch = llm_requests_validate(parse_body(body, content_type), now=now)
    received_at = clock.now()
    try:
        with transaction.atomic():
            LLMRequest.objects.bulk_create(_request_objects(version.pk, batch, received_at), batch_size=2000)
    except IntegrityError as exc:
        if (stored := stored_answer(version_id=version.pk, digest=digest)) is not None:
            return stored  # stored meanwhile by a concurrent request
        _raise_already_stored(version.pk, batch.ids, exc)
    summary = batch_summary(version_id=version.pk, batch=batch, sliced=False)
    return batch_record(
        version=version,
        digest=digest,
        summary=summary,
        received_at=received_at,
        action="llm_requests.ingested",
        actor=actor,
        context=context,
    )


__all__ = ["LLMRequestBatch", "NotAnLLMApplication", "llm_requests_ingest", "llm_requests_validate"]
