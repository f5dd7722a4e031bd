"""Retention of raw predictions and labels: per-model policies with legal holds, and the nightly
purge that removes expired raw rows and appends a receipt per removal to the audit chain.

* Policy: ``raw_days`` per model, defaulting by risk tier (``RETENTION_DEFAULT_DAYS``); a
  high-risk model never goes below 183 days (EU AI Act Art. 19(1), 26(6)). A legal hold (reason
  and article, e.g. GDPR Art. 17(3)(e)) blocks both purge and erasure.
* Purge (beat, nightly): the cutoff of a model is the start of today (UTC) minus its days.
  On PostgreSQL, a daily partition whose rows have all expired (every model with rows in it is
  past its cutoff and none is held) is detached and dropped; where a shared partition also holds
  rows that must stay, the expired models' rows of that day are deleted by range. On SQLite
  (plain tables) rows are deleted by range. Labels and the sensitive values stored apart at
  ingestion (``PredictionSensitive``), plain tables, are deleted by range, and the digests of
  the days removed go with them.
* Receipt: one ``retention.purged`` audit event per (model, table, range): the time range, the
  rows removed, per version the rows and the additive digest of the removed prediction ids
  (``raw_digests.ids_digest``, kept per day by ingestion, so dropping a day reads no rows),
  and the method. Aggregates (bin counts, metric values, health)
  are not raw data and stay, so every page renders the same figures after a purge. Ingestion
  batch digests (``IngestBatch``) are digests of bodies, not personal data, and stay too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from monitoring.models import DirtyWindow, GroundTruth, Prediction, PredictionSensitive, RetentionPolicy
from monitoring.models_retention import HIGH_RISK_FLOOR_DAYS
from registry.choices import RiskTier
from registry.models import ModelVersion, RegisteredModel
from registry.rules import can_manage_retention
from registry.services.audit import WORKER, AuditContext, audit_record, diff, model_snapshot

from . import partitions, raw_digests

POLICY_FIELDS = ["raw_days", "legal_hold", "legal_hold_reason", "legal_hold_article"]
DAY = timedelta(days=1)


def default_raw_days(model: RegisteredModel) -> int:
    days = settings.RETENTION_DEFAULT_DAYS.get(model.risk_tier, settings.RETENTION_DEFAULT_DAYS["medium"])
    return max(days, HIGH_RISK_FLOOR_DAYS) if model.risk_tier == RiskTier.HIGH else days


def retention_policy_get(*, model: RegisteredModel) -> RetentionPolicy:
    """The saved policy, or an unsaved one with the risk tier's default."""
    return RetentionPolicy.objects.filter(model=model).first() or RetentionPolicy(
        model=model, raw_days=default_raw_days(model)
    )


def effective_raw_days(policy: RetentionPolicy) -> int:
    """The days applied: the policy's, never below the floor if the model became high risk later."""
    if policy.model.risk_tier == RiskTier.HIGH:
        return max(policy.raw_days, HIGH_RISK_FLOOR_DAYS)
    return policy.raw_days


@transaction.atomic
def retention_policy_update(
    *, model: RegisteredModel, actor, context: AuditContext, changes: dict[str, Any]
) -> RetentionPolicy:
    """Set a model's retention or legal hold (admin or privacy officer); audited
    ``retention.changed`` with the before/after of the changed fields."""
    if actor is not None and not can_manage_retention(actor, model):
        raise PermissionDenied("Only an admin or a privacy officer can change retention and legal holds.")
    unknown = sorted(set(changes) - set(POLICY_FIELDS))
    if unknown:
        raise ValidationError({name: "Unknown setting." for name in unknown})
    policy = RetentionPolicy.objects.select_for_update().filter(model=model).first()
    created = policy is None
    if created:
        policy = RetentionPolicy(model=model, raw_days=default_raw_days(model))
    before = model_snapshot(policy, POLICY_FIELDS)
    for name, value in changes.items():
        setattr(policy, name, value)
    if not policy.legal_hold:
        policy.legal_hold_reason, policy.legal_hold_article = "", ""
    policy.updated_by = actor if getattr(actor, "is_authenticated", False) else None
    policy.full_clean()
    policy.save()
    after = model_snapshot(policy, POLICY_FIELDS)
    changed_before, changed_after = (None, after) if created else diff(before, after)
    if created or changed_after:
        audit_record(
            actor=actor,
            action="retention.changed",
            context=context,
            obj=policy,
            model=model,
            before=changed_before,
            after=changed_after,
        )
    return policy


