"""The Art. 72 post-market monitoring plan: generated from what is configured (signals,
thresholds, windows and cadence, owners, escalation, retrain triggers), plus a narrative that
the owner edits; each save is a new version (``MonitoringPlan``), audited."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Max

from monitoring.services.config import monitoring_config_get
from monitoring.services.llm_windows import llm_plan_signals
from registry.models import RegisteredModel
from registry.services.audit import AuditContext
from registry.services.webhooks import event_record

from .models import MonitoringPlan
from .rules import can_edit_plan

MAX_NARRATIVE = 50_000
DEFAULT_CADENCE = {"high": 90, "medium": 180, "low": 365}


def review_cadence_days(risk_tier: str) -> int:
    """Days between periodic reviews for a risk tier (``REVIEW_CADENCE_DAYS``)."""
    cadence = DEFAULT_CADENCE | dict(getattr(settings, "REVIEW_CADENCE_DAYS", {}) or {})
    return int(cadence.get(risk_tier, DEFAULT_CADENCE["medium"]))


def _drift_signal(config) -> dict[str, Any]:
    thresholds = {
        "psi": {"warning": config.psi_warning, "critical": config.psi_critical},
        "stat_test": {"p_value": config.p_value_threshold},
        "jensen_shannon": {"distance": config.js_threshold},
        "wasserstein": {"distance": config.wasserstein_threshold},
    }[config.drift_rule]
    return {
        "signal": "data_drift",
        "what": f"Per-feature drift by {config.get_drift_rule_display()}",
        "thresholds": thresholds
        | {
            "drifted_share_warning": config.drift_share_warning,
            "drifted_share_critical": config.drift_share_critical,
        },
    }


def plan_signals(config) -> list[dict[str, Any]]:
    """The signals collected and analysed, with the thresholds that raise an alert. An LLM
    application's are its requests' (no features, reference bins or labels of the tabular kind)."""
    if config.model.is_llm_app:
        return [*llm_plan_signals(config), {"signal": "volume", "what": "Requests per window", "thresholds": {}}]
    return _model_signals(config)


def _model_signals(config) -> list[dict[str, Any]]:
    return [
        _drift_signal(config),
        {"signal": "prediction_drift", "what": "Drift of predictions and scores", "thresholds": {}},
        {
            "signal": "data_quality",
            "what": "Missing values, out-of-range values, unseen categories",
            "thresholds": {
                "missing_share_warning": config.missing_share_warning,
                "out_of_range_share_warning": config.out_of_range_share_warning,
            },
        },
        {
            "signal": "performance",
            "what": "Realized performance once labels arrive (estimated before)",
            "thresholds": {
                "drop_warning": config.performance_drop_warning,
                "drop_critical": config.performance_drop_critical,
                "label_coverage": config.label_coverage_threshold,
            },
        },
        {"signal": "fairness", "what": "Per-group results of sensitive attributes (small groups suppressed)"},
        {
            "signal": "volume",
            "what": "Predictions per window",
            "thresholds": {"min_window_rows": config.min_window_rows},
        },
    ]


def plan_generate(model: RegisteredModel) -> dict[str, Any]:
    """The configured part of the plan, as of now."""
    config = monitoring_config_get(model=model)
    return {
        "signals": plan_signals(config),
        "windows": {"granularity": config.granularity, "bins": config.n_bins},
        "cadence": {
            "review_every_days": review_cadence_days(model.risk_tier),
            "risk_tier": model.risk_tier,
            "retrain_every_days": model.retrain_cadence_days,
        },
        "owners": {"owner": model.owner.get_username(), "team": model.team.name},
        "escalation": {
            "alert_recipients": list(config.alert_recipients),
            "webhooks": "alert.*, incident.*, review.*, finding.* events",
            "incident_deadlines": "Art. 73: 15 days serious, 2 days widespread, 10 days death",
        },
        "retrain": {
            "trigger": "critical drift or an overdue cadence",
            "url_configured": bool(config.retrain_url),
            "cooldown_hours": config.retrain_cooldown_hours,
        },
        "configured": config.pk is not None,
    }


def plan_current(model: RegisteredModel) -> dict[str, Any]:
    """The plan shown and served: the configured part now, and the latest saved narrative."""
    saved = MonitoringPlan.objects.filter(model=model).select_related("created_by").order_by("-version").first()
    return plan_generate(model) | {
        "model": model.name,
        "version": saved.version if saved else None,
        "narrative": saved.narrative if saved else "",
        "updated_at": saved.created_at if saved else None,
        "updated_by": saved.created_by.get_username() if saved and saved.created_by else None,
    }


@transaction.atomic
def plan_save(*, model: RegisteredModel, actor, narrative: str, context: AuditContext) -> MonitoringPlan:
    """Save a new version of the plan (narrative + the configured part as of now); audited."""
    if not can_edit_plan(actor, model):
        raise PermissionDenied("Only the model's owner or an admin may edit its monitoring plan.")
    if not isinstance(narrative, str):
        raise ValidationError({"narrative": "Must be text."})
    narrative = narrative.replace("\x00", "").strip()
    if not narrative:
        raise ValidationError({"narrative": "The plan needs a narrative (EU AI Act Art. 72)."})
    if len(narrative) > MAX_NARRATIVE:
        raise ValidationError({"narrative": f"At most {MAX_NARRATIVE} characters."})
    RegisteredModel.objects.select_for_update().filter(pk=model.pk).first()
    last = MonitoringPlan.objects.filter(model=model).aggregate(v=Max("version"))["v"] or 0
    plan = MonitoringPlan(
        model=model, version=last + 1, generated=plan_generate(model), narrative=narrative, created_by=actor
    )
    plan.full_clean()
    plan.save()
    payload = {"model": model.name, "plan_version": plan.version, "narrative_chars": len(narrative)}
    event_record(action="plan.saved", actor=actor, obj=plan, model=model, context=context, payload=payload)
    return plan
