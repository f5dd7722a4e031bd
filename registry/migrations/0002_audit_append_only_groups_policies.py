"""The audit table refuses UPDATE and DELETE at the database; roles and default policies exist."""

from django.db import migrations

PG_FORWARD = """
CREATE OR REPLACE FUNCTION registry_auditevent_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit log is append-only: %% refused on registry_auditevent', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER registry_auditevent_no_update BEFORE UPDATE ON registry_auditevent
    FOR EACH ROW EXECUTE FUNCTION registry_auditevent_append_only();
CREATE TRIGGER registry_auditevent_no_delete BEFORE DELETE ON registry_auditevent
    FOR EACH ROW EXECUTE FUNCTION registry_auditevent_append_only();
"""
PG_REVERSE = """
DROP TRIGGER IF EXISTS registry_auditevent_no_update ON registry_auditevent;
DROP TRIGGER IF EXISTS registry_auditevent_no_delete ON registry_auditevent;
DROP FUNCTION IF EXISTS registry_auditevent_append_only();
"""
SQLITE_FORWARD = [
    """CREATE TRIGGER registry_auditevent_no_update BEFORE UPDATE ON registry_auditevent
       BEGIN SELECT RAISE(ABORT, 'audit log is append-only: UPDATE refused on registry_auditevent'); END;""",
    """CREATE TRIGGER registry_auditevent_no_delete BEFORE DELETE ON registry_auditevent
       BEGIN SELECT RAISE(ABORT, 'audit log is append-only: DELETE refused on registry_auditevent'); END;""",
]
SQLITE_REVERSE = [
    "DROP TRIGGER IF EXISTS registry_auditevent_no_update;",
    "DROP TRIGGER IF EXISTS registry_auditevent_no_delete;",
]

DEFAULT_POLICIES = {"low": 1, "medium": 1, "high": 2}


def install_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_FORWARD)
    elif vendor == "sqlite":
        for sql in SQLITE_FORWARD:
            schema_editor.execute(sql)


def remove_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_REVERSE)
    elif vendor == "sqlite":
        for sql in SQLITE_REVERSE:
            schema_editor.execute(sql)


def create_roles_and_policies(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for name in ("reviewer", "auditor"):
        Group.objects.get_or_create(name=name)
    PromotionPolicy = apps.get_model("registry", "PromotionPolicy")
    for tier, approvals in DEFAULT_POLICIES.items():
        PromotionPolicy.objects.get_or_create(risk_tier=tier, defaults={"approvals_required": approvals})


class Migration(migrations.Migration):
    dependencies = [("registry", "0001_initial"), ("auth", "0012_alter_user_first_name_max_length")]

    operations = [
        migrations.RunPython(install_triggers, remove_triggers),
        migrations.RunPython(create_roles_and_policies, migrations.RunPython.noop),
    ]
