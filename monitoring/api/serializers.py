"""Monitoring API serializers (read shapes and the small JSON bodies)."""

from __future__ import annotations

from rest_framework import serializers

from mlops_portal.api.parsers import StrictSerializer
from monitoring.choices import DriftRule, Granularity
from monitoring.models import Alert, HealthStatus, MetricValue, MonitoringConfig, ReferenceProfile, RetrainTrigger
from monitoring.models_alerting import MAX_WINDOWS
from monitoring.services.config import CONFIG_FIELDS


class MetricValueSerializer(serializers.ModelSerializer):
    version = serializers.IntegerField(source="version.version", read_only=True)

    class Meta:
        model = MetricValue
        fields = [
            "version",
            "granularity",
            "window_start",
            "window_end",
            "feature",
            "metric",
            "value",
            "provisional",
            "computed_at",
        ]


class HealthSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model.name", read_only=True)

    class Meta:
        model = HealthStatus
        fields = ["model", "status", "reasons", "window_start", "window_end", "computed_at"]
        extra_kwargs = {"computed_at": {"allow_null": True}}  # null while no window was computed


class AlertSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model.name", read_only=True)
    acknowledged_by = serializers.CharField(
        source="acknowledged_by.username", read_only=True, default=None, allow_null=True
    )

    class Meta:
        model = Alert
        fields = [
            "id",
            "model",
            "kind",
            "severity",
            "status",
            "title",
            "reasons",
            "opened_at",
            "updated_at",
            "acknowledged_by",
            "acknowledged_at",
            "acknowledge_comment",
            "resolved_at",
            "clear_windows",
            "recovery_windows",
            "reopen_count",
            "reopened_at",
        ]


class AcknowledgeSerializer(StrictSerializer):
    comment = serializers.CharField(max_length=5000, allow_blank=False, trim_whitespace=True)


class ReferenceProfileSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="version.model.name", read_only=True)
    version = serializers.IntegerField(source="version.version", read_only=True)

    class Meta:
        model = ReferenceProfile
        fields = [
            "model",
            "version",
            "status",
            "error",
            "source_format",
            "n_rows",
            "n_bins",
            "uploaded_at",
            "computed_at",
        ]


class RetrainTriggerSerializer(serializers.ModelSerializer):
    version = serializers.IntegerField(source="version.version", read_only=True, default=None, allow_null=True)

    class Meta:
        model = RetrainTrigger
        fields = ["id", "version", "reason", "url", "status", "response_code", "error_class", "fired_at"]


class MonitoringConfigSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model.name", read_only=True)

    class Meta:
        model = MonitoringConfig
        fields = ["model", *CONFIG_FIELDS, "updated_at"]
        extra_kwargs = {"updated_at": {"allow_null": True}}  # null until the config is first saved


def _ratio(**kwargs):
    return serializers.FloatField(min_value=0, max_value=1, required=False, **kwargs)


class MonitoringConfigWriteSerializer(StrictSerializer):
    granularity = serializers.ChoiceField(choices=Granularity.choices, required=False)
    n_bins = serializers.IntegerField(min_value=10, max_value=20, required=False)
    drift_rule = serializers.ChoiceField(choices=DriftRule.choices, required=False)
    psi_warning = serializers.FloatField(min_value=0, required=False)
    psi_critical = serializers.FloatField(min_value=0, required=False)
    p_value_threshold = _ratio()
    js_threshold = _ratio()
    wasserstein_threshold = serializers.FloatField(min_value=0, required=False)
    drift_share_warning = _ratio()
    drift_share_critical = _ratio()
    missing_share_warning = _ratio()
    out_of_range_share_warning = _ratio()
    performance_drop_warning = serializers.FloatField(min_value=0, required=False)
    performance_drop_critical = serializers.FloatField(min_value=0, required=False)
    label_coverage_threshold = _ratio()
    min_window_rows = serializers.IntegerField(min_value=0, max_value=10**9, required=False)
    llm_latency_p95_warning_ms = serializers.FloatField(min_value=0, max_value=1e9, required=False)
    llm_latency_p95_critical_ms = serializers.FloatField(min_value=0, max_value=1e9, required=False)
    llm_safety_flag_rate_warning = _ratio()
    llm_safety_flag_rate_critical = _ratio()
    llm_feedback_floor = serializers.FloatField(min_value=-1, max_value=1, required=False)
    retrain_url = serializers.URLField(max_length=500, allow_blank=True, required=False)
    retrain_cooldown_hours = serializers.IntegerField(min_value=1, max_value=24 * 365, required=False)
    alert_recipients = serializers.ListField(child=serializers.EmailField(), max_length=50, required=False)
    alert_recovery_windows = serializers.IntegerField(min_value=1, max_value=MAX_WINDOWS, required=False)
    alert_reopen_windows = serializers.IntegerField(min_value=0, max_value=MAX_WINDOWS, required=False)
