"""The API token an audit event was made with (``AuditEvent.token``, hashed only when set, so the
events written before it keep their hashes). The database defaults it to '' too, so an INSERT
that does not name it (an older release during a deploy, a restore script) still works.

SQLite adds a NOT NULL column by rebuilding the table, which drops the table's triggers: the
append-only triggers of migration 0001 are installed again after it. PostgreSQL adds the column
in place (no rows are rewritten, no trigger fires) and keeps its triggers."""

from django.db import migrations, models

SQLITE_TRIGGERS = [
    "DROP TRIGGER IF EXISTS registry_auditevent_no_update;",
    "DROP TRIGGER IF EXISTS registry_auditevent_no_delete;",
    """CREATE TRIGGER registry_auditevent_no_update BEFORE UPDATE ON registry_auditevent
       BEGIN SELECT RAISE(ABORT, 'audit log is append-only: UPDATE refused on registry_auditevent'); END;""",
    """CREATE TRIGGER registry_auditevent_no_delete BEFORE DELETE ON registry_auditevent
       BEGIN SELECT RAISE(ABORT, 'audit log is append-only: DELETE refused on registry_auditevent'); END;""",
]


def reinstall_sqlite_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        for sql in SQLITE_TRIGGERS:
            schema_editor.execute(sql)


class Migration(migrations.Migration):

    dependencies = [
        ('registry', '0022_rows_stamped_by_the_clock'),
    ]

    operations = [
        # backwards, removing the column rebuilds the table too: the triggers go back after it
        migrations.RunPython(migrations.RunPython.noop, reinstall_sqlite_triggers),
        migrations.AddField(
            model_name='auditevent',
            name='token',
            field=models.CharField(blank=True, db_default='', default='', max_length=32),
        ),
        migrations.RunPython(reinstall_sqlite_triggers, migrations.RunPython.noop),
    ]
