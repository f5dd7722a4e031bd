"""Model health: ``ok`` / ``warning`` / ``critical`` / ``no_data`` with the reasons.

Health looks at the monitored version (the production version, else the newest version with
metrics) and its latest window of the configured granularity that has at least
``min_window_rows`` rows:

* drift: share of drifted features ≥ ``drift_share_critical`` → critical, ≥ warning → warning;
* prediction drift: the prediction/score column drifted → warning, its PSI ≥ ``psi_critical``
  → critical;
* data quality: a feature's missing share above the reference's by ≥ ``missing_share_warning``,
  or its out-of-range / unseen share ≥ ``out_of_range_share_warning`` → warning;
* performance: the model's primary metric in the latest *non-provisional* window is worse than
  the version's offline value by ≥ ``performance_drop_warning`` / ``_critical``;
* cadence: a production version older than the model's retrain cadence → warning.

After each evaluation alerts are synchronised (``monitoring.services.alerts``) and a retrain
trigger may fire.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from monitoring.choices import (
    PREDICTION_FEATURE,
    SCORE_FEATURE,
    AlertKind,
    AlertSeverity,
    HealthState,
    Metric,
)
from monitoring.models import HealthStatus, MetricValue, ReferenceProfile
from registry.choices import Stage
from registry.models import MlflowAliasViolation, ModelVersion, RegisteredModel
from registry.services.audit import WORKER, AuditContext

from .config import monitoring_config_get

SEVERITY_RANK = {HealthState.NO_DATA: 0, HealthState.OK: 1, HealthState.WARNING: 2, HealthState.CRITICAL: 3}
LOWER_IS_BETTER = {Metric.LOG_LOSS, Metric.MAE, Metric.RMSE}


def monitored_version(model: RegisteredModel) -> ModelVersion | None:
    production = model.versions.filter(stage=Stage.PRODUCTION).first()
    if production:
        return production
    latest = MetricValue.objects.filter(model=model).order_by("-window_start").values_list("version_id", flat=True)
    version_id = latest.first()
    return ModelVersion.objects.filter(pk=version_id).first() if version_id else None


def _reason(kind: str, severity: str, message: str, **extra) -> dict[str, Any]:
    return {"kind": kind, "severity": severity, "message": message, **extra}


def _latest_window(version: ModelVersion, granularity: str, min_rows: int):
    vol = (
        MetricValue.objects.filter(
            version=version, granularity=granularity, feature="", metric=Metric.VOLUME, value__gte=max(min_rows, 1)
        )
        .order_by("-window_start")
        .values_list("window_start", "window_end")
        .first()
    )
    return vol


def evaluate_reasons(model: RegisteredModel, *, now=None) -> tuple[list[dict], ModelVersion | None, Any]:
    """The reasons for the model's health now (no writes)."""
    now = now or timezone.now()
    config = monitoring_config_get(model=model)
    reasons: list[dict] = []
    version = monitored_version(model)
    window = None
    if model.retrain_cadence_days:
        production = model.versions.filter(stage=Stage.PRODUCTION).first()
        if production:
            since = production.stage_changed_at or production.created_at
            if since and now - since > timedelta(days=model.retrain_cadence_days):
                age = (now - since).days
                reasons.append(
                    _reason(
                        AlertKind.CADENCE,
                        AlertSeverity.WARNING,
                        f"Production v{production.version} is {age} days old; retrain cadence is "
                        f"{model.retrain_cadence_days} days.",
                        value=age,
                        threshold=model.retrain_cadence_days,
                    )
                )
    for violation in MlflowAliasViolation.objects.filter(model_link__model=model, resolved_at=None):
        reasons.append(
            _reason(
                AlertKind.GOVERNANCE,
                AlertSeverity.CRITICAL,
                f"MLflow alias '{violation.alias}' points to v{violation.found_version or '-'} but the approved "
                f"production version is v{violation.expected_version or '-'} (changed outside the portal).",
            )
        )
    if version is None:
        return reasons, None, None
    window = _latest_window(version, config.granularity, config.min_window_rows)
    if window is None:
        return reasons, version, None
    start, end = window
    values = {
        (f, m): (v, p)
        for f, m, v, p in MetricValue.objects.filter(version=version, window_start=start, window_end=end).values_list(
            "feature", "metric", "value", "provisional"
        )
    }

    def get(feature: str, metric: str):
        return values.get((feature, metric), (None, False))[0]

    share = get("", Metric.DRIFT_SHARE)
    if share is not None:
        drifted = sorted(
            f
            for (f, m), (v, _) in values.items()
            if m == Metric.DRIFT_DETECTED and v and f not in ("", PREDICTION_FEATURE, SCORE_FEATURE)
        )
        if share >= config.drift_share_critical:
            sev = AlertSeverity.CRITICAL
        elif share >= config.drift_share_warning:
            sev = AlertSeverity.WARNING
        else:
            sev = None
        if sev:
            reasons.append(
                _reason(
                    AlertKind.DRIFT,
                    sev,
                    f"{share:.0%} of features drifted ({', '.join(drifted)}).",
                    value=share,
                    features=drifted,
                    metric=Metric.DRIFT_SHARE,
                )
            )
    for column in (PREDICTION_FEATURE, SCORE_FEATURE):
        if get(column, Metric.DRIFT_DETECTED):
            psi_value = get(column, Metric.PSI)
            sev = (
                AlertSeverity.CRITICAL
                if psi_value is not None and psi_value >= config.psi_critical
                else AlertSeverity.WARNING
            )
            label = "Prediction" if column == PREDICTION_FEATURE else "Score"
            reasons.append(
                _reason(
                    AlertKind.PREDICTION_DRIFT,
                    sev,
                    f"{label} distribution drifted (PSI {psi_value if psi_value is None else round(psi_value, 3)}).",
                    feature=column,
                    value=psi_value,
                )
            )
    ref = ReferenceProfile.objects.filter(version=version).only("profile").first()
    ref_features = (ref.profile or {}).get("features", {}) if ref else {}
    quality: list[str] = []
    for (feature, metric), (value, _) in values.items():
        if value is None or feature in ("", PREDICTION_FEATURE, SCORE_FEATURE):
            continue
        if metric == Metric.MISSING_SHARE:
            fp = ref_features.get(feature, {})
            total = (fp.get("n") or 0) + (fp.get("missing") or 0)
            baseline = (fp.get("missing") or 0) / total if total else 0.0
            if value - baseline >= config.missing_share_warning:
                quality.append(f"{feature}: {value:.0%} missing (reference {baseline:.0%})")
        elif metric in (Metric.OUT_OF_RANGE_SHARE, Metric.UNSEEN_SHARE) and value >= config.out_of_range_share_warning:
            what = "out of the reference range" if metric == Metric.OUT_OF_RANGE_SHARE else "unseen categories"
            quality.append(f"{feature}: {value:.0%} {what}")
    if quality:
        reasons.append(_reason(AlertKind.DATA_QUALITY, AlertSeverity.WARNING, "; ".join(sorted(quality)) + "."))
    primary = model.primary_metric
    offline = (version.metrics or {}).get(primary) if primary else None
    if primary and offline is not None:
        latest_perf = (
            MetricValue.objects.filter(
                version=version, granularity=config.granularity, feature="", metric=primary, provisional=False
            )
            .exclude(value=None)
            .order_by("-window_start")
            .values_list("value", "window_start")
            .first()
        )
        if latest_perf:
            live = latest_perf[0]
            higher = model.primary_metric_higher_is_better and primary not in LOWER_IS_BETTER
            drop = (offline - live) if higher else (live - offline)
            sev = None
            if drop >= config.performance_drop_critical:
                sev = AlertSeverity.CRITICAL
            elif drop >= config.performance_drop_warning:
                sev = AlertSeverity.WARNING
            if sev:
                reasons.append(
                    _reason(
                        AlertKind.PERFORMANCE,
                        sev,
                        f"{primary} is {live:.3f} in production against {offline:.3f} offline.",
                        metric=primary,
                        value=live,
                        offline=offline,
                    )
                )
    return reasons, version, window


def status_of(reasons: list[dict], has_window: bool) -> str:
    if any(r["severity"] == AlertSeverity.CRITICAL for r in reasons):
        return HealthState.CRITICAL
    if reasons:
        return HealthState.WARNING
    return HealthState.OK if has_window else HealthState.NO_DATA


@transaction.atomic
def health_evaluate(*, model: RegisteredModel, context: AuditContext = WORKER, now=None) -> HealthStatus:
    """Recompute and store the model's health, then open/update/resolve its alerts."""
    from .alerts import alerts_sync, retrain_consider

    now = now or timezone.now()
    reasons, version, window = evaluate_reasons(model, now=now)
    status = status_of(reasons, window is not None)
    health, _ = HealthStatus.objects.update_or_create(
        model=model,
        defaults={
            "status": status,
            "reasons": reasons,
            "window_start": window[0] if window else None,
            "window_end": window[1] if window else None,
            "computed_at": now,
        },
    )
    alerts_sync(model=model, reasons=reasons, context=context, now=now)
    retrain_consider(model=model, version=version, reasons=reasons, context=context, now=now)
    return health
