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

Each window check returns ``(judged, reasons)``: the alert kinds it judged (the window had the
data to compare them with their thresholds) and its reasons. After each evaluation alerts are
synchronised (``monitoring.services.alerts``): an open alert without a reason now is resolved
only when its kind was judged, never for lack of data (a window without labels, without a
reference profile, with groups too small to compare); then a retrain trigger may fire.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction

from mlops_portal import clock
from monitoring.choices import (
    PREDICTION_FEATURE,
    SCORE_FEATURE,
    AlertKind,
    AlertSeverity,
    HealthState,
    Metric,
)
from monitoring.fairness_monitoring import fairness_reasons
from monitoring.models import HealthStatus, MetricValue, MonitoringConfig, ReferenceProfile
from registry.choices import Stage
from registry.models import MlflowAliasViolation, ModelVersion, RegisteredModel
from registry.services.audit import WORKER, AuditContext

from .config import monitoring_config_get
from .health_estimated import drop_severity, estimated_performance_reasons
from .llm_windows import llm_reasons

SEVERITY_RANK = {HealthState.NO_DATA: 0, HealthState.OK: 1, HealthState.WARNING: 2, HealthState.CRITICAL: 3}


def monitored_version(model: RegisteredModel) -> ModelVersion | None:
    production = model.versions.filter(stage=Stage.PRODUCTION).first()
    if production:
        return production
    # a version sending traffic outside production (never one retired or rolled away from)
    latest = (
        MetricValue.objects.filter(model=model)
        .exclude(version__stage=Stage.ARCHIVED)
        .order_by("-window_start")
        .values_list("version_id", flat=True)
    )
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


@dataclass(frozen=True)
class Window:
    """What the window checks read: the model, its monitored version and config, and the
    latest deciding window's metric values ``{(feature, metric): (value, provisional)}``."""

    model: RegisteredModel
    version: ModelVersion
    config: MonitoringConfig
    start: datetime
    end: datetime
    values: dict[tuple[str, str], tuple[float | None, bool]]

    def get(self, feature: str, metric: str) -> float | None:
        return self.values.get((feature, metric), (None, False))[0]


# --------------------------------------------------------------------------- model checks


def cadence_reasons(model: RegisteredModel, now) -> list[dict]:
    """A production version older than the model's retrain cadence → warning."""
    if not model.retrain_cadence_days:
        return []
    production = model.versions.filter(stage=Stage.PRODUCTION).first()
    since = (production.stage_changed_at or production.created_at) if production else None
    if not since or now - since <= timedelta(days=model.retrain_cadence_days):
        return []
    age = (now - since).days
    message = (
        f"Production v{production.version} is {age} days old; retrain cadence is {model.retrain_cadence_days} days."
    )
    return [_reason(AlertKind.CADENCE, AlertSeverity.WARNING, message, value=age, threshold=model.retrain_cadence_days)]


def governance_reasons(model: RegisteredModel, now) -> list[dict]:
    """An unresolved MLflow alias change made outside the portal → critical."""
    return [
        _reason(
            AlertKind.GOVERNANCE,
            AlertSeverity.CRITICAL,
            f"MLflow alias '{violation.alias}' points to v{violation.found_version or '-'} but the approved "
            f"production version is v{violation.expected_version or '-'} (changed outside the portal).",
        )
        for violation in MlflowAliasViolation.objects.filter(model_link__model=model, resolved_at=None)
    ]


# --------------------------------------------------------------------------- window checks


Checked = tuple[frozenset[str], list[dict]]
"""What a window check returns: the alert kinds it judged, and its reasons."""

NOT_JUDGED: Checked = (frozenset(), [])


def _judged(kind: str, reasons: list[dict]) -> Checked:
    return frozenset({kind}), reasons


def drift_reasons(window: Window) -> Checked:
    """Share of drifted features ≥ ``drift_share_critical`` → critical, ≥ warning → warning.
    Judged when the window has a drift share (it needs the version's reference profile)."""
    share = window.get("", Metric.DRIFT_SHARE)
    config = window.config
    if share is None:
        return NOT_JUDGED
    if share < config.drift_share_warning:
        return _judged(AlertKind.DRIFT, [])
    sev = AlertSeverity.CRITICAL if share >= config.drift_share_critical else AlertSeverity.WARNING
    drifted = sorted(
        f
        for (f, m), (v, _) in window.values.items()
        if m == Metric.DRIFT_DETECTED and v and f not in ("", PREDICTION_FEATURE, SCORE_FEATURE)
    )
    message = f"{share:.0%} of features drifted ({', '.join(drifted)})."
    reason = _reason(AlertKind.DRIFT, sev, message, value=share, features=drifted, metric=Metric.DRIFT_SHARE)
    return _judged(AlertKind.DRIFT, [reason])


