"""The "fairness within thresholds" gate: required for high risk by default, red on a biased
candidate (approval blocked with the reason), green on a fair one, an admin's waiver is the
recorded override (request, audit log), and the request page shows the gate, group table and
chart only to those who may see group results."""

from __future__ import annotations

import pytest

from monitoring.fairness_data import FAIRNESS_SCHEMA, evaluation_frame
from monitoring.services.evaluations import evaluation_compute, evaluation_upload
from registry.choices import PromotionStatus, RiskTier, Stage, TaskType
from registry.models import AuditEvent, PromotionPolicy
from registry.services.audit import CLI
from registry.services.promotions import GatesFailed, promotion_approve, promotion_request
from registry.services.stages import PromotionConflict
from tests.factories import ModelVersionFactory, RegisteredModelFactory
from tests.monitoring.helpers import csv_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def credit(owner, team):
    return RegisteredModelFactory(name="credit-approval", owner=owner, team=team, risk_tier=RiskTier.HIGH)


def _version_with_evaluation(model, owner, female_factor: float):
    version = ModelVersionFactory(model=model, feature_schema=FAIRNESS_SCHEMA, task_type=TaskType.BINARY)
    run = evaluation_upload(
        version=version,
        body=csv_bytes(evaluation_frame(4000, female_factor=female_factor)),
        content_type="text/csv",
        actor=owner,
        context=CLI,
    )
    evaluation_compute(run_id=run.pk)
    return version


def _request(version, owner):
    return promotion_request(
        version=version, target_stage=Stage.PRODUCTION, requester=owner, justification="Ready.", context=CLI
    )


def _gate(req):
    from registry.selectors.promotions import promotion_gates

    return next(g for g in promotion_gates(req) if g["key"] == "fairness")


def test_high_risk_policy_requires_fairness_with_default_thresholds():
    high = PromotionPolicy.objects.get(risk_tier=RiskTier.HIGH)
    assert high.require_fairness is True
    assert high.fairness_min_disparate_impact == 0.8 and high.fairness_max_equalized_odds_difference == 0.1
    assert not PromotionPolicy.objects.get(risk_tier=RiskTier.LOW).require_fairness


def test_biased_candidate_is_blocked_with_the_reason(credit, owner, reviewer):
    req = _request(_version_with_evaluation(credit, owner, female_factor=0.6), owner)
    gate = _gate(req)
    assert gate["status"] == "fail" and gate["required"]
    assert "disparate impact for sex=F vs sex=M is 0." in gate["detail"]
    assert "four-fifths rule: ≥ 0.80" in gate["detail"]
    with pytest.raises(GatesFailed) as info:
        promotion_approve(request=req, reviewer=reviewer, comment="ok", context=CLI)
    assert "Fairness within thresholds" in info.value.message
    req.refresh_from_db()
    assert req.status == PromotionStatus.PENDING and not req.reviews.exists()


def test_fair_candidate_passes(credit, owner):
    gate = _gate(_request(_version_with_evaluation(credit, owner, female_factor=1.0), owner))
    assert gate["status"] == "pass", gate["detail"]


def test_no_sensitive_attribute_declared_is_not_applicable(credit, owner):
    version = ModelVersionFactory(model=credit, feature_schema=[{"name": "income", "type": "numeric"}])
    gate = _gate(_request(version, owner))
    assert gate["status"] == "na" and "declares no sensitive attribute" in gate["detail"]


def test_missing_evaluation_is_red(credit, owner):
    version = ModelVersionFactory(model=credit, feature_schema=FAIRNESS_SCHEMA)
    gate = _gate(_request(version, owner))
    assert gate["status"] == "fail" and "No evaluation set uploaded" in gate["detail"]


