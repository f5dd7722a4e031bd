"""A pending request's page says how long it has been open and, when production has changed
since it was asked for, which version was in production then: a request opened five weeks ago
against v2 showed no sign of either (its comparison is with production now)."""

import datetime as dt

from django.utils import timezone

from registry.choices import Stage
from registry.models import PromotionRequest, StageTransition
from registry.services.audit import CLI
from registry.services.promotions import promotion_approve, promotion_request
from registry.services.stages import model_rollback
from tests.factories import ModelVersionFactory


def _promote(version, owner, reviewer):
    req = promotion_request(
        version=version, target_stage=Stage.PRODUCTION, requester=owner, justification="better", context=CLI
    )
    promotion_approve(request=req, reviewer=reviewer, comment="", context=CLI)


def test_a_pending_request_says_its_age_and_the_production_it_was_asked_against(
    churn, owner, reviewer, reviewer2, client_for
):
    v1, v2, v3 = (ModelVersionFactory(model=churn) for _ in range(3))
    _promote(v1, owner, reviewer)
    _promote(v2, owner, reviewer)
    StageTransition.objects.filter(model=churn).update(created_at=timezone.now() - dt.timedelta(days=30))
    req = promotion_request(version=v3, target_stage=Stage.PRODUCTION, requester=owner, justification="x", context=CLI)
    PromotionRequest.objects.filter(pk=req.pk).update(created_at=timezone.now() - dt.timedelta(days=20))
    page = client_for(reviewer2).get(req.get_absolute_url()).content.decode()
    assert "(open for 2\xa0weeks)" in page
    assert "data-production-changed" not in page  # production has not changed
    model_rollback(model=churn, actor=owner, reason="Drift alarm.", context=CLI)
    page = client_for(reviewer2).get(req.get_absolute_url()).content.decode()
    assert f"v{v2.version} was in production when it was requested" in page
    assert f"compared below with production now, v{v1.version}" in page
