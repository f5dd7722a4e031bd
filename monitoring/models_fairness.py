"""Fairness monitoring tables: sensitive values kept apart from features, and per-group window counts."""

from __future__ import annotations

from django.db import models

from registry.models import ModelVersion

from .choices import Granularity


class PredictionSensitive(models.Model):
    """The sensitive attributes sent with one prediction (EU AI Act Art. 10(5) safeguard): kept
    apart from ``Prediction.features`` (never in drift profiles, exports, the audit log or the
    API), read only to aggregate groups for fairness monitoring."""

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="+")
    prediction_id = models.CharField(max_length=100)
    timestamp = models.DateTimeField()
    values = models.JSONField(default=dict, help_text="Attribute → group (text or null).")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["version", "prediction_id"], name="unique_sensitive_per_prediction")
        ]
        indexes = [models.Index(fields=["version", "timestamp"], name="sensitive_version_ts")]

    def __str__(self) -> str:
        return f"sensitive values of {self.prediction_id}"


class WindowGroupCounts(models.Model):
    """Per (version, window, attribute): each group's mergeable counts, ``[n, predicted positive,
    tn, fp, fn, tp]`` (classification, the last four from labelled rows) or ``[n, labelled,
    Σ|ŷ − y|, Σ(ŷ − y)]`` (regression). Hourly rows are recomputed from rows (labels joined by
    prediction id, so a late or re-sent label never counts twice); daily rows are sums of hours."""

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="+")
    granularity = models.CharField(max_length=8, choices=Granularity.choices)
    window_start = models.DateTimeField()
    attribute = models.CharField(max_length=200)
    groups = models.JSONField(default=list)
    counts = models.JSONField(default=list)
    computed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["version", "granularity", "window_start", "attribute"], name="unique_group_counts_window"
            )
        ]

    def __str__(self) -> str:
        return f"{self.attribute} groups of {self.version_id} at {self.window_start}"
