"""Health from the estimated performance while a window is unlabelled.

``estimated_performance_reasons`` is one of the window checks of ``monitoring.services.health``:
when the deciding window's label coverage is below the model's ``label_coverage_threshold``
(its realized metric is provisional or missing), the model's primary metric is read from the
window's estimate (``estimated.<metric>``, see ``monitoring.estimation``) and compared with
the version's offline value with the same drop thresholds as the realized metric. The reason
says "estimated" and carries the band; once labels cover the window the realized check decides.
"""

from __future__ import annotations

from monitoring.choices import AlertKind, AlertSeverity, Metric
from monitoring.estimation import estimated_name

LOWER_IS_BETTER = {Metric.LOG_LOSS, Metric.MAE, Metric.RMSE}


def drop_severity(model, config, offline: float, value: float) -> str | None:
    """The severity of the primary metric's ``value`` against its ``offline`` value: critical or
    warning by the drop thresholds of ``config`` (a rise, for a metric where lower is better), else None."""
    primary = model.primary_metric
    higher = model.primary_metric_higher_is_better and primary not in LOWER_IS_BETTER
    drop = (offline - value) if higher else (value - offline)
    if drop >= config.performance_drop_critical:
        return AlertSeverity.CRITICAL
    if drop >= config.performance_drop_warning:
        return AlertSeverity.WARNING
    return None


def estimated_performance_reasons(window) -> tuple[frozenset[str], list[dict]]:
    """The primary metric's estimate of an unlabelled window worse than offline by ≥ the
    ``performance_drop_warning`` / ``_critical`` thresholds → warning / critical. Returns (judged
    kinds, reasons): performance is judged when the unlabelled window has an estimate."""
    model, version, config = window.model, window.version, window.config
    primary = model.primary_metric
    offline = (version.metrics or {}).get(primary) if primary else None
    estimate = window.get("", estimated_name(primary)) if primary else None
    if offline is None or estimate is None:
        return frozenset(), []
    coverage = window.get("", Metric.LABEL_COVERAGE) or 0.0
    if coverage >= config.label_coverage_threshold:
        return frozenset(), []  # labelled: the realized metric decides
    judged = frozenset({AlertKind.PERFORMANCE})
    severity = drop_severity(model, config, offline, estimate)
    if severity is None:
        return judged, []
    lower = window.get("", estimated_name(primary, "lower"))
    upper = window.get("", estimated_name(primary, "upper"))
    band = f" (95% band {lower:.3f}–{upper:.3f})" if lower is not None and upper is not None else ""
    message = (
        f"Estimated {primary} is {estimate:.3f}{band} against {offline:.3f} offline; "
        f"labels cover {coverage:.0%} of the window, so this is an estimate, not a realized value."
    )
    return judged, [
        {
            "kind": AlertKind.PERFORMANCE,
            "severity": severity,
            "message": message,
            "metric": primary,
            "value": estimate,
            "offline": offline,
            "estimated": True,
        }
    ]
