"""Evaluation runs: an uploaded evaluation set of a version and the summaries computed from it.

The upload endpoint and the computation live in ``monitoring`` (``monitoring.services.evaluations``);
the run lives here so that promotion gates (``registry.gates_fairness``) can read its evidence
without ``registry`` importing ``monitoring``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from mlops_portal import clock
from registry.choices import EvaluationKind, EvaluationStatus


class EvaluationRun(models.Model):
    """One evaluation set of a version (labels, predictions, scores, sensitive attributes) and its results.

    LLM-application runs (``kind="llm"``) keep one row per case in ``data``: the case id, its safety
    category and its scores (no prompt or completion text); ``evaluation_set`` names the set, so two
    versions evaluated on the same set are compared case by case (``registry.gates_llm``).

    ``data`` keeps the validated set as Parquet: it holds raw sensitive values, so it is never
    shown, exported or audited; only the aggregated ``results`` (groups of at least
    ``FAIRNESS_MIN_GROUP_SIZE`` rows) leave the database."""

    version = models.ForeignKey("registry.ModelVersion", on_delete=models.PROTECT, related_name="evaluation_runs")
    kind = models.CharField(max_length=20, choices=EvaluationKind.choices, default=EvaluationKind.FAIRNESS)
    status = models.CharField(max_length=10, choices=EvaluationStatus.choices, default=EvaluationStatus.PENDING)
    error = models.TextField(blank=True)
    source_format = models.CharField(max_length=10)
    n_rows = models.PositiveIntegerField()
    attributes = models.JSONField(default=list, help_text="The sensitive attributes evaluated.")
    evaluation_set = models.CharField(
        max_length=100, blank=True, default="", help_text="LLM runs: the evaluation set's name (runs pair by case id)."
    )
    data = models.BinaryField(editable=False)
    data_sha256 = models.CharField(max_length=64)
    results = models.JSONField(default=dict, blank=True, help_text="The computed report (aggregates only).")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    created_at = models.DateTimeField(default=clock.now, editable=False)
    computed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["version", "kind", "-created_at"], name="evaluation_version_kind")]

    def __str__(self) -> str:
        return f"{self.kind} evaluation #{self.pk} of {self.version_id}"
