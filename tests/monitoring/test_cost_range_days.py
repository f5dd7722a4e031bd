"""The days a dashboard range counts cost for. Costs are recorded per day, so a range counts the
days whose start (00:00 UTC) it holds: the default "last 7 days" opened at 19:30 on 7 Dec starts at
19:00 on 30 Nov and counts 1–7 Dec, not 30 Nov as well. The cost panel, its per-day chart and the
LLM cost-per-day chart count the same days, and the total is the sum of the days drawn."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse

from mlops_portal import clock
from monitoring.choices import CostCategory, CostSource
from monitoring.forms import dashboard_query_parse
from monitoring.models_cost import Budget, CostRecord
from monitoring.selectors.cost import fleet_cost_rollup
from monitoring.selectors.dashboard import model_dashboard_data
from monitoring.selectors.llm import llm_panels
from tests.monitoring.helpers import figures_of

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 7, 19, 30, tzinfo=UTC)
WEEK = [date(2026, 12, 1) + timedelta(days=i) for i in range(7)]
BEFORE = date(2026, 11, 30)  # the default range starts at 19:00 on it


@pytest.fixture
def evening():
    with time_machine.travel(NOW, tick=False):
        yield NOW


def spend(model, day: date, amount: str, **fields) -> CostRecord:
    return CostRecord.objects.create(
        model=model,
        period_start=day,
        period_end=day,
        amount=Decimal(amount),
        currency="EUR",
        category=fields.pop("category", CostCategory.SERVING),
        created_at=clock.now(),
        **fields,
    )


def dashboard(client, name="churn", **params):
    return client.get(reverse("monitoring:model_dashboard", args=[name]), params)


def test_the_default_week_counts_the_seven_days_it_covers_and_says_which(churn, owner, client_for, evening):
    # it counted 30 Nov too (8 calendar days) because the range starts at 19:00 on it
    spend(churn, BEFORE, "100.00")
    spend(churn, WEEK[0], "1.00")
    spend(churn, WEEK[-1], "2.00", category=CostCategory.STORAGE)
    response = dashboard(client_for(owner))
    cost = response.context["cost"]
    assert cost.days == WEEK
    daily = [sum(values[i] for values in cost.by_category.values()) for i in range(len(cost.days))]
    assert cost.total == sum(daily) == Decimal("3.00")
    x = {day for trace in figures_of(response)["chart-cost-daily"]["data"] for day in trace["x"]}
    assert x == {d.isoformat() for d in WEEK}
    page = response.content.decode()
    assert "3.00 EUR in 7 days, 1–7 Dec 2026" in page
    assert "30 Nov 2026 is left out" in page


def test_a_range_starting_at_midnight_counts_its_first_day(churn, owner, client_for, evening):
    spend(churn, BEFORE, "100.00")
    spend(churn, WEEK[0], "1.00")
    params = {"range": "custom", "start": "2026-12-01T00:00", "end": "2026-12-08T00:00"}
    response = dashboard(client_for(owner), **params)
    cost = response.context["cost"]
    assert cost.days == WEEK and cost.total == Decimal("1.00")
    page = response.content.decode()
    assert "1.00 EUR in 7 days, 1–7 Dec 2026" in page and "is left out" not in page


def test_a_range_within_one_day_counts_that_day(churn, owner, client_for, evening):
    spend(churn, date(2026, 12, 3), "4.00")
    params = {"range": "custom", "start": "2026-12-03T10:00", "end": "2026-12-03T14:00"}
    cost = dashboard(client_for(owner), **params).context["cost"]
    assert cost.days == [date(2026, 12, 3)] and cost.total == Decimal("4.00")


def test_the_llm_cost_per_day_chart_counts_the_same_days_as_the_cost_panel(
    assistant, assistant_v1, owner, client_for, evening
):
    for day, amount in ((BEFORE, "50.00"), (WEEK[0], "1.00"), (WEEK[-1], "2.00")):
        spend(
            assistant,
            day,
            amount,
            category=CostCategory.INFERENCE,
            source=CostSource.REQUESTS,
            version=assistant_v1,
        )
    data = model_dashboard_data(user=owner, name=assistant.name, query=dashboard_query_parse({}))
    panels = llm_panels(data)
    assert panels.cost_days == [WEEK[0], WEEK[-1]]
    cost = dashboard(client_for(owner), name=assistant.name).context["cost"]
    assert sum(panels.cost_amounts) == cost.total == Decimal("3.00")


def test_the_panel_month_to_date_is_the_fleet_roll_up_of_the_model(churn, owner, evening):
    for day, amount in ((BEFORE, "100.00"), (WEEK[0], "1.00"), (WEEK[-1], "2.00"), (date(2026, 12, 8), "9.00")):
        spend(churn, day, amount)  # 8 Dec is after today: in neither
    Budget.objects.create(model=churn, monthly_amount=Decimal("10"), currency="EUR", updated_at=clock.now())
    from monitoring.selectors.cost import cost_panel

    start, end = dashboard_query_parse({}).cost_days
    panel = cost_panel(user=owner, model=churn, start=start, end=end, today=NOW.date())
    rollup = fleet_cost_rollup(user=owner, today=NOW.date())
    team = next(g for g in rollup.by_team if g.key == churn.team.slug)
    assert panel.budget.spent == panel.month_cumulative[-1] == team.month_to_date["EUR"] == Decimal("3.00")
    assert team.last_month["EUR"] == Decimal("100.00")


def test_a_range_within_the_last_day_of_the_calendar_counts_that_day(churn, owner, client_for, evening):
    # it answered 500: the day after 9999-12-31 (where a range starting after midnight counts from)
    # is out of the calendar
    params = {"range": "custom", "start": "9999-12-31T22:00", "end": "9999-12-31T23:00"}
    response = dashboard(client_for(owner), **params)
    assert response.status_code == 200
    assert response.context["cost"].days == [date.max] and response.context["cost"].total == 0
