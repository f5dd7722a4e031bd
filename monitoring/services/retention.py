"""Retention of raw predictions, labels and LLM request records: per-model policies with legal
holds, and the nightly purge that removes expired raw rows and appends a receipt per removal to
the audit chain.

* Policy: ``raw_days`` per model; NULL (also a policy saved with only a hold or Art. 30
  entries) follows the risk tier's default (``RETENTION_DEFAULT_DAYS``) as it stands; a
  high-risk model never goes below 183 days (EU AI Act Art. 19(1), 26(6)). A legal hold (reason
  and article, e.g. GDPR Art. 17(3)(e)) blocks both purge and erasure. An LLM application is a
  model: the same policy and hold apply to its request records.
* Purge (beat, nightly): the cutoff of a model is the start of today (UTC) minus its days.
  On PostgreSQL, predictions (by ``timestamp``) and labels (by ``received_at``) are partitioned
  by day: a daily partition whose rows have all expired (every model with rows in it is past its
  cutoff and none is held) is detached and dropped; its day is recorded in the same
  transaction, and its predictions' keys (``monitoring_predictionkey``) are deleted after it,
  in batches, by the keys sweep (``monitoring.services.prediction_keys``). Where a shared
  partition also holds rows that must stay, the expired models' rows of that day are deleted by
  range. On SQLite (plain
  tables) rows are deleted by range. The sensitive values stored apart at ingestion
  (``PredictionSensitive``), a plain table, are deleted by range, and the digests of the days
  removed go with them. LLM request records (a plain table on both databases: their unique
  (version, request id) constraint is what makes a resent batch store nothing twice) are
  deleted by range, a day per transaction, in batches.
* Receipt: one ``retention.purged`` audit event per (model, table, range): the time range, the
  rows removed, per version (per model for labels) the rows and the additive digest of the
  removed prediction (or request) ids (``raw_digests.ids_digest``; for predictions kept per day
  by ingestion, so dropping a day reads no rows; a dropped label partition is read for its ids),
  and the method. Aggregates (bin counts, metric values, health, LLM windows, cost records)
  are not raw data and stay, so every page renders the same figures after a purge. Ingestion
  batch digests (``IngestBatch``) are digests of bodies, not personal data, and stay too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Min

from mlops_portal import clock
from monitoring.models import (
    DirtyWindow,
    ErasureOutcome,
    ErasureOutcomeStatus,
    GroundTruth,
    LLMRequest,
    Prediction,
    PredictionSensitive,
    RetentionPolicy,
)
from monitoring.models_retention import ART30_FIELDS, HIGH_RISK_FLOOR_DAYS
from registry.choices import RiskTier
from registry.models import ModelVersion, RegisteredModel
from registry.rules import can_manage_retention
from registry.services.audit import WORKER, AuditContext, audit_record, model_snapshot

from . import partitions, raw_digests
from .erasure import erasure_holds_release
from .model_settings import settings_record, settings_row_for_update
from .prediction_keys import prediction_keys_schedule, prediction_keys_sweep_queue

POLICY_FIELDS = ["raw_days", "legal_hold", "legal_hold_reason", "legal_hold_article", *ART30_FIELDS]
DAY = timedelta(days=1)
LLM_PURGE_BATCH = 5000  # request records deleted per statement
PURGE_MODELS_CHUNK = 1000  # models whose plain-table rows are deleted by one statement


def tier_raw_days(risk_tier: str, days: int | None = None) -> int:
    """The days applied to a model of this risk tier: its policy's ``days`` (None: the tier's
    default), never below the floor for a high-risk model (it may have become one later)."""
    if days is None:
        days = settings.RETENTION_DEFAULT_DAYS.get(risk_tier, settings.RETENTION_DEFAULT_DAYS["medium"])
    return max(days, HIGH_RISK_FLOOR_DAYS) if risk_tier == RiskTier.HIGH else days


def default_raw_days(model: RegisteredModel) -> int:
    return tier_raw_days(model.risk_tier)


RAW_DAYS_POLICY = "policy"
RAW_DAYS_TIER_DEFAULT = "tier default"


def retention_policy_get(*, model: RegisteredModel) -> RetentionPolicy:
    """The saved policy, or an unsaved one following the risk tier's default (``raw_days`` None)."""
    saved = RetentionPolicy.objects.filter(model=model).first()
    return saved or RetentionPolicy(model=model, raw_days=None)  # updated_at None: never set


def policy_raw_days(policy: RetentionPolicy) -> int:
    """The policy's days: its own, or the risk tier's default when it has none."""
    return default_raw_days(policy.model) if policy.raw_days is None else policy.raw_days


def raw_days_source(policy: RetentionPolicy) -> str:
    """Where the days come from: ``"policy"`` (chosen) or ``"tier default"`` (none stored)."""
    return RAW_DAYS_TIER_DEFAULT if policy.raw_days is None else RAW_DAYS_POLICY


