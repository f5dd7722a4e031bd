"""Slices span a number of seconds of their own (sparse spans merged): the slices stored so
far are a cache of raw rows and are dropped; their hours are read whole at their next
computation (monitoring.services.window_slices)."""

from django.db import migrations, models


def forget_slices(apps, schema_editor):
    apps.get_model("monitoring", "WindowSlice").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("monitoring", "0029_window_slices")]

    operations = [
        migrations.RunPython(forget_slices, migrations.RunPython.noop),
        migrations.AddField(
            model_name="windowslice",
            name="seconds",
            field=models.PositiveIntegerField(default=0, help_text="prediction time the slice spans"),
            preserve_default=False,
        ),
    ]
