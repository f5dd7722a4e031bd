"""A policy's metric tolerance reads either as an absolute amount (the default: 0.01 of ROC AUC) or
as a fraction of production's value (0.02: up to 2 % of |production| worse), so that a regression
model's RMSE of 57 can be allowed "at most 2 % worse". The request keeps the reading of the policy
in force when it was made; the gate, the request page and the API say which one applies."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from registry.choices import RiskTier, Stage
from registry.models import AuditEvent, PromotionPolicy
from registry.selectors.promotions import policy_for_tier, policy_snapshot, promotion_gates
from registry.services.audit import CLI
from registry.services.policies import policy_update
from registry.services.promotions import promotion_request
from tests.factories import ModelVersionFactory, RegisteredModelFactory
from tests.registry.helpers import policy_admin_form

pytestmark = pytest.mark.django_db


@pytest.fixture
def prices(owner, team):
    """A regression model judged on RMSE (lower is better), production v1 at 57."""
    model = RegisteredModelFactory(
        name="house-prices", owner=owner, team=team, primary_metric="rmse", primary_metric_higher_is_better=False
    )
    ModelVersionFactory(model=model, stage=Stage.PRODUCTION, metrics={"rmse": 57.0})
    return model


def _set(tier: str, **fields) -> None:
    PromotionPolicy.objects.filter(risk_tier=tier).update(**fields)


def _request(model, metrics: dict, owner):
    candidate = ModelVersionFactory(model=model, metrics=metrics)
    return promotion_request(
        version=candidate, target_stage=Stage.PRODUCTION, requester=owner, justification="Retrained.", context=CLI
    )


def _metric_gate(req) -> dict:
    return next(g for g in promotion_gates(req) if g["key"] == "metric")


def test_a_new_policy_reads_its_tolerance_as_absolute(db):
    assert set(PromotionPolicy.objects.values_list("metric_tolerance_mode", flat=True)) == {"absolute"}
    assert PromotionPolicy(risk_tier=RiskTier.LOW).metric_tolerance_mode == "absolute"


@pytest.mark.parametrize("rmse, status", [(57.0 * 1.015, "pass"), (57.0 * 1.03, "fail")])
def test_a_relative_tolerance_passes_rmse_1_5_percent_worse_and_fails_3_percent_worse(prices, owner, rmse, status):
    _set(prices.risk_tier, metric_tolerance=0.02, metric_tolerance_mode="relative")
    gate = _metric_gate(_request(prices, {"rmse": rmse}, owner))
    assert gate["status"] == status
    assert "tolerance 2 % of production's 57 = 1.14" in gate["detail"]
    assert gate["tolerance"] == {"value": 0.02, "mode": "relative", "allowed": pytest.approx(1.14)}


def test_the_same_tolerance_read_as_absolute_allows_no_more_than_0_02_of_rmse(prices, owner):
    _set(prices.risk_tier, metric_tolerance=0.02)
    gate = _metric_gate(_request(prices, {"rmse": 57.0 * 1.015}, owner))
    assert gate["status"] == "fail"
    assert "tolerance 0.02)" in gate["detail"] and "%" not in gate["detail"]
    assert gate["tolerance"] == {"value": 0.02, "mode": "absolute", "allowed": 0.02}


@pytest.mark.parametrize("auc, status", [(0.795, "pass"), (0.785, "fail")])
def test_an_absolute_tolerance_on_a_higher_is_better_metric_is_unchanged(churn, owner, auc, status):
    ModelVersionFactory(model=churn, stage=Stage.PRODUCTION, metrics={"roc_auc": 0.80})
    gate = _metric_gate(_request(churn, {"roc_auc": auc}, owner))
    assert gate["status"] == status and "tolerance 0.01)" in gate["detail"]


@pytest.mark.parametrize("auc, status", [(0.785, "pass"), (0.775, "fail")])
def test_a_relative_tolerance_on_a_higher_is_better_metric_is_a_fraction_of_production(churn, owner, auc, status):
    # 2.5 % of 0.80 = 0.02: 0.785 is 0.015 worse (passes), 0.775 is 0.025 worse (fails)
    _set(churn.risk_tier, metric_tolerance=0.025, metric_tolerance_mode="relative")
    ModelVersionFactory(model=churn, stage=Stage.PRODUCTION, metrics={"roc_auc": 0.80})
    gate = _metric_gate(_request(churn, {"roc_auc": auc}, owner))
    assert gate["status"] == status
    assert "tolerance 2.5 % of production's 0.8 = 0.02" in gate["detail"]


def test_a_relative_tolerance_is_a_fraction_of_a_negative_productions_magnitude(owner, team):
    model = RegisteredModelFactory(name="margin", owner=owner, team=team, primary_metric="r2")
    _set(model.risk_tier, metric_tolerance=0.1, metric_tolerance_mode="relative")
    ModelVersionFactory(model=model, stage=Stage.PRODUCTION, metrics={"r2": -2.0})
    assert _metric_gate(_request(model, {"r2": -2.15}, owner))["status"] == "pass"  # 0.15 worse, 0.2 allowed
    assert _metric_gate(_request(model, {"r2": -2.25}, owner))["status"] == "fail"


@pytest.mark.parametrize("rmse, status", [(0.0, "pass"), (0.001, "fail")])
def test_a_relative_tolerance_of_a_zero_production_value_allows_no_worsening(owner, team, rmse, status):
    model = RegisteredModelFactory(
        name="perfect", owner=owner, team=team, primary_metric="rmse", primary_metric_higher_is_better=False
    )
    _set(model.risk_tier, metric_tolerance=0.02, metric_tolerance_mode="relative")
    ModelVersionFactory(model=model, stage=Stage.PRODUCTION, metrics={"rmse": 0.0})
    gate = _metric_gate(_request(model, {"rmse": rmse}, owner))
    assert gate["status"] == status
    assert "tolerance 2 % of production's 0 = 0" in gate["detail"]
    assert gate["tolerance"]["allowed"] == 0.0


def test_the_snapshot_keeps_the_reading_in_force_when_the_request_was_made(prices, owner, admin_user):
    _set(prices.risk_tier, metric_tolerance=0.02, metric_tolerance_mode="relative")
    req = _request(prices, {"rmse": 57.0 * 1.015}, owner)
    assert req.policy_snapshot["metric_tolerance_mode"] == "relative"
    policy = PromotionPolicy.objects.get(risk_tier=prices.risk_tier)
    policy_update(policy=policy, actor=admin_user, changes={"metric_tolerance_mode": "absolute"}, context=CLI)
    req.refresh_from_db()
    assert req.policy_snapshot["metric_tolerance_mode"] == "relative"
    assert _metric_gate(req)["status"] == "pass"  # still 2 % of 57, not 0.02 of RMSE


def test_a_snapshot_from_before_the_reading_existed_reads_as_absolute(prices, owner):
    _set(prices.risk_tier, metric_tolerance=0.02, metric_tolerance_mode="relative")
    req = _request(prices, {"rmse": 57.0 * 1.015}, owner)
    old = {k: v for k, v in req.policy_snapshot.items() if k != "metric_tolerance_mode"}
    type(req).objects.filter(pk=req.pk).update(policy_snapshot=old)
    req.refresh_from_db()
    gate = _metric_gate(req)
    assert gate["status"] == "fail" and gate["tolerance"]["mode"] == "absolute"


def test_the_request_page_says_the_relative_tolerance_in_words(prices, owner, reviewer, client_for):
    _set(prices.risk_tier, metric_tolerance=0.02, metric_tolerance_mode="relative")
    req = _request(prices, {"rmse": 57.5}, owner)
    html = client_for(reviewer).get(req.get_absolute_url()).content.decode()
    assert (
        'tolerance <span data-tolerance="0.02" data-tolerance-mode="relative">'
        "2 % of production&#x27;s 57 = 1.14</span>" in html
    )


def test_the_request_page_still_states_an_absolute_tolerance_as_a_number(prices, owner, reviewer, client_for):
    _set(prices.risk_tier, metric_tolerance=0.5)
    req = _request(prices, {"rmse": 57.4}, owner)
    html = client_for(reviewer).get(req.get_absolute_url()).content.decode()
    assert 'tolerance <span data-tolerance="0.5">0.5</span>' in html


def test_the_api_shows_the_reading_in_the_snapshot_and_the_metric_gate(prices, owner, reviewer, api_client_for):
    _set(prices.risk_tier, metric_tolerance=0.02, metric_tolerance_mode="relative")
    req = _request(prices, {"rmse": 57.5}, owner)
    body = api_client_for(reviewer).get(f"/api/v1/promotions/{req.pk}/").json()
    assert body["policy_snapshot"]["metric_tolerance_mode"] == "relative"
    gate = next(g for g in body["gates"] if g["key"] == "metric")
    assert gate["tolerance"] == {"value": 0.02, "mode": "relative", "allowed": pytest.approx(1.14)}


def test_the_api_states_absolute_for_a_snapshot_from_before_the_reading_existed(
    prices, owner, reviewer, api_client_for
):
    req = _request(prices, {"rmse": 57.0}, owner)
    old = {k: v for k, v in req.policy_snapshot.items() if k != "metric_tolerance_mode"}
    type(req).objects.filter(pk=req.pk).update(policy_snapshot=old)
    body = api_client_for(reviewer).get(f"/api/v1/promotions/{req.pk}/").json()
    assert body["policy_snapshot"]["metric_tolerance_mode"] == "absolute"


def test_admin_changes_the_reading_and_the_change_is_audited(admin_user, last_seq, audit_actions):
    policy = PromotionPolicy.objects.get(risk_tier=RiskTier.MEDIUM)
    seq = last_seq()
    policy_update(
        policy=policy,
        actor=admin_user,
        changes={"metric_tolerance_mode": "relative", "metric_tolerance": 0.02},
        context=CLI,
    )
    policy.refresh_from_db()
    assert (policy.metric_tolerance_mode, policy.metric_tolerance) == ("relative", 0.02)
    assert policy_snapshot(policy_for_tier(RiskTier.MEDIUM))["metric_tolerance_mode"] == "relative"
    assert audit_actions(seq) == ["policy.updated"]
    event = AuditEvent.objects.get(seq=seq + 1)
    assert event.before == {"metric_tolerance_mode": "absolute", "metric_tolerance": 0.01}
    assert event.after == {"metric_tolerance_mode": "relative", "metric_tolerance": 0.02, "risk_tier": "medium"}


def test_an_unknown_reading_is_refused(admin_user, last_seq):
    policy = PromotionPolicy.objects.get(risk_tier=RiskTier.MEDIUM)
    seq = last_seq()
    with pytest.raises(ValidationError):
        policy_update(policy=policy, actor=admin_user, changes={"metric_tolerance_mode": "percent"}, context=CLI)
    assert last_seq() == seq
    assert PromotionPolicy.objects.get(pk=policy.pk).metric_tolerance_mode == "absolute"


def test_the_policy_admin_edits_the_reading_through_the_audited_service(
    admin_user, client_for, last_seq, audit_actions
):
    policy = PromotionPolicy.objects.get(risk_tier=RiskTier.MEDIUM)
    client = client_for(admin_user)
    url = f"/admin/registry/promotionpolicy/{policy.pk}/change/"
    assert 'name="metric_tolerance_mode"' in client.get(url).content.decode()
    seq = last_seq()
    response = client.post(url, policy_admin_form(metric_tolerance_mode="relative"))
    assert response.status_code == 302, response.content.decode()[:2000]
    policy.refresh_from_db()
    assert (policy.metric_tolerance_mode, policy.metric_tolerance) == ("relative", 0.02)
    assert audit_actions(seq) == ["policy.updated"]
    event = AuditEvent.objects.get(seq=seq + 1)
    assert (event.source, event.before, event.after["metric_tolerance_mode"]) == (
        "ui",
        {"metric_tolerance_mode": "absolute", "metric_tolerance": 0.01},
        "relative",
    )


@pytest.mark.parametrize("role", ["auditor", "outsider"])
def test_an_auditor_or_outsider_cannot_change_the_reading(roles, role, client_for, last_seq, audit_actions):
    policy = PromotionPolicy.objects.get(risk_tier=RiskTier.MEDIUM)
    client = client_for(roles[role])
    seq = last_seq()
    with pytest.raises(PermissionDenied):
        policy_update(policy=policy, actor=roles[role], changes={"metric_tolerance_mode": "relative"}, context=CLI)
    response = client.post(
        f"/admin/registry/promotionpolicy/{policy.pk}/change/", policy_admin_form(metric_tolerance_mode="relative")
    )
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    policy.refresh_from_db()
    assert policy.metric_tolerance_mode == "absolute"
    assert audit_actions(seq) == []
