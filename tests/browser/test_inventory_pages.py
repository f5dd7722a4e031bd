"""The inventory in real headless Chromium, on the demo data: an owner logs in, browses and
searches the inventory, opens a model and a version; an outsider sees nothing. Takes the
README's screenshot (docs/screenshots/inventory.png)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse

from registry.demo import DEMO_PASSWORD
from registry.models import ModelVersion
from tests.browser.conftest import login, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.postgres]


@pytest.fixture
def demo(transactional_db):
    """The demo inventory, as `make run` shows it (registry part; monitoring is not needed here)."""
    call_command("load_demo", "--no-progress", "--no-monitoring")
    return {u.username: u for u in get_user_model().objects.all()}


def test_owner_browses_the_inventory_searches_and_opens_a_model_and_a_version(page, live_server, demo):
    login(page, live_server, demo["owner"], password=DEMO_PASSWORD)
    page.goto(live_server.url + reverse("registry:model_list"))
    results = page.locator("#model-results")
    results.get_by_role("link", name="customer-churn").wait_for()
    assert results.get_by_role("link", name="diabetes-progression").is_visible()
    assert page.locator("h1").inner_text().strip() == "Model inventory"
    screenshot(page, "inventory")

    # free-text search narrows the table in place (htmx), without a full reload
    page.locator("#id_q").press_sequentially("churn", delay=30)
    results.get_by_role("link", name="diabetes-progression").wait_for(state="detached")
    assert results.get_by_role("link", name="customer-churn").is_visible()
    assert "q=churn" in page.url

    with page.expect_navigation():
        results.get_by_role("link", name="customer-churn").click()
    assert page.url.endswith(reverse("registry:model_detail", args=["customer-churn"]))
    heading = page.locator("h1").inner_text()
    assert "customer-churn" in heading and "v2 in production" in heading
    body = page.locator("main").inner_text()
    assert "roc_auc" in body and "Model card" in body

    page.goto(live_server.url + reverse("registry:version_detail", args=["customer-churn", 2]))
    text = page.locator("main").inner_text()
    assert "customer-churn" in text and "tenure_months" in text
    v2 = ModelVersion.objects.get(model__name="customer-churn", version=2)
    assert v2.training_data_ref in text and v2.training_data_ref.startswith(
        "s3://acme-ml-data/customer-churn/snapshots/"
    )


def test_leaving_the_search_box_sends_no_second_search(page, live_server, demo):
    """The search box searches as one types; leaving it (to click a result) must not search
    again: that request swapped the results, the link being clicked among them, and pushed a
    history entry, so a click right after typing could be lost (a clean clone's run lost one).
    The filters still search on change: a team chosen afterwards is the one request sent, and
    the owner filter searches when left."""
    login(page, live_server, demo["owner"], password=DEMO_PASSWORD)
    page.goto(live_server.url + reverse("registry:model_list"))
    results = page.locator("#model-results")
    page.locator("#id_q").press_sequentially("churn", delay=30)
    results.get_by_role("link", name="diabetes-progression").wait_for(state="detached")
    sent = []
    page.on("request", lambda request: sent.append(request.url) if "/models/?" in request.url else None)
    page.locator("#id_q").blur()
    team = page.locator("select[name=team] option").nth(1).get_attribute("value")
    with page.expect_response(lambda response: f"team={team}&" in response.url):
        page.select_option("select[name=team]", team)
    assert len(sent) == 1 and f"q=churn&team={team}&" in sent[0], sent
    with page.expect_response(lambda response: "&owner=owner&" in response.url):  # a text filter: on leaving it
        page.fill("input[name=owner]", "owner")
        page.locator("input[name=owner]").blur()


def test_auditor_sees_every_model_read_only(page, live_server, demo):
    login(page, live_server, demo["auditor"], password=DEMO_PASSWORD)
    page.goto(live_server.url + reverse("registry:model_list"))
    results = page.locator("#model-results")
    results.get_by_role("link", name="diabetes-progression").wait_for()
    assert page.get_by_role("link", name="Register a model").count() == 0
    page.goto(live_server.url + reverse("registry:model_detail", args=["diabetes-progression"]))
    assert page.get_by_role("link", name="Edit model card").count() == 0


def test_outsider_sees_an_empty_inventory_and_no_model_page(page, live_server, demo, outsider):
    login(page, live_server, outsider)
    page.goto(live_server.url + reverse("registry:model_list"))
    text = page.locator("main").inner_text()
    assert "customer-churn" not in text and "diabetes-progression" not in text
    # fetched without rendering, so the expected 404 is not a console error
    response = page.request.get(live_server.url + reverse("registry:model_detail", args=["customer-churn"]))
    assert response.status in (403, 404)
    assert "roc_auc" not in response.text()