# --------------------------------------------------------------------------- purge


@dataclass(frozen=True)
class Plan:
    model: RegisteredModel
    raw_days: int
    cutoff: datetime | None  # None: under a legal hold


def purge_plans(*, now: datetime) -> dict[int, Plan]:
    today = partitions.day_floor(now)
    saved = {p.model_id: p for p in RetentionPolicy.objects.select_related("model")}
    plans = {}
    for model in RegisteredModel.objects.all():
        policy = saved.get(model.pk) or RetentionPolicy(model=model, raw_days=default_raw_days(model))
        policy.model = model
        days = effective_raw_days(policy)
        plans[model.pk] = Plan(model, days, None if policy.legal_hold else today - days * DAY)
    return plans


def _receipt(plan: Plan, *, table: str, start, end, method: str, by_version: dict[int, tuple[int, str]]) -> dict:
    rows = sum(n for n, _ in by_version.values())
    after = {
        "table": table,
        "from": start.isoformat() if start else None,
        "to": end.isoformat(),
        "rows": rows,
        "method": method,
        "raw_days": plan.raw_days,
        "ids_sha256": {str(k): {"rows": n, "sha256": d} for k, (n, d) in sorted(by_version.items())},
    }
    audit_record(
        actor=None,
        action="retention.purged",
        context=WORKER,
        obj=plan.model,
        object_repr=f"{table} of {plan.model.name} before {end:%Y-%m-%d}",
        after=after,
    )
    return {"model": plan.model.name, **after}


def _finish_detached(table: str, name: str, plans: dict[int, Plan], version_model: dict[int, int]) -> list[dict]:
    """Receipts for a detached partition, then DROP, in one transaction; re-attached instead if
    rows of a model under a legal hold (or not yet expired) turned up."""
    start = datetime.combine(partitions.day_of(name), datetime.min.time(), tzinfo=UTC)
    end = start + DAY
    with transaction.atomic():
        versions = partitions.partition_versions(table, name)
        models = {version_model.get(v) for v in versions}
        if any(m is not None and (plans[m].cutoff is None or end > plans[m].cutoff) for m in models):
            partitions.partition_attach(table=table, name=name)
            return []
        by_version = raw_digests.digests_take(version_ids=versions, day=start.date())
        if set(by_version) != set(versions):  # days stored before digests were kept: read the ids
            by_version = partitions.partition_receipts(table, name)
        by_model: dict[int, dict[int, tuple[int, str]]] = {}
        for version_id, receipt in by_version.items():
            by_model.setdefault(version_model.get(version_id), {})[version_id] = receipt
        receipts = [
            _receipt(plans[m], table=table, start=start, end=end, method="partition_drop", by_version=grouped)
            for m, grouped in by_model.items()
            if m is not None
        ]
        partitions.table_drop(name)
    return receipts


