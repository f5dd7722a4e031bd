"""mlops_portal/db.py, the one home of database-specific code: the portable paths run on
SQLite and on PostgreSQL, the PostgreSQL-only ones in the tests marked ``postgres``."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
from django.db import connection, transaction

from mlops_portal import db
from registry.models import Tag

pytestmark = pytest.mark.django_db


def test_is_postgresql_tells_the_two_databases_apart(settings):
    engine = settings.DATABASES["default"]["ENGINE"]
    assert db.is_postgresql() == engine.endswith("postgresql")
    assert db.ping() == ("postgresql" if db.is_postgresql() else "sqlite")


def test_insert_rows_writes_plain_rows_on_either_database():
    names = [f"tag-{i}" for i in range(12)]
    assert db.insert_rows(Tag, ["name"], ([name] for name in names), batch_size=5) == 12
    assert sorted(Tag.objects.values_list("name", flat=True)) == sorted(names)


def test_insert_rows_stores_keys_times_and_flags_as_the_orm_reads_them(churn_v1):
    """Aware times with an offset, foreign keys and booleans, prepared by their fields: the ORM
    finds the rows by time and reads back the same values (on SQLite a time stored as Python's
    own text of it, with its offset, would compare as text and be missed)."""
    from datetime import timedelta, timezone

    from monitoring.models import MetricValue

    plus_two = timezone(timedelta(hours=2))
    start = datetime(2026, 3, 1, 12, tzinfo=plus_two)
    columns = [f.attname for f in MetricValue._meta.concrete_fields if not f.primary_key]
    rows = (
        {"model_id": churn_v1.model_id, "version_id": churn_v1.pk, "granularity": "hourly",
         "window_start": start + timedelta(hours=h), "window_end": start + timedelta(hours=h + 1),
         "feature": "age", "metric": "psi", "value": h / 10, "provisional": h % 2 == 1,
         "computed_at": start + timedelta(days=1)}
        for h in range(3)
    )  # fmt: skip
    assert db.insert_rows(MetricValue, columns, ([row[c] for c in columns] for row in rows), batch_size=2) == 3
    found = MetricValue.objects.filter(version=churn_v1, window_start__gte=datetime(2026, 3, 1, 11, tzinfo=UTC))
    assert [(m.window_start, m.value, m.provisional) for m in found.order_by("window_start")] == [
        (start + timedelta(hours=h), h / 10, h % 2 == 1) for h in range(1, 3)
    ]
    assert MetricValue.objects.get(version=churn_v1, window_start=start).window_end == datetime(
        2026, 3, 1, 11, tzinfo=UTC
    )


def test_fetch_one_and_fetch_all_with_datetime_parameters():
    from registry.models import AuditEvent
    from registry.services.audit import CLI, audit_record

    tag = Tag.objects.create(name="pii")
    audit_record(actor=None, action="tag.created", obj=tag, context=CLI, after={"name": "pii"})
    start = datetime(2000, 1, 1, tzinfo=UTC)
    table = AuditEvent._meta.db_table
    sql = f"SELECT action FROM {table} WHERE timestamp >= %s ORDER BY seq"
    assert db.fetch_all(sql, [db.datetime_param(start)]) == [("tag.created",)]
    assert db.fetch_one(f"SELECT count(*) FROM {table} WHERE timestamp < %s", [db.datetime_param(start)]) == (0,)


def test_advisory_lock_is_a_no_op_outside_postgresql_and_a_lock_inside():
    with transaction.atomic():
        db.advisory_xact_lock(4242)
        if db.is_postgresql():
            held = db.fetch_one("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = %s", [4242])
            assert held == (1,)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)  # a real commit, not a savepoint in the test's transaction
def test_advisory_lock_ends_with_the_transaction():
    with transaction.atomic():
        db.advisory_xact_lock(4243)
    held = db.fetch_one("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = %s", [4243])
    assert held == (0,)


@pytest.mark.postgres
def test_stream_rows_stopped_early_leaves_the_transaction_usable():
    sql = "SELECT g FROM generate_series(1, %s) AS g ORDER BY g"
    with transaction.atomic():
        rows = db.stream_rows(sql, [5000], chunk_rows=100)
        assert [next(rows) for _ in range(3)] == [(1,), (2,), (3,)]
        rows.close()
        assert db.fetch_one("SELECT 41 + 1", []) == (42,)  # not aborted
    assert list(db.stream_rows(sql, [3], chunk_rows=2)) == [(1,), (2,), (3,)]


@pytest.mark.postgres
def test_copy_to_csv_writes_the_rows_of_a_query():
    Tag.objects.bulk_create([Tag(name="b,comma"), Tag(name="a")])
    sql, params = Tag.objects.order_by("name").values_list("name").query.sql_with_params()
    text = "".join(db.copy_to_csv(sql, params, chunk_bytes=1))
    assert list(csv.reader(io.StringIO(text))) == [["a"], ["b,comma"]]


@pytest.mark.postgres
def test_the_postgresql_text_forms_match_python():
    assert connection.vendor == "postgresql"
    for moment in (datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=UTC)):
        literal = f"'{moment.isoformat()}'::timestamptz"
        got = db.fetch_one(f"SELECT {db.pg_iso_timestamp(literal).sql}", [])
        assert got == (moment.isoformat(),)
    assert db.fetch_one(f"SELECT {db.pg_inet_text(repr('10.0.0.1/32') + '::inet').sql}", []) == ("10.0.0.1",)
    assert db.fetch_one(f"SELECT {db.pg_json_text('x', 'NULL::jsonb', json_null=True).sql}", []) == ("null",)


def test_analyze_refreshes_the_statistics_on_either_database():
    from monitoring.models import Prediction

    db.analyze([Prediction._meta.db_table, Tag._meta.db_table])
    db.analyze()


@pytest.mark.postgres
def test_analyze_counts_the_schemas_tables_and_leaves_the_shared_catalogs_alone():
    Tag.objects.bulk_create([Tag(name=f"t{i}") for i in range(3)])
    db.analyze()
    assert db.fetch_one("SELECT reltuples FROM pg_class WHERE relname = %s", [Tag._meta.db_table]) == (3.0,)
    # a bare ANALYZE would hold a lock on pg_database until this test's transaction ends
    held = db.fetch_one(
        "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
        "WHERE l.pid = pg_backend_pid() AND c.relisshared",
        [],
    )
    assert held == (0,)


@pytest.mark.postgres
def test_relaxed_commits_turn_synchronous_commit_off_and_restore_it():
    before = db.fetch_one("SHOW synchronous_commit", [])[0]
    with db.relaxed_commits():
        assert db.fetch_one("SHOW synchronous_commit", [])[0] == "off"
    assert db.fetch_one("SHOW synchronous_commit", [])[0] == before
