"""Erasure by data subject (GDPR Art. 17): remove the raw predictions and labels whose
``subject_hash`` is the HMAC of the given subject id, the labels of those predictions (same
model, same prediction id; a label is often sent without a subject id) found by the labels'
(model, prediction_id) index in one statement per model (the subject's other labels by their
hash in a second), with the sensitive values stored apart
for those predictions (``PredictionSensitive``, by version and prediction id) and the erased
ids subtracted from their days' digests, across every model, except where a model is under a
legal hold (answered "held" with the hold's reason and article; lifting the hold erases those
rows then, ``erasure_holds_release``).

The subject id in clear is hashed at the door and never stored, logged or audited: the request
row and its audit event carry the request's id and the per-model counts only.

Aggregates (bin counts, metric values) are not recomputed: a window's counts are sums over at
least ``min_window_rows`` predictions, which no longer single out a person, and per-group
results below the minimum group size are already suppressed. Recomputing them would also
change figures that past promotion decisions and reports rest on.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from mlops_portal import clock
from monitoring.models import (
    ErasureOutcome,
    ErasureOutcomeStatus,
    ErasureRequest,
    ErasureStatus,
    GroundTruth,
    Prediction,
    PredictionSensitive,
    RetentionPolicy,
)
from registry.models import RegisteredModel
from registry.rules import can_request_erasure
from registry.services.audit import AuditContext, audit_record

from .raw_digests import digests_remove
from .subjects import MAX_SUBJECT_LENGTH, subject_hash
from .window_slices import slices_forget
from .windows import hour_floor


def erasure_results(outcomes) -> list[dict[str, Any]]:
    """The per-model answer of a request, as the API and the audit event give it: the model's
    name, the rows found, "erased" or "held" with the hold's reason and article."""
    results = []
    for o in outcomes:
        row = {"model": o.model.name, "predictions": o.predictions, "labels": o.labels, "status": o.status}
        if o.status == ErasureOutcomeStatus.HELD:
            row |= {"reason": o.hold_reason, "article": o.hold_article}
        results.append(row)
    return results


def _subject_rows(hashed: str, *, model_id: int | None = None) -> dict[int, list[tuple]]:
    """The subject's predictions by model id (one model's if given): (version id, time,
    prediction id) rows."""
    rows: dict[int, list[tuple]] = {}
    found = Prediction.objects.filter(subject_hash=hashed)
    if model_id is not None:
        found = found.filter(version__model_id=model_id)
    found = found.values_list("version__model_id", "version_id", "timestamp", "prediction_id")
    for model_id, *row in found:
        rows.setdefault(model_id, []).append(tuple(row))
    return rows


def _subject_labels(model_id: int, hashed: str, rows: list[tuple]) -> list:
    """The model's labels of the subject, as two disjoint querysets that each probe an index:
    those of the subject's predictions (by id: the labels' (model, prediction_id) index),
    then the others carrying the subject's hash (``label_subject``). An OR of the two in one
    statement made PostgreSQL read every label of the model."""
    ids = sorted({pid for _, _, pid in rows})
    by_hash = GroundTruth.objects.filter(model_id=model_id, subject_hash=hashed)
    if not ids:
        return [by_hash]
    return [
        GroundTruth.objects.filter(model_id=model_id, prediction_id__in=ids),
        by_hash.exclude(prediction_id__in=ids),
    ]


def _sensitive_delete(rows: list[tuple]) -> None:
    """The sensitive values stored apart with these (version id, time, prediction id) rows."""
    by_version: dict[int, list[str]] = {}
    for version_id, _, pid in rows:
        by_version.setdefault(version_id, []).append(pid)
    for version_id, ids in by_version.items():
        PredictionSensitive.objects.filter(version_id=version_id, prediction_id__in=ids).delete()


def _slices_forget(rows: list[tuple]) -> None:
    """The slices of the erased rows' hours (a slice's counts can be few rows): those
    hours are read whole, without the rows, when their data next changes. Hourly and daily
    aggregates stay (docs/scale.md, "Why aggregates are not recomputed after an erasure")."""
    by_version: dict[int, set] = {}
    for version_id, ts, _ in rows:
        by_version.setdefault(version_id, set()).add(hour_floor(ts))
    for version_id, hours in by_version.items():
        slices_forget(version_id=version_id, hours=hours)


def _erase_in_model(model_id: int, hashed: str, rows: list[tuple], label_sets: list) -> int:
    """Remove the subject's rows of one model (``rows``: its predictions, ``label_sets``: its
    labels), with their sensitive values, digests and slices; the labels removed."""
    digests_remove(rows=rows)
    _sensitive_delete(rows)
    _slices_forget(rows)
    Prediction.objects.filter(subject_hash=hashed, version__model_id=model_id).delete()
    return sum(q.delete()[0] for q in label_sets)


