"""Monitoring domain: reference profiles, predictions, labels, metrics, health, alerts.

Monitoring may import registry; registry never imports monitoring.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from mlops_portal import clock
from registry.models import ModelVersion, RegisteredModel

from .choices import (
    AlertKind,
    AlertSeverity,
    AlertStatus,
    DriftRule,
    Granularity,
    HealthState,
    ProfileStatus,
    RetrainStatus,
)
from .models_alerting import AlertRecoverySettings, AlertRecoveryState
from .models_llm import LLMRequest, LLMThresholds, Price  # noqa: F401 - LLM request records and prices
from .models_partitioned import LabelQuerySet, PartitionedQuerySet


class MonitoringConfig(LLMThresholds, AlertRecoverySettings):
    """Per-model monitoring settings: windows, bins, drift rule and thresholds, alerting, retraining.

    Changed only through ``monitoring.services.config.monitoring_config_update`` (audited
    ``monitoring.thresholds_changed``).
    """

    model = models.OneToOneField(RegisteredModel, on_delete=models.CASCADE, related_name="monitoring_config")
    granularity = models.CharField(max_length=10, choices=Granularity.choices, default=Granularity.DAILY)
    n_bins = models.PositiveSmallIntegerField(
        default=10, validators=[MinValueValidator(10), MaxValueValidator(20)], help_text="Quantile bins (10–20)."
    )
    drift_rule = models.CharField(max_length=20, choices=DriftRule.choices, default=DriftRule.PSI)
    psi_warning = models.FloatField(default=0.1, validators=[MinValueValidator(0)])
    psi_critical = models.FloatField(default=0.25, validators=[MinValueValidator(0)])
    p_value_threshold = models.FloatField(default=0.05, validators=[MinValueValidator(0), MaxValueValidator(1)])
    js_threshold = models.FloatField(default=0.1, validators=[MinValueValidator(0), MaxValueValidator(1)])
    wasserstein_threshold = models.FloatField(default=0.1, validators=[MinValueValidator(0)])
    drift_share_warning = models.FloatField(
        default=0.2, validators=[MinValueValidator(0), MaxValueValidator(1)], help_text="Share of drifted features."
    )
    drift_share_critical = models.FloatField(default=0.5, validators=[MinValueValidator(0), MaxValueValidator(1)])
    missing_share_warning = models.FloatField(default=0.1, validators=[MinValueValidator(0), MaxValueValidator(1)])
    out_of_range_share_warning = models.FloatField(default=0.1, validators=[MinValueValidator(0), MaxValueValidator(1)])
    performance_drop_warning = models.FloatField(
        default=0.05,
        validators=[MinValueValidator(0)],
        help_text="Absolute drop of the primary metric versus the version's offline value that raises a warning.",
    )
    performance_drop_critical = models.FloatField(default=0.1, validators=[MinValueValidator(0)])
    label_coverage_threshold = models.FloatField(
        default=0.8,
        validators=[MinValueValidator(0), MaxValueValidator(1)],
        help_text="Performance windows stay provisional until this share of predictions has labels.",
    )
    min_window_rows = models.PositiveIntegerField(
        default=100, help_text="Windows with fewer rows are computed but do not decide health."
    )
    retrain_url = models.URLField(max_length=500, blank=True, help_text="Training pipeline webhook URL.")
    retrain_cooldown_hours = models.PositiveIntegerField(default=24, validators=[MinValueValidator(1)])
    alert_recipients = models.JSONField(default=list, blank=True, help_text="E-mail addresses.")
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    created_at = models.DateTimeField(default=clock.now, editable=False)
    updated_at = clock.UpdatedAtField()

    class Meta:
        ordering = ["model__name"]

    def __str__(self) -> str:
        return f"Monitoring of {self.model}"

    def clean(self) -> None:
        errors = {}
        if self.psi_critical < self.psi_warning:
            errors["psi_critical"] = "Must be at least the warning threshold."
        if self.drift_share_critical < self.drift_share_warning:
            errors["drift_share_critical"] = "Must be at least the warning threshold."
        if self.performance_drop_critical < self.performance_drop_warning:
            errors["performance_drop_critical"] = "Must be at least the warning threshold."
        errors.update(self.llm_threshold_errors())
        if not isinstance(self.alert_recipients, list) or not all(
            isinstance(a, str) and "@" in a for a in self.alert_recipients
        ):
            errors["alert_recipients"] = "A list of e-mail addresses."
        if errors:
            raise ValidationError(errors)


class ReferenceProfile(models.Model):
    """A version's reference data and the profile computed once from it.

    ``data`` holds the validated upload as Parquet (so any worker machine can recompute);
    ``profile`` holds, per feature, what drift needs (see ``monitoring.services.profiles``):
    bin edges and counts, summary stats, a bounded sample, top categories + other/missing,
    and the same for the prediction/score columns (per class for classification).
    """

    version = models.OneToOneField(ModelVersion, on_delete=models.CASCADE, related_name="reference_profile")
    status = models.CharField(max_length=10, choices=ProfileStatus.choices, default=ProfileStatus.PENDING)
    error = models.TextField(blank=True)
    source_format = models.CharField(max_length=10, help_text="csv or parquet")
    n_rows = models.PositiveIntegerField(default=0)
    n_bins = models.PositiveSmallIntegerField(default=10)
    data = models.BinaryField(editable=False)
    data_sha256 = models.CharField(max_length=64)
    profile = models.JSONField(default=dict, blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    uploaded_at = models.DateTimeField(default=clock.now, editable=False)
    computed_at = models.DateTimeField(null=True, blank=True)
    enqueued_at = models.DateTimeField(
        null=True, blank=True, help_text="When the pending-profile sweep last queued its computation."
    )

    class Meta:
        ordering = ["-uploaded_at"]

    def __str__(self) -> str:
        return f"Reference of {self.version} ({self.status})"


def subject_hash_field() -> models.CharField:
    """The data subject of a raw row (prediction or label), for erasure requests (GDPR Art. 17)."""
    return models.CharField(
        max_length=64,
        null=True,
        blank=True,
        help_text="HMAC-SHA256 of the data subject's id under SUBJECT_KEY; never the id itself.",
    )


PredictionQuerySet = PartitionedQuerySet  # ORM inserts make sure the rows' daily partitions exist


class Prediction(models.Model):
    """One prediction served by a version. Ingested in bulk (COPY on PostgreSQL)."""

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="predictions")
    prediction_id = models.CharField(max_length=100)
    timestamp = models.DateTimeField()
    features = models.JSONField(default=dict)
    prediction = models.JSONField(null=True, blank=True, help_text="Class label or regression value.")
    score = models.FloatField(null=True, blank=True, help_text="Positive-class probability (binary) or confidence.")
    received_at = models.DateTimeField()
    subject_hash = subject_hash_field()

    objects = PredictionQuerySet.as_manager()

    class Meta:
        # On PostgreSQL the table is partitioned by day on ``timestamp`` (migration 0015), so a
        # prediction id's uniqueness per version is checked by ingestion under a lock
        # (monitoring.services.partitions); SQLite keeps a unique constraint as well.
        ordering = ["-timestamp"]
        indexes = [
            models.Index(fields=["version", "timestamp"], name="prediction_version_ts"),
            models.Index(fields=["version", "prediction_id"], name="prediction_version_pid"),
            models.Index(fields=["subject_hash"], condition=Q(subject_hash__isnull=False), name="prediction_subject"),
        ]

    def __str__(self) -> str:
        return f"{self.version} {self.prediction_id}"


class GroundTruth(models.Model):
    """The true outcome for a prediction id, joined later (labels arrive late).

    One row per (model, prediction id): a re-sent label replaces the old one, so windows
    are recomputed without double counting. On PostgreSQL the table is partitioned by day on
    ``received_at`` (migration 0025), so that one-per-id rule is kept by ingestion under a
    per-model lock (monitoring.services.partitions); SQLite keeps a unique constraint.
    """

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="ground_truth")
    prediction_id = models.CharField(max_length=100)
    label = models.JSONField()
    received_at = models.DateTimeField()
    subject_hash = subject_hash_field()

    objects = LabelQuerySet.as_manager()

    class Meta:
        # no default ordering: the label join's ``[:1]`` subquery would inherit it, and on the
        # partitioned table an ORDER BY received_at made PostgreSQL walk every label of the
        # model in every partition instead of probing (model, prediction_id)
        indexes = [
            models.Index(fields=["model", "received_at"], name="label_model_received"),
            models.Index(fields=["model", "prediction_id"], name="label_model_pid"),
            models.Index(fields=["subject_hash"], condition=Q(subject_hash__isnull=False), name="label_subject"),
        ]

    def __str__(self) -> str:
        return f"{self.model} {self.prediction_id} = {self.label}"


class WindowBinCounts(models.Model):
    """Per (version, window, feature) histogram on the reference bins, so that longer
    windows are sums of shorter ones (daily = sum of its hourly rows).

    ``counts`` follows the reference profile's bins (numeric) or categories + other
    (categorical). ``missing`` rows are not in ``counts``; ``out_of_range`` counts values
    outside the reference [min, max]; ``unseen`` counts categories absent from the reference.
    """

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="window_bin_counts")
    window_start = models.DateTimeField()
    granularity = models.CharField(max_length=10, choices=Granularity.choices, default=Granularity.HOURLY)
    feature = models.CharField(max_length=200)
    counts = models.JSONField(default=list)
    n = models.PositiveIntegerField(default=0)
    missing = models.PositiveIntegerField(default=0)
    out_of_range = models.PositiveIntegerField(default=0)
    unseen = models.PositiveIntegerField(default=0)
    computed_at = clock.UpdatedAtField()

    class Meta:
        ordering = ["version", "window_start", "feature"]
        verbose_name_plural = "window bin counts"
        indexes = [models.Index(fields=["version", "feature", "window_start"], name="bincounts_version_feature_ts")]
        constraints = [
            models.UniqueConstraint(
                fields=["version", "window_start", "granularity", "feature"], name="unique_bin_counts_per_window"
            )
        ]

    def __str__(self) -> str:
        return f"{self.version} {self.granularity} {self.window_start:%Y-%m-%d %H:%M} {self.feature}"


class PackedBinCounts(models.Model):
    """Every feature's bin counts of one (version, window, granularity) in one row, so that
    a daily window is the numpy sum of 24 rows instead of a read of 24 × features JSON rows.

    Written in the same transaction as the window's ``WindowBinCounts`` rows (which stay, for
    the dashboards' per-feature reads) and read by ``monitoring.services.windows.stored_counts``.
    Layout (see ``monitoring.services.packed_counts.pack_counts``): ``layout`` is
    ``{"features": [names…], "widths": [bins…]}``; ``counts`` is the features' counts
    concatenated in that order, as raw little-endian integers of ``dtype`` (the narrowest
    unsigned type holding the largest count); ``quality`` is int64 ``(features, 3)``:
    missing, out_of_range, unseen.
    """

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="packed_bin_counts")
    window_start = models.DateTimeField()
    granularity = models.CharField(max_length=10, choices=Granularity.choices, default=Granularity.HOURLY)
    layout = models.JSONField(default=dict)
    dtype = models.CharField(max_length=8, default="<u4", help_text="numpy dtype of counts")
    counts = models.BinaryField(editable=False)
    quality = models.BinaryField(editable=False)
    computed_at = clock.UpdatedAtField()

    class Meta:
        ordering = ["version", "window_start"]
        verbose_name_plural = "packed bin counts"
        constraints = [
            models.UniqueConstraint(
                fields=["version", "granularity", "window_start"], name="unique_packed_bin_counts_per_window"
            )
        ]

    def __str__(self) -> str:
        return f"{self.version} {self.granularity} {self.window_start:%Y-%m-%d %H:%M} (packed)"


class MetricValue(models.Model):
    """One metric of one window: drift, data quality, volume, prediction drift or performance.

    ``feature`` is '' for dataset-level metrics and ``__prediction__`` / ``__score__`` for the
    prediction columns. Unique per (version, window, feature, metric): recomputing overwrites.
    """

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="metric_values")
    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="metric_values")
    granularity = models.CharField(max_length=10, choices=Granularity.choices)
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    feature = models.CharField(max_length=200, blank=True, default="")
    metric = models.CharField(max_length=40)
    value = models.FloatField(null=True, blank=True, help_text="Null when undefined (e.g. one class only).")
    provisional = models.BooleanField(default=False, help_text="Performance before label coverage passed threshold.")
    computed_at = models.DateTimeField()

    class Meta:
        ordering = ["window_start", "feature", "metric"]
        constraints = [
            models.UniqueConstraint(
                fields=["version", "window_start", "window_end", "feature", "metric"], name="unique_metric_per_window"
            )
        ]
        indexes = [
            models.Index(fields=["model", "metric", "window_start"], name="metric_model_metric_ts"),
            models.Index(fields=["version", "granularity", "window_start"], name="metric_version_gran_ts"),
            # the dashboards read one metric series of a model at one granularity over a range
            models.Index(fields=["model", "granularity", "metric", "window_start"], name="metric_model_gran_metric_ts"),
        ]

    def __str__(self) -> str:
        return f"{self.version} {self.window_start:%Y-%m-%d %H:%M} {self.feature or '*'} {self.metric}={self.value}"


class DirtyWindow(models.Model):
    """A window whose inputs changed (new predictions or labels) and must be recomputed.

    Marked by ingestion in the same transaction as the data, so nothing depends on the
    broker; swept by the ``monitoring_sweep_dirty_windows`` beat task.
    """

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="dirty_windows")
    window_start = models.DateTimeField()
    granularity = models.CharField(max_length=10, choices=Granularity.choices)
    marked_at = models.DateTimeField()
    enqueued_at = models.DateTimeField(
        null=True, blank=True, help_text="When the sweep last queued its computation (null: not queued)."
    )
    claimed_at = models.DateTimeField(null=True, blank=True, help_text="When a computation last started on it.")
    lease_until = models.DateTimeField(
        null=True,
        blank=True,
        help_text="A claimed window whose computation has not stored its results by then is queued again.",
    )

    class Meta:
        ordering = ["marked_at"]
        constraints = [
            models.UniqueConstraint(fields=["version", "window_start", "granularity"], name="unique_dirty_window")
        ]

    def __str__(self) -> str:
        return f"dirty {self.version} {self.granularity} {self.window_start:%Y-%m-%d %H:%M}"


class WindowFailure(models.Model):
    """A window whose computation failed for a reason that retrying will not cure (its data).

    Recorded in the transaction that removes the window's dirty mark, so the window is not
    retried in a loop; new data for the window marks it dirty again (one more attempt), and a
    successful computation deletes the failure. Listed on the model's dashboard.
    """

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="window_failures")
    window_start = models.DateTimeField()
    granularity = models.CharField(max_length=10, choices=Granularity.choices)
    reason = models.TextField()
    attempts = models.PositiveIntegerField(default=1)
    failed_at = models.DateTimeField()

    class Meta:
        ordering = ["-failed_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["version", "window_start", "granularity"], name="unique_window_failure")
        ]

    def __str__(self) -> str:
        return f"failed {self.version} {self.granularity} {self.window_start:%Y-%m-%d %H:%M}: {self.reason[:60]}"


class HealthStatus(models.Model):
    """A model's current health with the reasons, recomputed after every window."""

    model = models.OneToOneField(RegisteredModel, on_delete=models.CASCADE, related_name="health")
    status = models.CharField(max_length=10, choices=HealthState.choices, default=HealthState.NO_DATA)
    reasons = models.JSONField(default=list, blank=True, help_text='[{"kind", "severity", "message", …}]')
    window_start = models.DateTimeField(null=True, blank=True)
    window_end = models.DateTimeField(null=True, blank=True)
    computed_at = models.DateTimeField()

    class Meta:
        ordering = ["model__name"]
        verbose_name_plural = "health statuses"

    def __str__(self) -> str:
        return f"{self.model}: {self.status}"

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        instance.loaded_status = instance.__dict__.get("status")  # to tell a status change from a recompute
        return instance


