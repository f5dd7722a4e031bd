"""A model's risk tier sets the approvals a promotion needs, the fairness gate and the retention
floor: only an admin changes it (audited before/after), never the owner it binds; a model
becomes high risk only if its saved retention already meets the floor."""

import json

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from monitoring.models import RetentionPolicy
from monitoring.services.retention import effective_raw_days, retention_policy_get
from registry.choices import RiskTier
from registry.models import AuditEvent
from registry.services.audit import CLI
from registry.services.inventory import model_update
from tests.factories import RegisteredModelFactory


@pytest.fixture
def credit(owner, team):
    return RegisteredModelFactory(name="credit-approval", owner=owner, team=team, risk_tier=RiskTier.HIGH)


def _form(model, **overrides):
    body = {
        "team": model.team.slug,
        "risk_tier": model.risk_tier,
        "description": model.description,
        "intended_use": model.intended_use,
        "limitations": model.limitations,
        "primary_metric": model.primary_metric,
        "primary_metric_higher_is_better": "on",
        "tags": "",
    }
    return body | overrides


@pytest.mark.parametrize("tier", [RiskTier.LOW, RiskTier.MEDIUM])
def test_the_owner_cannot_lower_the_risk_tier(owner, credit, tier, last_seq):
    start = last_seq()
    with pytest.raises(PermissionDenied, match="Only an administrator may change a model's risk tier"):
        model_update(model=credit, actor=owner, context=CLI, changes={"risk_tier": tier, "limitations": "x"})
    credit.refresh_from_db()
    assert credit.risk_tier == RiskTier.HIGH and credit.limitations == "Not for use on minors." and last_seq() == start


def test_the_owner_cannot_raise_it_either_but_may_resend_it_unchanged(owner, churn, last_seq):
    with pytest.raises(PermissionDenied):
        model_update(model=churn, actor=owner, context=CLI, changes={"risk_tier": RiskTier.HIGH})
    model_update(model=churn, actor=owner, context=CLI, changes={"risk_tier": churn.risk_tier, "limitations": "EU"})
    churn.refresh_from_db()
    assert churn.risk_tier == RiskTier.MEDIUM and churn.limitations == "EU"


def test_api_patch_of_the_risk_tier_by_the_owner_is_a_403_naming_why(owner, credit, api_client_for, last_seq):
    client = api_client_for(owner)
    start = last_seq()
    response = client.patch(
        "/api/v1/models/credit-approval/", data=json.dumps({"risk_tier": "low"}), content_type="application/json"
    )
    assert response.status_code == 403, response.content
    error = response.json()["error"]
    assert error["code"] == "permission_denied" and "administrator" in error["message"]
    assert "risk tier" in error["message"]
    credit.refresh_from_db()
    assert credit.risk_tier == RiskTier.HIGH and last_seq() == start


def test_the_edit_page_shows_the_owner_a_form_error_on_the_risk_tier(owner, credit, client_for, last_seq):
    client = client_for(owner)
    url = reverse("registry:model_edit", args=["credit-approval"])
    assert "Only an administrator" in client.get(url).content.decode()
    start = last_seq()
    response = client.post(url, _form(credit, risk_tier="low", limitations="EU only."))
    assert response.status_code == 403
    assert "Only an administrator may change" in " ".join(response.context["form"].errors["risk_tier"])
    credit.refresh_from_db()
    assert credit.risk_tier == RiskTier.HIGH and credit.limitations == "Not for use on minors." and last_seq() == start
    kept = client.post(url, _form(credit, limitations="EU only."))
    assert kept.status_code == 302


def test_an_admin_lowers_the_tier_audited_and_the_stored_days_stay(admin_user, credit, last_seq):
    RetentionPolicy.objects.create(model=credit, raw_days=200)
    start = last_seq()
    model_update(model=credit, actor=admin_user, context=CLI, changes={"risk_tier": RiskTier.LOW})
    event = AuditEvent.objects.get(seq__gt=start)
    assert event.action == "model.updated" and event.actor_id == admin_user.pk
    assert event.before == {"risk_tier": "high"} and event.after == {"risk_tier": "low"}
    credit.refresh_from_db()
    assert effective_raw_days(retention_policy_get(model=credit)) == 200


def test_an_admin_cannot_make_a_model_high_risk_while_its_retention_is_below_the_floor(admin_user, churn, last_seq):
    RetentionPolicy.objects.create(model=churn, raw_days=30)
    start = last_seq()
    with pytest.raises(ValidationError) as err:
        model_update(model=churn, actor=admin_user, context=CLI, changes={"risk_tier": RiskTier.HIGH})
    message = err.value.message_dict["risk_tier"][0]
    assert "183 days" in message and "keeps 30" in message
    churn.refresh_from_db()
    assert churn.risk_tier == RiskTier.MEDIUM and last_seq() == start


def test_over_the_api_the_floor_refusal_is_a_400_on_the_risk_tier(admin_user, churn, api_client_for):
    RetentionPolicy.objects.create(model=churn, raw_days=90)
    response = api_client_for(admin_user).patch(
        "/api/v1/models/churn/", data=json.dumps({"risk_tier": "high"}), content_type="application/json"
    )
    assert response.status_code == 400, response.content
    assert "183" in response.json()["error"]["details"]["risk_tier"][0]


def test_an_admin_makes_a_model_high_risk_when_its_retention_meets_the_floor(admin_user, churn, team, last_seq):
    RetentionPolicy.objects.create(model=churn, raw_days=183)
    model_update(model=churn, actor=admin_user, context=CLI, changes={"risk_tier": RiskTier.HIGH})
    other = RegisteredModelFactory(name="no-policy", team=team)  # no saved policy: the tier's default applies
    model_update(model=other, actor=admin_user, context=CLI, changes={"risk_tier": RiskTier.HIGH})
    assert retention_policy_get(model=other).raw_days is None  # follows the tier: now the high tier's default
    assert effective_raw_days(retention_policy_get(model=other)) >= 183
