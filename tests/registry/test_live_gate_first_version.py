"""The live-traffic gate needs a champion to pair with: a model's first production version has
none, so the gate is not applicable (as the offline metric gate says) and the approval goes through."""

from __future__ import annotations

import pytest

from registry.choices import PromotionStatus, Stage
from registry.models import PromotionPolicy
from registry.selectors.promotions import promotion_gates
from registry.services.audit import CLI
from registry.services.promotions import GatesFailed, promotion_approve, promotion_request
from tests.factories import ModelVersionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def live_policy(churn):
    PromotionPolicy.objects.update_or_create(
        risk_tier=churn.risk_tier, defaults={"require_live_not_worse": True, "live_min_labelled_pairs": 1000}
    )


def _request(version, owner):
    return promotion_request(
        version=version, target_stage=Stage.PRODUCTION, requester=owner, justification="First.", context=CLI
    )


def _live(req):
    return next(g for g in promotion_gates(req) if g["key"] == "live")


def test_a_first_production_version_is_approved_without_live_pairs(churn_v1, owner, reviewer, live_policy):
    req = _request(churn_v1, owner)
    gate = _live(req)
    assert gate["status"] == "na" and gate["detail"] == "Not applicable: no production version to compare."
    promotion_approve(request=req, reviewer=reviewer, comment="ok", context=CLI)
    req.refresh_from_db()
    churn_v1.refresh_from_db()
    assert req.status == PromotionStatus.APPLIED and churn_v1.stage == Stage.PRODUCTION
    assert req.override_reason == ""


def test_with_a_champion_the_gate_still_waits_for_pairs(churn, owner, reviewer, live_policy):
    ModelVersionFactory(model=churn, stage=Stage.PRODUCTION)
    req = _request(ModelVersionFactory(model=churn), owner)
    gate = _live(req)
    assert gate["status"] == "fail" and "0 of 1000" in gate["detail"]
    with pytest.raises(GatesFailed):
        promotion_approve(request=req, reviewer=reviewer, comment="ok", context=CLI)
