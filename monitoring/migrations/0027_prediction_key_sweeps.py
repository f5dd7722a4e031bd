"""The prediction keys of dropped days are deleted after the purge, not inside it.

``PredictionKeySweep`` records a UTC day whose predictions' partition the purge dropped while
its keys (``monitoring_predictionkey``, migration 0026) remain; the keys sweep
(``monitoring.tasks.prediction_keys_sweep``) deletes them in bounded batches and removes the
record when the day has none left. The purge queues the sweep when it commits; beat runs it
too at 02:45 UTC (the purge runs at 02:30), which picks up what a lost message or a crash left.
"""

from django.db import migrations, models

SWEEP = ("monitoring: delete the prediction keys of dropped days", "monitoring.tasks.prediction_keys_sweep")


def create_schedule(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every_day = {"day_of_week": "*", "day_of_month": "*", "month_of_year": "*", "timezone": "UTC"}
    nightly, _ = CrontabSchedule.objects.get_or_create(minute="45", hour="2", **every_day)
    PeriodicTask.objects.update_or_create(
        name=SWEEP[0], defaults={"task": SWEEP[1], "crontab": nightly, "interval": None, "enabled": True}
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=SWEEP[0]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("monitoring", "0026_prediction_keys"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.CreateModel(
            name="PredictionKeySweep",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("day", models.DateField(unique=True)),
                ("dropped_at", models.DateTimeField()),
            ],
            options={"ordering": ["day"]},
        ),
        migrations.RunPython(create_schedule, remove_schedule),
    ]
