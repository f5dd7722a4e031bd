"""Periodic schedules of the monitoring engine (django-celery-beat): the one place they live."""

from django.db import migrations

SCHEDULES = [
    # (name, task, every seconds)
    ("monitoring: sweep dirty windows", "monitoring.tasks.monitoring_sweep_dirty_windows", 60),
    ("monitoring: evaluate health of every model", "monitoring.tasks.health_evaluate_all", 900),
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
        ("monitoring", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedules, remove_schedules)]
