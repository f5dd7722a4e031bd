"""Ingestion services: reference data, predictions and ground-truth labels.

A batch is parsed column-wise (``ingest_parsing``), validated column by column against the
version's feature schema (``ingest_validation``: the first bad row is reported with its field
and reason, and nothing of a rejected batch is stored) and written (``ingest_storage``:
PostgreSQL ``COPY``, the ORM on SQLite) in one transaction with the windows it makes dirty
and the batch's one audit event. Computation is queued after commit; if the broker is down
the error is logged and the beat task ``monitoring_sweep_dirty_windows`` picks the windows up.

Resending a batch is safe. A prediction batch whose body is byte-for-byte one already stored
for the version is answered with the stored batch's summary and ``duplicate_of_batch`` (its
id), and nothing is stored again; a different batch that reuses stored prediction ids is
refused. Labels are upserted by prediction id: a resent identical label is counted
``unchanged`` and left as it is, a changed one replaces the old and is audited with its value
before and after (the first ``LABEL_CHANGES_SHOWN`` of a batch, and the total).
"""

from __future__ import annotations

import hashlib
import io
import logging
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction

from mlops_portal import clock
from mlops_portal.gc_pause import gc_paused
from mlops_portal.queue import enqueue_on_commit
from monitoring.choices import ProfileStatus
from monitoring.fairness_monitoring import sensitive_store, split_sensitive
from monitoring.models import MonitoringConfig, ReferenceProfile
from registry.models import ModelVersion, RegisteredModel
from registry.sensitive import sensitive_attributes
from registry.services.audit import AuditContext, audit_record
from registry.services.inventory import evidence_check_unchanged

from . import ingest_storage as storage
from . import live_evidence
from .ingest_classes import outcomes_of
from .ingest_json import predictions_read
from .ingest_parsing import BatchError, UnsupportedFormat, parse_body
from .ingest_validation import feature_schema, labels_validate, predictions_validate
from .reference_data import reference_read
from .window_slices import slice_floor, slice_width
from .windows import hour_floor, windows_mark_dirty

logger = logging.getLogger(__name__)

LABEL_CHANGES_SHOWN = 100
"""Changed labels listed with their old and new value in a batch's audit event (the count is
always there)."""


def _enqueue_sweep() -> None:
    from monitoring import tasks

    enqueue_on_commit(tasks.monitoring_sweep_dirty_windows)


def _refuse_llm_app(model: RegisteredModel, version: int | None, what: str) -> None:
    """An LLM application's data are its request records, with their feedback: not ``what``."""
    if model.is_llm_app:
        where = f"/api/v1/models/{model.name}/versions/{version or '{version}'}/requests/"
        message = f"{model.name} is an LLM application: send its request records (with feedback) to {where}"
        raise BatchError(None, "model", f"{message}, not {what}.")


@gc_paused()  # a JSON batch's records would keep the cyclic collector busy (mlops_portal/gc_pause.py)
@transaction.atomic
def predictions_ingest(
    *, version: ModelVersion, body: bytes, content_type: str, actor, context: AuditContext
) -> dict[str, Any]:
    """Validate and store one batch of predictions; mark its windows dirty; one audit event.

    An identical body already stored for this version is acknowledged, not stored again:
    the answer is the stored batch's summary plus ``duplicate_of_batch``."""
    _refuse_llm_app(version.model, version.version, "predictions")
    digest = hashlib.sha256(body).hexdigest()
    if (stored := stored_answer(version_id=version.pk, digest=digest)) is not None:
        return stored
    batch = predictions_validate(predictions_read(body, content_type, feature_schema(version)), version=version)
    sensitive = split_sensitive(version, batch)  # kept apart from features (monitoring/fairness_monitoring.py)
    received_at = clock.now()
    try:
        with transaction.atomic():
            storage.predictions_store(version_id=version.pk, batch=batch, received_at=received_at)
            sensitive_store(version_id=version.pk, batch=batch, sensitive=sensitive)
    except IntegrityError as exc:
        if (stored := stored_answer(version_id=version.pk, digest=digest)) is not None:
            return stored  # the same body, stored meanwhile by a concurrent request
        _raise_already_stored(version.pk, batch.ids, exc)
    summary = batch_summary(version_id=version.pk, batch=batch)
    summary["dirty_windows"] += live_evidence.pairs_mark_dirty(version=version, ids=batch.ids)  # shadow pairs
    return batch_record(
        version=version,
        digest=digest,
        summary=summary,
        received_at=received_at,
        action="predictions.ingested",
        actor=actor,
        context=context,
    )


def batch_record(
    *, version, digest: str, summary: dict[str, Any], received_at, action: str, actor, context: AuditContext
) -> dict[str, Any]:
    """Record a stored batch (its digest and summary), audit it and queue the window sweep after
    commit; the answer. If a concurrent request stored the same body first, ours is rolled back
    and that batch's answer returned. Shared by predictions and LLM request records."""
    recorded = storage.ingest_batch_record(
        version_id=version.pk, digest=digest, summary=summary, received_at=received_at
    )
    if recorded is None:  # the same body was stored by a concurrent request: undo ours
        transaction.set_rollback(True)
        return stored_answer(version_id=version.pk, digest=digest)
    audit_record(
        actor=actor,
        action=action,
        context=context,
        obj=version,
        after={**summary, "batch": recorded.pk, "sha256": digest},
    )
    _enqueue_sweep()
    return {**summary, "batch": recorded.pk}


def stored_answer(*, version_id: int, digest: str) -> dict[str, Any] | None:
    """The answer to a body already stored for this version (its summary and batch id), or None."""
    stored = storage.ingest_batch_find(version_id=version_id, digest=digest)
    return None if stored is None else {**stored.summary, "duplicate_of_batch": stored.pk}


