"""Daily partitions of the predictions table on PostgreSQL (plain table on SQLite): the
migration keeps every row, partitions are created ahead and for back-filled days, and a
prediction id is still stored once per version across partitions."""

from __future__ import annotations

import contextlib
import json
import threading
from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from monitoring.models import Prediction
from monitoring.services import partitions
from monitoring.services.ingest_parsing import BatchError
from monitoring.services.retention import partitions_create_ahead
from registry.services.audit import CLI
from tests.monitoring.helpers import T0, as_json, ingest_predictions, partition_by_migration, prediction_records

TABLE = "monitoring_prediction"
BEFORE = [("monitoring", "0001_squashed_0014_pending_evaluation_sweep_schedule")]  # the migration before partitioning
RAW_INSERT = (
    "INSERT INTO monitoring_prediction (version_id, prediction_id, timestamp, features, prediction, score,"
    " received_at) VALUES (%s, %s, %s, %s, '\"1\"', 0.5, now())"
)
RAW_SELECT = "SELECT id, prediction_id, timestamp, features::text FROM monitoring_prediction ORDER BY id"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_migration_moves_every_prediction_into_daily_partitions_and_back(churn_v1):
    rows = [(churn_v1.pk, f"p{i}", T0 + timedelta(hours=7 * i), json.dumps({"age": i})) for i in range(40)]  # 12 days
    before, latest = partition_by_migration(TABLE, BEFORE, RAW_INSERT, rows, RAW_SELECT)
    assert {ts.date() for _, _, ts, _ in rows} <= set(partitions.partition_days(TABLE))
    # new rows get ids after the moved ones, and land in their day's partition
    ingest_predictions(churn_v1, prediction_records(5, prefix="new"), churn_v1.model.owner)
    assert Prediction.objects.filter(prediction_id__startswith="new").order_by("pk").first().pk > before[-1][0]
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM monitoring_prediction")
        assert cursor.fetchone()[0] == 45
    MigrationExecutor(connection).migrate(latest)


@pytest.mark.postgres
@pytest.mark.django_db
def test_partitions_are_created_ahead_by_the_beat_task_and_the_call_is_idempotent():
    today = date(2027, 6, 1)
    created = partitions_create_ahead(now=datetime(2027, 6, 1, 5, tzinfo=UTC))
    days = partitions.partition_days(TABLE)
    assert {today + timedelta(days=i) for i in range(8)} <= set(days)
    assert partitions.partition_name(TABLE, today) in created
    assert partitions_create_ahead(now=datetime(2027, 6, 1, 6, tzinfo=UTC)) == []
    with connection.cursor() as cursor:  # attached with its bounds, no leftover check constraint
        cursor.execute(
            "SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_class c WHERE c.relname = %s",
            [partitions.partition_name(TABLE, today)],
        )
        assert "2027-06-01" in cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM pg_constraint WHERE conname LIKE %s", ["%_bounds"])
        assert cursor.fetchone()[0] == 0


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_back_filled_day_gets_its_partition_at_ingestion(churn_v1, owner):
    day = T0 - timedelta(days=40)
    assert day.date() not in partitions.partition_days(TABLE)
    ingest_predictions(churn_v1, prediction_records(20, start=day, prefix="old"), owner)
    assert day.date() in partitions.partition_days(TABLE)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {partitions.partition_name(TABLE, day.date())}")
        assert cursor.fetchone()[0] == 20


@pytest.mark.django_db
def test_a_prediction_id_is_stored_once_per_version_even_on_another_day(churn_v1, owner):
    ingest_predictions(churn_v1, prediction_records(10, start=T0), owner)
    again = prediction_records(3, start=T0 + timedelta(days=3), prefix="q") + prediction_records(
        1, start=T0 + timedelta(days=3)
    )
    with pytest.raises(BatchError) as caught:
        ingest_predictions(churn_v1, again, owner)
    assert caught.value.field == "prediction_id" and "p0" in str(caught.value)
    assert Prediction.objects.filter(version=churn_v1).count() == 10


