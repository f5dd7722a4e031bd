"""The keys of dropped days (PostgreSQL's ``monitoring_predictionkey``) leave after the purge:
the purge records the day in its transaction, the sweep deletes exactly those days' keys in
batches, resumes after a partial run, and frees the ids; SQLite records and sweeps nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from monitoring.models import Prediction, PredictionKeySweep
from monitoring.services import partitions
from monitoring.services.ingest_parsing import BatchError
from monitoring.services.prediction_keys import prediction_keys_sweep
from monitoring.services.retention import retention_policy_update, retention_purge
from registry.services.audit import CLI
from tests.factories import ModelVersionFactory, RegisteredModelFactory
from tests.monitoring.helpers import T0, ingest_predictions, prediction_records

pytestmark = pytest.mark.django_db
TABLE = "monitoring_prediction"
DAY = timedelta(days=1)
OLD = T0 - 40 * DAY  # two expired days: OLD and OLD + DAY


def _keys() -> set[tuple[int, str]]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT version_id, prediction_id FROM {partitions.PREDICTION_KEYS}")
        return set(cursor.fetchall())


def _stored(version, owner, admin) -> tuple:
    """churn v1: 5 ids on each of two expired days and 3 on a kept day; fraud (another model,
    also on a 30-day policy) reuses the first day's ids on the kept day → (churn's version,
    fraud's version, the keys that must stay)."""
    fraud = ModelVersionFactory(model=RegisteredModelFactory(name="fraud", owner=owner, team=version.model.team))
    for day in range(2):
        ingest_predictions(version, prediction_records(5, start=OLD + day * DAY, prefix=f"d{day}-"), owner)
    ingest_predictions(version, prediction_records(3, start=T0, prefix="kept"), owner)
    ingest_predictions(fraud, prediction_records(5, start=T0, prefix="d0-"), owner)
    for model in (version.model, fraud.model):
        retention_policy_update(model=model, actor=admin, context=CLI, changes={"raw_days": 30})
    stay = {(version.pk, f"kept{i}") for i in range(3)} | {(fraud.pk, f"d0-{i}") for i in range(5)}
    return version, fraud, stay


def _sweep_deletes(batch: int) -> tuple[int, int]:
    """Run the sweep → (keys deleted, DELETE statements on the keys table)."""
    with CaptureQueriesContext(connection) as queries:
        removed = prediction_keys_sweep(batch=batch)
    return removed, sum(q["sql"].startswith(f"DELETE FROM {partitions.PREDICTION_KEYS}") for q in queries)


@pytest.mark.postgres
def test_the_purge_drops_the_days_and_leaves_their_keys_to_the_sweep(churn_v1, owner, admin_user):
    version, _, stay = _stored(churn_v1, owner, admin_user)
    receipts = [r for r in retention_purge(now=T0 + DAY) if r["table"] == TABLE]
    assert {(r["method"], r["rows"]) for r in receipts} == {("partition_drop", 5)} and len(receipts) == 2
    assert not Prediction.objects.filter(version=version, timestamp__lt=T0).exists()
    # the rows are gone, their keys not yet: each dropped day is recorded
    assert list(PredictionKeySweep.objects.values_list("day", flat=True)) == [OLD.date(), (OLD + DAY).date()]
    assert len(_keys()) == 10 + len(stay)
    with pytest.raises(BatchError, match="already stored"):  # still refused while its key remains
        ingest_predictions(version, prediction_records(1, start=T0 + timedelta(hours=2), prefix="d0-"), owner)
    # 5 keys a day, 2 a batch: 3 DELETE statements per day; exactly the dropped days' keys go
    assert _sweep_deletes(batch=2) == (10, 6)
    assert _keys() == stay
    assert not PredictionKeySweep.objects.exists()
    assert _sweep_deletes(batch=2) == (0, 0)  # twice is harmless
    ingest_predictions(version, prediction_records(5, start=T0 + timedelta(hours=2), prefix="d0-"), owner)
    assert {(version.pk, f"d0-{i}") for i in range(5)} <= _keys()


