"""Layout in real Chromium where the layout is the point: the promotions timeline opens right
under the model page's tabs, the request page's model card is wide enough to read, and a long
unbroken value in the audit log wraps instead of widening the page."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from registry.choices import Stage
from registry.rules import AUDITOR_GROUP
from registry.services.audit import CLI
from registry.services.promotions import promotion_request
from tests.browser.conftest import login
from tests.factories import ModelVersionFactory, RegisteredModelFactory, TeamFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.postgres]


@pytest.fixture
def churn_owner(transactional_db):
    team = TeamFactory(name="Risk", slug="risk")
    owner = UserFactory(username="owner")
    team.members.add(owner)
    model = RegisteredModelFactory(name="churn", owner=owner, team=team)
    return model, owner


def test_the_timeline_tab_opens_right_below_the_tabs(page, live_server, churn_owner):
    model, owner = churn_owner
    for _ in range(3):
        ModelVersionFactory(model=model)
    login(page, live_server, owner)
    page.goto(live_server.url + model.get_absolute_url())
    page.get_by_role("link", name="Promotions timeline").first.click()
    timeline = page.locator("#model-timeline")
    timeline.wait_for()
    tabs = page.locator("nav.tabs").bounding_box()
    box = timeline.bounding_box()
    assert 0 <= box["y"] - (tabs["y"] + tabs["height"]) < 40, (tabs, box)
    assert box["y"] + 100 < page.viewport_size["height"]  # in view without scrolling


def test_the_request_pages_model_card_lays_out_a_13_feature_list_in_a_few_lines(page, live_server, churn_owner):
    model, owner = churn_owner
    features = [{"name": f"feature_{i:02d}_name", "type": "numeric"} for i in range(13)]
    version = ModelVersionFactory(model=model, feature_schema=features)
    req = promotion_request(
        version=version, target_stage=Stage.STAGING, requester=owner, justification="Ship it.", context=CLI
    )
    login(page, live_server, owner)
    page.goto(live_server.url + req.get_absolute_url())
    card = page.locator("section.card", has=page.get_by_role("heading", name="Model card", exact=True))
    evidence = page.locator(".promotion-evidence").bounding_box()
    card_box = card.bounding_box()
    feature_list = card.locator("dd").last
    assert "feature_12_name" in feature_list.inner_text()
    assert card_box["width"] >= 0.9 * evidence["width"], (card_box, evidence)
    assert feature_list.bounding_box()["height"] <= 130, feature_list.bounding_box()  # a few lines, not a tall block


def test_the_fleet_page_fits_a_phone_and_its_rollup_table_scrolls_in_its_card(page, live_server, churn_owner):
    """At 390 px the fleet page scrolled sideways: its risk-tier table widened its card to 481 px."""
    _, owner = churn_owner
    login(page, live_server, owner)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(live_server.url + "/monitoring/fleet/")
    page.locator("table.rollup").wait_for()
    width = page.evaluate("() => document.documentElement.scrollWidth")
    card = page.locator("table.rollup").locator("xpath=..").bounding_box()
    assert width <= 390 and card["x"] + card["width"] <= 390, (width, card)


def test_a_150_character_username_of_a_failed_login_does_not_widen_the_audit_log(page, live_server, transactional_db):
    # one unauthenticated request (a failed sign-in) widened /audit/ to 2342px
    auditor = UserFactory(username="auditor")
    auditor.groups.add(Group.objects.get_or_create(name=AUDITOR_GROUP)[0])
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", "x" * 150)
    page.fill("#id_password", "wrong")
    page.locator("form button[type=submit], form input[type=submit]").first.click()
    page.wait_for_load_state()
    login(page, live_server, auditor)
    page.goto(live_server.url + "/audit/")
    assert "x" * 150 in page.locator(".audit-table").inner_text()
    table = page.locator(".audit-table").bounding_box()
    wrap = page.locator(".table-wrap").first.bounding_box()
    assert table["width"] <= wrap["width"] <= page.viewport_size["width"], (table, wrap)