def effective_raw_days(policy: RetentionPolicy) -> int:
    """The days applied: the policy's (or the tier's default), never below the floor if the
    model became high risk later."""
    return tier_raw_days(policy.model.risk_tier, policy.raw_days)


@transaction.atomic
def retention_policy_update(
    *, model: RegisteredModel, actor, context: AuditContext, changes: dict[str, Any]
) -> RetentionPolicy:
    """Set a model's retention, legal hold or Art. 30 entries (admin or privacy officer); audited
    ``retention.changed`` with the before/after of the changed fields. ``raw_days`` None (or
    left out of a new policy's changes) follows the risk tier's default. Lifting a hold carries
    out the erasures it held, as does any change of a model left without a hold while some are
    still held (``erasure_holds_release``, audited after the change)."""
    if actor is not None and not can_manage_retention(actor, model):
        raise PermissionDenied("Only an admin or a privacy officer can change retention and legal holds.")
    policy, created = settings_row_for_update(
        RetentionPolicy, model=model, changes=changes, fields=POLICY_FIELDS, raw_days=None
    )
    before = None if created else model_snapshot(policy, POLICY_FIELDS)
    for name, value in changes.items():
        setattr(policy, name, value)
    if not policy.legal_hold:
        policy.legal_hold_reason, policy.legal_hold_article = "", ""
    policy.updated_by = actor if getattr(actor, "is_authenticated", False) else None
    policy.full_clean()
    policy.save()
    settings_record(policy, before, POLICY_FIELDS, action="retention.changed", actor=actor, context=context)
    if not policy.legal_hold:  # no hold: nothing keeps rows held for erasure (none held: a no-op)
        erasure_holds_release(model=model, actor=actor, context=context)
    return policy


# --------------------------------------------------------------------------- purge


@dataclass(frozen=True)
class Plan:
    model_id: int
    name: str
    raw_days: int
    cutoff: datetime | None  # None: under a legal hold


def purge_plans(*, now: datetime) -> dict[int, Plan]:
    """Per model id: its plan, read as plain values (no model instances: an inventory of
    10,000 models took 0.77 s of the purge as instances)."""
    today = partitions.day_floor(now)
    saved = {
        model_id: (days, hold)
        for model_id, days, hold in RetentionPolicy.objects.values_list("model_id", "raw_days", "legal_hold")
    }
    plans = {}
    for pk, name, tier in RegisteredModel.objects.values_list("pk", "name", "risk_tier"):
        days, hold = saved.get(pk, (None, False))
        days = tier_raw_days(tier, days)  # None (no policy, or one without days): the tier's default
        plans[pk] = Plan(pk, name, days, None if hold else today - days * DAY)
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
        obj=RegisteredModel.objects.get(pk=plan.model_id),
        object_repr=f"{RECEIPT_WORDS.get(table, table)} of {plan.name} before {end:%Y-%m-%d}",
        after=after,
    )
    return {"model": plan.name, **after}


PREDICTIONS = Prediction._meta.db_table
LABELS = GroundTruth._meta.db_table
SENSITIVE = PredictionSensitive._meta.db_table


@dataclass(frozen=True)
class RawTable:
    """How the purge reaches one raw table's rows through the ORM."""

    model: type
    model_field: str  # the lookup of a row's registered model
    time_field: str  # the time retention counts a row's age from (the partition key)
    owner_field: str  # the id receipts group rows by (a version, or the model for labels)
    id_field: str  # the id digested in receipts


RAW_TABLES = {
    PREDICTIONS: RawTable(Prediction, "version__model_id", "timestamp", "version_id", "prediction_id"),
    LABELS: RawTable(GroundTruth, "model_id", "received_at", "model_id", "prediction_id"),
}
LLM_REQUESTS = RawTable(LLMRequest, "version__model_id", "timestamp", "version_id", "request_id")
# what a receipt removed, in the audit log's words (its ``table`` keeps the table's name)
RECEIPT_WORDS = {
    PREDICTIONS: "predictions",
    LABELS: "labels",
    SENSITIVE: "sensitive attribute values",
    LLMRequest._meta.db_table: "LLM request records",
}


def _partition_ids(table: str, name: str, owners: list[int], day) -> dict[int, tuple[int, str]]:
    """Per owner: (rows, digest) of a partition about to be dropped: predictions' from the
    digests kept by ingestion; labels' (and days stored before digests were kept) by reading
    the partition's ids."""
    if table == PREDICTIONS:
        by_owner = raw_digests.digests_take(version_ids=owners, day=day)
        if set(by_owner) == set(owners):
            return by_owner
    return partitions.partition_receipts(table, name)


