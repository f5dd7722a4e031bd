"""The audit table refuses TRUNCATE at the database (PostgreSQL).

A statement-level ``BEFORE TRUNCATE`` trigger; it also fires when a ``TRUNCATE … CASCADE`` of
another table reaches the audit table. A transaction may set
``SET LOCAL mlops.allow_audit_truncate = 'on'`` to get through: the test harness does so for
its flushes and the audit benchmark for its reload; the portal never does. This is a guard
against a careless wipe, not against a role that may set the switch: in production the
application's role has no TRUNCATE privilege at all (docs/audit.md).

SQLite has no TRUNCATE; its equivalent, an unqualified DELETE, is already refused by the
row trigger of migration 0002.
"""

from django.db import migrations

PG_FORWARD = """
CREATE OR REPLACE FUNCTION registry_auditevent_no_truncate() RETURNS trigger AS $$
BEGIN
    IF current_setting('mlops.allow_audit_truncate', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'audit log is append-only: TRUNCATE refused on registry_auditevent'
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER registry_auditevent_no_truncate BEFORE TRUNCATE ON registry_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION registry_auditevent_no_truncate();
"""
PG_REVERSE = """
DROP TRIGGER IF EXISTS registry_auditevent_no_truncate ON registry_auditevent;
DROP FUNCTION IF EXISTS registry_auditevent_no_truncate();
"""


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_FORWARD)


def remove(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_REVERSE)


class Migration(migrations.Migration):
    dependencies = [("registry", "0007_webhook_delivery_error_class")]

    operations = [migrations.RunPython(install, remove)]