def batch_summary(*, version_id: int, batch, sliced: bool = True) -> dict[str, Any]:
    """What a stored batch of timed rows answers (and its batch record keeps); marks its hourly
    windows dirty, and its slices (``sliced``: predictions; an LLM app's windows are read
    whole). Shared by predictions and LLM request records."""
    hours = batch.hours()
    first, last = batch.bounds()
    return {
        "rows": len(batch),
        "format": batch.fmt,
        "first_timestamp": first.isoformat(),
        "last_timestamp": last.isoformat(),
        "hourly_windows": len(hours),
        "dirty_windows": windows_mark_dirty(
            version_id=version_id, hours=hours, slices=batch.slices(slice_width()) if sliced else ()
        ),
    }


def _raise_already_stored(version_id: int, ids: list[str], exc: IntegrityError) -> None:
    existing = storage.existing_prediction_ids(version_id, ids)
    for row, pid in enumerate(ids, start=1):
        if pid in existing:
            message = f"Prediction id {pid!r} was already stored for this version."
            raise BatchError(row, "prediction_id", message) from exc
    raise exc


@gc_paused()
@transaction.atomic
def labels_ingest(
    *, model: RegisteredModel, body: bytes, content_type: str, actor, context: AuditContext
) -> dict[str, Any]:
    """Store labels by prediction id (a re-sent label replaces the old one, an identical one
    is counted unchanged) and mark the windows of the predictions whose label was written dirty,
    so late labels update their windows once. One audit event when something was written, with
    the changed labels' values before and after (the first ``LABEL_CHANGES_SHOWN``)."""
    latest = model.versions.order_by("-version").first()
    _refuse_llm_app(model, latest.version if latest else None, "labels")
    raw = parse_body(body, content_type)
    batch = labels_validate(raw, outcomes=outcomes_of(latest))
    changes = storage.labels_store(model=model, batch=batch, received_at=clock.now())
    matched, marked = _labels_mark_dirty(model=model, written=changes.written, unchanged=changes.unchanged)
    summary = {
        "rows": len(batch.ids),
        "new": len(changes.new),
        "updated": len(changes.changed),
        "unchanged": len(changes.unchanged),
        "matched_predictions": matched,
        "dirty_windows": marked,
    }
    if changes.written:  # a batch of identical labels changes nothing: no event
        shown = changes.changed[:LABEL_CHANGES_SHOWN]
        before = {"labels": {pid: old for pid, old, _ in shown}} if shown else None
        after = summary | ({"labels": {pid: new for pid, _, new in shown}, "labels_shown": len(shown)} if shown else {})
        audit_record(actor=actor, action="labels.ingested", context=context, obj=model, before=before, after=after)
    if marked:
        _enqueue_sweep()
    return summary


def _labels_mark_dirty(*, model: RegisteredModel, written: list[str], unchanged: list[str]) -> tuple[int, int]:
    """Mark dirty the windows (and, where the version has sensitive attributes, the slices) of the
    predictions whose label was written → (predictions matched by the whole batch, windows marked)."""
    matched = 0
    windows: dict[int, set[datetime]] = {}
    slices: dict[int, set[datetime]] = {}
    for version_id, ts in storage.labelled_prediction_times(model=model, ids=written):
        matched += 1
        windows.setdefault(version_id, set()).add(hour_floor(ts))
        slices.setdefault(version_id, set()).add(slice_floor(ts))
    if unchanged:
        matched += sum(1 for _ in storage.labelled_prediction_times(model=model, ids=unchanged))
    # a slice holds labels only in its fairness counts: marked where there are some
    fair = {
        v.pk
        for v in ModelVersion.objects.filter(pk__in=windows).only("feature_schema")
        if sensitive_attributes(v.feature_schema)
    }
    marked = sum(
        windows_mark_dirty(version_id=v, hours=hours, slices=slices[v] if v in fair else ())
        for v, hours in windows.items()
    )
    return matched, marked


# --------------------------------------------------------------------------- reference data


@transaction.atomic
def reference_upload(
    *, version: ModelVersion, body: bytes, content_type: str, actor, context: AuditContext
) -> ReferenceProfile:
    """Validate reference data (CSV or Parquet) against the schema, store it as Parquet and
    queue the profile computation. Replaces an earlier upload of the same version (and its
    upload time), unless that one is evidence a promotion request is pending on or was approved
    on (a failed upload is none): ``evidence_check_unchanged`` refuses (a 409). A first upload is
    always taken. Read as strictly as predictions (``reference_data.reference_read``)."""
    clean, fmt = reference_read(body=body, content_type=content_type, version=version)
    version = ModelVersion.objects.select_for_update(of=("self",)).select_related("model").get(pk=version.pk)
    stored = ReferenceProfile.objects.filter(version=version).exclude(status=ProfileStatus.FAILED).exists()
    evidence_check_unchanged(version, changed=["reference data"] if stored else [])
    buffer = io.BytesIO()
    clean.to_parquet(buffer, index=False)
    config = MonitoringConfig.objects.filter(model_id=version.model_id).first()
    profile, _ = ReferenceProfile.objects.update_or_create(
        version=version,
        defaults={
            "status": ProfileStatus.PENDING,
            "error": "",
            "uploaded_at": clock.now(),
            "source_format": fmt,
            "n_rows": len(clean),
            "n_bins": config.n_bins if config else 10,
            "data": buffer.getvalue(),
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
        after={"rows": len(clean), "format": fmt, "sha256": profile.data_sha256, "columns": list(clean.columns)},
    )
    from monitoring import tasks

    enqueue_on_commit(tasks.profile_compute, profile.pk)
    return profile


__all__ = ["BatchError", "UnsupportedFormat", "labels_ingest", "predictions_ingest", "reference_upload"]