def test_admin_waiver_is_recorded_and_audited(credit, owner, admin_user, reviewer):
    req = _request(_version_with_evaluation(credit, owner, female_factor=0.6), owner)
    promotion_approve(
        request=req, reviewer=admin_user, comment="", override_reason="Accepted by the credit committee.", context=CLI
    )
    req.refresh_from_db()
    assert req.override_reason == "Accepted by the credit committee." and req.overridden_by == admin_user
    assert any(g["key"] == "fairness" and g["status"] == "fail" for g in req.gate_results)
    event = AuditEvent.objects.filter(action="promotion.approved").latest("seq")
    assert event.after["red_gates"] == ["fairness"]
    assert event.after["override_reason"] == "Accepted by the credit committee."


def test_request_page_shows_red_gate_group_table_and_chart(credit, owner, reviewer, outsider, client_for):
    req = _request(_version_with_evaluation(credit, owner, female_factor=0.6), owner)
    page = client_for(reviewer).get(req.get_absolute_url())
    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-gate="fairness"' in html and "disparate impact for sex=F vs sex=M" in html
    assert 'class="fairness-groups" data-attribute="sex"' in html
    assert 'id="chart-fairness-0"' in html and '"chart-fairness-0"' in html  # the figure's json_script entry
    assert client_for(outsider).get(req.get_absolute_url()).status_code == 404


def test_no_group_results_without_the_permission(credit, owner, outsider):
    from registry.fairness_evidence import fairness_evidence

    version = _version_with_evaluation(credit, owner, female_factor=1.0)
    assert fairness_evidence(user=owner, version=version) is not None
    assert fairness_evidence(user=outsider, version=version) is None


def test_compliance_report_has_the_art_10_section_with_the_waiver(credit, owner, admin_user, auditor, client_for):
    version = _version_with_evaluation(credit, owner, female_factor=0.6)
    promotion_approve(
        request=_request(version, owner), reviewer=admin_user, comment="", override_reason="Committee waiver.",
        context=CLI,
    )  # fmt: skip
    html = client_for(auditor).get(f"/models/{credit.name}/report/").content.decode()
    assert "Data governance and bias examination (Art. 10) · performance on groups (Art. 13)" in html
    assert 'data-attribute="sex"' in html and "red fairness gate waived by admin" in html
    assert "Committee waiver." in html


def test_the_evaluation_under_review_cannot_be_replaced_by_a_fairer_looking_one(credit, owner, reviewer, last_seq):
    """A new, fairer-looking upload mid-review would turn the red gate green under the reviewer's
    eyes (the gate reads the latest run): refused, naming the request, until it is cancelled."""
    version = _version_with_evaluation(credit, owner, female_factor=0.6)
    req = _request(version, owner)
    start = last_seq()
    with pytest.raises(PromotionConflict) as err:
        evaluation_upload(
            version=version,
            body=csv_bytes(evaluation_frame(4000, female_factor=1.0)),
            content_type="text/csv",
            actor=owner,
            context=CLI,
        )
    assert f"#{req.pk}" in err.value.message and "fairness evaluation" in err.value.message
    assert last_seq() == start and version.evaluation_runs.count() == 1
    assert _gate(req)["status"] == "fail"


def test_the_evaluation_an_approval_was_given_on_stays(credit, owner, admin_user):
    version = _version_with_evaluation(credit, owner, female_factor=0.6)
    req = _request(version, owner)
    promotion_approve(request=req, reviewer=admin_user, comment="", override_reason="Committee.", context=CLI)
    with pytest.raises(PromotionConflict, match=f"#{req.pk}"):
        evaluation_upload(
            version=version,
            body=csv_bytes(evaluation_frame(4000, female_factor=1.0)),
            content_type="text/csv",
            actor=owner,
            context=CLI,
        )


def test_a_first_evaluation_is_taken_while_the_request_waits_for_it(credit, owner):
    version = ModelVersionFactory(model=credit, feature_schema=FAIRNESS_SCHEMA, task_type=TaskType.BINARY)
    req = _request(version, owner)
    run = evaluation_upload(
        version=version,
        body=csv_bytes(evaluation_frame(4000, female_factor=1.0)),
        content_type="text/csv",
        actor=owner,
        context=CLI,
    )
    evaluation_compute(run_id=run.pk)
    assert _gate(req)["status"] == "pass"
