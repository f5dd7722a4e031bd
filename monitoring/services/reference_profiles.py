"""Reference profiles on the database side: computing a stored upload's profile, recording a
failed one with its reason, and the sweep that queues profiles left pending.

The upload (``monitoring.services.ingestion.reference_upload``) stores the data and queues
``profile_compute`` after its commit; if the broker was down then, the beat sweep
``profiles_sweep_pending`` queues it later. The profile itself is built by the pure functions
of ``monitoring.services.profiles``.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.db.models.functions import TruncHour

from mlops_portal import clock
from mlops_portal.celery import TRANSIENT_ERRORS
from mlops_portal.queue import enqueue_on_commit
from monitoring import tasks
from monitoring.choices import ProfileStatus
from monitoring.models import Prediction, ReferenceProfile
from registry.models import ModelVersion
from registry.sensitive import ordinary_features  # sensitive attributes are never profiled
from registry.services.audit import WORKER, AuditContext, audit_record

from . import profiles
from .windows import windows_mark_dirty

logger = logging.getLogger(__name__)

#: A fresh upload's own message is given this long before the sweep queues the profile too.
PENDING_GRACE = timedelta(minutes=1)
#: A profile queued this long ago and still pending is queued again (its message or worker was
#: lost); longer than the task's time limit, so a live computation is not doubled.
PROFILE_REQUEUE_AFTER = timedelta(minutes=20)
SWEEP_BATCH = 100
ERROR_MAX = 2000


def reference_profile_compute(*, profile_id: int, context: AuditContext = WORKER) -> ReferenceProfile | None:
    """Build a pending profile from its stored reference data; set the version's
    ``reference_profile_at``; mark the version's existing windows dirty (their drift can now be
    computed). A profile that cannot be built is stored ``failed`` with the reason; transient
    errors (database, broker) are raised for the task to retry. A profile no longer pending (a
    second message for it) is left as it is."""
    ref = ReferenceProfile.objects.select_related("version__model").filter(pk=profile_id).first()
    if ref is None or ref.status != ProfileStatus.PENDING:
        return ref
    try:
        df = profiles.dataframe_from_parquet(ref.data)
        schema = ordinary_features(ref.version.feature_schema)
        built = profiles.profile_build(df, schema, ref.version.task_type, ref.n_bins, ref.version.positive_class)
        return _profile_store(ref, built, context)
    except TRANSIENT_ERRORS:
        raise
    except Exception as exc:  # noqa: BLE001 - a bad file is recorded on the profile, never retried
        logger.exception("Reference profile %s failed", profile_id)
        return reference_profile_fail(profile_id=profile_id, data_sha256=ref.data_sha256, reason=_reason(exc))


def _reason(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}".replace("\x00", "\\x00")[:ERROR_MAX]


@transaction.atomic
def _profile_store(ref: ReferenceProfile, built: dict, context: AuditContext) -> ReferenceProfile:
    current = ReferenceProfile.objects.select_for_update().get(pk=ref.pk)
    if current.status != ProfileStatus.PENDING or current.data_sha256 != ref.data_sha256:
        return current  # replaced by a newer upload meanwhile: its own computation follows
    version = ref.version
    now = clock.now()
    current.profile = built
    current.status = ProfileStatus.READY
    current.error = ""
    current.computed_at = now
    current.save(update_fields=["profile", "status", "error", "computed_at"])
    ModelVersion.objects.filter(pk=version.pk).update(reference_profile_at=now)
    hours = (
        Prediction.objects.filter(version=version)
        .annotate(h=TruncHour("timestamp"))
        .values_list("h", flat=True)
        .distinct()
    )
    marked = windows_mark_dirty(version_id=version.pk, hours=list(hours), slices=None)  # re-binned whole
    audit_record(
        actor=None,
        action="reference.profiled",
        context=context,
        obj=version,
        after={"rows": current.n_rows, "features": len(built["features"]), "n_bins": current.n_bins},
    )
    if marked:
        enqueue_on_commit(tasks.monitoring_sweep_dirty_windows)
    return current


@transaction.atomic
def reference_profile_fail(
    *, profile_id: int, data_sha256: str, reason: str, context: AuditContext = WORKER
) -> ReferenceProfile | None:
    """Record that the profile of this upload (``data_sha256``) cannot be built, with the
    reason, and audit it (``reference.failed``). A newer upload meanwhile is left alone."""
    ref = (
        ReferenceProfile.objects.select_for_update(of=("self",))
        .select_related("version__model")
        .filter(pk=profile_id)
        .first()
    )
    if ref is None or ref.status != ProfileStatus.PENDING or ref.data_sha256 != data_sha256:
        return ref
    ref.status = ProfileStatus.FAILED
    ref.error = reason
    ref.computed_at = clock.now()
    ref.save(update_fields=["status", "error", "computed_at"])
    audit_record(
        actor=None,
        action="reference.failed",
        context=context,
        obj=ref.version,
        after={"error": reason[:500], "sha256": data_sha256},
    )
    return ref


def profiles_sweep_pending(*, limit: int = SWEEP_BATCH, now=None) -> list[int]:
    """Claim pending profiles for queueing: uploaded more than ``PENDING_GRACE`` ago and never
    queued by the sweep, or queued more than ``PROFILE_REQUEUE_AFTER`` ago. Returns their ids."""
    now = now or clock.now()
    due = Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=now - PROFILE_REQUEUE_AFTER)
    with transaction.atomic():
        ids = list(
            ReferenceProfile.objects.filter(due, status=ProfileStatus.PENDING, uploaded_at__lt=now - PENDING_GRACE)
            .order_by("uploaded_at", "pk")
            .values_list("pk", flat=True)[:limit]
        )
        ReferenceProfile.objects.filter(pk__in=ids).update(enqueued_at=now)
    return ids
