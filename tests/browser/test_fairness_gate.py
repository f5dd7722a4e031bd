"""The fairness gate in real headless Chromium: the reviewer opens a high-risk request whose
evaluation set shows disparate impact under 0.80 and sees the red gate with its reason, the
per-group table and the Plotly chart of the groups drawn; approving is refused with the reason."""

from __future__ import annotations

import pytest

from monitoring.fairness_data import FAIRNESS_SCHEMA, evaluation_frame
from monitoring.services.evaluations import evaluation_compute, evaluation_upload
from registry.choices import PromotionStatus, RiskTier, Stage, TaskType
from registry.models import PromotionRequest
from registry.services.audit import CLI
from registry.services.promotions import promotion_request
from tests.browser.conftest import login
from tests.factories import ModelVersionFactory, RegisteredModelFactory
from tests.monitoring.helpers import csv_bytes

pytestmark = [pytest.mark.browser, pytest.mark.postgres]


@pytest.fixture
def blocked_request(owner, team):
    model = RegisteredModelFactory(name="credit-approval", owner=owner, team=team, risk_tier=RiskTier.HIGH)
    version = ModelVersionFactory(model=model, feature_schema=FAIRNESS_SCHEMA, task_type=TaskType.BINARY)
    run = evaluation_upload(version=version, body=csv_bytes(evaluation_frame(4000, female_factor=0.6)),
                            content_type="text/csv", actor=owner, context=CLI)  # fmt: skip
    evaluation_compute(run_id=run.pk)
    return promotion_request(version=version, target_stage=Stage.PRODUCTION, requester=owner,
                             justification="Pilot.", context=CLI)  # fmt: skip


def test_reviewer_sees_the_red_fairness_gate_and_the_group_chart(page, live_server, reviewer, blocked_request):
    login(page, live_server, reviewer)
    page.goto(live_server.url + blocked_request.get_absolute_url())
    gate = page.locator('.gate[data-gate="fairness"]')
    assert "gate-fail" in gate.get_attribute("class")
    assert "disparate impact for sex=F vs sex=M" in gate.inner_text()
    table = page.locator('table.fairness-groups[data-attribute="sex"]')
    assert table.locator('tr[data-group="F"]').count() == 1 and table.locator('tr[data-group="M"]').count() == 1
    chart = page.locator("#chart-fairness-0")
    page.wait_for_function("document.getElementById('chart-fairness-0').dataset.drawn !== undefined")
    assert chart.locator("svg.main-svg").count() >= 1
    assert chart.locator(".trace.bars").count() == 3  # selection rate, TPR, FPR
    page.fill("#id_comment", "Looks fine to me.")
    page.get_by_role("button", name="Approve").click()
    page.wait_for_selector("#promotion-actions [role=alert]")
    assert "Fairness within thresholds" in page.locator("#promotion-actions").inner_text()
    # the refusal is a 409 answer, which Chromium logs; it is the expected outcome, not a page error
    refused = [e for e in page.console_errors if "409 (Conflict)" in e and "/approve/" in e]
    assert len(refused) == 1
    page.console_errors[:] = [e for e in page.console_errors if e not in refused]
    blocked_request.refresh_from_db()
    assert blocked_request.status == PromotionStatus.PENDING
    assert PromotionRequest.objects.filter(status=PromotionStatus.APPLIED).count() == 0
