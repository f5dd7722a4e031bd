"""Promotion workflow services: request, approve (N of M), reject, cancel, gates, stale requests."""

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction

from registry.choices import Decision, PromotionStatus, RiskTier, Stage
from registry.models import AuditEvent, ModelVersion, PromotionPolicy, PromotionRequest, Review, StageTransition
from registry.services.audit import CLI
from registry.services.promotions import (
    GatesFailed,
    PromotionConflict,
    promotion_approve,
    promotion_cancel,
    promotion_reject,
    promotion_request,
)
from tests.factories import ModelVersionFactory, RegisteredModelFactory, UserFactory


def _request(version, requester, target=Stage.PRODUCTION, justification="Better AUC on the October holdout."):
    return promotion_request(
        version=version, target_stage=target, requester=requester, justification=justification, context=CLI
    )


def test_owner_requests_a_promotion_with_policy_snapshot_and_audit_event(churn_v1, owner, last_seq, audit_actions):
    seq = last_seq()
    req = _request(churn_v1, owner)
    assert req.status == PromotionStatus.PENDING
    assert req.policy_snapshot["approvals_required"] == 1
    assert req.policy_snapshot["risk_tier"] == RiskTier.MEDIUM
    assert audit_actions(seq) == ["promotion.requested"]
    event = AuditEvent.objects.get(seq=seq + 1)
    assert event.model_name == "churn"
    assert event.after["request"]["target_stage"] == "production"


