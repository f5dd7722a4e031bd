"""The reviewer's whole path in real headless Chromium: an owner requests a promotion from the
version page, a reviewer finds it in the review queue, reads the evidence and approves it with
htmx (no full reload); the model page then shows the new production version and the timeline
entry. Takes the README's screenshot of the request page (docs/screenshots/promotion_request.png)."""

from __future__ import annotations

import re
import time
from importlib import import_module

import pytest
from django.conf import settings
from django.urls import reverse

from registry.choices import PromotionStatus, RiskTier, Stage
from registry.models import PromotionRequest
from registry.services.audit import CLI
from registry.services.promotions import promotion_approve, promotion_request
from tests.browser.conftest import PASSWORD, login, screenshot
from tests.factories import ModelVersionFactory

pytestmark = [pytest.mark.browser, pytest.mark.postgres]


@pytest.fixture
def churn_in_production(churn, owner, reviewer2):
    """churn v1 approved into production; v2 is a better candidate with full evidence."""
    churn.description = "Predicts which subscribers will cancel within 30 days."
    churn.intended_use = "Prioritise retention offers for the customer-care team."
    churn.limitations = "Not validated for business accounts; monthly plans only."
    churn.save()
    v1 = ModelVersionFactory(model=churn, metrics={"roc_auc": 0.842, "accuracy": 0.801, "log_loss": 0.412})
    req = promotion_request(
        version=v1, target_stage=Stage.PRODUCTION, requester=owner, justification="First release.", context=CLI
    )
    promotion_approve(request=req, reviewer=reviewer2, comment="Baseline accepted.", context=CLI)
    v2 = ModelVersionFactory(model=churn, metrics={"roc_auc": 0.861, "accuracy": 0.815, "log_loss": 0.431})
    return v1, v2


def test_owner_requests_reviewer_approves_in_the_queue_and_the_model_page_shows_it(
    page, live_server, owner, reviewer, churn_in_production
):
    _, v2 = churn_in_production

    # The owner asks for production from the version page.
    login(page, live_server, owner)
    page.goto(live_server.url + reverse("registry:version_detail", args=["churn", v2.version]))
    with page.expect_navigation():
        page.get_by_role("link", name="Request promotion").click()
    page.select_option("#id_target_stage", "production")
    page.fill("#id_justification", "ROC AUC +0.019 on the October holdout; calibration unchanged.")
    with page.expect_navigation():
        page.get_by_role("button", name="Request promotion").click()
    req = PromotionRequest.objects.get(version=v2)
    assert page.url.endswith(reverse("registry:promotion_detail", args=[req.pk]))
    assert "another reviewer must decide" in page.locator("#promotion-actions").inner_text()
    assert page.get_by_role("button", name="Approve").count() == 0

    # The reviewer sees it in the queue, with the count in the navigation bar.
    page.context.clear_cookies()
    login(page, live_server, reviewer)
    page.goto(live_server.url + reverse("registry:review_queue"))
    assert page.locator(".mainnav .nav-count").inner_text().strip() == "1"
    row = page.locator("table.review-queue tbody tr", has_text="churn")
    assert "production" in row.inner_text() and "owner" in row.inner_text()
    with page.expect_navigation():
        row.get_by_role("link", name="Review").click()

    # Evidence side by side: candidate vs production, differences coloured, gates green.
    metrics = page.locator("table.metric-compare")
    header = metrics.locator("thead").text_content()
    assert "Candidate v2" in header and "Production v1" in header
    better = metrics.locator("tr", has_text="roc_auc").locator(".delta-better")
    assert better.inner_text().startswith("+0.0190")
    assert metrics.locator("tr", has_text="log_loss").locator(".delta-worse").count() == 1
    assert page.locator(".gate.gate-fail").count() == 0
    assert page.locator(".gate.gate-pass").count() == 3
    assert "Lineage" in page.locator("main").inner_text()
    page.fill("#id_comment", "Holdout gain is real; monitoring stays as configured.")
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "promotion_request")

    # Approve through htmx: the actions fragment is swapped, the page is not reloaded.
    page.evaluate("window.__notReloaded = true")
    page.get_by_role("button", name="Approve").click()
    page.locator("#promotion-actions .status-badge", has_text="Applied").wait_for()
    assert page.evaluate("window.__notReloaded === true")
    actions = page.locator("#promotion-actions").inner_text()
    assert "Approved." in actions and "Holdout gain is real" in actions
    assert page.locator("#nav-badge-reviews .nav-count").count() == 0  # the Reviews badge followed (out-of-band swap)
    req.refresh_from_db()
    v2.refresh_from_db()
    assert req.status == PromotionStatus.APPLIED and v2.stage == Stage.PRODUCTION

    # The model page shows the new production version and, in its timeline tab, the entry.
    page.goto(live_server.url + reverse("registry:model_detail", args=["churn"]))
    assert "v2 in production" in page.locator("h1").inner_text()
    page.get_by_role("link", name="Promotions timeline").first.click()
    timeline = page.locator("#model-timeline")
    timeline.wait_for()
    entries = timeline.locator("li.transition")
    first = entries.first.inner_text()
    assert re.search(r"v2\s+Registered\s+→\s+Production", first), first
    assert f"request #{req.pk}" in first and "reviewer (" in first
    assert "Superseded by v2" in timeline.inner_text()
    assert timeline.get_by_role("link", name=f"request #{req.pk}").first.get_attribute("href") == req.get_absolute_url()


def _make_sign_in_stale(page) -> None:
    """Date the browser's sign-in an hour back (older than the step-up window)."""
    key = next(c["value"] for c in page.context.cookies() if c["name"] == settings.SESSION_COOKIE_NAME)
    session = import_module(settings.SESSION_ENGINE).SessionStore(session_key=key)
    session["auth_time"] = int(time.time()) - 3600
    session.save()


def test_a_stale_reviewer_confirms_identity_from_approve_and_finishes_the_approval_on_the_request_page(
    page, live_server, owner, reviewer, churn
):
    churn.risk_tier = RiskTier.HIGH
    churn.save()
    version = ModelVersionFactory(model=churn, metrics={"roc_auc": 0.861})
    req = promotion_request(
        version=version, target_stage=Stage.STAGING, requester=owner, justification="Shadow run.", context=CLI
    )
    request_page = live_server.url + req.get_absolute_url()
    login(page, live_server, reviewer)
    _make_sign_in_stale(page)
    page.goto(request_page)
    page.fill("#id_comment", "Checked the holdout split.")

    # htmx takes the whole page to the step-up form: nothing is swapped into the actions panel.
    with page.expect_navigation():
        page.get_by_role("button", name="Approve").click()
    assert "/login/step-up/" in page.url
    assert page.locator(".mainnav").count() == 1 and page.locator("#promotion-actions").count() == 0
    assert not req.reviews.exists()

    page.fill("#id_password", PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="Confirm").click()
    assert page.url == request_page
    assert "not recorded" in page.locator("ul.messages").inner_text()
    assert page.input_value("#id_comment") == "Checked the holdout split."

    page.get_by_role("button", name="Approve").click()
    page.locator("#promotion-actions .review-comment", has_text="Checked the holdout split.").wait_for()
    assert req.reviews.filter(reviewer=reviewer, comment="Checked the holdout split.").exists()
