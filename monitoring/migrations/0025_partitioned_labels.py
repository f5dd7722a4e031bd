"""Labels in a table partitioned by day on ``received_at`` on PostgreSQL, like predictions.

PostgreSQL: the plain table is renamed, a table partitioned by range on ``received_at`` takes
its name, one partition per day holding labels (plus today and the next week) is created,
every row is copied (ids kept; the migration stops if the row count differs), the old table
is dropped and the indexes are built. A unique constraint on a partitioned table must include
the partition key, so "one label per (model, prediction id)" is kept by ingestion, which
replaces a re-sent label under a per-model advisory lock (``monitoring.services.partitions``);
the non-unique ``(model, prediction_id)`` index serves that check and the label join.

SQLite keeps its plain table and its unique constraint (labels are upserted there); it only
gains the ``(model, prediction_id)`` index. Backwards, PostgreSQL gets the plain table back
with every row.
"""

from django.db import migrations, models

from monitoring.migrations._partitioning import drop_detached_leftovers, into_daily_partitions, into_plain_table

TABLE = "monitoring_groundtruth"
COLUMNS = "id, prediction_id, label, received_at, model_id, subject_hash"
DEFINITIONS = (
    "prediction_id varchar(100) NOT NULL, label jsonb NOT NULL, received_at timestamptz NOT NULL,"
    " model_id bigint NOT NULL, subject_hash varchar(64) NULL"
)


def forward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        schema_editor.execute(f"CREATE INDEX label_model_pid ON {TABLE} (model_id, prediction_id)")
        return
    with schema_editor.connection.cursor() as cursor:
        into_daily_partitions(
            cursor, table=TABLE, column="received_at", columns=COLUMNS, definitions=DEFINITIONS, noun="labels"
        )
        cursor.execute(f"CREATE INDEX label_model_received ON {TABLE} (model_id, received_at)")
        cursor.execute(f"CREATE INDEX label_model_pid ON {TABLE} (model_id, prediction_id)")
        cursor.execute(f"CREATE INDEX label_subject ON {TABLE} (subject_hash) WHERE subject_hash IS NOT NULL")
        cursor.execute(
            f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_model_fk FOREIGN KEY (model_id) "
            "REFERENCES registry_registeredmodel (id) DEFERRABLE INITIALLY DEFERRED"
        )


def backward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        schema_editor.execute("DROP INDEX label_model_pid")
        return
    with schema_editor.connection.cursor() as cursor:
        into_plain_table(cursor, table=TABLE, columns=COLUMNS, definitions=DEFINITIONS, noun="labels")
        cursor.execute(
            f"ALTER TABLE {TABLE} ADD CONSTRAINT unique_label_per_prediction_id UNIQUE (model_id, prediction_id)"
        )
        cursor.execute(f"CREATE INDEX label_model_received ON {TABLE} (model_id, received_at)")
        cursor.execute(f"CREATE INDEX label_subject ON {TABLE} (subject_hash) WHERE subject_hash IS NOT NULL")
        cursor.execute(f"CREATE INDEX monitoring_groundtruth_model_id_0ee0d38f ON {TABLE} (model_id)")
        cursor.execute(
            f"ALTER TABLE {TABLE} ADD CONSTRAINT monitoring_groundtru_model_id_0ee0d38f_fk_registry_ "
            "FOREIGN KEY (model_id) REFERENCES registry_registeredmodel (id) DEFERRABLE INITIALLY DEFERRED"
        )
        drop_detached_leftovers(cursor, TABLE)


class Migration(migrations.Migration):
    atomic = True

    dependencies = [("monitoring", "0016_squashed_0024_plan_created_at_from_the_clock")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterModelOptions(name="groundtruth", options={}),
                migrations.RemoveConstraint(model_name="groundtruth", name="unique_label_per_prediction_id"),
                migrations.AddIndex(
                    model_name="groundtruth",
                    index=models.Index(fields=["model", "prediction_id"], name="label_model_pid"),
                ),
            ],
            database_operations=[migrations.RunPython(forward, backward)],
        )
    ]