@transaction.atomic
def erasure_request_create(*, subject_id: str, actor, context: AuditContext) -> ErasureRequest:
    """Erase one subject's raw rows now (an index probe per partition: well under a second) and
    record the answer; audited ``erasure.completed`` without the subject id."""
    if actor is not None and not can_request_erasure(actor):
        raise PermissionDenied("Only a privacy officer or an admin can file erasure requests.")
    if not isinstance(subject_id, str) or not 0 < len(subject_id.strip()) <= MAX_SUBJECT_LENGTH:
        raise ValidationError({"subject_id": f"A subject id of 1–{MAX_SUBJECT_LENGTH} characters."})
    if "\x00" in subject_id:
        raise ValidationError({"subject_id": "NUL characters are not allowed."})
    hashed = subject_hash(subject_id)
    rows_of = _subject_rows(hashed)
    labelled = set(GroundTruth.objects.filter(subject_hash=hashed).values_list("model_id", flat=True).distinct())
    holds = {
        p.model_id: p for p in RetentionPolicy.objects.filter(model_id__in=set(rows_of) | labelled, legal_hold=True)
    }
    found = RegisteredModel.objects.in_bulk(set(rows_of) | labelled)
    outcomes: list[ErasureOutcome] = []
    for model_id in sorted(found, key=lambda m: found[m].name):
        rows = rows_of.get(model_id, [])
        label_sets = _subject_labels(model_id, hashed, rows)
        outcome = ErasureOutcome(model=found[model_id], predictions=len(rows))
        hold = holds.get(model_id)
        if hold is not None:
            outcome.status, outcome.labels = ErasureOutcomeStatus.HELD, sum(q.count() for q in label_sets)
            outcome.hold_reason, outcome.hold_article = hold.legal_hold_reason, hold.legal_hold_article
        else:
            outcome.labels = _erase_in_model(model_id, hashed, rows, label_sets)
            outcome.status = ErasureOutcomeStatus.ERASED
        outcomes.append(outcome)
    now = clock.now()
    request = ErasureRequest(
        subject_hash=hashed,
        status=ErasureStatus.HELD if holds else ErasureStatus.COMPLETED,
        requested_by=actor if getattr(actor, "is_authenticated", False) else None,
        requested_at=now,
        due_at=now + timedelta(days=settings.ERASURE_DEADLINE_DAYS),
        completed_at=now,
    )
    request.full_clean()
    request.save()
    for outcome in outcomes:
        outcome.request = request
        outcome.full_clean(exclude=["request", "model"])
    ErasureOutcome.objects.bulk_create(outcomes)
    audit_record(
        actor=actor,
        action="erasure.completed",
        context=context,
        obj=request,
        object_repr=f"Erasure request #{request.pk}",
        after={"request": request.pk, "status": request.status, "results": erasure_results(outcomes)},
    )
    return request


@transaction.atomic
def erasure_holds_release(*, model: RegisteredModel, actor, context: AuditContext) -> list[ErasureRequest]:
    """Carry out the erasures held under ``model``'s legal hold, now lifted: the hold was the only
    ground for keeping the subject's rows (GDPR Art. 17(3)(e)). Called by the retention change
    that lifts it, in its transaction; per request, the rows erased now, its answer "erased" (the
    request completed once no model holds it) and ``erasure.completed`` with the answer before
    and after. The requests released: none while the model is under a hold (read locked here,
    since a hold may have been set since the caller decided to release)."""
    if RetentionPolicy.objects.select_for_update().filter(model=model, legal_hold=True).exists():
        return []
    held = list(
        ErasureOutcome.objects.select_for_update()
        .filter(model=model, status=ErasureOutcomeStatus.HELD)
        .order_by("request_id")
    )
    released = []
    for outcome in held:
        request = ErasureRequest.objects.select_for_update().get(pk=outcome.request_id)  # its status
        before = {"status": request.status, "results": erasure_results(request.outcomes.select_related("model"))}
        rows = _subject_rows(request.subject_hash, model_id=model.pk).get(model.pk, [])
        outcome.labels = _erase_in_model(
            model.pk, request.subject_hash, rows, _subject_labels(model.pk, request.subject_hash, rows)
        )
        outcome.predictions, outcome.status = len(rows), ErasureOutcomeStatus.ERASED
        outcome.hold_reason, outcome.hold_article = "", ""
        outcome.save(update_fields=["predictions", "labels", "status", "hold_reason", "hold_article"])
        if not request.outcomes.filter(status=ErasureOutcomeStatus.HELD).exists():
            request.status, request.completed_at = ErasureStatus.COMPLETED, clock.now()
            request.save(update_fields=["status", "completed_at"])
        results = erasure_results(request.outcomes.select_related("model"))
        audit_record(
            actor=actor,
            action="erasure.completed",
            context=context,
            obj=request,
            model=model,
            object_repr=f"Erasure request #{request.pk}",
            before=before,
            after={"request": request.pk, "status": request.status, "results": results, "hold_lifted_on": model.name},
        )
        released.append(request)
    return released


__all__ = ["erasure_holds_release", "erasure_request_create", "erasure_results"]
