"""A prediction's version checked once per statement, not once per row (PostgreSQL).

The foreign key from the partitioned predictions table to ``registry_modelversion`` (0015)
ran PostgreSQL's referential check for every row: a query of the versions table per row,
7.2 µs of the 29 µs a 20-feature row costs a COPY (500,000 rows: 14.7 s with it, the same
COPY with the check made per statement about 11.5 s; docs/performance.md, "Where a row's
COPY goes"). A batch is one version, so the check is made once per statement instead, with
the same guarantees:

* inserting (or updating) rows: the keys' statement trigger (0026, 0028), which already reads
  the statement's rows, first locks the versions they name ``FOR KEY SHARE`` (what the
  foreign key's check takes, so the version cannot be deleted until the rows commit) and fails
  with ``foreign_key_violation`` if one does not exist;
* deleting a version: a deferred constraint trigger refuses, at commit as the deferred foreign
  key did, a deleted version that still has predictions (Django's cascade deletes them first).

SQLite keeps its foreign key.
"""

from django.db import migrations

KEYS = "monitoring_predictionkey"
TABLE = "monitoring_prediction"
VERSIONS = "registry_modelversion"
COLUMNS = 'version_id, prediction_id, "timestamp"'
ORDERED = ' ORDER BY version_id, prediction_id COLLATE "C"'
INSERT = f"INSERT INTO {KEYS} ({COLUMNS}) SELECT {COLUMNS} FROM new_rows{ORDERED};"
DELETE_OLD = (
    f"DELETE FROM {KEYS} k USING old_rows o WHERE k.version_id = o.version_id AND k.prediction_id = o.prediction_id;"
)
# one pass over the statement's rows (a hash aggregate: a count(DISTINCT …) sorted them, 2.5 s
# of 500,000 rows), then an index probe per version named
CHECK_VERSIONS = (
    "named := ARRAY(SELECT version_id FROM new_rows GROUP BY version_id);"
    f" IF (SELECT count(*) FROM (SELECT 1 FROM {VERSIONS} WHERE id = ANY(named) FOR KEY SHARE) locked)"
    " <> cardinality(named) THEN"
    " RAISE EXCEPTION 'a prediction names a model version that does not exist'"
    f" USING ERRCODE = 'foreign_key_violation', TABLE = '{TABLE}'; END IF;"
)
BODIES_BEFORE = {"insert": INSERT, "update": DELETE_OLD + INSERT}
BODIES_AFTER = {"insert": CHECK_VERSIONS + INSERT, "update": CHECK_VERSIONS + DELETE_OLD + INSERT}
GUARD = f"{VERSIONS}_predictions_guard"


def _functions(bodies, declare=""):
    return [
        f"CREATE OR REPLACE FUNCTION {KEYS}_{kind}() RETURNS trigger LANGUAGE plpgsql AS $$ {declare}BEGIN {body} "
        "RETURN NULL; END $$"
        for kind, body in bodies.items()
    ]


FORWARD = [
    f"ALTER TABLE {TABLE} DROP CONSTRAINT {TABLE}_version_fk",
    *_functions(BODIES_AFTER, declare="DECLARE named bigint[]; "),
    f"CREATE FUNCTION {GUARD}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    f"IF EXISTS (SELECT 1 FROM {TABLE} WHERE version_id = OLD.id) THEN "
    "RAISE EXCEPTION USING MESSAGE = 'model version ' || OLD.id || ' still has predictions', "
    f"ERRCODE = 'foreign_key_violation', TABLE = '{VERSIONS}'; END IF; RETURN NULL; END $$",
    f"CREATE CONSTRAINT TRIGGER {GUARD} AFTER DELETE ON {VERSIONS} DEFERRABLE INITIALLY DEFERRED "
    f"FOR EACH ROW EXECUTE FUNCTION {GUARD}()",
]
BACKWARD = [
    f"DROP TRIGGER {GUARD} ON {VERSIONS}",
    f"DROP FUNCTION {GUARD}()",
    *_functions(BODIES_BEFORE),
    f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_version_fk FOREIGN KEY (version_id) "
    f"REFERENCES {VERSIONS} (id) DEFERRABLE INITIALLY DEFERRED",
]


def _run(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for statement in statements:
            schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [("monitoring", "0030_window_slice_seconds")]

    operations = [migrations.RunPython(_run(FORWARD), _run(BACKWARD))]
