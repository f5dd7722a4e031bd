"""Predictions in a table partitioned by day on PostgreSQL; an optional hashed subject id.

PostgreSQL: the plain table is renamed, a table partitioned by range on ``timestamp`` takes
its name, one partition per day holding rows (plus today and the next week) is created, every
row is copied (ids kept; the migration stops if the row count differs), the old table is
dropped and the indexes are built. A unique constraint on a partitioned table must include the
partition key, so "a prediction id is stored once per version" is kept by ingestion, which
checks the batch's ids under a per-version advisory lock (``monitoring.services.partitions``);
the non-unique ``(version, prediction_id)`` index serves that check and the label join.

SQLite keeps its plain table and its unique constraint; it only gains the new column and
indexes. Backwards, PostgreSQL gets the plain table back with every row.
"""

from datetime import UTC, datetime, timedelta

from django.db import migrations, models

TABLE = "monitoring_prediction"
COLUMNS = "id, prediction_id, timestamp, features, prediction, score, received_at, version_id"
AHEAD_DAYS = 7


def _days_with_rows(cursor, table: str) -> list:
    cursor.execute(f"SELECT DISTINCT (timestamp AT TIME ZONE 'UTC')::date FROM {table}")
    days = {row[0] for row in cursor.fetchall()}
    today = datetime.now(UTC).date()
    days.update(today + timedelta(days=i) for i in range(AHEAD_DAYS + 1))
    return sorted(days)


def _count(cursor, table: str) -> int:
    cursor.execute(f"SELECT count(*) FROM {table}")
    return cursor.fetchone()[0]


def forward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        Prediction = apps.get_model("monitoring", "Prediction")
        field = models.CharField(max_length=64, null=True, blank=True)
        field.set_attributes_from_name("subject_hash")
        schema_editor.add_field(Prediction, field)
        schema_editor.execute(f"CREATE INDEX prediction_version_pid ON {TABLE} (version_id, prediction_id)")
        schema_editor.execute(
            f"CREATE INDEX prediction_subject ON {TABLE} (subject_hash) WHERE subject_hash IS NOT NULL"
        )
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE")
        cursor.execute(f"ALTER TABLE {TABLE} RENAME TO {TABLE}_unpartitioned")
        before = _count(cursor, f"{TABLE}_unpartitioned")
        cursor.execute(f"CREATE SEQUENCE {TABLE}_row_seq")
        cursor.execute(
            f"""CREATE TABLE {TABLE} (
                id bigint NOT NULL DEFAULT nextval('{TABLE}_row_seq'),
                prediction_id varchar(100) NOT NULL,
                timestamp timestamptz NOT NULL,
                features jsonb NOT NULL,
                prediction jsonb NULL,
                score double precision NULL,
                received_at timestamptz NOT NULL,
                version_id bigint NOT NULL,
                subject_hash varchar(64) NULL,
                PRIMARY KEY (id, timestamp)
            ) PARTITION BY RANGE (timestamp)"""
        )
        cursor.execute(f"ALTER SEQUENCE {TABLE}_row_seq OWNED BY {TABLE}.id")
        for day in _days_with_rows(cursor, f"{TABLE}_unpartitioned"):
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            cursor.execute(
                f"CREATE TABLE {TABLE}_p{day:%Y%m%d} PARTITION OF {TABLE} FOR VALUES FROM (%s) TO (%s)",
                [start.isoformat(), (start + timedelta(days=1)).isoformat()],
            )
        cursor.execute(f"INSERT INTO {TABLE} ({COLUMNS}) SELECT {COLUMNS} FROM {TABLE}_unpartitioned")
        after = _count(cursor, TABLE)
        if after != before:
            raise RuntimeError(f"partitioning moved {after} of {before} predictions; nothing changed")
        cursor.execute(f"SELECT setval('{TABLE}_row_seq', coalesce((SELECT max(id) FROM {TABLE}), 0) + 1, false)")
        cursor.execute(f"DROP TABLE {TABLE}_unpartitioned")
        cursor.execute(f"CREATE INDEX prediction_version_ts ON {TABLE} (version_id, timestamp)")
        cursor.execute(f"CREATE INDEX prediction_version_pid ON {TABLE} (version_id, prediction_id)")
        cursor.execute(f"CREATE INDEX prediction_subject ON {TABLE} (subject_hash) WHERE subject_hash IS NOT NULL")
        cursor.execute(
            f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_version_fk FOREIGN KEY (version_id) "
            "REFERENCES registry_modelversion (id) DEFERRABLE INITIALLY DEFERRED"
        )


