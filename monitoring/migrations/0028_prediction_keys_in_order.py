"""The keys' triggers insert a statement's keys in one order, so concurrent batches cannot deadlock.

Batches of one version now store their rows side by side (only their days' digests wait for the
version's lock), so two batches that share prediction ids could each insert some of the shared
keys (``monitoring_predictionkey``, migration 0026) and then wait for the other's: a deadlock,
which PostgreSQL breaks after a second by failing one of them with an error instead of the
unique violation that ingestion answers as "already stored". Inserting every statement's keys
sorted by (version, prediction id) gives all writers the same order: the second of two batches
sharing ids waits on the first id they share, and fails on it when the first commits. The sort
uses the "C" collation (byte order): any one order serves, and it is the cheapest.
"""

from django.db import migrations

KEYS = "monitoring_predictionkey"
COLUMNS = 'version_id, prediction_id, "timestamp"'
DELETE_OLD = (
    f"DELETE FROM {KEYS} k USING old_rows o WHERE k.version_id = o.version_id AND k.prediction_id = o.prediction_id;"
)


def _insert(order: str) -> str:
    return f"INSERT INTO {KEYS} ({COLUMNS}) SELECT {COLUMNS} FROM new_rows{order};"


def _bodies(order: str) -> dict[str, str]:
    return {"insert": _insert(order), "update": DELETE_OLD + _insert(order)}


ORDERED = ' ORDER BY version_id, prediction_id COLLATE "C"'


def _replace(order: str):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for kind, body in _bodies(order).items():
            schema_editor.execute(
                f"CREATE OR REPLACE FUNCTION {KEYS}_{kind}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {body} "
                "RETURN NULL; END $$"
            )

    return run


class Migration(migrations.Migration):
    dependencies = [("monitoring", "0027_prediction_key_sweeps")]

    operations = [migrations.RunPython(_replace(ORDERED), _replace(""))]
