"""API shapes of incidents, plans, reviews and findings, and their strict request bodies."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from mlops_portal.api.parsers import StrictSerializer
from monitoring.choices import FindingSeverity, IncidentSeverity, ReportKind, SuspendMode

from . import deadlines
from .models import Finding, Incident, IncidentEvent, PeriodicReview
from .selectors import IncidentWindows, deadline_outcome, incident_windows, review_later_triggers

TEXT = 20_000
MAX_ID = 2**63 - 1  # the databases' bigint: larger ids are a 400, never an overflow


def _username(source: str):
    return serializers.CharField(source=f"{source}.username", read_only=True, default=None, allow_null=True)


class IncidentEventSerializer(serializers.ModelSerializer):
    actor = _username("actor")

    class Meta:
        model = IncidentEvent
        fields = ["id", "kind", "actor", "text", "data", "audit_seq", "created_at"]


class IncidentSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model.name", read_only=True)
    version = serializers.IntegerField(source="version.version", read_only=True, default=None, allow_null=True)
    opened_by = _username("opened_by")
    alerts = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    deadline_local = serializers.SerializerMethodField()
    deadline_outcome = serializers.SerializerMethodField()
    article = serializers.SerializerMethodField()

    class Meta:
        model = Incident
        fields = [
            "id",
            "model",
            "version",
            "approved_by",
            "severity",
            "article",
            "status",
            "summary",
            "began_at",
            "aware_at",
            "time_zone",
            "deadline",
            "deadline_local",
            "deadline_outcome",
            "alerts",
            "affected",
            "corrective_actions",
            "root_cause",
            "opened_by",
            "initial_report_at",
            "final_report_at",
            "suspended_at",
            "resolved_at",
            "closed_at",
            "created_at",
            "updated_at",
        ]

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_deadline_local(self, obj: Incident):
        local = deadlines.local(obj.deadline, obj.time_zone)
        return local.isoformat() if local else None

    @extend_schema_field(serializers.ChoiceField(choices=["met", "missed", "pending", "none"]))
    def get_deadline_outcome(self, obj: Incident) -> str:
        return deadline_outcome(obj)

    @extend_schema_field(OpenApiTypes.STR)
    def get_article(self, obj: Incident) -> str:
        return deadlines.ARTICLES[IncidentSeverity(obj.severity)]


class IncidentWindowSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    granularity = serializers.CharField()
    window_start = serializers.DateTimeField()
    window_end = serializers.DateTimeField()


class IncidentWindowsSummarySerializer(serializers.Serializer):
    granularity = serializers.CharField(help_text="hourly when the period has hourly windows, else daily; '' if none")
    total = serializers.IntegerField(help_text="Windows of the period in that granularity.")
    shown = serializers.IntegerField(help_text="Listed in `windows` (the oldest first).")
    left_out = serializers.IntegerField(help_text="total - shown: the later windows not listed.")
    start = serializers.DateTimeField(allow_null=True)
    end = serializers.DateTimeField(allow_null=True)
    dashboard_url = serializers.CharField(help_text="The model dashboard's range holding all of them.")


class IncidentDetailSerializer(IncidentSerializer):
    """One incident with its timeline and the metric windows of its period
    (``selectors.incident_windows``: what its page and its filed reports say)."""

    events = IncidentEventSerializer(many=True, read_only=True)
    windows = serializers.SerializerMethodField()
    windows_summary = serializers.SerializerMethodField()
    windows_at_opening = serializers.ListField(
        source="windows",
        child=serializers.DictField(),
        read_only=True,
        help_text="The windows listed when the incident was opened (`windows` reads them now).",
    )

    class Meta(IncidentSerializer.Meta):
        fields = [*IncidentSerializer.Meta.fields, "windows", "windows_summary", "windows_at_opening", "events"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._found: dict[int, IncidentWindows] = {}  # one read for both fields

    def _windows(self, obj: Incident) -> IncidentWindows:
        if obj.pk not in self._found:
            self._found[obj.pk] = incident_windows(obj)
        return self._found[obj.pk]

    @extend_schema_field(IncidentWindowSerializer(many=True))
    def get_windows(self, obj: Incident) -> list:
        return IncidentWindowSerializer(self._windows(obj).windows, many=True).data

    @extend_schema_field(IncidentWindowsSummarySerializer)
    def get_windows_summary(self, obj: Incident) -> dict:
        return IncidentWindowsSummarySerializer(self._windows(obj)).data


class IncidentCreateSerializer(StrictSerializer):
    model = serializers.CharField(max_length=100)
    severity = serializers.ChoiceField(choices=IncidentSeverity.choices)
    aware_at = serializers.DateTimeField()
    summary = serializers.CharField(max_length=TEXT)
    began_at = serializers.DateTimeField(required=False, allow_null=True)
    alerts = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID), required=False, max_length=50
    )
    affected = serializers.CharField(max_length=TEXT, required=False, allow_blank=True)


class NoteSerializer(StrictSerializer):
    text = serializers.CharField(max_length=TEXT)


class SuspendSerializer(StrictSerializer):
    mode = serializers.ChoiceField(choices=SuspendMode.choices)
    reason = serializers.CharField(max_length=TEXT)


class ReportSerializer(StrictSerializer):
    kind = serializers.ChoiceField(choices=ReportKind.choices)
    affected = serializers.CharField(max_length=TEXT, required=False, allow_blank=True)
    corrective_actions = serializers.CharField(max_length=TEXT, required=False, allow_blank=True)


class ResolveSerializer(StrictSerializer):
    root_cause = serializers.CharField(max_length=TEXT)
    corrective_actions = serializers.CharField(max_length=TEXT, required=False, allow_blank=True)


class CloseSerializer(StrictSerializer):
    comment = serializers.CharField(max_length=TEXT, required=False, allow_blank=True)


class SignalSerializer(serializers.Serializer):
    signal = serializers.CharField()
    what = serializers.CharField()
    thresholds = serializers.DictField(required=False)


class MonitoringPlanSerializer(serializers.Serializer):
    model = serializers.CharField()
    version = serializers.IntegerField(allow_null=True)
    signals = SignalSerializer(many=True)
    windows = serializers.DictField()
    cadence = serializers.DictField()
    owners = serializers.DictField()
    escalation = serializers.DictField()
    retrain = serializers.DictField()
    configured = serializers.BooleanField()
    narrative = serializers.CharField(allow_blank=True)
    updated_at = serializers.DateTimeField(allow_null=True)
    updated_by = serializers.CharField(allow_null=True)


class PeriodicReviewSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model.name", read_only=True)
    owner = _username("owner")
    attested_by = _username("attested_by")
    validated_by = _username("validated_by")
    triggers = serializers.SerializerMethodField()

    class Meta:
        model = PeriodicReview
        fields = [
            "id",
            "model",
            "owner",
            "trigger",
            "triggers",
            "reason",
            "status",
            "needs_validator",
            "due_at",
            "opened_at",
            "attested_by",
            "attested_at",
            "attestation",
            "validated_by",
            "validated_at",
            "validation_comment",
            "completed_at",
        ]

    @extend_schema_field(
        serializers.ListField(
            child=serializers.CharField(),
            help_text="The triggers after the one that opened the review (named by `trigger`), oldest first.",
        )
    )
    def get_triggers(self, obj: PeriodicReview) -> list[str]:
        return [t.kind for t in review_later_triggers(obj)]


class ReviewOpenSerializer(StrictSerializer):
    reason = serializers.CharField(max_length=TEXT)
    due_at = serializers.DateTimeField(required=False, allow_null=True)


class AttestSerializer(StrictSerializer):
    card_true = serializers.BooleanField()
    intended_use_true = serializers.BooleanField()
    comment = serializers.CharField(max_length=TEXT, required=False, allow_blank=True)


class ValidateSerializer(StrictSerializer):
    comment = serializers.CharField(max_length=TEXT)


class FindingSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model.name", read_only=True)
    owner = serializers.CharField(source="owner.username", read_only=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True)
    remediated_by = _username("remediated_by")
    closed_by = _username("closed_by")

    class Meta:
        model = Finding
        fields = [
            "id",
            "model",
            "review",
            "severity",
            "description",
            "owner",
            "due_at",
            "status",
            "created_by",
            "created_at",
            "remediation",
            "remediated_by",
            "remediated_at",
            "retest_comment",
            "closed_by",
            "closed_at",
            "escalated_at",
        ]


class FindingCreateSerializer(StrictSerializer):
    severity = serializers.ChoiceField(choices=FindingSeverity.choices)
    description = serializers.CharField(max_length=TEXT)
    owner = serializers.CharField(max_length=150)
    due_at = serializers.DateTimeField()
    review = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False, allow_null=True)


class RemediateSerializer(StrictSerializer):
    evidence = serializers.CharField(max_length=TEXT)


class RetestSerializer(StrictSerializer):
    passed = serializers.BooleanField()
    comment = serializers.CharField(max_length=TEXT, allow_blank=True, default="")
