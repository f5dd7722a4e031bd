"""Admin: monitoring configuration is editable; computed and ingested data is read-only."""

from django.contrib import admin

from registry.admin_readonly import ReadOnlyAdmin

from .models import (
    Alert,
    DirtyWindow,
    HealthStatus,
    MetricValue,
    MonitoringConfig,
    ReferenceProfile,
    RetrainTrigger,
)


@admin.register(MonitoringConfig)
class MonitoringConfigAdmin(ReadOnlyAdmin):
    """Read-only: changes go through the API or the settings page, which audit them."""

    list_display = ["model", "granularity", "drift_rule", "psi_warning", "psi_critical", "retrain_url"]
    readonly_fields = ["model", "updated_by", "updated_at"]


@admin.register(ReferenceProfile)
class ReferenceProfileAdmin(ReadOnlyAdmin):
    list_display = ["version", "status", "n_rows", "n_bins", "uploaded_at", "computed_at"]
    list_filter = ["status"]
    exclude = ["data"]


@admin.register(MetricValue)
class MetricValueAdmin(ReadOnlyAdmin):
    list_display = ["version", "granularity", "window_start", "feature", "metric", "value", "provisional"]
    list_filter = ["granularity", "metric"]
    search_fields = ["model__name", "feature"]


@admin.register(HealthStatus)
class HealthStatusAdmin(ReadOnlyAdmin):
    list_display = ["model", "status", "computed_at"]
    list_filter = ["status"]


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ["id", "model", "kind", "severity", "status", "opened_at", "resolved_at"]
    list_filter = ["status", "severity", "kind"]


@admin.register(RetrainTrigger)
class RetrainTriggerAdmin(ReadOnlyAdmin):
    list_display = ["model", "fired_at", "status", "response_code", "reason"]
    list_filter = ["status"]


@admin.register(DirtyWindow)
class DirtyWindowAdmin(ReadOnlyAdmin):
    list_display = ["version", "granularity", "window_start", "marked_at", "enqueued_at"]
