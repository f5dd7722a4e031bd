"""Cost on the pages: the model dashboard's cost panel (per day by category, per 1,000 predictions,
month to date against the budget), the fleet's roll-up by team and risk tier, and the compliance
report's line per month (HTML and PDF). Currencies are never added together."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse

from mlops_portal import clock
from monitoring.charts.cost import cost_figures
from monitoring.choices import Granularity, Metric
from monitoring.models import MetricValue
from monitoring.models_cost import Budget, CostRecord
from monitoring.selectors.cost import cost_by_month, cost_panel, day_span, fleet_cost_rollup
from registry.choices import RiskTier
from tests.factories import ModelVersionFactory, RegisteredModelFactory, TeamFactory
from tests.monitoring.helpers import figures_of

pytestmark = pytest.mark.django_db

TODAY = clock.now().date()


def spend(model, day: date, amount: str, category="serving", currency="EUR") -> CostRecord:
    return CostRecord.objects.create(
        model=model,
        period_start=day,
        period_end=day,
        amount=Decimal(amount),
        currency=currency,
        category=category,
        created_at=clock.now(),
    )


def volume(version, day: date, n: int) -> None:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    MetricValue.objects.create(
        model=version.model,
        version=version,
        granularity=Granularity.DAILY,
        window_start=start,
        window_end=start + timedelta(days=1),
        feature="",
        metric=Metric.VOLUME,
        value=n,
        computed_at=clock.now(),
    )


def test_the_panel_computes_cost_per_day_per_thousand_predictions_and_the_month_to_date(churn, owner):
    version = ModelVersionFactory(model=churn)
    day = TODAY - timedelta(days=1) if TODAY.day > 1 else TODAY
    spend(churn, day, "3.00")
    spend(churn, day, "1.50", category="storage")
    spend(churn, day, "99", currency="USD")
    volume(version, day, 1500)
    Budget.objects.create(model=churn, monthly_amount=Decimal("10"), currency="EUR", updated_at=clock.now())
    panel = cost_panel(user=owner, model=churn, start=TODAY - timedelta(days=6), end=TODAY)
    i = panel.days.index(day)
    assert panel.currency == "EUR" and panel.other_currencies == ["USD"]
    assert panel.by_category["serving"][i] == Decimal("3") and panel.by_category["storage"][i] == Decimal("1.5")
    assert panel.units[i] == 1500 and panel.per_thousand[i] == Decimal("3.0000")  # 4.50 / 1.5
    assert panel.month_cumulative[-1] == Decimal("4.5")
    assert panel.budget.share == Decimal("0.45") and panel.budget.level == ""
    figures = cost_figures(panel)
    assert [t["name"] for t in figures["chart-cost-daily"]["data"]] == ["serving", "storage"]
    assert figures["chart-cost-daily"]["layout"]["barmode"] == "stack"
    assert [s["name"] for s in figures["chart-cost-budget"]["layout"]["shapes"]] == ["budget", "80% warning"]


def test_the_denominator_is_a_parameter_for_llm_applications(churn, owner):
    spend(churn, TODAY, "2")
    panel = cost_panel(
        user=owner, model=churn, start=TODAY, end=TODAY, units_per_day={TODAY: 4000}, unit_label="requests"
    )
    assert panel.per_thousand == [Decimal("0.5000")]
    assert cost_figures(panel)["chart-cost-per-thousand"]["layout"]["title"]["text"].startswith(
        "Cost per 1,000 requests"
    )


@pytest.mark.parametrize("role", ["owner", "reviewer", "auditor", "admin"])
def test_the_dashboard_shows_the_cost_panel_with_the_budget(churn, roles, client_for, role):
    spend(churn, TODAY, "850")
    Budget.objects.create(model=churn, monthly_amount=Decimal("1000"), currency="EUR", updated_at=clock.now())
    response = client_for(roles[role]).get(reverse("monitoring:model_dashboard", args=["churn"]))
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="cost-panel"' in page and 'data-level="warning"' in page
    assert "850.00 EUR (85.0%) spent" in page
    figures = figures_of(response)
    assert {"chart-cost-daily", "chart-cost-per-thousand", "chart-cost-budget"} <= set(figures)


def test_the_dashboard_of_a_model_without_cost_says_so(churn, owner, client_for):
    page = client_for(owner).get(reverse("monitoring:model_dashboard", args=["churn"])).content.decode()
    assert "No cost records" in page and "no monthly budget set" in page


def test_a_custom_range_ending_at_midnight_leaves_that_day_out_of_the_cost_as_out_of_the_charts(
    churn, owner, client_for
):
    # the windows stop at the range's end (exclusive) but the cost counted the whole end day too
    first, last = TODAY - timedelta(days=10), TODAY - timedelta(days=5)
    spend(churn, first, "3.00")
    spend(churn, last, "40.00")  # the day the range ends at (00:00): outside it
    params = {"range": "custom", "start": f"{first}T00:00", "end": f"{last}T00:00"}
    response = client_for(owner).get(reverse("monitoring:model_dashboard", args=["churn"]), params)
    assert response.status_code == 200
    page = response.content.decode()
    assert f"3.00 EUR in 5 days, {day_span(first, last - timedelta(days=1))}" in page
    assert str(last) not in figures_of(response)["chart-cost-daily"]["data"][0]["x"]


def test_the_dashboard_is_a_404_for_an_outsider(churn, outsider, client_for):
    assert client_for(outsider).get(reverse("monitoring:model_dashboard", args=["churn"])).status_code == 404


# --------------------------------------------------------------------------- fleet


@pytest.fixture
def fleet(churn, owner, team):
    other_team = TeamFactory(name="Fraud", slug="fraud")
    fraud = RegisteredModelFactory(name="fraud", owner=owner, team=other_team, risk_tier=RiskTier.HIGH)
    churn.risk_tier = RiskTier.LOW
    churn.save(update_fields=["risk_tier"])
    last_month = (TODAY.replace(day=1) - timedelta(days=1)).replace(day=5)
    spend(churn, TODAY, "0.1")
    spend(churn, TODAY, "0.2")
    spend(churn, last_month, "7")
    spend(fraud, TODAY, "5", currency="USD")
    spend(fraud, TODAY.replace(day=1) - timedelta(days=70), "1000")  # older than last month: not shown
    return churn, fraud


def test_the_fleet_rolls_cost_up_by_team_and_risk_tier_per_currency(fleet, admin_user):
    rollup = fleet_cost_rollup(user=admin_user, today=TODAY)
    teams = {g.key: g.rows for g in rollup.by_team}
    assert teams["risk-analytics"] == [{"currency": "EUR", "month_to_date": Decimal("0.3"), "last_month": Decimal("7")}]
    assert teams["fraud"] == [{"currency": "USD", "month_to_date": Decimal("5"), "last_month": Decimal("0")}]
    assert [g.key for g in rollup.by_tier] == ["low", "high"]


def test_the_fleet_page_shows_the_cost_roll_up_and_an_outsider_sees_none_of_it(fleet, owner, outsider, client_for):
    page = client_for(owner).get(reverse("monitoring:fleet")).content.decode()
    assert 'id="cost-by-team"' in page and 'id="cost-by-tier"' in page
    assert 'data-team="fraud" data-currency="USD"' in page and "0.30" in page
    hidden = client_for(outsider).get(reverse("monitoring:fleet")).content.decode()
    assert 'id="cost-by-team"' not in hidden and "No cost records" in hidden


# --------------------------------------------------------------------------- compliance report


def test_the_report_has_a_cost_line_per_month_and_currency_for_the_last_12_months(churn, owner, client_for):
    first = TODAY.replace(day=1)
    spend(churn, first, "10", category="storage")
    spend(churn, first, "2.5")
    spend(churn, first, "4", currency="USD")
    spend(churn, (first - timedelta(days=1)).replace(day=1), "1", category="training")
    spend(churn, first - timedelta(days=400), "999")  # older than 12 months
    lines = cost_by_month(user=owner, model=churn, today=TODAY)
    assert [(line["month"], line["currency"], line["amount"]) for line in lines][-2:] == [
        (first, "EUR", Decimal("12.5")),
        (first, "USD", Decimal("4")),
    ]
    assert len(lines) == 3
    page = client_for(owner).get(reverse("registry:compliance_report", args=["churn"])).content.decode()
    assert 'id="report-cost"' in page
    assert f'data-month="{first:%Y-%m}" data-currency="EUR"' in page and "12.50" in page
    table = page.split('id="report-cost"')[1].split("</table>")[0]
    assert "999" not in table  # the table only: the page's footer carries a hash, which may hold 999


def test_the_pdf_report_carries_the_cost_section(churn, auditor, client_for, rf):
    from registry.views.audit import _report_context, compliance_report_document

    spend(churn, TODAY, "10")
    request = rf.get("/")
    request.user = auditor
    document = compliance_report_document(request, _report_context(request, "churn"))
    assert any("cost" in page.anchors for page in document.pages)
    response = client_for(auditor).get(reverse("registry:compliance_report_pdf", args=["churn"]))
    assert response.status_code == 200 and response.content.startswith(b"%PDF-")