@pytest.mark.postgres
def test_a_sweep_stopped_half_way_resumes_where_it_stopped(churn_v1, owner, admin_user):
    _, _, stay = _stored(churn_v1, owner, admin_user)
    retention_purge(now=T0 + DAY)
    with transaction.atomic():  # a sweep that committed one batch of the first day, then stopped
        assert partitions.prediction_keys_forget(day=OLD.date(), batch=3) == 3
    assert len(_keys()) == 7 + len(stay) and PredictionKeySweep.objects.count() == 2
    assert _sweep_deletes(batch=3) == (7, 3)  # first day: 2 then done; second: 3, 2
    assert _keys() == stay and not PredictionKeySweep.objects.exists()


@pytest.mark.postgres
def test_a_key_stored_again_in_a_dropped_day_stays(churn_v1, owner, admin_user):
    """A back-fill into a dropped day before the sweep: its new keys have rows and stay."""
    version, _, stay = _stored(churn_v1, owner, admin_user)
    retention_purge(now=T0 + DAY)
    ingest_predictions(version, prediction_records(2, start=OLD + timedelta(hours=5), prefix="late"), owner)
    assert prediction_keys_sweep(batch=4) == 10
    assert _keys() == stay | {(version.pk, "late0"), (version.pk, "late1")}


@pytest.mark.postgres
def test_the_purge_queues_one_sweep_for_all_its_days(
    churn_v1, owner, admin_user, django_capture_on_commit_callbacks, monkeypatch
):
    from monitoring import tasks

    _, _, stay = _stored(churn_v1, owner, admin_user)
    queued = []
    sweep = tasks.prediction_keys_sweep.delay
    monkeypatch.setattr(tasks.prediction_keys_sweep, "delay", lambda: queued.append(sweep()))
    with django_capture_on_commit_callbacks(execute=True):
        retention_purge(now=T0 + DAY)
    assert len(queued) == 1  # two days dropped, one sweep (run eagerly here) once they committed
    assert _keys() == stay and not PredictionKeySweep.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        retention_purge(now=T0 + DAY)
    assert len(queued) == 1  # nothing dropped, nothing owed: nothing queued


def test_sqlite_records_and_sweeps_nothing_and_postgresql_records_each_dropped_day(churn_v1, owner, admin_user):
    _stored(churn_v1, owner, admin_user)
    retention_purge(now=T0 + DAY)
    assert PredictionKeySweep.objects.count() == (2 if partitions.is_partitioned(TABLE) else 0)
    assert prediction_keys_sweep(batch=2) == (10 if partitions.is_partitioned(TABLE) else 0)
    assert Prediction.objects.filter(version=churn_v1).count() == 3


def test_beat_sweeps_the_keys_after_the_nightly_purge():
    from django_celery_beat.models import PeriodicTask

    tasks = {t.task: t for t in PeriodicTask.objects.filter(enabled=True)}
    purge = tasks["monitoring.tasks.retention_purge"].crontab
    sweep = tasks["monitoring.tasks.prediction_keys_sweep"].crontab
    assert (sweep.hour, sweep.minute) == (purge.hour, "45")


def _insert_keys(version_id: int, prefix: str, start, count: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f'INSERT INTO {partitions.PREDICTION_KEYS} (version_id, prediction_id, "timestamp") '
            "SELECT %s, %s || g, %s + g * interval '1 second' FROM generate_series(1, %s) g",
            [version_id, prefix, start, count],
        )


@pytest.mark.postgres
def test_the_sweep_deletes_by_row_address_whatever_the_statistics_say(churn_v1):
    """The statistics were taken before the day's keys were loaded, so they put about one key
    in the day: the delete must still reach the keys by their row address, never by filtering
    each of the day's keys against the list of addresses (quadratic: a million-key day ran for
    more than six minutes in the retention bench)."""
    from mlops_portal.db import analyze

    _insert_keys(churn_v1.pk, "before", OLD - 5 * DAY, 1000)
    _insert_keys(churn_v1.pk, "after", OLD + 5 * DAY, 1000)
    analyze([partitions.PREDICTION_KEYS])
    _insert_keys(churn_v1.pk, "swept", OLD, 3000)  # the day swept, after the statistics
    with CaptureQueriesContext(connection) as queries:
        assert partitions.prediction_keys_forget(day=OLD.date(), batch=10_000) == 3000
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + queries.captured_queries[-1]["sql"])
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert not [line for line in plan.splitlines() if "Filter" in line and "ctid" in line], plan
    assert len(_keys()) == 2000
