"""Retention: per-model policies with a high-risk floor and legal holds; the purge drops
expired daily partitions on PostgreSQL (deletes ranges on SQLite and in shared partitions),
leaves a verifiable receipt in the audit chain, and keeps the aggregates."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError

from mlops_portal import clock
from monitoring.models import GroundTruth, MetricValue, Prediction, PredictionSensitive, RawDigest, RetentionPolicy
from monitoring.services import partitions
from monitoring.services.ingestion import predictions_ingest
from monitoring.services.raw_digests import MOD, ids_digest
from monitoring.services.retention import (
    effective_raw_days,
    retention_policy_get,
    retention_policy_update,
    retention_purge,
)
from registry.choices import RiskTier
from registry.models import AuditEvent
from registry.services.audit import CLI, audit_export_rows, audit_verify
from tests.factories import FEATURE_SCHEMA, ModelVersionFactory, RegisteredModelFactory
from tests.monitoring.helpers import T0, as_json, ingest_labels, prediction_records

pytestmark = pytest.mark.django_db
TABLE = "monitoring_prediction"
DAY = timedelta(days=1)
SENSITIVE_TABLE = "monitoring_predictionsensitive"
SENSITIVE_SCHEMA = [*FEATURE_SCHEMA, {"name": "sex", "type": "categorical", "sensitive": True, "use": "monitoring"}]


def _ingest(version, records, actor):
    body = as_json(records)
    return predictions_ingest(version=version, body=body, content_type="application/json", actor=actor, context=CLI)


def _set(model, actor, **changes):
    return retention_policy_update(model=model, actor=actor, context=CLI, changes=changes)


def _receipts(since: int = 0):
    return [e.after for e in AuditEvent.objects.filter(action="retention.purged", seq__gt=since).order_by("seq")]


def test_default_retention_follows_the_risk_tier(churn, settings):
    assert retention_policy_get(model=churn).raw_days is None  # no days of its own: the tier's default
    assert effective_raw_days(retention_policy_get(model=churn)) == settings.RETENTION_DEFAULT_DAYS["medium"]
    high = RegisteredModelFactory(name="credit", risk_tier=RiskTier.HIGH)
    assert effective_raw_days(retention_policy_get(model=high)) >= 183


def test_a_high_risk_model_cannot_go_below_the_floor_and_nothing_changes(admin_user, last_seq):
    high = RegisteredModelFactory(name="credit", risk_tier=RiskTier.HIGH)
    seq = last_seq()
    with pytest.raises(ValidationError) as caught:
        _set(high, admin_user, raw_days=100)
    assert "183" in str(caught.value.message_dict["raw_days"])
    assert not RetentionPolicy.objects.filter(model=high).exists() and last_seq() == seq
    assert _set(high, admin_user, raw_days=183).raw_days == 183


def test_a_legal_hold_needs_a_reason_and_an_article(churn, admin_user):
    with pytest.raises(ValidationError) as caught:
        _set(churn, admin_user, legal_hold=True)
    assert {"legal_hold_reason", "legal_hold_article"} <= set(caught.value.message_dict)
    policy = _set(
        churn,
        admin_user,
        legal_hold=True,
        legal_hold_reason="Litigation 2026-17",
        legal_hold_article="GDPR Art. 17(3)(e)",
    )
    assert policy.legal_hold


def test_purge_removes_only_expired_days_across_the_day_boundary_with_a_receipt(
    churn, churn_v1, owner, admin_user, audit_actions, last_seq
):
    # rows from 22:00 on day 0 to 02:00 on day 1: the boundary splits them
    records = prediction_records(40, start=T0 + timedelta(hours=22), spread_hours=4)
    _ingest(churn_v1, records, owner)
    expired_ids = sorted(r["prediction_id"] for r in records if r["timestamp"] < (T0 + DAY).isoformat())
    kept = len(records) - len(expired_ids)
    assert expired_ids and kept
    _set(churn, admin_user, raw_days=30)
    seq = last_seq()
    receipts = retention_purge(now=T0 + 31 * DAY + timedelta(hours=3))  # cutoff: start of day 1
    assert Prediction.objects.filter(version=churn_v1).count() == kept
    assert not Prediction.objects.filter(timestamp__lt=T0 + DAY).exists()
    (receipt,) = [r for r in _receipts(seq) if r["table"] == TABLE]
    assert receipt["rows"] == len(expired_ids) and receipt["to"] == (T0 + DAY).isoformat()
    assert receipt["ids_sha256"] == {str(churn_v1.pk): {"rows": len(expired_ids), "sha256": ids_digest(expired_ids)}}
    assert receipts and audit_actions(seq) == ["retention.purged"]
    if partitions.is_partitioned(TABLE):
        assert receipt["method"] == "partition_drop"
        assert T0.date() not in partitions.partition_days(TABLE) and (T0 + DAY).date() in partitions.partition_days(
            TABLE
        )
    assert audit_verify().ok
    assert retention_purge(now=T0 + 31 * DAY + timedelta(hours=4)) == []  # idempotent


def test_a_shared_day_keeps_the_rows_of_a_model_that_has_not_expired(churn, churn_v1, owner, admin_user, last_seq):
    other = ModelVersionFactory(model=RegisteredModelFactory(name="fraud", owner=owner, team=churn.team))
    _ingest(churn_v1, prediction_records(10, start=T0), owner)
    _ingest(other, prediction_records(7, start=T0), owner)
    _set(churn, admin_user, raw_days=30)
    _set(other.model, admin_user, raw_days=400)
    seq = last_seq()
    retention_purge(now=T0 + 31 * DAY)
    assert not Prediction.objects.filter(version=churn_v1).exists()
    assert Prediction.objects.filter(version=other).count() == 7
    (receipt,) = _receipts(seq)
    assert receipt["rows"] == 10 and receipt["method"] == "range_delete"
    if partitions.is_partitioned(TABLE):
        assert T0.date() in partitions.partition_days(TABLE)


def test_a_legal_hold_blocks_the_purge(churn, churn_v1, owner, admin_user, last_seq):
    _ingest(churn_v1, prediction_records(10, start=T0), owner)
    _set(
        churn,
        admin_user,
        raw_days=30,
        legal_hold=True,
        legal_hold_reason="Claim",
        legal_hold_article="GDPR Art. 17(3)(e)",
    )
    seq = last_seq()
    assert retention_purge(now=T0 + 90 * DAY) == []
    assert Prediction.objects.filter(version=churn_v1).count() == 10 and _receipts(seq) == []
    _set(churn, admin_user, legal_hold=False)
    retention_purge(now=T0 + 90 * DAY)
    assert not Prediction.objects.filter(version=churn_v1).exists()


def _expired_predictions_and_labels(churn, churn_v1, owner, admin_user):
    """Five predictions and their labels, received at T0; the model's raw data kept 30 days."""
    _ingest(churn_v1, prediction_records(5, start=T0), owner)
    ingest_labels(churn, [{"prediction_id": f"p{i}", "label": 1} for i in range(5)], owner)
    GroundTruth.objects.update(received_at=T0)
    _set(churn, admin_user, raw_days=30)


