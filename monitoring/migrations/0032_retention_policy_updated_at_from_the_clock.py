"""A retention policy's ``updated_at`` comes from the project's clock, set by the service with
the change (it was ``auto_now``: the wall clock at save). A back-dated change, as the demo's
history makes, now carries on the policy the time its audit event carries. No schema change:
the default is Python's."""

from django.db import migrations, models

import mlops_portal.clock


class Migration(migrations.Migration):
    dependencies = [
        ("monitoring", "0031_prediction_version_checked_per_statement"),
    ]

    operations = [
        migrations.AlterField(
            model_name="retentionpolicy",
            name="updated_at",
            field=models.DateTimeField(default=mlops_portal.clock.now, editable=False),
        ),
    ]