def prediction_drift_reasons(window: Window) -> Checked:
    """The prediction or score column drifted → warning; its PSI ≥ ``psi_critical`` → critical.
    Judged when the window has a drift verdict on either column (against the reference)."""
    columns = [c for c in (PREDICTION_FEATURE, SCORE_FEATURE) if window.get(c, Metric.DRIFT_DETECTED) is not None]
    if not columns:
        return NOT_JUDGED
    reasons = []
    for column in columns:
        if not window.get(column, Metric.DRIFT_DETECTED):
            continue
        psi_value = window.get(column, Metric.PSI)
        critical = psi_value is not None and psi_value >= window.config.psi_critical
        label = "Prediction" if column == PREDICTION_FEATURE else "Score"
        shown = psi_value if psi_value is None else round(psi_value, 3)
        reasons.append(
            _reason(
                AlertKind.PREDICTION_DRIFT,
                AlertSeverity.CRITICAL if critical else AlertSeverity.WARNING,
                f"{label} distribution drifted (PSI {shown}).",
                feature=column,
                value=psi_value,
            )
        )
    return _judged(AlertKind.PREDICTION_DRIFT, reasons)


def _quality_finding(window: Window, feature: str, metric: str, value: float, ref_features: dict) -> str | None:
    config = window.config
    if metric == Metric.MISSING_SHARE:
        fp = ref_features.get(feature, {})
        total = (fp.get("n") or 0) + (fp.get("missing") or 0)
        baseline = (fp.get("missing") or 0) / total if total else 0.0
        if value - baseline >= config.missing_share_warning:
            return f"{feature}: {value:.0%} missing (reference {baseline:.0%})"
    elif metric in (Metric.OUT_OF_RANGE_SHARE, Metric.UNSEEN_SHARE) and value >= config.out_of_range_share_warning:
        what = "out of the reference range" if metric == Metric.OUT_OF_RANGE_SHARE else "unseen categories"
        return f"{feature}: {value:.0%} {what}"
    return None


QUALITY_METRICS = (Metric.MISSING_SHARE, Metric.OUT_OF_RANGE_SHARE, Metric.UNSEEN_SHARE)


def data_quality_reasons(window: Window) -> Checked:
    """A feature's missing share above the reference's by ≥ ``missing_share_warning``, or its
    out-of-range / unseen share ≥ ``out_of_range_share_warning`` → warning. Judged when the
    window has a feature's quality share (computed against the reference profile)."""
    shares = [
        (feature, metric, value)
        for (feature, metric), (value, _) in window.values.items()
        if metric in QUALITY_METRICS and value is not None and feature not in ("", PREDICTION_FEATURE, SCORE_FEATURE)
    ]
    if not shares:
        return NOT_JUDGED
    ref = ReferenceProfile.objects.filter(version=window.version).only("profile").first()
    ref_features = (ref.profile or {}).get("features", {}) if ref else {}
    findings = [_quality_finding(window, feature, metric, value, ref_features) for feature, metric, value in shares]
    quality = sorted(f for f in findings if f)
    reasons = [_reason(AlertKind.DATA_QUALITY, AlertSeverity.WARNING, "; ".join(quality) + ".")] if quality else []
    return _judged(AlertKind.DATA_QUALITY, reasons)


def performance_reasons(window: Window) -> Checked:
    """The primary metric of the latest non-provisional window worse than the version's offline
    value by ≥ ``performance_drop_warning`` / ``_critical``. Judged when the version has both
    (no labels yet, e.g. after a rollback or a promotion, is not judged)."""
    model, version, config = window.model, window.version, window.config
    primary = model.primary_metric
    offline = (version.metrics or {}).get(primary) if primary else None
    if offline is None:
        return NOT_JUDGED
    latest = (
        MetricValue.objects.filter(
            version=version, granularity=config.granularity, feature="", metric=primary, provisional=False
        )
        .exclude(value=None)
        .order_by("-window_start")
        .values_list("value", flat=True)
        .first()
    )
    if latest is None:
        return NOT_JUDGED
    sev = drop_severity(model, config, offline, latest)
    if sev is None:
        return _judged(AlertKind.PERFORMANCE, [])
    message = f"{primary} is {latest:.3f} in production against {offline:.3f} offline."
    reason = _reason(AlertKind.PERFORMANCE, sev, message, metric=primary, value=latest, offline=offline)
    return _judged(AlertKind.PERFORMANCE, [reason])


MODEL_CHECKS = (cadence_reasons, governance_reasons)
WINDOW_CHECKS = (drift_reasons, prediction_drift_reasons, data_quality_reasons, performance_reasons, fairness_reasons)
WINDOW_CHECKS += (estimated_performance_reasons,)  # the estimate while a window is unlabelled
WINDOW_CHECKS += (llm_reasons,)  # LLM applications: latency, safety flags, feedback (llm_windows.py)


