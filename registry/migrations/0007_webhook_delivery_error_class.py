"""Webhook deliveries keep a short error class instead of the receiver's answer.

``last_error`` held up to 200 characters of whatever the receiver answered (an internal
service's secret, if the URL pointed at one); it is dropped with its contents, and the
attempt log's ``error`` entries are cut down to their error class.
"""

from django.db import migrations, models


def scrub_attempt_logs(apps, schema_editor):
    WebhookDelivery = apps.get_model("registry", "WebhookDelivery")
    for delivery in WebhookDelivery.objects.exclude(attempt_log=[]).iterator():
        log = []
        for entry in delivery.attempt_log or []:
            entry = dict(entry)
            error = str(entry.get("error") or "")
            code = entry.get("status_code")
            if error:
                entry["error"] = f"http_{code}" if code else error.split(":", 1)[0][:40]
            log.append(entry)
        WebhookDelivery.objects.filter(pk=delivery.pk).update(attempt_log=log)


class Migration(migrations.Migration):
    dependencies = [("registry", "0006_inventory_revision")]

    operations = [
        migrations.RemoveField(model_name="webhookdelivery", name="last_error"),
        migrations.AddField(
            model_name="webhookdelivery",
            name="last_error_class",
            field=models.CharField(
                blank=True,
                help_text="Short error class (e.g. http_500, timeout); never the answer's body.",
                max_length=40,
            ),
        ),
        migrations.RunPython(scrub_attempt_logs, migrations.RunPython.noop),
    ]
