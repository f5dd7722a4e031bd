"""Budget alerts: month-to-date cost against the monthly budget alerts at 80 % (warning) and 100 %
(critical), each once per month, and again the next month."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.core import mail

from monitoring.choices import AlertKind, AlertSeverity, AlertStatus
from monitoring.models import Alert
from monitoring.models_cost import Budget, CostRecord
from monitoring.services.budgets import budget_evaluate
from monitoring.services.health import health_evaluate
from registry.models import AuditEvent

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def spend(model, amount: str, day: date = date(2026, 11, 10), currency: str = "EUR") -> None:
    CostRecord.objects.create(
        model=model,
        period_start=day,
        period_end=day,
        amount=Decimal(amount),
        currency=currency,
        category="serving",
        created_at=NOW,
    )


@pytest.fixture
def budget(churn):
    return Budget.objects.create(model=churn, monthly_amount=Decimal("1000.00"), currency="EUR", updated_at=NOW)


def budget_alerts(model):
    return list(Alert.objects.filter(model=model, kind=AlertKind.BUDGET).order_by("pk"))


def actions(model) -> list[str]:
    return list(
        AuditEvent.objects.filter(model_id=model.pk, action__startswith="alert.")
        .order_by("seq")
        .values_list("action", flat=True)
    )


def test_79_percent_alerts_nothing_80_one_warning_85_nothing_more_100_one_critical(churn, budget):
    spend(churn, "790")
    spend(churn, "500", day=date(2026, 10, 31))  # last month: does not count
    spend(churn, "900", currency="USD")  # another currency: never converted, never added
    assert budget_evaluate(model=churn, now=NOW) is None
    assert budget_alerts(churn) == []

    spend(churn, "10")  # 800 of 1000
    alert = budget_evaluate(model=churn, now=NOW)
    assert alert is not None and alert.severity == AlertSeverity.WARNING and alert.status == AlertStatus.OPEN
    assert "80.0%" in alert.title and "1,000.00 EUR" in alert.title
    # the title is the crossing, dated: the dashboard shows the spend as it grows after it
    assert f"Month-to-date cost reached 800.00 EUR on {NOW:%Y-%m-%d}: 80.0%" in alert.title
    assert actions(churn) == ["alert.opened"]

    spend(churn, "50")  # 85 %
    assert budget_evaluate(model=churn, now=NOW) is None
    assert budget_evaluate(model=churn, now=NOW) is None
    assert actions(churn) == ["alert.opened"] and len(budget_alerts(churn)) == 1

    spend(churn, "150")  # 100 %
    alert = budget_evaluate(model=churn, now=NOW)
    assert alert.severity == AlertSeverity.CRITICAL and alert.status == AlertStatus.OPEN
    spend(churn, "300")  # 130 %
    assert budget_evaluate(model=churn, now=NOW) is None
    assert actions(churn) == ["alert.opened", "alert.escalated"]
    assert len(budget_alerts(churn)) == 1


def test_the_next_month_resolves_the_alert_and_alerts_again(churn, budget):
    spend(churn, "850")
    assert budget_evaluate(model=churn, now=NOW).severity == AlertSeverity.WARNING
    december = datetime(2026, 12, 1, 6, 15, tzinfo=UTC)
    assert budget_evaluate(model=churn, now=december) is None
    assert [a.status for a in budget_alerts(churn)] == [AlertStatus.RESOLVED]
    spend(churn, "820", day=date(2026, 12, 3))
    later = datetime(2026, 12, 4, tzinfo=UTC)
    alert = budget_evaluate(model=churn, now=later)
    assert alert.severity == AlertSeverity.WARNING and "2026-12" in alert.title
    assert [a.status for a in budget_alerts(churn)] == [AlertStatus.RESOLVED, AlertStatus.OPEN]
    assert actions(churn) == ["alert.opened", "alert.resolved", "alert.opened"]


def test_a_raised_budget_that_drops_the_share_does_not_alert_the_same_level_twice_in_a_month(churn, budget):
    spend(churn, "800")
    budget_evaluate(model=churn, now=NOW)
    Budget.objects.filter(pk=budget.pk).update(monthly_amount=Decimal("2000"))
    budget_evaluate(model=churn, now=NOW)
    Budget.objects.filter(pk=budget.pk).update(monthly_amount=Decimal("900"))
    assert budget_evaluate(model=churn, now=NOW) is None
    assert actions(churn) == ["alert.opened"]


def test_an_acknowledged_warning_reopens_when_it_escalates(churn, budget, owner):
    from monitoring.services.alerts import alert_acknowledge
    from registry.services.audit import CLI

    spend(churn, "800")
    alert = budget_evaluate(model=churn, now=NOW)
    alert_acknowledge(alert=alert, actor=owner, comment="Expected: retraining this month.", context=CLI)
    spend(churn, "200")
    alert = budget_evaluate(model=churn, now=NOW)
    assert (alert.severity, alert.status) == (AlertSeverity.CRITICAL, AlertStatus.OPEN)


def test_health_evaluation_leaves_the_budget_alert_alone(churn, budget):
    spend(churn, "1000")
    budget_evaluate(model=churn, now=NOW)
    health_evaluate(model=churn)
    assert [a.status for a in budget_alerts(churn)] == [AlertStatus.OPEN]


def test_cost_records_sent_through_the_api_evaluate_the_budget_once_they_commit(
    churn, owner, api_client_for, django_capture_on_commit_callbacks
):
    from mlops_portal import clock

    today = clock.now().date().isoformat()
    Budget.objects.create(model=churn, monthly_amount=Decimal("100"), currency="EUR", updated_at=NOW)
    body = {"period_start": today, "period_end": today, "amount": "100", "currency": "EUR", "category": "serving"}
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client_for(owner).post("/api/v1/models/churn/costs/", body, format="json")
    assert response.status_code == 201, response.content
    assert [(a.severity, a.status) for a in budget_alerts(churn)] == [(AlertSeverity.CRITICAL, AlertStatus.OPEN)]
    assert any("budget" in m.subject.lower() for m in mail.outbox)


def test_the_daily_beat_schedule_evaluates_every_budget(churn, budget):
    from django_celery_beat.models import PeriodicTask

    from monitoring import tasks

    task = PeriodicTask.objects.get(task="monitoring.tasks.budgets_evaluate_all")
    assert task.enabled and task.crontab is not None
    spend(churn, "900")
    from mlops_portal import clock

    with clock.at(NOW):
        assert tasks.budgets_evaluate_all.delay().get() == 1
    assert [a.severity for a in budget_alerts(churn)] == [AlertSeverity.WARNING]