@pytest.mark.django_db
def test_an_id_stored_in_an_older_partition_is_refused_with_its_row_named(churn_v1, owner):
    ingest_predictions(churn_v1, prediction_records(5, start=T0 - timedelta(days=20), prefix="old"), owner)
    for day in range(3):  # more days of the version in between
        ingest_predictions(churn_v1, prediction_records(5, start=T0 + timedelta(days=day), prefix=f"d{day}-"), owner)
    again = prediction_records(2, start=T0 + timedelta(days=5), prefix="new") + prediction_records(
        2, start=T0 + timedelta(days=5), prefix="old", seed=7
    )
    with pytest.raises(BatchError) as caught:
        ingest_predictions(churn_v1, again, owner)
    assert (caught.value.row, caught.value.field) == (3, "prediction_id") and "'old0'" in str(caught.value)
    assert Prediction.objects.filter(version=churn_v1).count() == 20
    assert not Prediction.objects.filter(prediction_id__startswith="new").exists()


@pytest.mark.postgres
@pytest.mark.django_db
def test_prediction_keys_follow_the_rows_through_purge_erasure_and_orm_writes(churn, churn_v1, owner, admin_user):
    """The keys table holds exactly the stored rows' keys: dropped days, erased and deleted rows
    free their ids again, and ORM writes are refused on a duplicate like ingestion."""
    from django.db import IntegrityError, transaction

    from monitoring.services.erasure import erasure_request_create
    from monitoring.services.prediction_keys import prediction_keys_sweep
    from monitoring.services.retention import retention_policy_update, retention_purge

    def keys() -> set[tuple[int, str]]:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT version_id, prediction_id FROM {partitions.PREDICTION_KEYS}")
            return set(cursor.fetchall())

    old = T0 - timedelta(days=40)
    ingest_predictions(churn_v1, prediction_records(4, start=old, prefix="gone"), owner)
    ingest_predictions(churn_v1, prediction_records(4, start=T0, prefix="kept"), owner)
    assert keys() == {(churn_v1.pk, f"{p}{i}") for p in ("gone", "kept") for i in range(4)}
    retention_policy_update(model=churn, actor=admin_user, context=CLI, changes={"raw_days": 30})
    receipts = retention_purge(now=T0 + timedelta(days=1))
    assert {r["method"] for r in receipts if r["table"] == TABLE} == {"partition_drop"}
    # the dropped day's keys leave after the purge, by the keys sweep; then its ids are free again
    assert len(keys()) == 8
    assert prediction_keys_sweep() == 4
    assert keys() == {(churn_v1.pk, f"kept{i}") for i in range(4)}
    ingest_predictions(churn_v1, prediction_records(4, start=T0 + timedelta(hours=3), prefix="gone"), owner)
    Prediction.objects.filter(prediction_id="kept1").delete()
    Prediction.objects.filter(prediction_id="kept2").update(prediction_id="moved2")
    assert keys() == {(churn_v1.pk, i) for i in ("kept0", "moved2", "kept3", "gone0", "gone1", "gone2", "gone3")}
    erased = prediction_records(1, start=T0 + timedelta(hours=5), prefix="erased")
    ingest_predictions(churn_v1, [{**erased[0], "subject_id": "subject-1"}], owner)
    assert (churn_v1.pk, "erased0") in keys()
    erasure_request_create(subject_id="subject-1", actor=admin_user, context=CLI)
    assert (churn_v1.pk, "erased0") not in keys()
    with pytest.raises(IntegrityError), transaction.atomic():
        Prediction.objects.create(
            version=churn_v1, prediction_id="kept0", timestamp=T0 - timedelta(days=2), features={}, received_at=T0
        )


def validated(version, records):
    """The batch ingestion would store for ``records`` (parsed from JSON and validated)."""
    from monitoring.services.ingest_parsing import parse_body
    from monitoring.services.ingest_validation import predictions_validate

    return predictions_validate(parse_body(as_json(records), "application/json"), version=version)


