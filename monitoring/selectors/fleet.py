"""The fleet overview: every visible model with its health, and the portfolio roll-up."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from datetime import datetime, timedelta

import numpy as np
from django.core.exceptions import ValidationError
from django.db.models import Case, Count, Exists, F, IntegerField, OuterRef, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from registry.choices import RiskTier, Stage
from registry.models import AuditEvent, ModelVersion, RegisteredModel
from registry.selectors.inventory import RISK_RANK  # the inventory's order: high risk ranks highest

from ..choices import AlertSeverity, AlertStatus, HealthState, Metric
from ..filters import FleetFilterSet
from ..models import Alert, MetricValue

SEVERITY_CHANGES = ("alert.escalated", "alert.deescalated")
RESOLVED_EVENT = "alert.resolved"
HISTORY = (*SEVERITY_CHANGES, RESOLVED_EVENT, "alert.reopened")
"""The audit events of an alert that change whether it is red: its severity, its resolution, its reopening."""
HEALTH_ORDER = [HealthState.CRITICAL, HealthState.WARNING, HealthState.NO_DATA, HealthState.OK]
HEALTH_RANK = Case(
    *[When(health__status=s, then=Value(i)) for i, s in enumerate(HEALTH_ORDER)],
    default=Value(HEALTH_ORDER.index(HealthState.NO_DATA)),
    output_field=IntegerField(),
)


def fleet_models(*, user, filters=None) -> tuple[QuerySet[RegisteredModel], FleetFilterSet]:
    """Every model the user may see, with health, production version, last window and open
    alerts annotated in one query (subqueries, no per-row lookups), through ``FleetFilterSet``
    (``filters``: the GET parameters). Worst health first unless an ordering is asked for.
    Raises ValidationError on bad filter values."""
    production = ModelVersion.objects.filter(model=OuterRef("pk"), stage=Stage.PRODUCTION).values("version")[:1]
    last_window = (
        MetricValue.objects.filter(model=OuterRef("pk"), metric=Metric.VOLUME, feature="")
        .order_by("-window_start")
        .values("window_end")[:1]
    )
    open_alerts = (
        Alert.objects.filter(model=OuterRef("pk"))
        .exclude(status=AlertStatus.RESOLVED)
        .order_by()
        .values("model")
        .annotate(c=Count("pk"))
        .values("c")
    )
    critical = Alert.objects.filter(model=OuterRef("pk"), severity=AlertSeverity.CRITICAL).exclude(
        status=AlertStatus.RESOLVED
    )
    qs = (
        RegisteredModel.objects.visible_to(user)
        .select_related("owner", "team", "health")
        .annotate(
            health_state=Coalesce(F("health__status"), Value(HealthState.NO_DATA)),
            production_version=Subquery(production),
            last_window=Subquery(last_window),
            open_alerts=Coalesce(Subquery(open_alerts), Value(0)),
            critical_alerts=Exists(critical),
            health_rank=HEALTH_RANK,
            risk_rank=RISK_RANK,
        )
        .order_by("health_rank", "name")
    )
    filterset = FleetFilterSet(filters or {}, queryset=qs)
    if not filterset.is_valid():
        raise ValidationError(filterset.errors)
    return filterset.qs, filterset


def fleet_health_counts(models) -> dict[str, int]:
    counts = {s.value: 0 for s in HEALTH_ORDER}
    for m in models:
        counts[m.health_state] = counts.get(m.health_state, 0) + 1
    return counts


@dataclasses.dataclass
class TierRollup:
    """Portfolio roll-up of one risk tier over the last 30 days."""

    tier: str
    models: int
    by_health: dict[str, int]
    red_hours: float  # mean hours per model with an alert critical (last 30 days)
    red_share: float
    mtta_hours: float | None
    mttr_hours: float | None
    alerts: int


@dataclasses.dataclass
class _TierAlerts:
    """What the alerts of one tier add up to over the period."""

    opened: int = 0
    ack_hours: list[float] = dataclasses.field(default_factory=list)
    resolve_hours: list[float] = dataclasses.field(default_factory=list)


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def fleet_rollup(*, user, now: datetime | None = None, days: int = 30) -> list[TierRollup]:
    """Per risk tier: models per health state, time in red (an alert critical) over the last
    ``days`` days, and mean time to acknowledge and to resolve the alerts opened then.

    Three queries: the visible models' tiers and health, the alerts touching the period, and
    their severity changes (``alert_critical_spans``).
    """
    now = now or timezone.now()
    since = now - timedelta(days=days)
    model_rows = list(
        RegisteredModel.objects.visible_to(user)
        .annotate(state=Coalesce(F("health__status"), Value(HealthState.NO_DATA)))
        .order_by()
        .values_list("pk", "risk_tier", "state")
    )
    tier_of = {pk: tier for pk, tier, _ in model_rows}
    alerts = list(
        Alert.objects.filter(model_id__in=list(tier_of))
        .filter(Q(opened_at__gte=since) | Q(resolved_at__isnull=True) | Q(resolved_at__gte=since))
        .order_by()
        .values_list("pk", "model_id", "severity", "opened_at", "acknowledged_at", "resolved_at")
    )
    critical = alert_critical_spans(alerts, since=since, now=now)
    red: dict[int, list[tuple[datetime, datetime]]] = defaultdict(list)
    for alert_pk, model_id, *_ in alerts:
        red[model_id].extend(critical[alert_pk])
    per_tier: dict[str, _TierAlerts] = defaultdict(_TierAlerts)
    for _pk, model_id, _severity, opened_at, acknowledged_at, resolved_at in alerts:
        if opened_at < since:
            continue
        tier = per_tier[tier_of[model_id]]
        tier.opened += 1
        if acknowledged_at:
            tier.ack_hours.append((acknowledged_at - opened_at).total_seconds() / 3600)
        if resolved_at:
            tier.resolve_hours.append((resolved_at - opened_at).total_seconds() / 3600)
    red_hours_by_model = {pk: _union_hours(spans) for pk, spans in red.items()}
    out = []
    for tier in RiskTier.values:
        members = [(pk, state) for pk, t, state in model_rows if t == tier]
        by_health = {s.value: 0 for s in HEALTH_ORDER}
        for _pk, state in members:
            by_health[state] = by_health.get(state, 0) + 1
        mean_red = _mean([red_hours_by_model.get(pk, 0.0) for pk, _ in members]) or 0.0
        stats = per_tier[tier]
        out.append(
            TierRollup(
                tier=tier,
                models=len(members),
                by_health=by_health,
                red_hours=mean_red,
                red_share=mean_red / (days * 24),
                mtta_hours=_mean(stats.ack_hours),
                mttr_hours=_mean(stats.resolve_hours),
                alerts=stats.opened,
            )
        )
    return out


def alert_critical_spans(alerts: list[tuple], *, since: datetime, now: datetime) -> dict[int, list[tuple]]:
    """Per alert (rows of pk, model, severity, opened, acknowledged, resolved): the spans within
    [``since``, ``now``] it was critical. Its history runs from its opening, through each
    severity change its ``alert.escalated`` / ``alert.deescalated`` audit event records
    (before and after), and each ``alert.resolved`` / ``alert.reopened`` (a reopened alert was
    not red while it was resolved), to its resolution; an alert without a change kept its
    severity. One query."""
    changes: dict[int, list[tuple]] = defaultdict(list)
    if alerts:
        events = (
            AuditEvent.objects.filter(
                action__in=HISTORY,
                object_type=Alert._meta.label_lower,
                object_id__in=[str(row[0]) for row in alerts],
            )
            .order_by("seq")
            .values_list("object_id", "action", "timestamp", "before", "after")
        )
        for object_id, action, timestamp, before, after in events:
            before_severity, after_severity = (before or {}).get("severity"), (after or {}).get("severity")
            changes[int(object_id)].append((timestamp, action, before_severity, after_severity))
    out: dict[int, list[tuple]] = {}
    for pk, _model, severity, opened_at, _acknowledged, resolved_at in alerts:
        spans = _critical_spans(changes[pk], severity, opened_at, resolved_at or now)
        clipped = ((max(s, since), min(e, now)) for s, e in spans)
        out[pk] = [(s, e) for s, e in clipped if e > s]
    return out


def _critical_spans(history: list[tuple], severity: str, opened_at: datetime, end: datetime) -> list[tuple]:
    """The critical spans of one alert from its history (time, action, severity before, after)."""
    first = history[0] if history else None
    current = (first[2] or first[3]) if first else severity  # the severity it opened with
    start, active, spans = opened_at, True, []
    for changed_at, action, _before, after in history:
        if active and current == AlertSeverity.CRITICAL:
            spans.append((start, changed_at))
        active = action != RESOLVED_EVENT
        current, start = after or current, changed_at
    if active and current == AlertSeverity.CRITICAL:
        spans.append((start, end))
    return spans


def _union_hours(spans: list[tuple[datetime, datetime]]) -> float:
    """Hours covered by the union of the spans (overlapping alerts count once)."""
    total = 0.0
    current_start = current_end = None
    for s, e in sorted(spans):
        if e <= s:
            continue
        if current_end is None or s > current_end:
            if current_end is not None:
                total += (current_end - current_start).total_seconds()
            current_start, current_end = s, e
        else:
            current_end = max(current_end, e)
    if current_end is not None:
        total += (current_end - current_start).total_seconds()
    return total / 3600