class Alert(AlertRecoveryState):
    """Opened when a model's health degrades in one area, resolved when it has recovered
    (``monitoring.models_alerting``: for a number of windows), reopened when it comes back soon
    after, acknowledged by the owner with a comment. At most one unresolved alert per (model, kind)."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(max_length=20, choices=AlertKind.choices)
    severity = models.CharField(max_length=10, choices=AlertSeverity.choices)
    status = models.CharField(max_length=15, choices=AlertStatus.choices, default=AlertStatus.OPEN)
    title = models.CharField(max_length=300)
    reasons = models.JSONField(default=list, blank=True)
    opened_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledge_comment = models.TextField(blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["model", "kind"], condition=~Q(status="resolved"), name="one_unresolved_alert_per_kind"
            )
        ]
        indexes = [models.Index(fields=["status", "opened_at"], name="alert_status_opened")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.model} {self.kind} {self.severity} ({self.status})"

    @property
    def reasons_beyond_title(self) -> list:
        """The reasons whose message the title (its kind and the messages, cut at 300
        characters) does not already say in full: what a page lists under the title."""
        messages = [r.get("message") or str(r) if isinstance(r, dict) else str(r) for r in self.reasons or []]
        return [m for m in messages if m not in self.title]

    @property
    def is_active(self) -> bool:
        return self.status != AlertStatus.RESOLVED


class RetrainTrigger(models.Model):
    """A call to the model's training pipeline, fired on critical drift or an overdue cadence,
    at most once per cool-down. Recorded whether or not the call succeeded."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="retrain_triggers")
    version = models.ForeignKey(ModelVersion, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    reason = models.CharField(max_length=300)
    details = models.JSONField(default=dict, blank=True)
    url = models.URLField(max_length=500, blank=True)
    status = models.CharField(max_length=10, choices=RetrainStatus.choices)
    response_code = models.PositiveIntegerField(null=True, blank=True)
    error_class = models.CharField(
        max_length=40, blank=True, help_text="Short error class (e.g. http_500, refused); never the answer's body."
    )
    delivery_ref = models.CharField(max_length=100, blank=True, help_text="Webhook delivery id(s), if any.")
    fired_at = models.DateTimeField()

    class Meta:
        ordering = ["-fired_at", "-id"]
        indexes = [models.Index(fields=["model", "fired_at"], name="retrain_model_fired")]

    def __str__(self) -> str:
        return f"retrain {self.model} at {self.fired_at:%Y-%m-%d %H:%M} ({self.status})"


class IngestBatch(models.Model):
    """A stored batch of predictions, by the SHA-256 digest of its request body: a client that
    resends the same body (its answer was lost) is told the batch is already stored instead of
    storing it twice or failing on its own prediction ids."""

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="ingest_batches")
    digest = models.CharField(max_length=64, help_text="SHA-256 of the request body (hex).")
    rows = models.PositiveIntegerField()
    summary = models.JSONField(default=dict, blank=True, help_text="The answer given when the batch was stored.")
    received_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["version", "digest"], name="unique_ingest_batch_digest_per_version")
        ]

    def __str__(self) -> str:
        return f"batch {self.digest[:12]} of {self.version_id} ({self.rows} rows)"


from .models_cost import Budget, CostRecord  # noqa: E402, F401
from .models_fairness import PredictionSensitive, WindowGroupCounts  # noqa: E402,F401
from .models_pairing import PairedCounts  # noqa: E402, F401
from .models_retention import (  # noqa: E402,F401
    ErasureOutcome,
    ErasureOutcomeStatus,
    ErasureRequest,
    ErasureStatus,
    PredictionKeySweep,
    RawDigest,
    RetentionPolicy,
)
from .models_slices import DirtySlice, WindowSlice  # noqa: E402,F401
from .oversight.models import *  # noqa: E402,F401,F403 - incidents, plans, reviews, findings (Django registers them here)
