"""Approvals landing at the same instant from two threads (two PostgreSQL connections).

Exactly one production version must exist afterwards, and an N-of-M request whose last two
approvals race must still be applied exactly once.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from registry.choices import PromotionStatus, RiskTier, Stage
from registry.models import AuditEvent, ModelVersion, PromotionRequest, Review
from registry.services.audit import CLI
from registry.services.promotions import PromotionConflict, promotion_approve, promotion_request
from tests.factories import ModelVersionFactory, RegisteredModelFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _race(*calls):
    """Run the calls in threads released together by a barrier; return their outcomes."""
    barrier = threading.Barrier(len(calls))
    outcomes: list = [None] * len(calls)

    def run(i, call):
        try:
            barrier.wait(timeout=30)
            outcomes[i] = call()
        except PromotionConflict as exc:
            outcomes[i] = exc
        except Exception as exc:  # surfaced by the assertions below
            outcomes[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread hung (deadlock?)"
    return outcomes


def _open(version, owner):
    return promotion_request(
        version=version, target_stage=Stage.PRODUCTION, requester=owner, justification="race", context=CLI
    )


def test_vendor_is_postgresql():
    assert connection.vendor == "postgresql"


@pytest.mark.parametrize("round_", range(3))
def test_two_requests_approved_at_the_same_instant_leave_exactly_one_production_version(
    owner, team, reviewer, reviewer2, round_
):
    model = RegisteredModelFactory(name=f"race-{round_}", owner=owner, team=team)
    ModelVersionFactory(model=model, stage=Stage.PRODUCTION)
    v2, v3 = ModelVersionFactory(model=model), ModelVersionFactory(model=model)
    r2, r3 = _open(v2, owner), _open(v3, owner)
    outcomes = _race(
        lambda: promotion_approve(request=r2, reviewer=reviewer, comment="a", context=CLI),
        lambda: promotion_approve(request=r3, reviewer=reviewer2, comment="b", context=CLI),
    )
    unexpected = [o for o in outcomes if isinstance(o, Exception) and not isinstance(o, PromotionConflict)]
    assert unexpected == []
    assert ModelVersion.objects.filter(model=model, stage=Stage.PRODUCTION).count() == 1
    stages = dict(ModelVersion.objects.filter(model=model).values_list("version", "stage"))
    statuses = {
        r.version.version: r.status
        for r in PromotionRequest.objects.filter(version__model=model).select_related("version")
    }
    if isinstance(outcomes[0], PromotionConflict):
        # v3 won first and made v2's request stale before v2's approval got the lock.
        assert stages == {1: "archived", 2: "none", 3: "production"}
        assert statuses == {2: PromotionStatus.CANCELLED, 3: PromotionStatus.APPLIED}
    else:
        # Both applied one after the other: whichever went last is in production.
        assert statuses[3] == PromotionStatus.APPLIED
        assert stages[1] == "archived"
        assert sorted([stages[2], stages[3]]) == ["archived", "production"]
    applied = AuditEvent.objects.filter(action="promotion.applied", model=model).count()
    assert applied == sum(1 for s in statuses.values() if s == PromotionStatus.APPLIED)


def test_last_two_approvals_of_a_high_risk_request_racing_apply_it_exactly_once(owner, team, reviewer, reviewer2):
    model = RegisteredModelFactory(name="credit-race", owner=owner, team=team, risk_tier=RiskTier.HIGH)
    ModelVersionFactory(model=model, stage=Stage.PRODUCTION)
    candidate = ModelVersionFactory(model=model)
    req = _open(candidate, owner)
    assert req.policy_snapshot["approvals_required"] == 2
    outcomes = _race(
        lambda: promotion_approve(request=req, reviewer=reviewer, comment="one", context=CLI),
        lambda: promotion_approve(request=req, reviewer=reviewer2, comment="two", context=CLI),
    )
    assert [type(o).__name__ for o in outcomes] == ["Review", "Review"]
    req.refresh_from_db()
    candidate.refresh_from_db()
    assert req.status == PromotionStatus.APPLIED
    assert candidate.stage == Stage.PRODUCTION
    assert Review.objects.filter(request=req).count() == 2
    assert ModelVersion.objects.filter(model=model, stage=Stage.PRODUCTION).count() == 1
    assert AuditEvent.objects.filter(action="promotion.applied", object_id=str(req.pk)).count() == 1
    assert AuditEvent.objects.filter(action="promotion.approved", object_id=str(req.pk)).count() == 2


def test_the_same_reviewer_double_submitting_counts_once(owner, team, reviewer):
    model = RegisteredModelFactory(name="double-click", owner=owner, team=team, risk_tier=RiskTier.HIGH)
    req = _open(ModelVersionFactory(model=model), owner)
    outcomes = _race(
        lambda: promotion_approve(request=req, reviewer=reviewer, comment="", context=CLI),
        lambda: promotion_approve(request=req, reviewer=reviewer, comment="", context=CLI),
    )
    assert sorted(type(o).__name__ for o in outcomes) == ["PromotionConflict", "Review"]
    assert Review.objects.filter(request=req).count() == 1
    req.refresh_from_db()
    assert req.status == PromotionStatus.PENDING
