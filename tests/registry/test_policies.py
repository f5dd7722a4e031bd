"""Promotion policies: defaults per tier, audited changes (service and admin), snapshots."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.forms.models import model_to_dict

from registry.choices import RiskTier
from registry.models import AuditEvent, PromotionPolicy
from registry.selectors.promotions import policy_for_tier, policy_snapshot
from registry.services.audit import CLI
from registry.services.policies import policy_update
from tests.registry.helpers import policy_admin_form


def test_default_policies_need_one_approval_for_low_and_medium_and_two_for_high(db):
    assert dict(PromotionPolicy.objects.values_list("risk_tier", "approvals_required")) == {
        "low": 1,
        "medium": 1,
        "high": 2,
    }


def test_a_missing_policy_row_falls_back_to_the_migrations_defaults(db):
    # a flushed table (transactional tests) left high risk without its fairness gate
    migrated = {p.risk_tier: policy_snapshot(p) for p in PromotionPolicy.objects.all()}
    PromotionPolicy.objects.all().delete()
    fallback = {tier: policy_snapshot(policy_for_tier(tier)) for tier in migrated}
    assert fallback == migrated and fallback["high"]["require_fairness"] is True


def test_changing_a_tier_whose_row_is_missing_stores_it_from_the_defaults(admin_user, last_seq, audit_actions):
    # the demo's live-evidence step after a flush: it found no row and silently changed nothing
    PromotionPolicy.objects.filter(risk_tier=RiskTier.HIGH).delete()
    seq = last_seq()
    policy_update(
        policy=policy_for_tier(RiskTier.HIGH), actor=admin_user, changes={"require_live_not_worse": True}, context=CLI
    )
    stored = PromotionPolicy.objects.get(risk_tier=RiskTier.HIGH)
    assert (stored.approvals_required, stored.require_fairness, stored.require_live_not_worse) == (2, True, True)
    assert audit_actions(seq) == ["policy.updated"]
    assert AuditEvent.objects.get(seq=seq + 1).before == {"require_live_not_worse": False}


def test_admin_updates_a_policy_and_the_change_is_audited(admin_user, last_seq, audit_actions):
    policy = PromotionPolicy.objects.get(risk_tier=RiskTier.HIGH)
    seq = last_seq()
    policy_update(
        policy=policy, actor=admin_user, changes={"approvals_required": 3, "require_monitoring": True}, context=CLI
    )
    policy.refresh_from_db()
    assert (policy.approvals_required, policy.require_monitoring, policy.updated_by) == (3, True, admin_user)
    assert audit_actions(seq) == ["policy.updated"]
    event = AuditEvent.objects.get(seq=seq + 1)
    assert event.before == {"approvals_required": 2, "require_monitoring": False}
    assert event.after == {"approvals_required": 3, "require_monitoring": True, "risk_tier": "high"}


def test_a_policy_update_that_changes_nothing_writes_no_event(admin_user, last_seq, audit_actions):
    policy = PromotionPolicy.objects.get(risk_tier=RiskTier.LOW)
    seq = last_seq()
    policy_update(policy=policy, actor=admin_user, changes={"approvals_required": 1}, context=CLI)
    assert audit_actions(seq) == []


@pytest.mark.parametrize("role", ["owner", "reviewer", "auditor", "outsider"])
def test_only_admins_may_change_policies(roles, role, last_seq, audit_actions):
    policy = PromotionPolicy.objects.get(risk_tier=RiskTier.LOW)
    seq = last_seq()
    with pytest.raises(PermissionDenied):
        policy_update(policy=policy, actor=roles[role], changes={"approvals_required": 5}, context=CLI)
    policy.refresh_from_db()
    assert policy.approvals_required == 1
    assert audit_actions(seq) == []


@pytest.mark.parametrize(
    "changes",
    [
        {"approvals_required": 0},
        {"metric_tolerance": -0.1},
        {"approver_group": "no-such-group"},
        {"risk_tier": "high"},
        {"bogus": 1},
        {"metric_tolerance": 1.5, "metric_tolerance_mode": "relative"},  # more than production's whole value
    ],
)
def test_invalid_policy_changes_are_refused(admin_user, changes, last_seq):
    policy = PromotionPolicy.objects.get(risk_tier=RiskTier.LOW)
    seq = last_seq()
    with pytest.raises(ValidationError):
        policy_update(policy=policy, actor=admin_user, changes=changes, context=CLI)
    assert last_seq() == seq
    assert PromotionPolicy.objects.get(pk=policy.pk).approvals_required == 1


def test_policy_change_in_the_admin_goes_through_the_audited_service(admin_user, client_for, last_seq, audit_actions):
    policy = PromotionPolicy.objects.get(risk_tier=RiskTier.MEDIUM)
    client = client_for(admin_user)
    url = f"/admin/registry/promotionpolicy/{policy.pk}/change/"
    assert client.get(url).status_code == 200
    seq = last_seq()
    response = client.post(url, policy_admin_form(approvals_required=2))
    assert response.status_code == 302, response.content.decode()[:2000]
    policy.refresh_from_db()
    assert (policy.approvals_required, policy.metric_tolerance, policy.updated_by) == (2, 0.02, admin_user)
    assert audit_actions(seq) == ["policy.updated"]
    assert AuditEvent.objects.get(seq=seq + 1).source == "ui"


@pytest.mark.parametrize(
    ("form", "needle"),
    [
        ({"approvals_required": 1, "approver_group": "nobody", "metric_tolerance": "0.01"}, "There is no group named"),
        (policy_admin_form(metric_tolerance="1.5", metric_tolerance_mode="relative"), "at most 1 (100 %)"),
    ],
    ids=["an unknown group", "a relative tolerance above 1"],
)
def test_the_policy_admin_shows_a_refused_change_as_a_form_error(admin_user, client_for, last_seq, form, needle):
    policy = PromotionPolicy.objects.get(risk_tier=RiskTier.MEDIUM)
    before = model_to_dict(policy)
    client = client_for(admin_user)
    seq = last_seq()
    response = client.post(f"/admin/registry/promotionpolicy/{policy.pk}/change/", form)
    assert response.status_code == 200
    assert needle in response.content.decode()
    assert last_seq() == seq and model_to_dict(PromotionPolicy.objects.get(pk=policy.pk)) == before


def test_non_staff_cannot_reach_the_policy_admin(reviewer, client_for):
    policy = PromotionPolicy.objects.get(risk_tier=RiskTier.MEDIUM)
    response = client_for(reviewer).get(f"/admin/registry/promotionpolicy/{policy.pk}/change/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_a_relative_tolerance_is_at_most_the_whole_of_productions_value(admin_user):
    """A fraction of production's value above 1 would let a candidate be worse by more than all of
    it; an absolute tolerance has no such bound (its unit is the metric's)."""
    policy = PromotionPolicy.objects.get(risk_tier=RiskTier.LOW)

    def update(**changes):
        return policy_update(policy=policy, actor=admin_user, changes=changes, context=CLI)

    update(metric_tolerance_mode="relative", metric_tolerance=1)
    with pytest.raises(ValidationError) as caught:
        update(metric_tolerance=1.01)
    assert "at most 1" in str(caught.value.message_dict["metric_tolerance"])
    policy = PromotionPolicy.objects.get(pk=policy.pk)
    update(metric_tolerance_mode="absolute", metric_tolerance=2.5)
    assert PromotionPolicy.objects.get(pk=policy.pk).metric_tolerance == 2.5
