"""Paired counts of a candidate version against production on the same prediction ids."""

from django.db import models

from registry.models import ModelVersion


class PairedCounts(models.Model):
    """One hourly window of a non-production version's pairs with the production version
    (prediction ids both scored), as mergeable counts (``monitoring.pairing`` payload).

    Recomputed with the window (new pairs, late labels) and upserted, so a late label is never
    counted twice; ``baseline`` is the production version the pairs were made with: evidence
    sums only the rows of the current production version.
    """

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="paired_counts")
    baseline = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="+")
    window_start = models.DateTimeField()
    pairs = models.PositiveIntegerField(default=0)
    labelled = models.PositiveIntegerField(default=0)
    payload = models.JSONField(default=dict)
    computed_at = models.DateTimeField()

    class Meta:
        ordering = ["version", "window_start"]
        verbose_name_plural = "paired counts"
        constraints = [
            models.UniqueConstraint(fields=["version", "window_start"], name="unique_paired_counts_per_window")
        ]

    def __str__(self) -> str:
        return f"{self.version} vs v{self.baseline_id} {self.window_start:%Y-%m-%d %H:%M} ({self.pairs} pairs)"
