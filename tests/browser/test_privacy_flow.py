"""The privacy officer's page in real headless Chromium: reached from the navigation, a high-risk
model's retention refused below the floor by the form itself, then set with a legal hold, and a
data subject's erasure answered per model, held where the hold applies."""

from __future__ import annotations

import pytest

from monitoring.models import ErasureRequest, Prediction, RetentionPolicy
from monitoring.services.ingestion import predictions_ingest
from registry.choices import RiskTier
from registry.services.audit import CLI
from tests.browser.conftest import login
from tests.factories import ModelVersionFactory, RegisteredModelFactory
from tests.monitoring.helpers import T0, as_json, prediction_records

pytestmark = [pytest.mark.browser, pytest.mark.postgres]

SUBJECT = "CUST-4711"


@pytest.fixture
def credit_v1(churn, owner):
    """A high-risk model whose pipeline sent two rows of ``SUBJECT`` among others."""
    credit = RegisteredModelFactory(name="credit", owner=owner, team=churn.team, risk_tier=RiskTier.HIGH)
    version = ModelVersionFactory(model=credit)
    records = prediction_records(4, start=T0)
    records[0]["subject_id"] = records[2]["subject_id"] = SUBJECT
    predictions_ingest(
        version=version, body=as_json(records), content_type="application/json", actor=owner, context=CLI
    )
    return version


def test_privacy_officer_sets_a_hold_from_the_page_and_an_erasure_is_held(page, live_server, privacy, credit_v1):
    login(page, live_server, privacy)
    page.goto(live_server.url + "/monitoring/fleet/")
    with page.expect_navigation():
        page.locator("nav.mainnav").get_by_role("link", name="Privacy").click()
    row = page.locator("table.retention tr", has_text="credit")
    row.locator("summary", has_text="Change").click()
    form = row.locator("form")
    form.locator("input[name=raw_days]").fill("90")
    form.get_by_role("button", name="Save").click()  # below the high-risk floor: the browser keeps it
    assert form.locator("input[name=raw_days]").evaluate("(el) => el.validity.rangeUnderflow")
    assert not RetentionPolicy.objects.exists()

    form.locator("input[name=raw_days]").fill("400")
    form.locator("input[name=legal_hold]").check()
    form.locator("textarea[name=legal_hold_reason]").fill("Complaint before the ombudsman.")
    form.locator("input[name=legal_hold_article]").fill("GDPR Art. 17(3)(e)")
    with page.expect_navigation():
        form.get_by_role("button", name="Save").click()
    page.locator(".messages", has_text="credit: retention and legal hold saved.").wait_for()
    held = page.locator("table.retention tr", has_text="credit")
    assert "400" in held.inner_text() and "Complaint before the ombudsman. (GDPR Art. 17(3)(e))" in held.inner_text()

    page.fill("input[name=subject_id]", SUBJECT)
    with page.expect_navigation():
        page.get_by_role("button", name="Erase this subject's raw data").click()
    page.locator(".messages", has_text="Erasure request #").wait_for()
    answer = page.locator("table.erasure-requests tbody tr").first.inner_text()
    assert "credit: 2 predictions, 0 labels held: Complaint before the ombudsman." in answer
    assert SUBJECT not in page.content()
    assert ErasureRequest.objects.get().status == "held" and Prediction.objects.count() == 4
