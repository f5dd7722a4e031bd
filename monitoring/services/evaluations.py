"""Evaluation sets of a version: upload (validated, stored apart as Parquet) and the fairness report.

``evaluation_upload`` parses the body (``ingest_parsing.parse_table``: CSV or Parquet), validates
it (``evaluation_validate``, with ``ingest_validation``'s column checks: one clear error per bad
column, naming its row; nothing stored on error), stores label, prediction, score and the sensitive attributes as
Parquet on a new ``registry.EvaluationRun`` (schema features are checked, not kept) and queues
``evaluation_compute`` after commit. The audit event names the attributes and the digest of the
body, never a value. The worker computes ``monitoring.fairness.fairness_report`` into the run.

Resending is safe, as for prediction batches: a body byte-for-byte one already uploaded for the
version (same kind; for LLM runs, same evaluation set) is answered with the stored run, marked
``duplicate_of`` (its id), and nothing is stored or audited again (``evaluation_stored``).
"""

from __future__ import annotations

import hashlib
import io
import logging
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.db import transaction

from mlops_portal import clock
from mlops_portal.celery import TRANSIENT_ERRORS
from mlops_portal.queue import enqueue_on_commit
from monitoring import fairness
from registry.choices import EvaluationKind, EvaluationStatus, FeatureType, TaskType
from registry.models import EvaluationRun, ModelVersion
from registry.services.audit import WORKER, AuditContext, audit_record
from registry.services.inventory import evidence_check_unchanged

from .ingest_classes import Outcomes
from .ingest_parsing import BatchError, RawBatch, parse_table
from .ingest_validation import categories_column, class_or_value, feature_schema, numbers_column

logger = logging.getLogger(__name__)
ERROR_MAX = 2000

EVALUATION_COLUMNS = ("label", "prediction", "score")


@dataclass
class EvaluationBatch:
    """A validated evaluation set: labels and predictions (class text, or float64 for
    regression), the optional score, and each sensitive attribute's groups (text, None = missing)."""

    fmt: str
    n: int
    label: np.ndarray | list
    prediction: np.ndarray | list
    score: np.ndarray | None
    attributes: dict[str, list]


def evaluation_validate(raw: RawBatch, *, version) -> EvaluationBatch:
    """The evaluation set of a version (fairness evidence): ``label``, ``prediction``, optional
    ``score``, every sensitive attribute of the feature schema, optional schema features (checked
    against their type, not kept). Unknown columns are refused; errors name the column and row."""
    from registry.sensitive import sensitive_attributes

    schema = feature_schema(version)
    sensitive = sensitive_attributes(version.feature_schema)
    if version.task_type not in (TaskType.BINARY, TaskType.REGRESSION):
        raise BatchError(None, "task_type", "Fairness evaluation needs a binary classification or regression task.")
    if not sensitive:
        raise BatchError(None, "feature_schema", 'Declare the sensitive attributes first ("sensitive": true).')
    for required in ("label", "prediction", *sensitive):
        if required not in raw.present:
            raise BatchError(None, required, "Column missing from the evaluation set.")
    unknown = sorted(set(raw.present) - set(EVALUATION_COLUMNS) - set(schema))
    if unknown:
        raise BatchError(None, unknown[0], "Unknown column: not label, prediction, score or a schema feature.")
    columns = {}
    for name in ("label", "prediction"):
        values = raw.column(name)
        if None in values:
            raise BatchError(values.index(None) + 1, name, "Required.")
        columns[name] = class_or_value(values, name, Outcomes(version.task_type), from_text=raw.from_text)
    score = (
        numbers_column(raw.text_column("score"), "score", from_text=raw.from_text) if "score" in raw.present else None
    )
    for name in sorted(set(raw.present) & set(schema) - set(sensitive)):  # features: type-checked only
        if schema[name] == FeatureType.NUMERIC:
            numbers_column(raw.text_column(name), name, from_text=raw.from_text)
        else:
            categories_column(raw.column(name), name)
    attributes = {name: categories_column(raw.column(name), name) for name in sensitive}
    return EvaluationBatch(raw.fmt, raw.n, columns["label"], columns["prediction"], score, attributes)


def _parquet(batch: EvaluationBatch) -> bytes:
    import pyarrow as pa  # imported on use: see registry/llm_stats.py
    import pyarrow.parquet as pq

    columns = {"label": batch.label, "prediction": batch.prediction}
    if batch.score is not None:
        columns["score"] = batch.score
    for name, values in batch.attributes.items():
        columns[f"sensitive:{name}"] = values
    table = pa.table({k: pa.array(v if not isinstance(v, np.ndarray) else v) for k, v in columns.items()})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def evaluation_stored(*, version: ModelVersion, kind: str, digest: str, **match) -> EvaluationRun | None:
    """The run of ``version`` and ``kind`` uploaded from a body of this digest (and ``match``,
    e.g. the evaluation set), its ``duplicate_of`` set to its id; None if there is none. Callers
    hold the version's row lock, so two concurrent resends cannot both miss it."""
    runs = EvaluationRun.objects.filter(version=version, kind=kind, data_sha256=digest, **match).defer("data")
    run = runs.order_by("created_at", "pk").first()
    if run is not None:
        run.duplicate_of = run.pk
    return run


