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

from django.db import migrations, models

from monitoring.migrations._partitioning import drop_detached_leftovers, into_daily_partitions, into_plain_table

TABLE = "monitoring_prediction"
COLUMNS = "id, prediction_id, timestamp, features, prediction, score, received_at, version_id"
DEFINITIONS = (
    "prediction_id varchar(100) NOT NULL, timestamp timestamptz NOT NULL, features jsonb NOT NULL,"
    " prediction jsonb NULL, score double precision NULL, received_at timestamptz NOT NULL,"
    " version_id bigint NOT NULL"
)


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
        into_daily_partitions(
            cursor,
            table=TABLE,
            column="timestamp",
            columns=COLUMNS,
            definitions=DEFINITIONS + ", subject_hash varchar(64) NULL",
            noun="predictions",
        )
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
        into_plain_table(cursor, table=TABLE, columns=COLUMNS, definitions=DEFINITIONS, noun="rows")
        cursor.execute(
            f"ALTER TABLE {TABLE} ADD CONSTRAINT unique_prediction_id_per_version UNIQUE (version_id, prediction_id)"
        )
        cursor.execute(f"CREATE INDEX prediction_version_ts ON {TABLE} (version_id, timestamp)")
        cursor.execute(f"CREATE INDEX monitoring_prediction_version_id_c07fee6e ON {TABLE} (version_id)")
        cursor.execute(
            f"ALTER TABLE {TABLE} ADD CONSTRAINT monitoring_predictio_version_id_c07fee6e_fk_registry_ "
            "FOREIGN KEY (version_id) REFERENCES registry_modelversion (id) DEFERRABLE INITIALLY DEFERRED"
        )
        drop_detached_leftovers(cursor, TABLE)


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
