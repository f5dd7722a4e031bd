"""The monitoring pages in real headless Chromium: charts draw their traces (read from the
Plotly graph divs), the range picker redraws them, an alert is acknowledged, no console
errors (CSP violations included). Screenshots go to docs/screenshots/."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from mlops_portal import clock
from monitoring.choices import AlertStatus, HealthState
from monitoring.forms import preset_start, range_days
from monitoring.management.commands.seed_dashboard_bench import seed_dashboard
from monitoring.models import Alert, HealthStatus
from monitoring.models_cost import CostRecord
from monitoring.scorecard import CRITERIA
from tests.browser.conftest import login, screenshot
from tests.monitoring.helpers import DASHBOARD_CHART_IDS

pytestmark = [pytest.mark.browser, pytest.mark.postgres]

DASHBOARD_CHARTS = DASHBOARD_CHART_IDS


@pytest.fixture
def seeded(owner, team, reviewer):
    return seed_dashboard(name="fraud", days=5, features=8, owner=owner, team=team)


def traces(page, chart_id: str) -> int:
    return page.evaluate(
        "(id) => { const el = document.getElementById(id); return el && el.data ? el.data.length : -1; }", chart_id
    )


def wait_for_charts(page, ids, generation: int = 1) -> None:
    page.wait_for_function(
        """([ids, generation]) => ids.every((id) => {
               const el = document.getElementById(id);
               return el && el.data && Number(el.dataset.drawn || 0) >= generation;
           })""",
        arg=[ids, generation],
    )


def test_owner_sees_the_fleet_overview_with_live_badges_and_roll_up(page, live_server, owner, seeded):
    login(page, live_server, owner)
    page.goto(live_server.url + "/")
    assert page.url.endswith("/monitoring/fleet/")
    wait_for_charts(page, ["chart-fleet-health"])
    assert traces(page, "chart-fleet-health") == 4  # ok, warning, critical, no data
    row = page.locator("tr[data-model=fraud]")
    assert row.locator("[data-health=critical]").is_visible()
    assert page.locator("#fleet-live").get_attribute("hx-trigger") == "every 30s"
    screenshot(page, "fleet")
    # health changes; the poll (fired now instead of waiting 30 s) swaps the badges in place
    HealthStatus.objects.filter(model=seeded).update(status=HealthState.WARNING)
    page.evaluate("document.body.dataset.marker = 'same page'")
    with page.expect_response(lambda r: "/monitoring/fleet/live/" in r.url and r.status == 200):
        page.evaluate(
            "htmx.ajax('GET', document.getElementById('fleet-live').getAttribute('hx-get'),"
            " {target: '#fleet-live', swap: 'outerHTML'})"
        )
    page.wait_for_selector("tr[data-model=fraud] [data-health=warning]")
    assert page.evaluate("document.body.dataset.marker") == "same page"  # no full reload


def test_model_dashboard_draws_every_chart_and_the_range_picker_redraws_them(page, live_server, owner, seeded):
    login(page, live_server, owner)
    page.goto(live_server.url + "/monitoring/models/fraud/")
    wait_for_charts(page, DASHBOARD_CHARTS)
    for chart_id in DASHBOARD_CHARTS:
        assert traces(page, chart_id) > 0, f"{chart_id} drew no traces"
    assert page.evaluate("document.getElementById('chart-drift-heatmap').data[0].type") == "heatmap"
    assert page.evaluate("document.getElementById('chart-drift-heatmap').data[0].x.length") == 5 * 24
    # Plotly rendered SVG for the heatmap and the marker lines
    assert page.locator("#chart-drift-heatmap .main-svg").count() > 0
    path = screenshot(page, "model_dashboard")
    page.screenshot(path=str(path), full_page=True)  # every chart, not just the first screen

    page.select_option("#id_range", "24h")
    wait_for_charts(page, DASHBOARD_CHARTS, generation=2)
    assert page.evaluate("document.getElementById('chart-drift-heatmap').data[0].x.length") == 24
    assert page.locator("#dashboard-charts").get_attribute("data-range") == "24h"
    assert "range=24h" in page.url  # hx-push-url keeps the view linkable

    page.select_option("#id_granularity", "daily")
    wait_for_charts(page, DASHBOARD_CHARTS, generation=3)
    assert page.locator("#dashboard-charts").get_attribute("data-granularity") == "daily"

    # the header follows the chosen version (swapped out of band with the charts)
    assert "version live in each window" in page.locator("#dashboard-version").inner_text()
    page.select_option("#id_version", "1")
    wait_for_charts(page, DASHBOARD_CHARTS, generation=4)
    page.wait_for_function("document.getElementById('dashboard-version').textContent.includes('v1')")
    assert page.locator("#dashboard-version").inner_text() == "showing v1 (archived)"
    assert page.locator("#dashboard-version").count() == 1


def test_a_range_the_dashboard_refuses_says_why_beside_the_picker(page, live_server, owner, seeded):
    """htmx swaps nothing on a 400: the picker's refused range is named right after the form, and
    the note goes when a range is accepted."""
    login(page, live_server, owner)
    page.goto(live_server.url + "/monitoring/models/fraud/")
    page.select_option("#id_range", "custom")
    page.fill("#range-picker input[name=start]", "2026-03-05T10:00")
    page.fill("#range-picker input[name=end]", "2026-03-01T10:00")
    page.locator("#range-picker input[name=end]").dispatch_event("change")
    note = page.locator("#range-picker + p.htmx-error[role=alert]")
    expect(note).to_contain_text("before the end")  # polled by Playwright, not evaluated in the page (CSP)
    page.select_option("#id_range", "24h")
    note.wait_for(state="detached")
    assert page.locator("#dashboard-charts").get_attribute("data-range") == "24h"
    # the 400s are the expected answers, which Chromium and htmx log: not page errors
    refused = [e for e in page.console_errors if "400" in e and "/monitoring/models/fraud/" in e]
    assert refused
    page.console_errors[:] = [e for e in page.console_errors if e not in refused]


def test_owner_acknowledges_an_alert_in_the_browser(page, live_server, owner, seeded):
    alert = Alert.objects.get(model=seeded, status=AlertStatus.OPEN)
    login(page, live_server, owner)
    page.goto(live_server.url + "/monitoring/alerts/")
    row = page.locator(f"#alert-{alert.pk}")
    row.locator("input[name=comment]").fill("Retraining on November data.")
    row.locator("button[type=submit]").click()
    page.wait_for_selector(f"#alert-{alert.pk}[data-status=acknowledged]")
    assert "Retraining on November data." in page.locator(f"#alert-{alert.pk}").inner_text()
    alert.refresh_from_db()
    assert alert.status == AlertStatus.ACKNOWLEDGED and alert.acknowledged_by == owner


def test_scorecard_shows_the_maturity_level_and_criteria(page, live_server, owner, seeded):
    login(page, live_server, owner)
    page.goto(live_server.url + "/monitoring/scorecard/")
    assert page.locator(".maturity-level").is_visible()
    assert page.locator(".criterion").count() == len(CRITERIA) == 8
    assert page.locator(".maturity-scale li").count() == 7
    screenshot(page, "scorecard")


def test_the_cost_summary_follows_the_range_the_picker_redraws(page, live_server, owner, seeded):
    """The picker swaps the charts with htmx: the cost line above the cost charts is swapped with
    them (it kept the first range's total and dates while the charts showed another range)."""
    today = clock.now().date()
    for day, amount in ((today, "2.00"), (today - timedelta(days=4), "5.00")):
        CostRecord.objects.create(
            model=seeded,
            period_start=day,
            period_end=day,
            amount=Decimal(amount),
            currency="EUR",
            category="serving",
            created_at=clock.now(),
        )
    login(page, live_server, owner)
    page.goto(live_server.url + "/monitoring/models/fraud/?range=7d")
    expect(page.locator("#cost-summary")).to_contain_text("7.00 EUR in ")
    page.select_option("#id_range", "24h")
    expect(page.locator("#dashboard-charts")).to_have_attribute("data-range", "24h")
    first, last = range_days(preset_start("24h", clock.now()), clock.now())  # the days whose 00:00 it holds
    expect(page.locator("#cost-summary")).to_contain_text(f"2.00 EUR in {(last - first).days + 1} day")
    expect(page.locator("#cost-days")).to_have_attribute("data-first", f"{first:%Y-%m-%d}")
    assert page.locator("#cost-summary").count() == 1
