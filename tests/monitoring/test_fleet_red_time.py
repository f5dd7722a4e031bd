"""Time in red on the fleet page: the hours alerts spent critical, from their severity history
(the alert.escalated / alert.deescalated audit events), not their current severity."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from mlops_portal import clock
from monitoring.choices import AlertKind, AlertSeverity
from monitoring.models import Alert
from monitoring.selectors.fleet import fleet_rollup
from monitoring.services.alerts import alerts_sync
from registry.choices import RiskTier
from tests.factories import RegisteredModelFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
DRIFT = frozenset({AlertKind.DRIFT})


def sync(model, severity: str | None, moment: datetime) -> None:
    """The model's health evaluated at ``moment`` on the day window ending then."""
    reasons = [{"kind": AlertKind.DRIFT, "severity": severity, "message": "PSI"}] if severity else []
    with clock.at(moment):
        alerts_sync(
            model=model, reasons=reasons, evaluated=DRIFT, window=(moment - timedelta(days=1), moment), now=moment
        )


def day(d: int, hour: int = 7) -> datetime:
    return datetime(2026, 11, d, hour, 0, tzinfo=UTC)


def test_time_in_red_counts_only_the_hours_an_alert_was_critical(admin_user, owner, team):
    flapping = RegisteredModelFactory(name="flapping", owner=owner, team=team, risk_tier=RiskTier.HIGH)
    sync(flapping, AlertSeverity.WARNING, day(22))
    sync(flapping, AlertSeverity.CRITICAL, day(27))
    sync(flapping, AlertSeverity.WARNING, day(28))
    sync(flapping, AlertSeverity.CRITICAL, day(29))  # still critical now: 48 h more
    calmed = RegisteredModelFactory(name="calmed", owner=owner, team=team, risk_tier=RiskTier.LOW)
    sync(calmed, AlertSeverity.CRITICAL, day(20))
    sync(calmed, AlertSeverity.WARNING, day(21, 19))  # critical for 36 h, warning since
    rollup = {r.tier: r for r in fleet_rollup(user=admin_user, now=NOW)}
    assert rollup[RiskTier.HIGH].red_hours == pytest.approx(24 + 48)
    assert rollup[RiskTier.LOW].red_hours == pytest.approx(36)


def test_a_resolved_alert_and_the_period_bound_cut_the_red_time(admin_user, owner, team):
    model = RegisteredModelFactory(name="old", owner=owner, team=team, risk_tier=RiskTier.HIGH)
    sync(model, AlertSeverity.CRITICAL, NOW - timedelta(days=40))  # red since before the 30 days
    sync(model, AlertSeverity.WARNING, NOW - timedelta(days=20))
    sync(model, AlertSeverity.CRITICAL, NOW - timedelta(days=4))
    sync(model, None, NOW - timedelta(days=3))  # within thresholds: recovering, still critical
    sync(model, None, NOW - timedelta(days=2))
    sync(model, None, NOW - timedelta(days=1))  # the third window within thresholds: resolved
    rollup = {r.tier: r for r in fleet_rollup(user=admin_user, now=NOW)}
    assert rollup[RiskTier.HIGH].red_hours == pytest.approx(10 * 24 + 72)


def test_the_rollup_reads_the_history_in_a_fixed_number_of_queries(admin_user, owner, team):
    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            fleet_rollup(user=admin_user, now=NOW)
        return len(queries)

    model = RegisteredModelFactory(name="first", owner=owner, team=team)
    sync(model, AlertSeverity.WARNING, day(20))
    sync(model, AlertSeverity.CRITICAL, day(21))
    few = count()
    for i in range(5):
        other = RegisteredModelFactory(name=f"more-{i}", owner=owner, team=team)
        sync(other, AlertSeverity.CRITICAL, day(22))
        sync(other, AlertSeverity.WARNING, day(23))
    assert count() == few <= 3


def test_a_reopened_alert_is_not_red_while_it_was_resolved(admin_user, owner, team):
    model = RegisteredModelFactory(name="reopened", owner=owner, team=team, risk_tier=RiskTier.HIGH)
    sync(model, AlertSeverity.CRITICAL, day(20))
    for d in (21, 22, 23):  # three windows within thresholds: resolved on the 23rd
        sync(model, None, day(d))
    sync(model, AlertSeverity.CRITICAL, day(25))  # back two windows later: the same alert reopens
    for d in (26, 27, 28):
        sync(model, None, day(d))
    (alert,) = Alert.objects.filter(model=model)
    assert alert.reopen_count == 1 and alert.resolved_at == day(28)
    rollup = {r.tier: r for r in fleet_rollup(user=admin_user, now=NOW)}
    assert rollup[RiskTier.HIGH].red_hours == pytest.approx(72 + 72)
