"""Oversight domain: Incident (+ IncidentEvent timeline, IncidentReminder markers),
MonitoringPlan (versioned), PeriodicReview (+ ReviewTrigger), Finding.

Written only through ``monitoring.oversight.incidents`` and ``monitoring.oversight.reviews``
(one service per transition, audited in the same transaction).
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.urls import reverse

from mlops_portal import clock
from monitoring.choices import (
    FindingSeverity,
    FindingStatus,
    IncidentEventKind,
    IncidentSeverity,
    IncidentStatus,
    ReviewStatus,
    ReviewTriggerKind,
)
from registry.models import ModelVersion, PromotionRequest, RegisteredModel

USER = settings.AUTH_USER_MODEL
MAX_WINDOWS = 48  # the metric windows an incident lists (selectors.period_windows), the oldest first

__all__ = [
    "MAX_WINDOWS",
    "Finding",
    "Incident",
    "IncidentEvent",
    "IncidentReminder",
    "MonitoringPlan",
    "PeriodicReview",
    "ReviewTrigger",
]


class Incident(models.Model):
    """Something went wrong with a model in use: its Art. 73 clock, its response and reports.

    ``deadline`` is computed once from ``aware_at`` and ``severity`` in ``time_zone`` (the
    model's time zone setting when opened, else the installation's ``DEFAULT_MODEL_TIME_ZONE``)
    by ``deadlines.reporting_deadline``; null when the class has no deadline. ``version`` is what
    was in production when the problem began (from the stage history), ``approved_by`` who approved it then."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.PROTECT, related_name="incidents")
    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    promotion_request = models.ForeignKey(
        PromotionRequest, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    approved_by = models.JSONField(default=list, blank=True, help_text="Usernames who approved `version`.")
    severity = models.CharField(max_length=12, choices=IncidentSeverity.choices)
    status = models.CharField(max_length=10, choices=IncidentStatus.choices, default=IncidentStatus.OPEN)
    summary = models.TextField(help_text="What happened.")
    began_at = models.DateTimeField(help_text="When the problem began (first alert, or when aware).")
    aware_at = models.DateTimeField(help_text="When the provider or deployer became aware of it.")
    time_zone = models.CharField(max_length=64, help_text="Zone the deadline was computed in.")
    deadline = models.DateTimeField(null=True, blank=True)
    alerts = models.ManyToManyField("monitoring.Alert", blank=True, related_name="incidents")
    # the windows listed when it was opened (the API's windows_at_opening); pages, API and reports
    # read today's through selectors.incident_windows
    windows = models.JSONField(default=list, blank=True, help_text="Metric windows involved.")
    affected = models.TextField(blank=True, help_text="Affected persons, groups or fundamental rights.")
    corrective_actions = models.TextField(blank=True)
    root_cause = models.TextField(blank=True)
    opened_by = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    initial_report_at = models.DateTimeField(null=True, blank=True)
    final_report_at = models.DateTimeField(null=True, blank=True)
    suspended_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=clock.now, editable=False)
    updated_at = clock.UpdatedAtField()

    class Meta:
        ordering = ["-aware_at", "-id"]
        indexes = [models.Index(fields=["status", "deadline"], name="incident_status_deadline")]
        constraints = [
            models.CheckConstraint(condition=Q(aware_at__gte=F("began_at")), name="incident_aware_after_began"),
        ]

    def __str__(self) -> str:
        return f"Incident #{self.pk} {self.model.name} ({self.severity})"

    def get_absolute_url(self) -> str:
        return reverse("monitoring:incident_detail", args=[self.pk])

    @property
    def reported_at(self):
        """The first report filed (initial or final): what the Art. 73 deadline is met by."""
        times = [t for t in (self.initial_report_at, self.final_report_at) if t]
        return min(times) if times else None


class IncidentEvent(models.Model):
    """One step of an incident's response, in order: the timeline. ``audit_seq`` is the audit
    event recorded in the same transaction."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=16, choices=IncidentEventKind.choices)
    actor = models.ForeignKey(USER, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    text = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    audit_seq = models.PositiveBigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"#{self.incident_id} {self.kind} at {self.created_at:%Y-%m-%d %H:%M}"


class IncidentReminder(models.Model):
    """Marker that the reminder at ``percent``% of the deadline was sent (sent once each)."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="reminders")
    percent = models.PositiveSmallIntegerField()
    sent_at = models.DateTimeField()

    class Meta:
        ordering = ["incident", "percent"]
        constraints = [models.UniqueConstraint(fields=["incident", "percent"], name="one_reminder_per_threshold")]

    def __str__(self) -> str:
        return f"#{self.incident_id} reminder {self.percent}%"