def test_reviewers_are_emailed_when_a_request_opens_but_not_the_requester(
    churn_v1, owner, reviewer, reviewer2, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        _request(churn_v1, owner)
    recipients = sorted(r for m in mail.outbox for r in m.to)
    assert recipients == ["reviewer2@example.com", "reviewer@example.com"]
    assert "churn v1" in mail.outbox[0].subject


def test_nothing_is_emailed_if_the_request_is_refused(churn_v1, owner, reviewer, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(ValidationError):
            _request(churn_v1, owner, justification="  ")
    assert mail.outbox == []
    assert not PromotionRequest.objects.exists()


@pytest.mark.parametrize("role", ["reviewer", "auditor", "outsider"])
def test_only_owner_or_admin_may_request_a_promotion(churn_v1, roles, role, last_seq, audit_actions):
    seq = last_seq()
    with pytest.raises(PermissionDenied):
        _request(churn_v1, roles[role])
    assert not PromotionRequest.objects.exists()
    assert audit_actions(seq) == []


def test_admin_may_request_a_promotion(churn_v1, admin_user):
    assert _request(churn_v1, admin_user).requested_by == admin_user


def test_second_pending_request_for_the_same_version_is_refused(churn_v1, owner):
    first = _request(churn_v1, owner, target=Stage.STAGING)
    with pytest.raises(PromotionConflict, match=f"#{first.pk}"):
        _request(churn_v1, owner)
    assert PromotionRequest.objects.count() == 1


@pytest.mark.parametrize("target", ["none", "prod", ""])
def test_invalid_target_stage_is_refused(churn_v1, owner, target):
    with pytest.raises(ValidationError):
        _request(churn_v1, owner, target=target)


def test_request_to_the_stage_the_version_is_already_in_is_refused(churn, owner):
    """A conflict with the version's current state (409 over the API), not a malformed request."""
    version = ModelVersionFactory(model=churn, stage=Stage.STAGING)
    with pytest.raises(PromotionConflict, match="already"):
        _request(version, owner, target=Stage.STAGING)


def test_reviewer_cannot_approve_own_request(churn, owner, reviewer, last_seq, audit_actions):
    churn.owner = reviewer
    churn.save()
    version = ModelVersionFactory(model=churn)
    req = _request(version, reviewer)
    seq = last_seq()
    with pytest.raises(PermissionDenied, match="segregation of duties"):
        promotion_approve(request=req, reviewer=reviewer, comment="lgtm", context=CLI)
    assert not Review.objects.exists()
    assert audit_actions(seq) == []


def test_database_refuses_a_review_by_the_requester(churn_v1, owner):
    req = _request(churn_v1, owner)
    with pytest.raises(IntegrityError):
        with transaction.atomic():
            Review.objects.create(request=req, reviewer=owner, requester=owner, decision=Decision.APPROVE)


@pytest.mark.parametrize("role", ["owner", "auditor", "outsider"])
def test_non_reviewers_cannot_approve_or_reject(churn_v1, owner, roles, role):
    req = _request(churn_v1, owner)
    with pytest.raises(PermissionDenied):
        promotion_approve(request=req, reviewer=roles[role], comment="", context=CLI)
    with pytest.raises(PermissionDenied):
        promotion_reject(request=req, reviewer=roles[role], comment="no", context=CLI)
    req.refresh_from_db()
    assert req.status == PromotionStatus.PENDING


def test_one_approval_applies_a_medium_risk_promotion_at_once(
    churn_v1, owner, reviewer, last_seq, audit_actions, django_capture_on_commit_callbacks
):
    req = _request(churn_v1, owner)
    seq = last_seq()
    with django_capture_on_commit_callbacks(execute=True):
        review = promotion_approve(request=req, reviewer=reviewer, comment="Evidence is solid.", context=CLI)
    assert review.decision == Decision.APPROVE
    req.refresh_from_db()
    churn_v1.refresh_from_db()
    assert req.status == PromotionStatus.APPLIED and req.applied_at is not None
    assert churn_v1.stage == Stage.PRODUCTION
    assert audit_actions(seq) == ["promotion.approved", "stage.changed", "promotion.applied"]
    transition = StageTransition.objects.get(version=churn_v1)
    assert (transition.from_stage, transition.to_stage, transition.promotion_request) == ("none", "production", req)
    assert [m.to for m in mail.outbox] == [["owner@example.com"]]
    assert "Applied" in mail.outbox[0].subject


def test_high_risk_needs_two_approvals_from_distinct_reviewers(
    owner, team, reviewer, reviewer2, last_seq, audit_actions
):
    model = RegisteredModelFactory(name="credit", owner=owner, team=team, risk_tier=RiskTier.HIGH)
    version = ModelVersionFactory(model=model)
    req = _request(version, owner)
    assert req.policy_snapshot["approvals_required"] == 2
    promotion_approve(request=req, reviewer=reviewer, comment="one", context=CLI)
    req.refresh_from_db()
    version.refresh_from_db()
    assert req.status == PromotionStatus.PENDING and version.stage == Stage.NONE
    with pytest.raises(PromotionConflict, match="already reviewed"):
        promotion_approve(request=req, reviewer=reviewer, comment="again", context=CLI)
    seq = last_seq()
    promotion_approve(request=req, reviewer=reviewer2, comment="two", context=CLI)
    req.refresh_from_db()
    version.refresh_from_db()
    assert req.status == PromotionStatus.APPLIED and version.stage == Stage.PRODUCTION
    assert audit_actions(seq) == ["promotion.approved", "stage.changed", "promotion.applied"]


def test_policy_snapshot_applies_even_if_the_policy_changes_later(owner, churn_v1, reviewer):
    req = _request(churn_v1, owner)
    PromotionPolicy.objects.filter(risk_tier=RiskTier.MEDIUM).update(approvals_required=3)
    promotion_approve(request=req, reviewer=reviewer, comment="", context=CLI)
    req.refresh_from_db()
    assert req.status == PromotionStatus.APPLIED


def test_low_risk_policy_with_a_custom_approver_group_only_counts_that_group(owner, team, reviewer, admin_user):
    from django.contrib.auth.models import Group

    PromotionPolicy.objects.filter(risk_tier=RiskTier.LOW).update(approver_group="risk-committee")
    model = RegisteredModelFactory(name="tiny", owner=owner, team=team, risk_tier=RiskTier.LOW)
    req = _request(ModelVersionFactory(model=model), owner)
    with pytest.raises(PermissionDenied, match="risk-committee"):
        promotion_approve(request=req, reviewer=reviewer, comment="", context=CLI)
    member = UserFactory(username="committee")
    member.groups.add(Group.objects.create(name="risk-committee"))
    promotion_approve(request=req, reviewer=member, comment="ok", context=CLI)
    req.refresh_from_db()
    assert req.status == PromotionStatus.APPLIED


def test_promotion_to_production_archives_the_previous_production_version(
    churn, owner, reviewer, last_seq, audit_actions
):
    v1 = ModelVersionFactory(model=churn, stage=Stage.PRODUCTION)
    v2 = ModelVersionFactory(model=churn, metrics={"roc_auc": 0.9})
    req = _request(v2, owner)
    seq = last_seq()
    promotion_approve(request=req, reviewer=reviewer, comment="", context=CLI)
    v1.refresh_from_db()
    v2.refresh_from_db()
    assert (v1.stage, v2.stage) == (Stage.ARCHIVED, Stage.PRODUCTION)
    assert ModelVersion.objects.filter(model=churn, stage=Stage.PRODUCTION).count() == 1
    assert audit_actions(seq) == ["promotion.approved", "stage.changed", "stage.changed", "promotion.applied"]
    superseded = StageTransition.objects.get(version=v1)
    assert superseded.kind == StageTransition.Kind.ARCHIVED_BY_PROMOTION
    assert superseded.promotion_request == req


def test_older_pending_requests_go_stale_when_a_newer_version_is_promoted(
    churn, owner, reviewer, last_seq, audit_actions, django_capture_on_commit_callbacks
):
    v1 = ModelVersionFactory(model=churn)
    v2 = ModelVersionFactory(model=churn)
    old = _request(v1, owner)
    new = _request(v2, owner)
    seq = last_seq()
    with django_capture_on_commit_callbacks(execute=True):
        promotion_approve(request=new, reviewer=reviewer, comment="", context=CLI)
    assert sorted(m.subject.split(": ")[-1] for m in mail.outbox) == ["Applied", "Cancelled"]
    old.refresh_from_db()
    assert old.status == PromotionStatus.CANCELLED
    assert "v2 was promoted" in old.status_reason
    assert audit_actions(seq)[-1] == "promotion.cancelled"
    with pytest.raises(PromotionConflict, match="not pending"):
        promotion_approve(request=old, reviewer=reviewer, comment="", context=CLI)


def test_red_gates_block_approval(churn, owner, reviewer, last_seq, audit_actions):
    ModelVersionFactory(model=churn, stage=Stage.PRODUCTION, metrics={"roc_auc": 0.90})
    worse = ModelVersionFactory(model=churn, metrics={"roc_auc": 0.80}, training_run_id="")
    churn.limitations = ""
    churn.save()
    req = _request(worse, owner)
    seq = last_seq()
    with pytest.raises(GatesFailed) as excinfo:
        promotion_approve(request=req, reviewer=reviewer, comment="", context=CLI)
    assert {g["key"] for g in excinfo.value.details["gates"]} == {"model_card", "lineage", "metric"}
    assert not Review.objects.exists()
    assert audit_actions(seq) == []


def test_only_an_admin_may_override_red_gates_and_the_reason_is_recorded(
    churn, owner, reviewer, admin_user, last_seq, audit_actions
):
    ModelVersionFactory(model=churn, stage=Stage.PRODUCTION, metrics={"roc_auc": 0.90})
    worse = ModelVersionFactory(model=churn, metrics={"roc_auc": 0.80})
    req = _request(worse, owner)
    with pytest.raises(PermissionDenied, match="admin"):
        promotion_approve(request=req, reviewer=reviewer, comment="", context=CLI, override_reason="trust me")
    seq = last_seq()
    promotion_approve(
        request=req, reviewer=admin_user, comment="", context=CLI, override_reason="Regulator-mandated fix."
    )
    req.refresh_from_db()
    assert req.status == PromotionStatus.APPLIED
    assert (req.override_reason, req.overridden_by) == ("Regulator-mandated fix.", admin_user)
    approved = AuditEvent.objects.get(seq=seq + 1)
    assert approved.action == "promotion.approved"
    assert approved.after["override_reason"] == "Regulator-mandated fix."
    assert approved.after["red_gates"] == ["metric"]
    assert [g["status"] for g in req.gate_results if g["key"] == "metric"] == ["fail"]


def test_metric_within_tolerance_passes(churn, owner, reviewer):
    ModelVersionFactory(model=churn, stage=Stage.PRODUCTION, metrics={"roc_auc": 0.900})
    slightly_worse = ModelVersionFactory(model=churn, metrics={"roc_auc": 0.895})
    req = _request(slightly_worse, owner)
    promotion_approve(request=req, reviewer=reviewer, comment="", context=CLI)
    assert PromotionRequest.objects.get(pk=req.pk).status == PromotionStatus.APPLIED


def test_lower_is_better_metric_direction_is_respected(owner, team, reviewer):
    model = RegisteredModelFactory(
        name="demand", owner=owner, team=team, primary_metric="rmse", primary_metric_higher_is_better=False
    )
    ModelVersionFactory(model=model, stage=Stage.PRODUCTION, metrics={"rmse": 10.0})
    higher_rmse = ModelVersionFactory(model=model, metrics={"rmse": 12.0})
    req = _request(higher_rmse, owner)
    with pytest.raises(GatesFailed, match="Offline primary metric"):
        promotion_approve(request=req, reviewer=reviewer, comment="", context=CLI)


def test_reference_data_and_monitoring_gates_are_not_applicable_unless_the_policy_requires_them(churn_v1, owner):
    from registry.selectors.promotions import promotion_gates

    req = _request(churn_v1, owner)
    gates = {g["key"]: g["status"] for g in promotion_gates(req)}
    assert gates == {
        "model_card": "pass",
        "lineage": "pass",
        "metric": "pass",
        "reference_data": "na",
        "monitoring": "na",
        "fairness": "na",
        "live": "na",
        "llm_safety": "na",  # an ML model: the LLM-application gates do not apply
        "llm_quality": "na",
    }
    PromotionPolicy.objects.filter(risk_tier=RiskTier.MEDIUM).update(
        require_reference_data=True, require_monitoring=True
    )
    req2 = _request(ModelVersionFactory(model=churn_v1.model), owner)
    gates = {g["key"]: g["status"] for g in promotion_gates(req2)}
    assert (gates["reference_data"], gates["monitoring"]) == ("fail", "fail")


def test_rejection_ends_the_request_and_tells_the_requester(
    churn_v1, owner, reviewer, reviewer2, last_seq, audit_actions, django_capture_on_commit_callbacks
):
    req = _request(churn_v1, owner)
    seq = last_seq()
    with django_capture_on_commit_callbacks(execute=True):
        promotion_reject(request=req, reviewer=reviewer, comment="Calibration is off.", context=CLI)
    req.refresh_from_db()
    churn_v1.refresh_from_db()
    assert req.status == PromotionStatus.REJECTED and req.status_reason == "Calibration is off."
    assert churn_v1.stage == Stage.NONE
    assert audit_actions(seq) == ["promotion.rejected"]
    assert [m.to for m in mail.outbox] == [["owner@example.com"]]
    with pytest.raises(PromotionConflict):
        promotion_approve(request=req, reviewer=reviewer2, comment="", context=CLI)


def test_rejection_needs_a_comment(churn_v1, owner, reviewer):
    req = _request(churn_v1, owner)
    with pytest.raises(ValidationError):
        promotion_reject(request=req, reviewer=reviewer, comment=" ", context=CLI)
    assert PromotionRequest.objects.get(pk=req.pk).status == PromotionStatus.PENDING


def test_requester_cancels_a_pending_request(churn_v1, owner, reviewer, last_seq, audit_actions):
    req = _request(churn_v1, owner)
    with pytest.raises(PermissionDenied):
        promotion_cancel(request=req, actor=reviewer, context=CLI)
    seq = last_seq()
    promotion_cancel(request=req, actor=owner, context=CLI, comment="Found a leak.")
    req.refresh_from_db()
    assert req.status == PromotionStatus.CANCELLED and req.status_reason == "Found a leak."
    assert audit_actions(seq) == ["promotion.cancelled"]
    with pytest.raises(PromotionConflict):
        promotion_cancel(request=req, actor=owner, context=CLI)


def test_retirement_to_archived_needs_no_gates(churn, owner, reviewer):
    v1 = ModelVersionFactory(model=churn, stage=Stage.STAGING, training_run_id="")
    req = _request(v1, owner, target=Stage.ARCHIVED, justification="Superseded; retire it.")
    promotion_approve(request=req, reviewer=reviewer, comment="", context=CLI)
    v1.refresh_from_db()
    assert v1.stage == Stage.ARCHIVED


def test_promotion_apply_refuses_a_request_without_enough_approvals(churn_v1, owner, last_seq):
    from registry.services.promotions import promotion_apply

    req = _request(churn_v1, owner)
    seq = last_seq()
    with pytest.raises(PromotionConflict, match="0 of 1 approvals"):
        promotion_apply(request=req, actor=owner, context=CLI)
    churn_v1.refresh_from_db()
    assert churn_v1.stage == Stage.NONE and last_seq() == seq
