"""Erasure requests answer per model in a table of their own (``ErasureOutcome``) instead of a
JSON list on the request, so a model's compliance report can list the erasures that reached it
on both databases. Existing answers move over row for row before the JSON column goes."""

import django.db.models.deletion
from django.db import migrations, models


def results_to_outcomes(apps, schema_editor):
    ErasureRequest = apps.get_model("monitoring", "ErasureRequest")
    ErasureOutcome = apps.get_model("monitoring", "ErasureOutcome")
    RegisteredModel = apps.get_model("registry", "RegisteredModel")
    ids = dict(RegisteredModel.objects.values_list("name", "pk"))  # models are never deleted (PROTECT)
    outcomes = [
        ErasureOutcome(
            request_id=request.pk,
            model_id=ids[r["model"]],
            predictions=r["predictions"],
            labels=r["labels"],
            status=r["status"],
            hold_reason=r.get("reason", ""),
            hold_article=r.get("article", ""),
        )
        for request in ErasureRequest.objects.all().iterator()
        for r in request.results or []
    ]
    ErasureOutcome.objects.bulk_create(outcomes, batch_size=1000)


def outcomes_to_results(apps, schema_editor):
    ErasureRequest = apps.get_model("monitoring", "ErasureRequest")
    for request in ErasureRequest.objects.prefetch_related("outcomes__model"):
        request.results = [
            {"model": o.model.name, "predictions": o.predictions, "labels": o.labels, "status": o.status}
            | ({"reason": o.hold_reason, "article": o.hold_article} if o.status == "held" else {})
            for o in sorted(request.outcomes.all(), key=lambda o: o.model.name)
        ]
        request.save(update_fields=["results"])


class Migration(migrations.Migration):
    dependencies = [
        ("monitoring", "0032_retention_policy_updated_at_from_the_clock"),
        ("registry", "0021_stage_transition_actor_optional"),
    ]

    operations = [
        migrations.CreateModel(
            name="ErasureOutcome",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("predictions", models.PositiveBigIntegerField()),
                ("labels", models.PositiveBigIntegerField()),
                ("status", models.CharField(choices=[("erased", "Erased"), ("held", "Held")], max_length=10)),
                ("hold_reason", models.TextField(blank=True, max_length=2000)),
                ("hold_article", models.CharField(blank=True, max_length=200)),
                (
                    "model",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="erasure_outcomes",
                        to="registry.registeredmodel",
                    ),
                ),
                (
                    "request",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="outcomes",
                        to="monitoring.erasurerequest",
                    ),
                ),
            ],
            options={
                "ordering": ["request", "model__name"],
                "constraints": [
                    models.UniqueConstraint(fields=("request", "model"), name="unique_erasure_outcome_per_model")
                ],
            },
        ),
        migrations.RunPython(results_to_outcomes, outcomes_to_results),
        migrations.RemoveField(model_name="erasurerequest", name="results"),
    ]