class MonitoringPlan(models.Model):
    """One saved version of a model's Art. 72 post-market monitoring plan: the configured part
    (signals, thresholds, windows, owners, escalation, retraining) as generated when saved,
    and the editable narrative."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="monitoring_plans")
    version = models.PositiveIntegerField()
    generated = models.JSONField(default=dict, blank=True)
    narrative = models.TextField(blank=True)
    created_by = models.ForeignKey(USER, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=clock.now, editable=False)

    class Meta:
        ordering = ["model", "-version"]
        constraints = [models.UniqueConstraint(fields=["model", "version"], name="unique_plan_version")]

    def __str__(self) -> str:
        return f"Plan of {self.model.name} v{self.version}"


class PeriodicReview(models.Model):
    """A (re)validation of a production model: the owner attests the card and intended use are
    still true; for high risk a validator (a reviewer who is not the owner) signs. At most one
    review per model is open at a time; triggers attach to it (``ReviewTrigger``)."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="periodic_reviews")
    owner = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+", help_text="Owner when opened.")
    trigger = models.CharField(max_length=12, choices=ReviewTriggerKind.choices)
    reason = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=ReviewStatus.choices, default=ReviewStatus.OPEN)
    needs_validator = models.BooleanField(default=False)
    due_at = models.DateTimeField()
    opened_at = models.DateTimeField()
    attested_by = models.ForeignKey(USER, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    attested_at = models.DateTimeField(null=True, blank=True)
    attestation = models.TextField(blank=True)
    validated_by = models.ForeignKey(USER, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    validated_at = models.DateTimeField(null=True, blank=True)
    validation_comment = models.TextField(blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["model"], condition=~Q(status=ReviewStatus.COMPLETED), name="one_open_review_per_model"
            ),
            models.CheckConstraint(condition=~Q(validated_by=F("owner")), name="validator_is_not_owner"),
        ]

    def __str__(self) -> str:
        return f"Review #{self.pk} of {self.model.name} ({self.status})"

    def get_absolute_url(self) -> str:
        return reverse("monitoring:review_detail", args=[self.pk])


class ReviewTrigger(models.Model):
    """Why a review was opened or brought forward; one row per alert or incident (idempotent)."""

    review = models.ForeignKey(PeriodicReview, on_delete=models.CASCADE, related_name="triggers")
    kind = models.CharField(max_length=12, choices=ReviewTriggerKind.choices)
    alert = models.OneToOneField("monitoring.Alert", on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    incident = models.OneToOneField(Incident, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.kind} → review #{self.review_id}"


class Finding(models.Model):
    """A validator's finding on a model, tracked to its fix: the owner answers with remediation
    evidence, the validator closes it on retest. Past ``due_at`` it escalates once."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="findings")
    review = models.ForeignKey(
        PeriodicReview, on_delete=models.SET_NULL, null=True, blank=True, related_name="findings"
    )
    severity = models.CharField(max_length=8, choices=FindingSeverity.choices)
    description = models.TextField()
    owner = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+", help_text="Who must fix it.")
    due_at = models.DateTimeField()
    status = models.CharField(max_length=12, choices=FindingStatus.choices, default=FindingStatus.OPEN)
    created_by = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()
    remediation = models.TextField(blank=True)
    remediated_by = models.ForeignKey(USER, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    remediated_at = models.DateTimeField(null=True, blank=True)
    retest_comment = models.TextField(blank=True)
    closed_by = models.ForeignKey(USER, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    closed_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["status", "due_at", "id"]
        indexes = [models.Index(fields=["status", "due_at"], name="finding_status_due")]

    def __str__(self) -> str:
        return f"Finding #{self.pk} on {self.model.name} ({self.severity}, {self.status})"

    def get_absolute_url(self) -> str:
        return reverse("monitoring:finding_detail", args=[self.pk])
