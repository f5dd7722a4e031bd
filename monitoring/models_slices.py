"""A slice of an hourly window: what the hour's computation reads from raw rows, kept per span
of prediction time so that a recomputation of the live hour reads only the slices whose rows
changed (``monitoring.services.window_slices``)."""

from django.db import models

from registry.models import ModelVersion


class WindowSlice(models.Model):
    """One slice's additive results: its row count, every feature's bin counts (packed as in
    ``PackedBinCounts``), the fairness group counts and the DLE error sums, for the
    ``seconds`` of prediction time from ``slice_start`` (a whole number of
    ``WINDOW_SLICE_SECONDS``: sparse spans are merged until they hold ``WINDOW_SLICE_MIN_ROWS``).
    ``basis`` names what they were computed with (reference profile, schema, sensitive
    attributes): an hour whose slices have another basis is read again in full. Kept for
    ``WINDOW_SLICES_KEPT_HOURS`` only (the nightly purge); an hour without slices is read in
    full, as before slices existed."""

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="window_slices")
    slice_start = models.DateTimeField()
    seconds = models.PositiveIntegerField(help_text="prediction time the slice spans")
    rows = models.PositiveBigIntegerField(default=0)
    basis = models.CharField(max_length=64)
    layout = models.JSONField(default=dict)
    dtype = models.CharField(max_length=8, default="<u4")
    counts = models.BinaryField(editable=False, default=b"")
    quality = models.BinaryField(editable=False, default=b"")
    groups = models.JSONField(default=dict, help_text="attribute → group → fairness counts")
    dle = models.JSONField(null=True, blank=True, help_text="DLE sums: n, abs_sum, sq_sum")
    computed_at = models.DateTimeField()

    class Meta:
        ordering = ["version", "slice_start"]
        constraints = [models.UniqueConstraint(fields=["version", "slice_start"], name="unique_window_slice")]

    def __str__(self) -> str:
        return f"slice {self.version} {self.slice_start:%Y-%m-%d %H:%M:%S} +{self.seconds}s ({self.rows} rows)"


class DirtySlice(models.Model):
    """A ``WINDOW_SLICE_SECONDS`` span whose rows changed since the slice holding it was
    computed; marked by ingestion in the data's transaction, removed by the hour's computation
    only if not marked again meanwhile."""

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="dirty_slices")
    slice_start = models.DateTimeField()
    marked_at = models.DateTimeField()

    class Meta:
        ordering = ["version", "slice_start"]
        constraints = [models.UniqueConstraint(fields=["version", "slice_start"], name="unique_dirty_slice")]

    def __str__(self) -> str:
        return f"dirty slice {self.version} {self.slice_start:%Y-%m-%d %H:%M:%S}"