@contextlib.contextmanager
def batch_held_open(version, batch, *, roll_back: bool = False, seconds: float = 10):
    """A thread stores ``batch`` in a transaction it keeps open (its rows' locks held) while the
    ``with`` body runs, then commits it (or rolls it back) and is joined."""
    from django.db import connections, transaction

    from monitoring.services import ingest_storage

    stored, release = threading.Event(), threading.Event()

    def hold():
        try:
            with transaction.atomic():
                ingest_storage.predictions_store(version_id=version.pk, batch=batch, received_at=T0)
                stored.set()
                release.wait(seconds)
                transaction.set_rollback(roll_back)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert stored.wait(10)
        yield
    finally:
        release.set()
        holder.join(seconds)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_of_a_version_cannot_both_store_an_id(churn_v1, owner):
    """A batch whose id is being stored by an uncommitted one waits for it, then is refused."""
    from django.db import connections

    first = validated(churn_v1, prediction_records(3, start=T0, prefix="x"))
    outcome = {}

    def second_batch():
        try:
            records = prediction_records(2, start=T0 + timedelta(days=1), prefix="y")
            records += prediction_records(1, start=T0 + timedelta(days=1), prefix="x", seed=5)
            ingest_predictions(churn_v1, records, owner)
        except BatchError as exc:
            outcome["error"] = exc
        finally:
            connections.close_all()

    with batch_held_open(churn_v1, first):
        contender = threading.Thread(target=second_batch)
        contender.start()
        contender.join(1.0)
        assert contender.is_alive()  # waiting for the first batch's transaction
    contender.join(10)
    error = outcome["error"]
    assert (error.row, error.field) == (3, "prediction_id") and "'x0'" in str(error)
    assert sorted(Prediction.objects.filter(version=churn_v1).values_list("prediction_id", flat=True)) == [
        "x0",
        "x1",
        "x2",
    ]


def test_ids_digest_is_the_sum_of_the_ids_sha256_and_does_not_depend_on_order():
    import hashlib

    from monitoring.services.raw_digests import ids_digest

    expected = sum(int.from_bytes(hashlib.sha256(i.encode()).digest(), "big") for i in ["b", "a", "é"]) % (1 << 256)
    assert ids_digest(["b", "a", "é"]) == ids_digest(["é", "a", "b"]) == f"{expected:064x}"


@pytest.mark.django_db
def test_ingestion_and_erasure_keep_the_days_digests(churn_v1, owner):
    from monitoring.models import RawDigest
    from monitoring.services.raw_digests import ids_digest

    records = prediction_records(30, start=T0 + timedelta(hours=20), spread_hours=8)
    ingest_predictions(churn_v1, records, owner)
    stored = {d.day: (d.rows, d.digest) for d in RawDigest.objects.filter(version=churn_v1)}
    for day, (rows, digest) in stored.items():
        ids = [r["prediction_id"] for r in records if datetime.fromisoformat(r["timestamp"]).date() == day]
        assert (rows, digest) == (len(ids), ids_digest(ids))
    assert sum(rows for rows, _ in stored.values()) == 30


@pytest.mark.django_db
def test_beat_schedules_create_partitions_hourly_and_purge_nightly():
    from django_celery_beat.models import PeriodicTask

    tasks = {t.task: t for t in PeriodicTask.objects.filter(enabled=True)}
    assert tasks["monitoring.tasks.partitions_create_ahead"].interval.every == 3600
    nightly = tasks["monitoring.tasks.retention_purge"].crontab
    assert (nightly.hour, nightly.minute) == ("2", "30")


def _waiting_on_locks() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_sharing_ids_in_opposite_orders_store_one_and_refuse_the_other(churn_v1):
    """Batches of a version store their rows side by side (only the digests wait for the version's
    lock), so two that share ids in crossed orders must not deadlock on the keys' primary key:
    one is stored, the other fails on the unique key (which ingestion answers as reusing stored
    ids), nothing else. A third transaction holding the middle id stops both half-way, the
    order in which a deadlock would need them."""
    import time

    from django.db import IntegrityError, connections, transaction

    from monitoring.services import ingest_storage

    records = prediction_records(1000, start=T0, prefix="s")
    middle = sorted(records, key=lambda r: r["prediction_id"])[500]
    ordered = [r for r in records if r is not middle]
    ordered.insert(500, middle)
    batches = [validated(churn_v1, ordered), validated(churn_v1, ordered[::-1])]
    blocker = validated(churn_v1, [middle])
    partitions.partitions_ensure(table=TABLE, days=[T0.date(), (T0 + timedelta(hours=1)).date()])
    outcomes = []

    def store(batch):
        try:
            with transaction.atomic():
                ingest_storage.predictions_store(version_id=churn_v1.pk, batch=batch, received_at=T0)
            outcomes.append("stored")
        except IntegrityError:
            outcomes.append("refused")
        except Exception as exc:  # noqa: BLE001 - a deadlock or any other failure is what the test looks for
            outcomes.append(repr(exc))
        finally:
            connections.close_all()

    with batch_held_open(churn_v1, blocker, roll_back=True, seconds=20):
        threads = [threading.Thread(target=store, args=(batch,)) for batch in batches]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while _waiting_on_locks() < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["refused", "stored"]
    assert Prediction.objects.filter(version=churn_v1).count() == 1000