def backward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        schema_editor.execute("DROP INDEX prediction_subject")
        schema_editor.execute("DROP INDEX prediction_version_pid")
        Prediction = apps.get_model("monitoring", "Prediction")
        field = models.CharField(max_length=64, null=True, blank=True)
        field.set_attributes_from_name("subject_hash")
        schema_editor.remove_field(Prediction, field)
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE")
        cursor.execute(f"ALTER TABLE {TABLE} RENAME TO {TABLE}_partitioned")
        before = _count(cursor, f"{TABLE}_partitioned")
        cursor.execute(
            f"""CREATE TABLE {TABLE} (
                id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                prediction_id varchar(100) NOT NULL,
                timestamp timestamptz NOT NULL,
                features jsonb NOT NULL,
                prediction jsonb NULL,
                score double precision NULL,
                received_at timestamptz NOT NULL,
                version_id bigint NOT NULL
            )"""
        )
        cursor.execute(f"INSERT INTO {TABLE} ({COLUMNS}) SELECT {COLUMNS} FROM {TABLE}_partitioned")
        if _count(cursor, TABLE) != before:
            raise RuntimeError("unpartitioning lost rows; nothing changed")
        cursor.execute(
            f"SELECT setval(pg_get_serial_sequence('{TABLE}', 'id'), coalesce((SELECT max(id) FROM {TABLE}), 0) + 1, false)"
        )
        cursor.execute(f"DROP TABLE {TABLE}_partitioned CASCADE")
        cursor.execute(
            f"ALTER TABLE {TABLE} ADD CONSTRAINT unique_prediction_id_per_version UNIQUE (version_id, prediction_id)"
        )
        cursor.execute(f"CREATE INDEX prediction_version_ts ON {TABLE} (version_id, timestamp)")
        cursor.execute(f"CREATE INDEX monitoring_prediction_version_id_c07fee6e ON {TABLE} (version_id)")
        cursor.execute(
            f"ALTER TABLE {TABLE} ADD CONSTRAINT monitoring_predictio_version_id_c07fee6e_fk_registry_ "
            "FOREIGN KEY (version_id) REFERENCES registry_modelversion (id) DEFERRABLE INITIALLY DEFERRED"
        )
        # detached leftovers of an interrupted purge are standalone tables: drop them too
        cursor.execute("SELECT relname FROM pg_class WHERE relkind = 'r' AND relname ~ %s", [f"^{TABLE}_p[0-9]{{8}}$"])
        for (name,) in cursor.fetchall():
            cursor.execute(f'DROP TABLE "{name}"')


class Migration(migrations.Migration):
    atomic = True

    dependencies = [("monitoring", "0001_squashed_0014_pending_evaluation_sweep_schedule")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveConstraint(model_name="prediction", name="unique_prediction_id_per_version"),
                migrations.AddField(
                    model_name="prediction",
                    name="subject_hash",
                    field=models.CharField(
                        blank=True,
                        help_text="HMAC-SHA256 of the data subject's id under SUBJECT_KEY; never the id itself.",
                        max_length=64,
                        null=True,
                    ),
                ),
                migrations.AddIndex(
                    model_name="prediction",
                    index=models.Index(fields=["version", "prediction_id"], name="prediction_version_pid"),
                ),
                migrations.AddIndex(
                    model_name="prediction",
                    index=models.Index(
                        condition=models.Q(subject_hash__isnull=False),
                        fields=["subject_hash"],
                        name="prediction_subject",
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(forward, backward)],
        )
    ]
