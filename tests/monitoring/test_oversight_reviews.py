"""Periodic reviews and findings: cadence by risk tier, triggers open a review (once), the owner
attests and a validator who is not the owner signs, overdue reviews and findings show and
escalate once, and every step is audited."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from monitoring.models import Alert
from monitoring.oversight.findings import finding_create, finding_remediate, finding_retest, findings_escalate
from monitoring.oversight.incidents import incident_open
from monitoring.oversight.models import PeriodicReview, ReviewTrigger
from monitoring.oversight.plan import plan_current, plan_save
from monitoring.oversight.reviews import (
    ReviewConflict,
    next_review_due,
    review_attest,
    review_open,
    review_validate,
    reviews_sweep,
)
from registry.choices import RiskTier, Stage
from registry.models import ModelVersion
from registry.services.audit import CLI
from tests.factories import ModelVersionFactory


@pytest.fixture
def live(churn):
    version = ModelVersionFactory(model=churn, stage=Stage.PRODUCTION)
    ModelVersion.objects.filter(pk=version.pk).update(stage_changed_at=timezone.now() - dt.timedelta(days=200))
    return churn


def _alert(model, kind="drift", severity="critical") -> Alert:
    now = timezone.now()
    return Alert.objects.create(
        model=model, kind=kind, severity=severity, title="PSI 0.4", opened_at=now, updated_at=now
    )


def test_next_review_is_due_on_the_cadence_of_the_risk_tier(live, settings):
    since = live.versions.get(stage=Stage.PRODUCTION).stage_changed_at
    assert next_review_due(live) == since + dt.timedelta(days=180)  # medium
    live.risk_tier = RiskTier.HIGH
    assert next_review_due(live) == since + dt.timedelta(days=90)
    settings.REVIEW_CADENCE_DAYS = {"high": 30}
    assert next_review_due(live) == since + dt.timedelta(days=30)


def test_the_sweep_opens_the_due_review_once_and_it_shows_as_overdue(live, owner, audit_actions, last_seq, client_for):
    seq = last_seq()
    assert reviews_sweep() == 1
    assert reviews_sweep() == 0
    review = PeriodicReview.objects.get(model=live)
    assert review.trigger == "scheduled" and review.due_at < timezone.now()
    assert audit_actions(seq) == ["review.opened"]
    client = client_for(owner)
    for path in ("/monitoring/alerts/", "/monitoring/scorecard/", "/monitoring/fleet/"):
        page = client.get(path)
        assert page.status_code == 200 and "/monitoring/oversight/overdue/" in page.content.decode()
    banner = client.get("/monitoring/oversight/overdue/").content.decode()
    assert "oversight-overdue" in banner and f"Review #{review.pk}</a> of churn overdue" in banner
    badges = client.get("/monitoring/oversight/badges/").content.decode()
    assert 'title="Overdue reviews and findings">1<' in badges


def _sweep_opens_one_review(model, audit_actions, last_seq):
    """The sweep opens one review of ``model`` (audited), and a second sweep opens none."""
    seq = last_seq()
    assert reviews_sweep() == 1
    assert reviews_sweep() == 0
    assert audit_actions(seq) == ["review.opened"]
    return PeriodicReview.objects.get(model=model)


def test_a_critical_drift_alert_opens_an_unscheduled_review_once(churn, audit_actions, last_seq):
    alert = _alert(churn)
    _alert(churn, kind="data_quality")  # not a trigger
    review = _sweep_opens_one_review(churn, audit_actions, last_seq)
    assert review.trigger == "drift_alert" and ReviewTrigger.objects.get().alert == alert


def test_a_fairness_alert_opens_an_unscheduled_review_and_a_drift_warning_does_not(churn, audit_actions, last_seq):
    # fairness alerts are warnings (monitoring.fairness_monitoring.fairness_reasons): the sweep
    # looked at critical alerts only, so a fairness breach never opened a review
    _alert(churn, kind="drift", severity="warning")
    breach = _alert(churn, kind="fairness", severity="warning")
    review = _sweep_opens_one_review(churn, audit_actions, last_seq)
    assert review.trigger == "fairness" and ReviewTrigger.objects.get().alert == breach


def test_a_new_incident_opens_a_review_or_brings_the_open_one_forward(churn, owner):
    far = timezone.now() + dt.timedelta(days=60)
    review = review_open(model=churn, actor=owner, reason="Quarterly", due_at=far, context=CLI)
    incident_open(model=churn, actor=owner, severity="serious", aware_at=timezone.now(), summary="Harm", context=CLI)
    review.refresh_from_db()
    assert review.due_at < far and [t.kind for t in review.triggers.all()] == ["incident"]
    assert PeriodicReview.objects.filter(model=churn).count() == 1


def test_high_risk_review_needs_a_validator_who_is_not_the_owner(
    churn, owner, reviewer, admin_user, audit_actions, last_seq
):
    churn.risk_tier = RiskTier.HIGH
    churn.save()
    review = review_open(model=churn, actor=owner, reason="Due", context=CLI)
    seq = last_seq()
    with pytest.raises(ReviewConflict):
        review_validate(review=review, actor=reviewer, comment="ok", context=CLI)
    with pytest.raises(ValidationError):
        review_attest(review=review, actor=owner, card_true=True, intended_use_true=False, context=CLI)
    review = review_attest(review=review, actor=owner, card_true=True, intended_use_true=True, context=CLI)
    assert review.status == "attested"
    with pytest.raises(PermissionDenied):
        review_validate(review=review, actor=owner, comment="self", context=CLI)
    review = review_validate(review=review, actor=reviewer, comment="Revalidated", context=CLI)
    assert review.status == "completed" and review.validated_by == reviewer
    assert audit_actions(seq) == ["review.attested", "review.validated"]


def test_the_database_refuses_the_owner_as_validator_and_two_open_reviews(churn, owner):
    review = review_open(model=churn, actor=owner, reason="Due", context=CLI)
    with pytest.raises(IntegrityError), transaction.atomic():
        PeriodicReview.objects.filter(pk=review.pk).update(validated_by=owner)
    with pytest.raises(ReviewConflict):
        review_open(model=churn, actor=owner, reason="Again", context=CLI)


def test_medium_risk_review_completes_on_attestation(churn, owner):
    review = review_open(model=churn, actor=owner, reason="Due", context=CLI)
    review = review_attest(review=review, actor=owner, card_true=True, intended_use_true=True, context=CLI)
    assert review.status == "completed" and review.completed_at


@pytest.mark.parametrize("who", ["auditor", "outsider"])
def test_auditor_and_outsider_cannot_act_on_reviews(churn, owner, roles, who):
    review = review_open(model=churn, actor=owner, reason="Due", context=CLI)
    with pytest.raises(PermissionDenied):
        review_attest(review=review, actor=roles[who], card_true=True, intended_use_true=True, context=CLI)
    with pytest.raises(PermissionDenied):
        review_open(model=churn, actor=roles[who], reason="x", context=CLI)


def _finding(model, actor, owner, *, severity="high", days=30):
    """A finding ``actor`` records on ``model`` for ``owner`` to remediate within ``days``."""
    return finding_create(
        model=model,
        actor=actor,
        severity=severity,
        description="No calibration check",
        owner=owner,
        due_at=timezone.now() + dt.timedelta(days=days),
        context=CLI,
    )


def test_finding_from_record_to_close_on_retest(churn, owner, reviewer, audit_actions, last_seq):
    seq = last_seq()
    finding = _finding(churn, reviewer, owner)
    with pytest.raises(PermissionDenied):
        finding_retest(finding=finding, actor=owner, passed=True, comment="", context=CLI)
    with pytest.raises(ReviewConflict):
        finding_retest(finding=finding, actor=reviewer, passed=True, comment="", context=CLI)
    finding = finding_remediate(finding=finding, actor=owner, evidence="Added a calibration test", context=CLI)
    finding = finding_retest(finding=finding, actor=reviewer, passed=False, comment="Still off", context=CLI)
    assert finding.status == "open"
    finding_remediate(finding=finding, actor=owner, evidence="Recalibrated", context=CLI)
    finding = finding_retest(finding=finding, actor=reviewer, passed=True, comment="Passes", context=CLI)
    assert finding.status == "closed" and finding.closed_by == reviewer
    assert audit_actions(seq) == [
        "finding.created",
        "finding.remediated",
        "finding.reopened",
        "finding.remediated",
        "finding.closed",
    ]


def test_owner_cannot_record_a_finding_on_their_own_model(churn, owner):
    with pytest.raises(PermissionDenied):
        _finding(churn, owner, owner, severity="low", days=1)


def test_overdue_findings_escalate_once(churn, owner, reviewer, audit_actions, last_seq, client_for):
    finding = _finding(churn, reviewer, owner, severity="medium", days=1)
    seq = last_seq()
    later = timezone.now() + dt.timedelta(days=2)
    assert findings_escalate(now=later) == 1
    assert findings_escalate(now=later) == 0
    assert audit_actions(seq) == ["finding.escalated"]
    finding.refresh_from_db()
    assert finding.escalated_at is not None


def test_plan_is_generated_and_its_narrative_versioned(churn, owner, auditor, audit_actions, last_seq):
    assert plan_current(churn)["version"] is None
    seq = last_seq()
    plan_save(model=churn, actor=owner, narrative="We watch income drift weekly.", context=CLI)
    plan_save(model=churn, actor=owner, narrative="Weekly, and after each release.", context=CLI)
    current = plan_current(churn)
    assert current["version"] == 2 and current["narrative"].startswith("Weekly")
    assert audit_actions(seq) == ["plan.saved", "plan.saved"]
    with pytest.raises(PermissionDenied):
        plan_save(model=churn, actor=auditor, narrative="x", context=CLI)


NARRATIVE = "We watch income drift weekly and after every release; the owner reviews each alert. " * 3


@pytest.mark.parametrize("data", [{}, {"narrative": ""}, {"narrative": "   \n "}], ids=["missing", "empty", "blank"])
def test_saving_the_plan_without_a_narrative_is_a_400_naming_it_and_keeps_the_plan(
    churn, owner, client_for, audit_actions, last_seq, data
):
    # a POST without the field answered "Plan saved as a new version" and emptied a 252-character narrative
    plan_save(model=churn, actor=owner, narrative=NARRATIVE, context=CLI)
    client = client_for(owner)
    seq = last_seq()
    answer = client.post("/monitoring/models/churn/plan/", data)
    assert answer.status_code == 400
    assert answer.context["form"].errors["narrative"] == ["This field is required."]
    assert 'id="id_narrative_errors"' in answer.content.decode()
    current = plan_current(churn)
    assert current["version"] == 1 and current["narrative"] == NARRATIVE.strip()
    assert audit_actions(seq) == []


def test_the_plan_service_refuses_an_empty_narrative(churn, owner, last_seq):
    seq = last_seq()
    with pytest.raises(ValidationError) as refused:
        plan_save(model=churn, actor=owner, narrative=" \x00 ", context=CLI)
    assert "narrative" in refused.value.message_dict
    assert plan_current(churn)["version"] is None and last_seq() == seq


def test_the_plan_page_saves_a_narrative_as_a_new_version(churn, owner, auditor, client_for, audit_actions, last_seq):
    client = client_for(owner)
    seq = last_seq()
    answer = client.post("/monitoring/models/churn/plan/", {"narrative": NARRATIVE})
    assert answer.status_code == 302 and answer["Location"] == "/monitoring/models/churn/plan/"
    assert plan_current(churn)["version"] == 1 and audit_actions(seq) == ["plan.saved"]
    assert client_for(auditor).post("/monitoring/models/churn/plan/", {}).status_code == 403
    assert plan_current(churn)["version"] == 1


def test_the_review_and_finding_pages_run_their_actions(churn, owner, reviewer, client_for):
    review = review_open(model=churn, actor=owner, reason="Due", context=CLI)
    client = client_for(owner)
    url = f"/monitoring/reviews/{review.pk}/"
    assert client.post(f"{url}attest/", {"card_true": "on", "intended_use_true": "on"})["Location"] == url
    assert PeriodicReview.objects.get(pk=review.pk).status == "completed"
    assert client.post(f"{url}sign/").status_code == 404
    finding = _finding(churn, reviewer, owner)
    url = f"/monitoring/findings/{finding.pk}/"
    assert client.post(f"{url}remediate/", {"evidence": "Added a calibration test"})["Location"] == url
    assert client_for(reviewer).post(f"{url}retest/", {"passed": "true"})["Location"] == url
    finding.refresh_from_db()
    assert finding.status == "closed" and finding.closed_by == reviewer
    assert client.post(f"{url}close/").status_code == 404


def test_whoever_remediated_a_finding_cannot_close_it_on_retest(churn, owner, reviewer, reviewer2, client_for):
    # A validator who gives a finding to a fellow reviewer (or to themselves) cannot also be the one
    # who answers it and signs the answer off: the retest is someone else's.
    finding = _finding(churn, reviewer, reviewer2)
    finding = finding_remediate(finding=finding, actor=reviewer2, evidence="Added a calibration test", context=CLI)
    page = client_for(reviewer2).get(f"/monitoring/findings/{finding.pk}/").content.decode()
    assert "retest-form" not in page
    with pytest.raises(PermissionDenied):
        finding_retest(finding=finding, actor=reviewer2, passed=True, comment="", context=CLI)
    assert (
        client_for(reviewer2).post(f"/monitoring/findings/{finding.pk}/retest/", {"passed": "true"}).status_code == 403
    )
    finding.refresh_from_db()
    assert finding.status == "remediated" and finding.closed_by is None
    assert "retest-form" in client_for(reviewer).get(f"/monitoring/findings/{finding.pk}/").content.decode()
    finding = finding_retest(finding=finding, actor=reviewer, passed=True, comment="Passes", context=CLI)
    assert finding.status == "closed" and finding.closed_by == reviewer


def test_a_self_assigned_finding_needs_another_validator_to_close_it(churn, reviewer, reviewer2, api_client_for):
    api = api_client_for(reviewer, scopes=["reviews:write"])
    due = (timezone.now() + dt.timedelta(days=10)).isoformat()
    body = {"severity": "high", "description": "Self-assigned", "owner": reviewer.username, "due_at": due}
    created = api.post(f"/api/v1/models/{churn.name}/findings/", body, format="json")
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    assert api.post(f"/api/v1/findings/{pk}/remediate/", {"evidence": "Done"}, format="json").status_code == 200
    refused = api.post(f"/api/v1/findings/{pk}/retest/", {"passed": True, "comment": "Fine"}, format="json")
    assert refused.status_code == 403, refused.content
    assert refused.json()["error"]["code"] == "permission_denied"
    other = api_client_for(reviewer2, scopes=["reviews:write"])
    closed = other.post(f"/api/v1/findings/{pk}/retest/", {"passed": True, "comment": "Fine"}, format="json")
    assert closed.status_code == 200 and closed.json()["closed_by"] == reviewer2.username


def test_a_finding_cannot_be_given_to_an_auditor_who_could_never_answer_it(churn, reviewer, auditor):
    with pytest.raises(ValidationError) as refused:
        _finding(churn, reviewer, auditor)
    assert "owner" in refused.value.message_dict


def test_whoever_attested_a_high_risk_review_cannot_also_validate_it(
    churn, owner, reviewer, admin_user, client_for, api_client_for
):
    # An admin may attest for the owner and may validate, but never both on one review: the
    # revalidation is a second person's signature.
    churn.risk_tier = RiskTier.HIGH
    churn.save()
    review = review_open(model=churn, actor=owner, reason="Due", context=CLI)
    review = review_attest(review=review, actor=admin_user, card_true=True, intended_use_true=True, context=CLI)
    with pytest.raises(PermissionDenied):
        review_validate(review=review, actor=admin_user, comment="Self-signed", context=CLI)
    api = api_client_for(admin_user, scopes=["reviews:write"])
    refused = api.post(f"/api/v1/reviews/{review.pk}/validate/", {"comment": "Self-signed"}, format="json")
    assert refused.status_code == 403, refused.content
    assert "validate-form" not in client_for(admin_user).get(f"/monitoring/reviews/{review.pk}/").content.decode()
    review.refresh_from_db()
    assert review.status == "attested" and review.validated_by is None
    review = review_validate(review=review, actor=reviewer, comment="Revalidated", context=CLI)
    assert review.status == "completed" and review.validated_by == reviewer