def test_expired_labels_are_purged_by_range_with_a_receipt(churn, churn_v1, owner, admin_user, last_seq):
    _expired_predictions_and_labels(churn, churn_v1, owner, admin_user)
    seq = last_seq()
    retention_purge(now=T0 + 40 * DAY)
    assert not GroundTruth.objects.exists()
    tables = {r["table"]: r for r in _receipts(seq)}
    assert tables["monitoring_groundtruth"]["rows"] == 5


def test_aggregates_stay_after_a_purge(churn, churn_v1, owner, admin_user):
    _ingest(churn_v1, prediction_records(10, start=T0), owner)
    MetricValue.objects.create(
        model=churn,
        version=churn_v1,
        granularity="daily",
        window_start=T0,
        window_end=T0 + DAY,
        metric="volume",
        value=10,
        computed_at=T0 + DAY,
    )
    _set(churn, admin_user, raw_days=30)
    retention_purge(now=T0 + 40 * DAY)
    assert not Prediction.objects.exists()
    assert MetricValue.objects.get(metric="volume").value == 10


def test_the_purge_receipt_verifies_in_an_offline_export(churn, churn_v1, owner, admin_user, tmp_path):
    _ingest(churn_v1, prediction_records(10, start=T0), owner)
    _set(churn, admin_user, raw_days=30)
    retention_purge(now=T0 + 40 * DAY)
    path = tmp_path / "audit.jsonl"
    path.write_text("".join(audit_export_rows(fmt="jsonl")))
    assert "retention.purged" in path.read_text()
    result = subprocess.run([sys.executable, "-m", "registry.verify_export", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def _with_sex(records):
    for i, record in enumerate(records):
        record["features"]["sex"] = "F" if i % 2 else "M"
    return records


def test_purge_removes_expired_sensitive_values_and_digests_with_a_receipt(churn, owner, admin_user):
    """Sensitive values are raw per-prediction data too: they go with their expired days, on a
    dropped day (churn alone on day 0) and on a shared one (day 1, where fraud keeps its rows)."""
    mine = ModelVersionFactory(model=churn, feature_schema=SENSITIVE_SCHEMA)
    fraud = RegisteredModelFactory(name="fraud", owner=owner, team=churn.team)
    other = ModelVersionFactory(model=fraud, feature_schema=SENSITIVE_SCHEMA)
    day0 = _with_sex(prediction_records(10, start=T0))
    day1 = _with_sex(prediction_records(4, start=T0 + DAY, prefix="d"))
    _ingest(mine, day0, owner)
    _ingest(mine, day1, owner)
    _ingest(mine, _with_sex(prediction_records(3, start=T0 + 2 * DAY, prefix="k")), owner)
    _ingest(other, _with_sex(prediction_records(6, start=T0 + DAY)), owner)
    assert PredictionSensitive.objects.count() == 23
    _set(churn, admin_user, raw_days=30)
    _set(fraud, admin_user, raw_days=400)
    receipts = retention_purge(now=T0 + 32 * DAY)  # churn's cutoff: the start of day 2
    kept = PredictionSensitive.objects.filter(version=mine)
    assert sorted(kept.values_list("prediction_id", flat=True)) == ["k0", "k1", "k2"]
    assert PredictionSensitive.objects.filter(version=other).count() == 6
    assert not PredictionSensitive.objects.filter(timestamp__lt=T0 + 2 * DAY, version__model=churn).exists()
    assert set(RawDigest.objects.filter(version=mine).values_list("day", flat=True)) == {(T0 + 2 * DAY).date()}
    assert RawDigest.objects.filter(version=other).count() == 1
    sensitive = [r for r in receipts if r["table"] == SENSITIVE_TABLE]
    assert sensitive and {r["model"] for r in sensitive} == {"churn"}
    assert sum(r["rows"] for r in sensitive) == 14
    combined = sum(int(r["ids_sha256"][str(mine.pk)]["sha256"], 16) for r in sensitive) % MOD
    assert f"{combined:064x}" == ids_digest([r["prediction_id"] for r in day0 + day1])
    if partitions.is_partitioned(TABLE):  # both paths ran: day 0 dropped, day 1 shared with fraud
        methods = {r["from"]: r["method"] for r in receipts if r["table"] == TABLE}
        assert methods == {T0.isoformat(): "partition_drop", (T0 + DAY).isoformat(): "range_delete"}
    assert audit_verify().ok
    assert retention_purge(now=T0 + 32 * DAY + timedelta(hours=1)) == []  # idempotent


@pytest.mark.postgres
def test_one_purge_drops_every_expired_day_and_finishes_an_interrupted_one(churn, churn_v1, owner, admin_user):
    """All expired days go in one drop with one receipt each; a day a purge left detached is
    dropped too, or attached again when its rows are now under a legal hold."""
    fraud = ModelVersionFactory(model=RegisteredModelFactory(name="fraud", owner=owner, team=churn.team))
    for day in range(3):
        _ingest(churn_v1, prediction_records(5, start=T0 + day * DAY, prefix=f"c{day}-"), owner)
    _ingest(fraud, prediction_records(4, start=T0 + 3 * DAY), owner)
    for day in (0, 3):  # a purge interrupted between its detach and its drop
        partitions.partition_detach(table=TABLE, name=partitions.partition_name(TABLE, (T0 + day * DAY).date()))
    assert len(partitions.detached_partitions(TABLE)) == 2
    _set(churn, admin_user, raw_days=30)
    _set(fraud.model, admin_user, raw_days=30, legal_hold=True, legal_hold_reason="Claim", legal_hold_article="Art. 17")
    receipts = [r for r in retention_purge(now=T0 + 34 * DAY) if r["table"] == TABLE]
    assert sorted(r["from"] for r in receipts) == [(T0 + d * DAY).isoformat() for d in range(3)]
    assert {(r["method"], r["rows"], r["model"]) for r in receipts} == {("partition_drop", 5, "churn")}
    days = partitions.partition_days(TABLE)
    assert not {(T0 + d * DAY).date() for d in range(3)} & set(days) and (T0 + 3 * DAY).date() in days
    assert partitions.detached_partitions(TABLE) == []
    assert not Prediction.objects.filter(version=churn_v1).exists()
    assert Prediction.objects.filter(version=fraud).count() == 4
    assert audit_verify().ok


def test_the_purge_runs_as_many_statements_for_ten_more_models_without_rows(churn, churn_v1, owner, admin_user):
    """Models with nothing to remove cost the purge nothing: its statements do not grow with the
    inventory (five per model made a purge of 10,006 models take 92.5 s in the retention bench)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    _set(churn, admin_user, raw_days=30)

    def purge_one_day(day: int, idle_models: int) -> int:
        for _ in range(idle_models):
            RegisteredModelFactory(owner=owner, team=churn.team, risk_tier=RiskTier.LOW)
        _ingest(churn_v1, prediction_records(5, start=T0 + day * DAY, prefix=f"d{day}-"), owner)
        with CaptureQueriesContext(connection) as queries:
            receipts = retention_purge(now=T0 + (31 + day) * DAY)
        assert {(r["table"], r["rows"], r["model"]) for r in receipts} == {(TABLE, 5, "churn")}
        return len(queries)

    assert purge_one_day(0, idle_models=2) == purge_one_day(1, idle_models=12)


def test_models_purged_together_each_get_their_own_receipts(churn, owner, admin_user, monkeypatch):
    """The range deletes take the models in chunks (two here): every model still gets a receipt
    of exactly its own rows, whichever chunk it fell in, and a model with more days keeps its rows."""
    from monitoring.services import retention

    monkeypatch.setattr(retention, "PURGE_MODELS_CHUNK", 2)
    versions = {}
    for i, name in enumerate(["churn", "fraud", "ltv", "upsell"]):
        model = churn if name == "churn" else RegisteredModelFactory(name=name, owner=owner, team=churn.team)
        versions[name] = ModelVersionFactory(model=model, feature_schema=SENSITIVE_SCHEMA)
        _ingest(versions[name], _with_sex(prediction_records(3 + i, start=T0, prefix=name)), owner)
        _set(model, admin_user, raw_days=400 if name == "upsell" else 30)
    receipts = retention_purge(now=T0 + 31 * DAY)
    sensitive = {r["model"]: r for r in receipts if r["table"] == SENSITIVE_TABLE}
    assert {name: r["rows"] for name, r in sensitive.items()} == {"churn": 3, "fraud": 4, "ltv": 5}
    for name, receipt in sensitive.items():
        ids = [f"{name}{i}" for i in range(receipt["rows"])]
        assert receipt["ids_sha256"] == {str(versions[name].pk): {"rows": len(ids), "sha256": ids_digest(ids)}}
    assert PredictionSensitive.objects.count() == Prediction.objects.count() == 6  # upsell's
    assert audit_verify().ok


def test_the_digest_of_ids_is_the_sum_of_their_sha256_values_modulo_2_to_the_256():
    """What a receipt tells an auditor to recompute, computed here from its definition alone."""
    import hashlib

    ids = ["p0", "ü-subject", "tab\there", "x" * 100, *(f"id{i}" for i in range(5000))]
    total = sum(int(hashlib.sha256(i.encode()).hexdigest(), 16) for i in ids) % 2**256
    assert ids_digest(ids) == f"{total:064x}"
    assert ids_digest([]) == "0" * 64
    many = [f"n{i}" for i in range(70_000)]  # limb sums well past 2^32
    assert ids_digest(many) == f"{sum(int(hashlib.sha256(i.encode()).hexdigest(), 16) for i in many) % 2**256:064x}"


def test_a_policy_change_is_stamped_with_the_clock_as_its_audit_event(churn, admin_user):
    """A back-dated change (the demo's history, an import) carries the same time on the policy
    (the API's ``updated_at``) as in the audit chain, not the time it was written."""
    moment = T0 + timedelta(days=3, hours=5)
    with clock.at(moment):
        policy = _set(churn, admin_user, raw_days=400)
    policy.refresh_from_db()
    event = AuditEvent.objects.get(action="retention.changed", model_name=churn.name)
    assert policy.updated_at == event.timestamp == moment


def test_a_receipt_names_what_it_removed_in_words(churn, churn_v1, owner, admin_user, last_seq):
    """The audit log showed 'Registered model monitoring_groundtruth of churn before …'."""
    _expired_predictions_and_labels(churn, churn_v1, owner, admin_user)
    seq = last_seq()
    retention_purge(now=T0 + 40 * DAY)
    shown = sorted(
        AuditEvent.objects.filter(action="retention.purged", seq__gt=seq).values_list("object_repr", flat=True)
    )
    assert [text.split(" before ")[0] for text in shown] == [f"labels of {churn.name}", f"predictions of {churn.name}"]
