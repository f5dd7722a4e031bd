"""The live-traffic gate judges the candidate against the version in production now: evidence
paired with a champion that has since left production (a rollback, another promotion) no longer
counts, and the approval waits for pairs with the current one."""

from __future__ import annotations

import pytest

from registry.choices import Stage
from registry.models import ModelVersion, PromotionPolicy
from registry.selectors.promotions import promotion_gates
from registry.services.audit import CLI
from registry.services.promotions import GatesFailed, promotion_approve, promotion_request
from tests.factories import ModelVersionFactory

pytestmark = pytest.mark.django_db


def _evidence(production_version: int) -> dict:
    return {
        "pairs": 1200,
        "labelled_pairs": 600,
        "candidate_version": 3,
        "production_version": production_version,
        "metrics": {
            "roc_auc": {
                "candidate": 0.815,
                "production": 0.816,
                "difference": -0.001,
                "ci_low": -0.007,
                "ci_high": 0.006,
            }
        },
    }


@pytest.fixture
def request_paired_with_v2(churn, owner):
    churn.primary_metric = "roc_auc"
    churn.save()
    PromotionPolicy.objects.update_or_create(
        risk_tier=churn.risk_tier,
        defaults={"require_live_not_worse": True, "live_tolerance": 0.01, "live_min_labelled_pairs": 500},
    )
    ModelVersionFactory(model=churn, version=1, stage=Stage.ARCHIVED)
    ModelVersionFactory(model=churn, version=2, stage=Stage.PRODUCTION)
    candidate = ModelVersionFactory(model=churn, version=3, stage=Stage.STAGING)
    req = promotion_request(
        version=candidate, target_stage=Stage.PRODUCTION, requester=owner, justification="shadow", context=CLI
    )
    req.live_evidence = _evidence(production_version=2)
    req.save(update_fields=["live_evidence"])
    return req


def _live(req):
    return next(g for g in promotion_gates(req) if g["key"] == "live")


def test_the_gate_passes_on_evidence_paired_with_the_version_in_production(request_paired_with_v2):
    assert _live(request_paired_with_v2)["status"] == "pass"


def test_after_a_rollback_the_evidence_paired_with_the_old_champion_no_longer_passes(
    churn, request_paired_with_v2, reviewer
):
    ModelVersion.objects.filter(model=churn, version=2).update(stage=Stage.ARCHIVED)
    ModelVersion.objects.filter(model=churn, version=1).update(stage=Stage.PRODUCTION)
    gate = _live(request_paired_with_v2)
    assert gate["status"] == "fail" and gate.get("waiting") is True
    assert "paired with v2, which is no longer in production (v1 is)" in gate["detail"]
    with pytest.raises(GatesFailed):
        promotion_approve(request=request_paired_with_v2, reviewer=reviewer, comment="ok", context=CLI)


def test_the_request_page_says_the_evidence_was_paired_with_a_former_champion(
    churn, request_paired_with_v2, reviewer, client_for
):
    """The live section named "production v2" while the offline table beside it said "Production v1"."""
    client = client_for(reviewer)
    html = client.get(request_paired_with_v2.get_absolute_url()).content.decode()
    assert "against production v2," in html and "no longer in production" not in html
    ModelVersion.objects.filter(model=churn, version=2).update(stage=Stage.ARCHIVED)
    ModelVersion.objects.filter(model=churn, version=1).update(stage=Stage.PRODUCTION)
    html = client.get(request_paired_with_v2.get_absolute_url()).content.decode()
    assert "against v2 (no longer in production: v1 is)," in html
