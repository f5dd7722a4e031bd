"""The credit-approval demo: v1 blocked by the fairness gate with its reason, v2 in production,
and the production disparate impact for sex drifting down towards the threshold."""

from __future__ import annotations

import numpy as np
import pytest

from monitoring import demo_fairness
from monitoring.models import MetricValue
from registry import demo as registry_demo
from registry.choices import PromotionStatus, Stage
from registry.models import PromotionRequest, RegisteredModel
from registry.selectors.promotions import promotion_gates

pytestmark = pytest.mark.django_db


def test_credit_approval_story(django_capture_on_commit_callbacks):
    result = registry_demo.DemoResult()
    registry_demo._ensure_teams(registry_demo._ensure_users(result), result)
    created: dict[str, int] = {}
    with django_capture_on_commit_callbacks(execute=True):
        demo_fairness.load_demo(created=created)
    model = RegisteredModel.objects.get(name="credit-approval")
    v2, v3 = model.versions.get(version=2), model.versions.get(version=3)
    blocked = PromotionRequest.objects.get(version=v3)
    assert blocked.status == PromotionStatus.PENDING
    gate = next(g for g in promotion_gates(blocked) if g["key"] == "fairness")
    assert gate["status"] == "fail" and "disparate impact for sex=F vs sex=M" in gate["detail"]
    assert v2.stage == Stage.PRODUCTION
    series = list(
        MetricValue.objects.filter(version=v2, granularity="daily", feature="sex", metric="fairness.disparate_impact")
        .order_by("window_start")
        .values_list("value", flat=True)
    )
    assert len(series) >= 30
    first, last = np.mean(series[:7]), np.mean(series[-7:])
    assert first > 0.88 and 0.78 < last < first - 0.06, (first, last)
    again: dict[str, int] = {}
    with django_capture_on_commit_callbacks(execute=True):
        demo_fairness.load_demo(created=again)
    assert again == {}
