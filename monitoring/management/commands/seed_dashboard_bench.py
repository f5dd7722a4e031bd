"""Seed a model with N days of hourly (and daily) monitoring windows for M features.

The data set of the dashboard page benchmark (issue 6 item 5: 90 days of hourly windows
x 50 features) and of the dashboard tests (small sizes). Writes rows directly, as the
monitoring engine's window computation would have written them: metric values for every
window (hourly, plus daily windows), fine bin counts, a ready reference profile, a
monitoring config, health, alerts and a promotion history. On PostgreSQL the metric rows
go in with ``COPY``; elsewhere with ``bulk_create``.

    manage.py seed_dashboard_bench --days 90 --features 50 --name bench-dashboard

From Python (bench/pages.py, tests)::

    from monitoring.management.commands.seed_dashboard_bench import seed_dashboard
    model = seed_dashboard(name="bench-dashboard", days=90, features=50)
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import numpy as np
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from mlops_portal.db import insert_rows
from monitoring.choices import (
    SCORE_FEATURE,
    AlertKind,
    AlertSeverity,
    AlertStatus,
    Granularity,
    HealthState,
    Metric,
    ProfileStatus,
)
from monitoring.models import (
    Alert,
    HealthStatus,
    MetricValue,
    MonitoringConfig,
    ReferenceProfile,
    WindowBinCounts,
)
from registry.choices import Decision, PromotionStatus, RiskTier, Stage
from registry.models import ModelVersion, PromotionRequest, RegisteredModel, Review, StageTransition, Team

N_BINS = 10
FINE = 5 * N_BINS
DAILY_FEATURE_METRICS = [
    Metric.PSI,
    Metric.JS_DISTANCE,
    Metric.KS_STATISTIC,
    Metric.KS_P_VALUE,
    Metric.WASSERSTEIN,
    Metric.DRIFT_DETECTED,
    Metric.MISSING_SHARE,
    Metric.OUT_OF_RANGE_SHARE,
]


def _profile(features: list[str], rng: np.random.Generator) -> dict:
    cols = {}
    for name in [*features, SCORE_FEATURE]:
        edges = np.sort(rng.normal(0, 1, FINE - 1)).round(4)
        coarse_map = [0] + [min(N_BINS - 1, (i + 1) // 5) for i in range(FINE - 1)]
        cols[name] = {
            "type": "numeric",
            "edges": edges.tolist(),
            "coarse_edges": edges[4::5].tolist()[: N_BINS - 1],
            "coarse_map": coarse_map,
            "mids": np.linspace(-2, 2, FINE).round(4).tolist(),
            "counts": [200] * FINE,
            "n": 200 * FINE,
            "missing": 0,
            "min": -3.0,
            "max": 3.0,
            "mean": 0.0,
            "std": 1.0,
        }
    return {"format": 1, "n_rows": 200 * FINE, "n_bins": N_BINS, "task_type": "binary", "features": cols}


def _metric_rows(model_id, version_id, features, starts, granularity, step, rng, now):
    """Yield MetricValue tuples: drift drifting upwards over the period for a few features."""
    n = len(starts)
    trend = np.linspace(0, 1, n)
    for i, start in enumerate(starts):
        end = start + step
        volume = int(rng.integers(800, 1200)) * (24 if granularity == Granularity.DAILY else 1)
        coverage = 1.0 if i < n - 24 else float(rng.uniform(0.2, 0.7))
        provisional = coverage < 0.8
        drifted = 0
        for j, f in enumerate(features):
            psi = abs(float(rng.normal(0.03, 0.02))) + (0.35 * trend[i] if j < 3 else 0.0)
            is_drifted = psi >= 0.1
            drifted += is_drifted
            values = {
                Metric.PSI: psi,
                Metric.JS_DISTANCE: min(1.0, psi / 2),
                Metric.KS_STATISTIC: min(1.0, psi / 3),
                Metric.KS_P_VALUE: max(0.0, 1 - psi * 3),
                Metric.WASSERSTEIN: psi / 2,
                Metric.DRIFT_DETECTED: float(is_drifted),
                Metric.MISSING_SHARE: abs(float(rng.normal(0.01, 0.005))),
                Metric.OUT_OF_RANGE_SHARE: abs(float(rng.normal(0.005, 0.003))),
            }
            for metric, value in values.items():
                yield (model_id, version_id, granularity, start, end, f, metric, value, False, now)
        yield (
            model_id,
            version_id,
            granularity,
            start,
            end,
            SCORE_FEATURE,
            Metric.PSI,
            0.05 + 0.2 * trend[i],
            False,
            now,
        )
        share = drifted / len(features)
        auc = 0.86 - 0.08 * trend[i] + float(rng.normal(0, 0.005))
        dataset = {
            Metric.VOLUME: volume,
            Metric.DRIFT_SHARE: share,
            Metric.DRIFTED_FEATURES: drifted,
            Metric.LABEL_COVERAGE: coverage,
            Metric.ROC_AUC: auc,
            Metric.ACCURACY: auc - 0.05,
            Metric.F1: auc - 0.12,
            Metric.PRECISION: auc - 0.1,
            Metric.RECALL: auc - 0.15,
        }
        for metric, value in dataset.items():
            perf = metric not in (Metric.VOLUME, Metric.DRIFT_SHARE, Metric.DRIFTED_FEATURES, Metric.LABEL_COVERAGE)
            yield (model_id, version_id, granularity, start, end, "", metric, value, perf and provisional, now)


# every column but the id, in the order ``_metric_rows`` builds its tuples
COLUMNS = [f.attname for f in MetricValue._meta.concrete_fields if not f.primary_key]


def _write_metrics(rows) -> int:
    return insert_rows(MetricValue, COLUMNS, rows)


@transaction.atomic
def _promotion_history(model, v1, v2, *, owner, reviewer, start_time: datetime, days: int) -> None:
    """v1 in production before the range, v2 promoted (independently approved) a third in."""
    if StageTransition.objects.filter(model=model).exists():
        return
    request = PromotionRequest.objects.create(
        version=v2,
        target_stage=Stage.PRODUCTION,
        requested_by=owner,
        justification="Better AUC.",
        status=PromotionStatus.APPLIED,
    )
    Review.objects.create(request=request, reviewer=reviewer, requester=owner, decision=Decision.APPROVE)
    for version, when in ((v1, start_time - timedelta(days=30)), (v2, start_time + timedelta(days=days // 3))):
        t = StageTransition.objects.create(
            version=version,
            model=model,
            from_stage=Stage.STAGING,
            to_stage=Stage.PRODUCTION,
            actor=owner,
            promotion_request=request if version == v2 else None,
        )
        StageTransition.objects.filter(pk=t.pk).update(created_at=when)


def _write_bin_counts(version, features: list[str], starts: list[datetime], rng: np.random.Generator) -> None:
    """Hourly fine bin counts of every feature (1,000 rows per window each)."""
    bins = []
    for start in starts:
        for f in features:
            counts = rng.multinomial(1000, np.full(FINE, 1 / FINE)).tolist()
            row = WindowBinCounts(
                version=version, window_start=start, granularity=Granularity.HOURLY, feature=f, counts=counts, n=1000
            )
            bins.append(row)
        if len(bins) >= 5000:
            WindowBinCounts.objects.bulk_create(bins)
            bins = []
    WindowBinCounts.objects.bulk_create(bins)


def _health_and_alerts(model, *, owner, now: datetime, days: int) -> None:
    """Critical health, and a resolved, an acknowledged and an open alert."""
    HealthStatus.objects.update_or_create(
        model=model,
        defaults={
            "status": HealthState.CRITICAL,
            "reasons": [{"kind": "drift", "severity": "critical", "message": "PSI above 0.25 on 3 features"}],
            "window_start": now - timedelta(hours=1),
            "window_end": now,
            "computed_at": now,
        },
    )
    for kind, severity, age_days, status in [
        (AlertKind.DRIFT, AlertSeverity.WARNING, days * 0.6, AlertStatus.RESOLVED),
        (AlertKind.PERFORMANCE, AlertSeverity.WARNING, days * 0.3, AlertStatus.ACKNOWLEDGED),
        (AlertKind.DRIFT, AlertSeverity.CRITICAL, 2, AlertStatus.OPEN),
    ]:
        opened = now - timedelta(days=age_days)
        Alert.objects.create(
            model=model,
            kind=kind,
            severity=severity,
            status=status,
            title=f"{severity} {kind} on {model.name}",
            reasons=[{"message": "synthetic"}],
            opened_at=opened,
            updated_at=opened,
            acknowledged_by=owner if status != AlertStatus.OPEN else None,
            acknowledged_at=opened + timedelta(hours=2) if status != AlertStatus.OPEN else None,
            acknowledge_comment="looking" if status != AlertStatus.OPEN else "",
            resolved_at=opened + timedelta(days=1) if status == AlertStatus.RESOLVED else None,
        )


def seed_dashboard(
    *,
    name: str = "bench-dashboard",
    days: int = 90,
    features: int = 50,
    owner=None,
    team: Team | None = None,
    now: datetime | None = None,
    daily: bool = True,
    seed: int = 0,
) -> RegisteredModel:
    """Create (or replace the monitoring data of) model ``name`` with ``days`` of hourly
    windows for ``features`` features ending at ``now``. Returns the model."""
    rng = np.random.default_rng(seed)
    now = (now or timezone.now()).replace(minute=0, second=0, microsecond=0)
    User = get_user_model()
    if owner is None:
        owner, _ = User.objects.get_or_create(username="bench-owner", defaults={"email": "bench-owner@example.com"})
    if team is None:
        team, _ = Team.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    team.members.add(owner)
    reviewer, _ = User.objects.get_or_create(username="bench-reviewer", defaults={"email": "bench-rev@example.com"})
    names = [f"feature_{i:02d}" for i in range(features)]
    model, _ = RegisteredModel.objects.get_or_create(
        name=name,
        defaults={
            "owner": owner,
            "team": team,
            "risk_tier": RiskTier.HIGH,
            "description": "Benchmark model with synthetic monitoring data.",
            "intended_use": "Benchmarks.",
            "limitations": "Synthetic.",
            "retrain_cadence_days": 180,
            "primary_metric": "roc_auc",
        },
    )
    schema = [{"name": f, "type": "numeric"} for f in names]
    start_time = now - timedelta(days=days)
    v1, _ = ModelVersion.objects.get_or_create(
        model=model,
        version=1,
        defaults={"stage": Stage.ARCHIVED, "feature_schema": schema, "metrics": {"roc_auc": 0.84}},
    )
    v2, _ = ModelVersion.objects.get_or_create(
        model=model,
        version=2,
        defaults={"stage": Stage.PRODUCTION, "feature_schema": schema, "metrics": {"roc_auc": 0.86}},
    )
    MetricValue.objects.filter(model=model).delete()
    WindowBinCounts.objects.filter(version__model=model).delete()
    Alert.objects.filter(model=model).delete()
    _promotion_history(model, v1, v2, owner=owner, reviewer=reviewer, start_time=start_time, days=days)
    MonitoringConfig.objects.update_or_create(model=model, defaults={"granularity": Granularity.HOURLY})
    ReferenceProfile.objects.update_or_create(
        version=v2,
        defaults={
            "status": ProfileStatus.READY,
            "source_format": "parquet",
            "n_rows": 200 * FINE,
            "data": b"",
            "data_sha256": "0" * 64,
            "profile": _profile(names, rng),
            "computed_at": now,
        },
    )
    hourly = [start_time + timedelta(hours=h) for h in range(days * 24)]
    written = _write_metrics(
        _metric_rows(model.pk, v2.pk, names, hourly, Granularity.HOURLY, timedelta(hours=1), rng, now)
    )
    if daily:
        days_starts = [start_time + timedelta(days=d) for d in range(days)]
        written += _write_metrics(
            _metric_rows(model.pk, v2.pk, names, days_starts, Granularity.DAILY, timedelta(days=1), rng, now)
        )
    _write_bin_counts(v2, [*names, SCORE_FEATURE], hourly, rng)
    _health_and_alerts(model, owner=owner, now=now, days=days)
    model.metric_rows_written = written
    return model


class Command(BaseCommand):
    help = "Seed a model with N days of hourly monitoring windows for M features (dashboard benchmark data)."

    def add_arguments(self, parser):
        parser.add_argument("--name", default="bench-dashboard")
        parser.add_argument("--days", type=int, default=90)
        parser.add_argument("--features", type=int, default=50)

    def handle(self, *args, name, days, features, **options):
        started = time.perf_counter()
        model = seed_dashboard(name=name, days=days, features=features)
        self.stdout.write(
            f"seeded {model.name}: {days} days x 24 hourly windows x {features} features, "
            f"{model.metric_rows_written} metric rows in {time.perf_counter() - started:.1f} s; "
            f"owner 'bench-owner', page /monitoring/models/{model.name}/"
        )


__all__ = ["seed_dashboard"]