def evaluation_run_save(
    run: EvaluationRun, *, actor, context: AuditContext, details: dict, before: dict | None = None
) -> None:
    """Validate and save an uploaded evaluation run (not its ``data``, the large column its upload
    built) and audit ``evaluation.uploaded`` on its version, in the caller's transaction: the
    run, its rows, format and digest, and ``details``."""
    run.full_clean(exclude=["data"])
    run.save()
    version = run.version
    after = {"evaluation": run.pk, "rows": run.n_rows, "format": run.source_format, "sha256": run.data_sha256} | details
    audit_record(actor=actor, action="evaluation.uploaded", context=context, obj=version, before=before, after=after)


@transaction.atomic
def evaluation_upload(
    *, version: ModelVersion, body: bytes, content_type: str, actor, context: AuditContext
) -> EvaluationRun:
    """Validate and store one evaluation set of ``version``; queue its fairness report. A body
    already uploaded for the version answers the stored run (``duplicate_of``). The latest run is
    the fairness gate's evidence: one a promotion request is pending on or was approved on (a
    failed run is none) cannot be replaced (``evidence_check_unchanged``: a 409 naming it); a first
    upload is always taken."""
    digest = hashlib.sha256(body).hexdigest()
    version = ModelVersion.objects.select_for_update(of=("self",)).select_related("model").get(pk=version.pk)
    if (stored := evaluation_stored(version=version, kind=EvaluationKind.FAIRNESS, digest=digest)) is not None:
        return stored
    runs = EvaluationRun.objects.filter(version=version, kind=EvaluationKind.FAIRNESS)
    evidence = runs.exclude(status=EvaluationStatus.FAILED).exists()
    evidence_check_unchanged(version, changed=["fairness evaluation"] if evidence else [])
    batch = evaluation_validate(parse_table(body, content_type), version=version)
    run = EvaluationRun(
        version=version,
        kind=EvaluationKind.FAIRNESS,
        source_format=batch.fmt,
        n_rows=batch.n,
        attributes=list(batch.attributes),
        data=_parquet(batch),
        data_sha256=digest,
        uploaded_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    evaluation_run_save(
        run, actor=actor, context=context, details={"attributes": run.attributes, "score": batch.score is not None}
    )
    from monitoring import tasks

    enqueue_on_commit(tasks.evaluation_compute, run.pk)
    return run


def _report(run: EvaluationRun) -> dict:
    import pyarrow as pa  # imported on use: see registry/llm_stats.py
    import pyarrow.parquet as pq

    table = pq.read_table(pa.py_buffer(bytes(run.data)))
    attributes = {
        name: np.array(["missing" if v is None else v for v in table.column(f"sensitive:{name}").to_pylist()])
        for name in run.attributes
    }
    task = run.version.task_type
    return fairness.fairness_report(
        task="regression" if task == "regression" else "binary",
        y_true=table.column("label").to_numpy(zero_copy_only=False),
        y_pred=table.column("prediction").to_numpy(zero_copy_only=False),
        attributes=attributes,
        min_group_size=settings.FAIRNESS_MIN_GROUP_SIZE,
        n_boot=settings.FAIRNESS_BOOTSTRAP_SAMPLES if task != "regression" else None,
        seed=run.pk,
        positive=run.version.positive_class,
    )


def evaluation_compute(*, run_id: int, context: AuditContext = WORKER) -> EvaluationRun | None:
    """Compute a pending run's report (idempotent: a run no longer pending is left as it is).
    A set that cannot be evaluated is stored ``failed`` with the reason; transient errors are
    raised for the task to retry."""
    run = EvaluationRun.objects.select_related("version__model").filter(pk=run_id).first()
    if run is None or run.status != EvaluationStatus.PENDING:
        return run
    try:
        results, error = _report(run), ""
    except TRANSIENT_ERRORS:
        raise
    except Exception as exc:  # noqa: BLE001 - a set that cannot be evaluated is recorded, never retried
        logger.exception("Evaluation %s failed", run_id)
        results, error = {}, f"{type(exc).__name__}: {exc}"[:ERROR_MAX]
    return _store(run_id, results, error, context)


@transaction.atomic
def _store(run_id: int, results: dict, error: str, context: AuditContext) -> EvaluationRun | None:
    run = (
        EvaluationRun.objects.select_for_update(of=("self",)).select_related("version__model").filter(pk=run_id).first()
    )
    if run is None or run.status != EvaluationStatus.PENDING:
        return run
    run.status = EvaluationStatus.FAILED if error else EvaluationStatus.DONE
    run.results, run.error, run.computed_at = results, error, clock.now()
    run.save(update_fields=["status", "results", "error", "computed_at"])
    summaries = {name: a["summary"] for name, a in results.get("attributes", {}).items()}
    audit_record(
        actor=None,
        action="evaluation.failed" if error else "evaluation.computed",
        context=context,
        obj=run.version,
        after={"evaluation": run.pk, "error": error[:500]}
        if error
        else {
            "evaluation": run.pk,
            "summaries": {
                name: {k: s.get(k) for k in fairness.CLASSIFICATION_SUMMARIES + fairness.REGRESSION_SUMMARIES if k in s}
                for name, s in summaries.items()
            },
        },
    )
    return run


#: A fresh upload's own message is given this long before the sweep queues it too; the
#: computation is idempotent, so a run queued twice is computed once and then left alone.
PENDING_GRACE = timedelta(minutes=2)


def evaluations_pending(*, now=None, limit: int = 50) -> list[int]:
    """Ids of runs still pending after ``PENDING_GRACE`` (their message was lost or never sent)."""
    now = now or clock.now()
    return list(
        EvaluationRun.objects.filter(status=EvaluationStatus.PENDING, created_at__lt=now - PENDING_GRACE)
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )
