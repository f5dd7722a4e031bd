"""A decided request's page compares the candidate with the version in production at its decision
(what the reviewers compared against), not with today's; a pending one with today's."""

from __future__ import annotations

import pytest

from registry.choices import Stage
from registry.selectors.promotions import promotion_evidence
from registry.services.audit import CLI
from registry.services.promotions import promotion_approve, promotion_reject, promotion_request
from registry.services.stages import model_rollback
from tests.factories import ModelVersionFactory

pytestmark = pytest.mark.django_db


def _request(version, owner, target=Stage.PRODUCTION):
    return promotion_request(version=version, target_stage=target, requester=owner, justification="Go.", context=CLI)


def _promote(version, owner, reviewer):
    req = _request(version, owner)
    promotion_approve(request=req, reviewer=reviewer, comment="ok", context=CLI)
    req.refresh_from_db()
    return req


def test_the_first_production_version_is_compared_with_nothing_even_after_it_is_live(churn, owner, reviewer):
    v1 = ModelVersionFactory(model=churn, metrics={"roc_auc": 0.6844})
    req = _promote(v1, owner, reviewer)
    evidence = promotion_evidence(req)
    assert evidence["production"] is None
    assert [row["production"] for row in evidence["metrics"]] == [None]


def test_a_decided_request_compares_with_the_production_version_of_its_decision(churn, owner, reviewer):
    v1 = ModelVersionFactory(model=churn, metrics={"roc_auc": 0.80})
    v2 = ModelVersionFactory(model=churn, metrics={"roc_auc": 0.82})
    v3 = ModelVersionFactory(model=churn, metrics={"roc_auc": 0.85})
    first, second = _promote(v1, owner, reviewer), _promote(v2, owner, reviewer)
    rejected = _request(v3, owner)
    promotion_reject(request=rejected, reviewer=reviewer, comment="Not yet.", context=CLI)
    model_rollback(model=churn, actor=owner, reason="v2 misbehaves.", context=CLI)  # v1 is back
    assert promotion_evidence(first)["production"] is None
    assert promotion_evidence(second)["production"] == v1
    rejected.refresh_from_db()
    assert promotion_evidence(rejected)["production"] == v2
    row = promotion_evidence(second)["metrics"][0]
    assert (row["candidate"], row["production"]) == (0.82, 0.80)


def test_a_pending_request_compares_with_todays_production(churn, owner, reviewer):
    v1, v2 = ModelVersionFactory(model=churn), ModelVersionFactory(model=churn)
    _promote(v1, owner, reviewer)
    assert promotion_evidence(_request(v2, owner))["production"] == v1


def test_the_request_page_shows_no_production_column_for_a_first_promotion(churn, owner, reviewer, client_for):
    v1 = ModelVersionFactory(model=churn, metrics={"roc_auc": 0.6844})
    req = _promote(v1, owner, reviewer)
    page = client_for(reviewer).get(f"/promotions/{req.pk}/").content.decode()
    assert "Production (none)" in page and "Production v1" not in page