def _model_receipts(
    plans: dict[int, Plan], by_owner: dict[int, tuple[int, str]], model_of: dict[int, int], **receipt
) -> list[dict]:
    """One receipt per model of the rows removed (``by_owner``: per version, or per model for
    labels; ``model_of``: owner id → model id; an owner of no known model gets none)."""
    by_model: dict[int, dict[int, tuple[int, str]]] = {}
    for owner, removed in by_owner.items():
        if (model_id := model_of.get(owner)) is not None:
            by_model.setdefault(model_id, {})[owner] = removed
    return [_receipt(plans[m], by_version=grouped, **receipt) for m, grouped in sorted(by_model.items())]


def _finish_detached(table: str, name: str, plans: dict[int, Plan], owner_model: dict[int, int]) -> list[dict]:
    """Receipts for a detached partition, then DROP, in one transaction; re-attached instead if
    rows of a model under a legal hold (or not yet expired) turned up."""
    start = datetime.combine(partitions.day_of(name), datetime.min.time(), tzinfo=UTC)
    end = start + DAY
    with transaction.atomic():
        owners = partitions.partition_versions(table, name)
        models = {owner_model.get(v) for v in owners}
        if any(m is not None and (plans[m].cutoff is None or end > plans[m].cutoff) for m in models):
            partitions.partition_attach(table=table, name=name)
            return []
        by_owner = _partition_ids(table, name, owners, start.date())
        receipts = _model_receipts(
            plans, by_owner, owner_model, table=table, start=start, end=end, method="partition_drop"
        )
        if table == PREDICTIONS:  # a DROP fires no trigger: the day's keys are swept after the purge
            prediction_keys_schedule(day=start.date())
        partitions.table_drop(name)
    return receipts


def _delete_shared_day(table: str, plan: Plan, start: datetime, end: datetime) -> list[dict]:
    """A shared partition: delete one expired model's rows of the day by range."""
    raw = RAW_TABLES[table]
    with transaction.atomic():
        rows = raw.model.objects.filter(
            **{raw.model_field: plan.model_id, f"{raw.time_field}__gte": start, f"{raw.time_field}__lt": end}
        )
        by_owner = partitions.delete_range(queryset=rows, version_field=raw.owner_field, id_field=raw.id_field)
        if table == PREDICTIONS:
            raw_digests.digests_take(version_ids=by_owner, day=start.date())
        if not by_owner:
            return []
        return [_receipt(plan, table=table, start=start, end=end, method="range_delete", by_version=by_owner)]


def _purge_partitions(table: str, plans: dict[int, Plan], today: datetime, owner_model: dict[int, int]) -> list[dict]:
    receipts = []
    for name in partitions.detached_partitions(table):
        receipts += _finish_detached(table, name, plans, owner_model)
    oldest_kept = today - max((p.raw_days for p in plans.values()), default=settings.INGEST_MAX_AGE_DAYS) * DAY
    for day, name in sorted(partitions.partition_days(table).items()):
        start = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
        end = start + DAY
        if end > today:
            break
        models = {owner_model.get(v) for v in partitions.partition_versions(table, name)}
        expired = {m for m in models if m is not None and plans[m].cutoff is not None and end <= plans[m].cutoff}
        if not models and end > oldest_kept:
            continue  # empty, but some model may still receive rows for this day
        if expired == models:
            partitions.partition_detach(table=table, name=name)
            receipts += _finish_detached(table, name, plans, owner_model)
            continue
        for model_id in sorted(expired):  # a shared day: delete only the expired models' rows
            receipts += _delete_shared_day(table, plans[model_id], start, end)
    return receipts


def _model_chunks(plans: dict[int, Plan]):
    """The models to purge, grouped by cutoff (few: the policies' distinct days), in chunks of
    ``PURGE_MODELS_CHUNK`` → (cutoff, {model id: plan}): the range deletes run a few statements
    per chunk, not per model, so models with nothing to remove cost nothing."""
    by_cutoff: dict[datetime, list[Plan]] = {}
    for plan in plans.values():
        if plan.cutoff is not None:
            by_cutoff.setdefault(plan.cutoff, []).append(plan)
    for cutoff, group in sorted(by_cutoff.items()):
        for i in range(0, len(group), PURGE_MODELS_CHUNK):
            yield cutoff, {p.model_id: p for p in group[i : i + PURGE_MODELS_CHUNK]}


