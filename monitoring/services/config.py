"""Monitoring configuration per model (thresholds, windows, alert recipients, retraining)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from mlops_portal import clock, outbound
from monitoring.models import MonitoringConfig
from registry.models import RegisteredModel
from registry.rules import can_change_model
from registry.services.audit import AuditContext, model_snapshot

from .model_settings import settings_record, settings_row_for_update

CONFIG_FIELDS = [
    "granularity",
    "n_bins",
    "drift_rule",
    "psi_warning",
    "psi_critical",
    "p_value_threshold",
    "js_threshold",
    "wasserstein_threshold",
    "drift_share_warning",
    "drift_share_critical",
    "missing_share_warning",
    "out_of_range_share_warning",
    "performance_drop_warning",
    "performance_drop_critical",
    "label_coverage_threshold",
    "min_window_rows",
    "llm_latency_p95_warning_ms",
    "llm_latency_p95_critical_ms",
    "llm_safety_flag_rate_warning",
    "llm_safety_flag_rate_critical",
    "llm_feedback_floor",
    "retrain_url",
    "retrain_cooldown_hours",
    "alert_recipients",
    "alert_recovery_windows",
    "alert_reopen_windows",
]


def monitoring_config_get(*, model: RegisteredModel) -> MonitoringConfig:
    """The saved config, or an unsaved one with the defaults."""
    return MonitoringConfig.objects.filter(model=model).first() or MonitoringConfig(model=model)


def _check_retrain_url(url: str) -> None:
    """The outbound policy at save time (the trigger task checks again before it connects)."""
    try:
        outbound.validate_url(url)
    except ValidationError as exc:
        raise ValidationError({"retrain_url": exc.messages}) from exc


@transaction.atomic
def monitoring_config_update(
    *, model: RegisteredModel, actor, context: AuditContext, changes: dict[str, Any]
) -> MonitoringConfig:
    """Create or change a model's monitoring config (owner or admin); audited
    ``monitoring.thresholds_changed`` with the before/after of the changed fields. Sets
    ``RegisteredModel.monitoring_configured_at``."""
    if actor is not None and not can_change_model(actor, model):
        raise PermissionDenied("Only the model's owner or an admin can change its monitoring.")
    config, created = settings_row_for_update(MonitoringConfig, model=model, changes=changes, fields=CONFIG_FIELDS)
    before = None if created else model_snapshot(config, CONFIG_FIELDS)
    for name, value in changes.items():
        setattr(config, name, value)
    config.updated_by = actor if getattr(actor, "is_authenticated", False) else None
    config.full_clean()
    if changes.get("retrain_url"):
        _check_retrain_url(config.retrain_url)
    config.save()
    RegisteredModel.objects.filter(pk=model.pk).update(monitoring_configured_at=clock.now())
    settings_record(config, before, CONFIG_FIELDS, action="monitoring.thresholds_changed", actor=actor, context=context)
    return config
