"""The demo's cost history: every existing model gets ~8 weeks of serving, training and storage
cost and a budget; the near-budget model shows the 80 % alert; a re-run adds nothing."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mlops_portal import clock
from monitoring.choices import AlertKind, AlertSeverity
from monitoring.demo_cost import NEAR_BUDGET, load_demo_costs
from monitoring.models import Alert
from monitoring.models_cost import Budget, CostRecord
from monitoring.selectors.cost import budget_status
from tests.factories import ModelVersionFactory, RegisteredModelFactory

pytestmark = pytest.mark.django_db


def test_every_model_gets_a_deterministic_cost_history_and_the_llm_app_is_near_its_budget(churn, owner, team):
    """churn (a classic model, EUR) and the support assistant (an LLM application, USD: its
    tokens' cost is already recorded from its requests, and counts towards its budget)."""
    assistant = RegisteredModelFactory(name=NEAR_BUDGET, kind="llm_app", owner=owner, team=team)
    ModelVersionFactory(model=churn)
    today = clock.now().date()
    CostRecord.objects.create(
        model=assistant,
        period_start=today,
        period_end=today,
        amount=Decimal("40.123456"),
        currency="USD",
        category="inference",
        source="requests",
        external_id=f"requests:1:{today}",
        created_at=clock.now(),
    )
    created = load_demo_costs(today=today)
    assert created["budgets"] == 2 and created["cost_records"] > 2 * 56
    for model, currency in ((churn, "EUR"), (assistant, "USD")):
        records = CostRecord.objects.filter(model=model, source="api")
        assert set(records.values_list("currency", flat=True)) == {currency}
        assert records.filter(category="serving").count() == 56
        assert (today - min(records.values_list("period_start", flat=True))).days == 55
    assert CostRecord.objects.filter(model=churn, category="training").exists()
    assert not CostRecord.objects.filter(model=assistant, category="training").exists()
    assert CostRecord.objects.filter(category="storage").exists()
    status = budget_status(model=assistant, today=today)
    assert status.budget.currency == "USD"
    assert Decimal("0.83") < status.share < Decimal("0.85") and status.level == "warning"
    assert budget_status(model=churn, today=today).level == ""
    alerts = Alert.objects.filter(kind=AlertKind.BUDGET)
    assert [(a.model.name, a.severity) for a in alerts] == [(NEAR_BUDGET, AlertSeverity.WARNING)]

    totals = sorted(CostRecord.objects.values_list("model__name", "amount"))
    again = load_demo_costs(today=today)
    assert again["cost_records"] == 0 and again["budgets"] == 0
    assert sorted(CostRecord.objects.values_list("model__name", "amount")) == totals
    assert Budget.objects.count() == 2 and Alert.objects.filter(kind=AlertKind.BUDGET).count() == 1
