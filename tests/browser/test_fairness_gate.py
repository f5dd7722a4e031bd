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
from tests.browser.conftest import approval_is_refused, failed_gate
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
    gate = failed_gate(page, live_server, reviewer, blocked_request, "fairness")
    assert "disparate impact for sex=F vs sex=M" in gate.inner_text()
    table = page.locator('table.fairness-groups[data-attribute="sex"]')
    assert table.locator('tr[data-group="F"]').count() == 1 and table.locator('tr[data-group="M"]').count() == 1
    chart = page.locator("#chart-fairness-0")
    page.wait_for_function("document.getElementById('chart-fairness-0').dataset.drawn !== undefined")
    assert chart.locator("svg.main-svg").count() >= 1
    assert chart.locator(".trace.bars").count() == 3  # selection rate, TPR, FPR
    approval_is_refused(page, blocked_request, "Fairness within thresholds")
    assert PromotionRequest.objects.filter(status=PromotionStatus.APPLIED).count() == 0
