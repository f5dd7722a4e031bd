"""A prediction id once per version on PostgreSQL, enforced by the database again.

The predictions table is partitioned by day (0015), and a unique index on a partitioned table
must contain the partition key, so ``(version_id, prediction_id)`` could only be checked by
probing every partition (a cost that grew with the days kept). ``monitoring_predictionkey`` is
a plain table of the stored rows' keys — (version, prediction id, time), about 60 bytes a row —
whose primary key is ``(version_id, prediction_id)``. Statement-level triggers on the
partitioned table keep it in step with every write (COPY, ORM inserts and updates, deletes,
TRUNCATE), reading the statement's transition tables, so a second copy of an id fails the
insert with a unique violation, also for concurrent batches (the second waits for the first
to commit). Dropping a partition fires no trigger: the day's keys are deleted by their time
after the purge (``monitoring.services.prediction_keys``, migration 0027). Existing rows' keys
are copied in.

SQLite keeps its unique constraint on the predictions table and gets nothing here.
"""

from django.db import migrations

KEYS = "monitoring_predictionkey"
TABLE = "monitoring_prediction"

COLUMNS = 'version_id, prediction_id, "timestamp"'
INSERT_NEW = f"INSERT INTO {KEYS} ({COLUMNS}) SELECT {COLUMNS} FROM new_rows;"
DELETE_OLD = (
    f"DELETE FROM {KEYS} k USING old_rows o WHERE k.version_id = o.version_id AND k.prediction_id = o.prediction_id;"
)
BODIES = {
    "insert": INSERT_NEW,
    "delete": DELETE_OLD,
    "update": DELETE_OLD + INSERT_NEW,
    "truncate": f"TRUNCATE {KEYS};",
}

FORWARD = [
    f"CREATE TABLE {KEYS} (version_id bigint NOT NULL, prediction_id varchar(100) NOT NULL, "
    f'"timestamp" timestamptz NOT NULL, CONSTRAINT {KEYS}_pkey PRIMARY KEY (version_id, prediction_id))',
    f'CREATE INDEX {KEYS}_ts ON {KEYS} ("timestamp")',
    *(
        f"CREATE FUNCTION {KEYS}_{kind}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {body} RETURN NULL; END $$"
        for kind, body in BODIES.items()
    ),
    f"CREATE TRIGGER {KEYS}_insert AFTER INSERT ON {TABLE} REFERENCING NEW TABLE AS new_rows "
    f"FOR EACH STATEMENT EXECUTE FUNCTION {KEYS}_insert()",
    f"CREATE TRIGGER {KEYS}_delete AFTER DELETE ON {TABLE} REFERENCING OLD TABLE AS old_rows "
    f"FOR EACH STATEMENT EXECUTE FUNCTION {KEYS}_delete()",
    f"CREATE TRIGGER {KEYS}_update AFTER UPDATE ON {TABLE} REFERENCING OLD TABLE AS old_rows "
    f"NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {KEYS}_update()",
    f"CREATE TRIGGER {KEYS}_truncate AFTER TRUNCATE ON {TABLE} FOR EACH STATEMENT EXECUTE FUNCTION {KEYS}_truncate()",
    # the keys of the rows stored so far (ingestion refused an id twice before too)
    f"INSERT INTO {KEYS} ({COLUMNS}) SELECT {COLUMNS} FROM {TABLE} ON CONFLICT DO NOTHING",
]

BACKWARD = [
    *(f"DROP TRIGGER {KEYS}_{kind} ON {TABLE}" for kind in BODIES),
    *(f"DROP FUNCTION {KEYS}_{kind}()" for kind in BODIES),
    f"DROP TABLE {KEYS}",
]


def _run(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for sql in statements:
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("monitoring", "0025_partitioned_labels")]

    operations = [migrations.RunPython(_run(FORWARD), _run(BACKWARD))]
