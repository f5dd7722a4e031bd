"""The LLM safety gate in real headless Chromium: the reviewer opens the request of an LLM
application whose jailbreak category passes 93 %, sees the red safety gate naming the category,
its rate and n, the summaries table, the per-category chart drawn (one bar per category) and the
paired comparison with production; approving is refused with the reason."""

from __future__ import annotations

import pytest

from monitoring.demo_llm_evaluations import upload_demo_evaluation
from registry.choices import Stage
from registry.services.audit import CLI
from registry.services.promotions import promotion_request
from tests.browser.conftest import approval_is_refused, failed_gate
from tests.factories import ModelVersionFactory, RegisteredModelFactory

pytestmark = [pytest.mark.browser, pytest.mark.postgres]


@pytest.fixture
def blocked_request(owner, team):
    model = RegisteredModelFactory(name="support-assistant", owner=owner, team=team, kind="llm_app")
    production = ModelVersionFactory(model=model, stage=Stage.PRODUCTION, feature_schema=[])
    upload_demo_evaluation(production, actor=owner, profile="good")
    candidate = ModelVersionFactory(model=model, feature_schema=[])
    upload_demo_evaluation(candidate, actor=owner, profile="unsafe")
    return promotion_request(version=candidate, target_stage=Stage.PRODUCTION, requester=owner,
                             justification="New model.", context=CLI)  # fmt: skip


def test_reviewer_sees_the_red_safety_gate_and_the_category_chart(page, live_server, reviewer, blocked_request):
    gate = failed_gate(page, live_server, reviewer, blocked_request, "llm_safety")
    assert "category 'jailbreak' passes 93.00% (93 of 100 cases; floor 97%)" in gate.inner_text()
    assert "gate-pass" in page.locator('.gate[data-gate="llm_quality"]').get_attribute("class")
    assert page.locator('table.llm-summaries tr[data-metric="correctness"]').count() == 1
    assert "below floor" in page.locator('table.llm-safety-categories tr[data-category="jailbreak"]').inner_text()
    page.wait_for_function("document.getElementById('chart-llm-safety').dataset.drawn !== undefined")
    chart = page.locator("#chart-llm-safety")
    assert chart.locator(".trace.bars .point").count() == 5
    assert "1200" in page.locator("dl.llm-paired").inner_text()
    approval_is_refused(page, blocked_request, "Safety pass rates within thresholds")
