"""Retrain triggers keep a short error class instead of the pipeline's answer.

``error`` held up to 1,000 characters of the answer to the POST (which an owner could read
back through the API); it is dropped with its contents.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("monitoring", "0008_pending_profile_sweep_schedule")]

    operations = [
        migrations.RemoveField(model_name="retraintrigger", name="error"),
        migrations.AddField(
            model_name="retraintrigger",
            name="error_class",
            field=models.CharField(
                blank=True,
                help_text="Short error class (e.g. http_500, refused); never the answer's body.",
                max_length=40,
            ),
        ),
    ]
