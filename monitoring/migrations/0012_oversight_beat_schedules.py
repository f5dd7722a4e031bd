"""Periodic schedules of post-launch oversight (django-celery-beat): incident deadline
reminders, the review sweep (due and triggered reviews) and the escalation of overdue findings."""

from django.db import migrations

SCHEDULES = [
    # (name, task, every seconds)
    ("oversight: incident deadline reminders", "monitoring.oversight.tasks.incident_reminders_send", 60),
    ("oversight: open due and triggered reviews", "monitoring.oversight.tasks.reviews_sweep", 900),
    ("oversight: escalate overdue findings", "monitoring.oversight.tasks.findings_escalate", 3600),
]


def create_schedules(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, task, seconds in SCHEDULES:
        interval, _ = IntervalSchedule.objects.get_or_create(every=seconds, period="seconds")
        PeriodicTask.objects.update_or_create(name=name, defaults={"task": task, "interval": interval, "enabled": True})


def remove_schedules(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=[s[0] for s in SCHEDULES]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("monitoring", "0011_oversight_incidents_reviews_findings"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedules, remove_schedules)]