def _purge_partitions(table: str, plans: dict[int, Plan], today: datetime) -> list[dict]:
    version_model = dict(ModelVersion.objects.values_list("pk", "model_id"))
    receipts = []
    for name in partitions.detached_partitions(table):
        receipts += _finish_detached(table, name, plans, version_model)
    oldest_kept = today - max((p.raw_days for p in plans.values()), default=settings.INGEST_MAX_AGE_DAYS) * DAY
    for day, name in sorted(partitions.partition_days(table).items()):
        if day >= today.date():
            break
        start = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
        end = start + DAY
        if end > today:
            break
        models = {version_model.get(v) for v in partitions.partition_versions(table, name)}
        expired = {m for m in models if m is not None and plans[m].cutoff is not None and end <= plans[m].cutoff}
        if not models and end > oldest_kept:
            continue  # empty, but some model may still receive rows for this day
        if expired == models:
            partitions.partition_detach(table=table, name=name)
            receipts += _finish_detached(table, name, plans, version_model)
            continue
        for model_id in sorted(expired):  # a shared day: delete only the expired models' rows
            with transaction.atomic():
                rows = Prediction.objects.filter(version__model_id=model_id, timestamp__gte=start, timestamp__lt=end)
                by_version = partitions.delete_range(queryset=rows, version_field="version_id")
                raw_digests.digests_take(version_ids=by_version, day=day)
                if by_version:
                    receipts.append(
                        _receipt(
                            plans[model_id],
                            table=table,
                            start=start,
                            end=end,
                            method="range_delete",
                            by_version=by_version,
                        )
                    )
    return receipts


def _range_receipt(plan: Plan, queryset, *, version_field: str) -> list[dict]:
    """Delete a model's expired rows of one plain table → its receipt (none if nothing went)."""
    by_owner = partitions.delete_range(queryset=queryset, version_field=version_field)
    if not by_owner:
        return []
    table = queryset.model._meta.db_table
    return [_receipt(plan, table=table, start=None, end=plan.cutoff, method="range_delete", by_version=by_owner)]


def _purge_ranges(plan: Plan, *, partitioned: bool) -> list[dict]:
    """The model's expired rows of the plain tables (and of predictions on SQLite): predictions,
    their sensitive values, labels; then the digests of the days gone."""
    model, cutoff = plan.model, plan.cutoff
    receipts = []
    with transaction.atomic():
        if not partitioned:
            rows = Prediction.objects.filter(version__model=model, timestamp__lt=cutoff)
            receipts += _range_receipt(plan, rows, version_field="version_id")
        sensitive = PredictionSensitive.objects.filter(version__model=model, timestamp__lt=cutoff)
        receipts += _range_receipt(plan, sensitive, version_field="version_id")
        labels = GroundTruth.objects.filter(model=model, received_at__lt=cutoff)
        receipts += _range_receipt(plan, labels, version_field="model_id")
        # every digest of a day before the cutoff, also of days whose rows erasure took earlier
        raw_digests.digests_forget(model_id=model.pk, before=cutoff.date())
        # a window wholly before the cutoff has no raw rows left: recomputing it would replace
        # its aggregates by empty ones, so its pending mark goes too
        DirtyWindow.objects.filter(version__model=model, window_start__lt=cutoff - DAY).delete()
    return receipts


def retention_purge(*, now: datetime | None = None) -> list[dict]:
    """Remove every model's expired raw rows (not those of models under a legal hold) → the
    receipts written. Idempotent: a second run the same day finds nothing to remove."""
    now = now or timezone.now()
    today = partitions.day_floor(now)
    plans = purge_plans(now=now)
    table = Prediction._meta.db_table
    partitioned = partitions.is_partitioned(table)
    receipts = _purge_partitions(table, plans, today) if partitioned else []
    for plan in plans.values():
        if plan.cutoff is not None:
            receipts += _purge_ranges(plan, partitioned=partitioned)
    return receipts


def partitions_create_ahead(*, now: datetime | None = None) -> list[str]:
    """Create the coming days' partitions (beat, hourly) → the names created."""
    today = partitions.day_floor(now or timezone.now()).date()
    return partitions.partitions_create_ahead(days_ahead=settings.PARTITIONS_AHEAD_DAYS, today=today)


__all__ = [
    "default_raw_days",
    "effective_raw_days",
    "partitions_create_ahead",
    "purge_plans",
    "retention_policy_get",
    "retention_policy_update",
    "retention_purge",
]
