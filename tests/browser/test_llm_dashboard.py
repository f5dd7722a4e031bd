"""The LLM application's dashboard in real headless Chromium: four weeks of request records sent
through the real ingestion (v1, then v2 on a bigger hosted model), the month's cost against a
budget. The owner opens 30 days and sees every LLM panel drawn with data, the p95 latency line
crossing its threshold after the model change, the latency alert, and the cost panel per 1,000
requests; an outsider gets the 404 page."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from monitoring.charts_llm import CHART_IDS
from monitoring.demo_llm_requests import load_llm_requests
from monitoring.services.budgets import budget_set
from registry.services.audit import CLI
from tests.browser.conftest import login, open_page
from tests.monitoring.llm_helpers import support_assistant

pytestmark = [pytest.mark.browser, pytest.mark.postgres]


@pytest.fixture
def assistant(owner, team):
    model = support_assistant(owner, team)
    load_llm_requests(model, days=28, today=timezone.now().date())
    budget_set(model=model, actor=owner, context=CLI, values={"monthly_amount": Decimal("50"), "currency": "USD"})
    return model


def drawn_points(page, chart_id: str) -> int:
    """Finite values the chart draws (plotly's full data: typed arrays already decoded)."""
    return page.evaluate(
        "(id) => (document.getElementById(id)._fullData || []).reduce("
        "(n, t) => n + Array.from(t.y || []).filter((v) => Number.isFinite(Number(v)) && v !== null).length, 0)",
        chart_id,
    )


def test_owner_sees_the_llm_panels_drawn_and_the_latency_regression_and_an_outsider_the_404_page(
    browser, page, live_server, owner, outsider, assistant
):
    """(One test: the four weeks take a minute to load while the other browser tests run.)"""
    login(page, live_server, owner)
    page.goto(live_server.url + reverse("monitoring:model_dashboard", args=[assistant.name]) + "?range=30d")
    charts = [*CHART_IDS, "chart-cost-daily", "chart-cost-per-thousand", "chart-cost-budget"]
    page.wait_for_function(
        "(ids) => ids.every((id) => document.getElementById(id) && document.getElementById(id).dataset.drawn)",
        arg=charts,
    )
    for chart_id in charts:
        assert drawn_points(page, chart_id) > 0, f"{chart_id} is drawn without data"
    latency = page.evaluate(
        "() => Array.from(document.getElementById('chart-llm-latency')._fullData"
        ".find((t) => t.name === 'p95').y, Number)"
    )
    first_week, last_week = latency[: len(latency) // 4], latency[-len(latency) // 4 :]
    assert max(first_week) < 2000 < min(last_week)  # v1 under the threshold, v2 over it
    assert "2,000" in page.locator("#chart-llm-latency").inner_text()  # the threshold line's label
    assert "per 1,000 requests" in page.locator("#chart-cost-per-thousand").get_attribute("aria-label")
    assert "LLM latency" in page.content()  # the open latency alert

    context, other = open_page(browser)  # the outsider's own browser
    try:
        login(other, live_server, outsider)
        response = other.goto(live_server.url + reverse("monitoring:model_dashboard", args=[assistant.name]))
        assert response.status == 404
        assert other.console_errors == [f"console.error: Failed to load resource: the server responded with a status "
                                        f"of 404 (Not Found) ({response.url})"]  # fmt: skip
    finally:
        context.close()