def _window(model: RegisteredModel, version: ModelVersion, config: MonitoringConfig) -> Window | None:
    bounds = _latest_window(version, config.granularity, config.min_window_rows)
    if bounds is None:
        return None
    start, end = bounds
    rows = MetricValue.objects.filter(version=version, window_start=start, window_end=end).values_list(
        "feature", "metric", "value", "provisional"
    )
    return Window(model, version, config, start, end, {(f, m): (v, p) for f, m, v, p in rows})


MODEL_KINDS = frozenset({AlertKind.CADENCE, AlertKind.GOVERNANCE})
"""The alert kinds ``MODEL_CHECKS`` decide: judged on every run, window or not."""


@dataclass(frozen=True)
class Evaluation:
    """The model's health reasons now, the monitored version, the deciding window's bounds (or
    None) and the alert kinds judged: the model checks' always, a window check's only when the
    window had its data. An unjudged kind is no data, not a recovery: its open alert stays open
    until a window finds its condition within thresholds (a person may acknowledge it meanwhile)."""

    reasons: list[dict]
    version: ModelVersion | None
    window: tuple[datetime, datetime] | None
    judged: frozenset[str]


def evaluate_reasons(model: RegisteredModel, *, now=None) -> Evaluation:
    """The reasons for the model's health now (no writes): the model checks, then the window
    checks on the monitored version's latest deciding window (if any)."""
    now = now or clock.now()
    reasons = [reason for check in MODEL_CHECKS for reason in check(model, now)]
    version = monitored_version(model)
    window = _window(model, version, monitoring_config_get(model=model)) if version is not None else None
    if window is None:
        return Evaluation(reasons, version, None, MODEL_KINDS)
    judged = set(MODEL_KINDS)
    for check in WINDOW_CHECKS:
        kinds, found = check(window)
        judged |= kinds
        reasons += found
    return Evaluation(reasons, version, (window.start, window.end), frozenset(judged))


def status_of(reasons: list[dict], has_window: bool) -> str:
    if any(r["severity"] == AlertSeverity.CRITICAL for r in reasons):
        return HealthState.CRITICAL
    if reasons:
        return HealthState.WARNING
    return HealthState.OK if has_window else HealthState.NO_DATA


@transaction.atomic
def health_evaluate(*, model: RegisteredModel, context: AuditContext = WORKER, now=None) -> HealthStatus:
    """Recompute and store the model's health, then open/update/resolve its alerts."""
    from .alerts import active_alerts, alert_resolve, alerts_sync, held_reasons, retrain_consider

    now = now or clock.now()
    # Row locks before the audit chain's lock, as every writer takes them: the model's config
    # row serialises its evaluations (``retrain_consider`` locks it again, already held). Taken
    # after the alerts' audit events, it closed a cycle with a batch holding it and waiting for
    # the chain (a deadlock seen under ingestion load: docs/performance.md, "Freshness"). Only
    # that row (``of``): the ordering joins the model's row, which FOR UPDATE would lock too.
    MonitoringConfig.objects.select_for_update(of=("self",)).filter(model=model).first()
    evaluation = evaluate_reasons(model, now=now)
    reasons, version, window = evaluation.reasons, evaluation.version, evaluation.window
    active = active_alerts(model)  # locked: the held reasons and the sync below read the same rows
    if version is None:  # none left to monitor (retired): no window will judge its alerts again
        for alert in [a for a in active if a.kind not in MODEL_KINDS]:
            alert_resolve(alert, context=context, now=now)
        active = [a for a in active if a.kind in MODEL_KINDS]
    needed = monitoring_config_get(model=model).alert_recovery_windows
    judged = evaluation.judged
    shown = reasons + held_reasons(active=active, reasons=reasons, judged=judged, needed=needed, window=window)
    health, _ = HealthStatus.objects.update_or_create(
        model=model,
        defaults={
            "status": status_of(shown, window is not None),
            "reasons": shown,
            "window_start": window[0] if window else None,
            "window_end": window[1] if window else None,
            "computed_at": now,
        },
    )
    alerts_sync(model=model, reasons=reasons, evaluated=judged, window=window, context=context, now=now, active=active)
    retrain_consider(model=model, version=version, reasons=reasons, context=context, now=now)
    return health


def health_evaluate_by_id(*, model_id: int, context: AuditContext = WORKER) -> HealthStatus | None:
    """``health_evaluate`` of the model with this id, if it still exists (the task's entry)."""
    model = RegisteredModel.objects.filter(pk=model_id).first()
    return health_evaluate(model=model, context=context) if model is not None else None


def health_model_ids() -> list[int]:
    """Every model's id, for the periodic evaluation of all models."""
    return list(RegisteredModel.objects.order_by("pk").values_list("pk", flat=True))