def _purge_ranges(plans: dict[int, Plan], cutoff: datetime, *, partitioned: set[str], model_of: dict) -> list[dict]:
    """The models' expired rows of the plain tables (predictions and labels where they are not
    partitioned: SQLite), the sensitive values of predictions; then the digests of the days gone.
    ``model_of``: per raw table's owner field, owner id → model id."""
    ids, receipts = list(plans), []
    with transaction.atomic():
        tables = [(t, raw, raw.model.objects) for t, raw in RAW_TABLES.items() if t not in partitioned]
        tables.append((SENSITIVE, RAW_TABLES[PREDICTIONS], PredictionSensitive.objects))
        for table, raw, manager in tables:
            rows = manager.filter(**{f"{raw.model_field}__in": ids, f"{raw.time_field}__lt": cutoff})
            by_owner = partitions.delete_range(queryset=rows, version_field=raw.owner_field, id_field=raw.id_field)
            receipts += _model_receipts(
                plans, by_owner, model_of[raw.owner_field], table=table, start=None, end=cutoff, method="range_delete"
            )
        # every digest of a day before the cutoff, also of days whose rows erasure took earlier
        raw_digests.digests_forget(model_ids=ids, before=cutoff.date())
        # a window wholly before the cutoff has no raw rows left: recomputing it would replace
        # its aggregates by empty ones, so its pending mark goes too
        DirtyWindow.objects.filter(version__model__in=ids, window_start__lt=cutoff - DAY).delete()
    return receipts


def _purge_llm_requests(plans: dict[int, Plan], cutoff: datetime, *, model_of: dict[int, int]) -> list[dict]:
    """LLM applications' expired request records, by range on both databases: one transaction
    per UTC day with rows and one receipt per model and day, the day's rows deleted in batches
    (``LLM_PURGE_BATCH`` rows per statement). Days are found by their oldest row, so empty
    days cost nothing. Aggregates (LLM windows, daily cost records) stay."""
    raw, receipts = LLM_REQUESTS, []
    expired = LLMRequest.objects.filter(version__model__in=list(plans), timestamp__lt=cutoff)
    while (oldest := expired.order_by().aggregate(t=Min("timestamp"))["t"]) is not None:
        start = partitions.day_floor(oldest)
        end = min(start + DAY, cutoff)
        with transaction.atomic():
            rows = expired.filter(timestamp__gte=start, timestamp__lt=end)
            by_version = partitions.delete_batches(
                queryset=rows, version_field=raw.owner_field, id_field=raw.id_field, batch=LLM_PURGE_BATCH
            )
            table = LLMRequest._meta.db_table
            receipts += _model_receipts(
                plans, by_version, model_of, table=table, start=start, end=end, method="range_delete"
            )
    return receipts


def _finish_held_erasures(plans: dict[int, Plan]) -> None:
    """Carry out the erasures still held on models that hold nothing now (a hold lifted outside
    ``retention_policy_update``, or before lifting one carried them out), as the worker."""
    held = ErasureOutcome.objects.filter(status=ErasureOutcomeStatus.HELD).values_list("model_id", flat=True)
    for model in RegisteredModel.objects.filter(pk__in=held.distinct()).order_by("pk"):
        if plans[model.pk].cutoff is not None:  # no legal hold
            erasure_holds_release(model=model, actor=None, context=WORKER)


def retention_purge(*, now: datetime | None = None) -> list[dict]:
    """Remove every model's expired raw rows (not those of models under a legal hold) → the
    receipts written; first carry out erasures held on models no longer under a hold.
    Idempotent: a second run the same day finds nothing to remove."""
    now = now or clock.now()
    today = partitions.day_floor(now)
    plans = purge_plans(now=now)
    _finish_held_erasures(plans)
    partitioned = {table for table in RAW_TABLES if partitions.is_partitioned(table)}
    # owner id → model id, per raw table's owner field (``RawTable.owner_field``), read once
    version_model = dict(ModelVersion.objects.values_list("pk", "model_id"))
    model_of = {"version_id": version_model, "model_id": {pk: pk for pk in plans}}
    receipts = []
    for table, raw in RAW_TABLES.items():
        if table in partitioned:
            receipts += _purge_partitions(table, plans, today, model_of[raw.owner_field])
    if PREDICTIONS in partitioned:
        prediction_keys_sweep_queue()  # one sweep for every day dropped
    for cutoff, chunk in _model_chunks(plans):
        receipts += _purge_ranges(chunk, cutoff, partitioned=partitioned, model_of=model_of)
        receipts += _purge_llm_requests(chunk, cutoff, model_of=version_model)  # LLM applications' only
    return receipts


def partitions_create_ahead(*, now: datetime | None = None) -> list[str]:
    """Create the coming days' partitions (beat, hourly) → the names created."""
    today = partitions.day_floor(now or clock.now()).date()
    return partitions.partitions_create_ahead(days_ahead=settings.PARTITIONS_AHEAD_DAYS, today=today)


__all__ = [
    "RAW_DAYS_POLICY",
    "RAW_DAYS_TIER_DEFAULT",
    "default_raw_days",
    "effective_raw_days",
    "policy_raw_days",
    "raw_days_source",
    "partitions_create_ahead",
    "purge_plans",
    "retention_policy_get",
    "retention_policy_update",
    "retention_purge",
    "tier_raw_days",
]
