"""The model's primary metric and its direction decide the metric gate and the better/worse
colours of a pending request's page: they cannot change while a request is pending, or an owner
could turn a red gate green (say "log_loss, higher is better") under the reviewer's eyes."""

from __future__ import annotations

import pytest

from registry.choices import Stage
from registry.models import AuditEvent
from registry.selectors.promotions import promotion_gates
from registry.services.audit import CLI
from registry.services.inventory import model_update
from registry.services.promotions import promotion_cancel, promotion_request
from registry.services.stages import PromotionConflict
from tests.factories import ModelVersionFactory
from tests.registry.test_api_inventory import assert_error, post_json
from tests.registry.test_edit_feedback import _Fields

pytestmark = pytest.mark.django_db


@pytest.fixture
def pending(churn, owner):
    """churn v2 (worse ROC AUC than production v1, better on nothing) asked for production."""
    ModelVersionFactory(model=churn, stage=Stage.PRODUCTION, metrics={"roc_auc": 0.85, "log_loss": 0.40})
    candidate = ModelVersionFactory(model=churn, metrics={"roc_auc": 0.80, "log_loss": 0.45})
    return promotion_request(
        version=candidate, target_stage=Stage.PRODUCTION, requester=owner, justification="Retrained.", context=CLI
    )


def _metric_gate(req):
    return next(g for g in promotion_gates(req) if g["key"] == "metric")


@pytest.mark.parametrize(
    "changes, changed",
    [
        ({"primary_metric": "log_loss", "primary_metric_higher_is_better": True}, ["primary_metric"]),
        ({"primary_metric_higher_is_better": False}, ["primary_metric_higher_is_better"]),
        (
            {"primary_metric": "log_loss", "primary_metric_higher_is_better": False},
            ["primary_metric", "primary_metric_higher_is_better"],
        ),
    ],
)
def test_the_primary_metric_cannot_change_while_a_request_is_pending(owner, churn, pending, changes, changed, last_seq):
    assert _metric_gate(pending)["status"] == "fail"
    start = last_seq()
    with pytest.raises(PromotionConflict) as err:
        model_update(model=churn, actor=owner, context=CLI, changes=changes)
    assert f"#{pending.pk}" in err.value.message
    assert err.value.details == {"pending_request": pending.pk, "fields": changed}
    churn.refresh_from_db()
    assert (churn.primary_metric, churn.primary_metric_higher_is_better) == ("roc_auc", True)
    assert last_seq() == start and _metric_gate(pending)["status"] == "fail"


def test_an_admin_cannot_change_it_either_but_other_card_fields_stay_editable(admin_user, churn, pending):
    with pytest.raises(PromotionConflict):
        model_update(model=churn, actor=admin_user, context=CLI, changes={"primary_metric": "log_loss"})
    model_update(
        model=churn, actor=admin_user, context=CLI, changes={"primary_metric": "roc_auc", "description": "Churn."}
    )
    churn.refresh_from_db()
    assert churn.description == "Churn." and churn.primary_metric == "roc_auc"


def test_once_the_request_is_cancelled_the_primary_metric_can_change(owner, churn, pending):
    promotion_cancel(request=pending, actor=owner, context=CLI)
    model_update(model=churn, actor=owner, context=CLI, changes={"primary_metric": "log_loss"})
    churn.refresh_from_db()
    assert churn.primary_metric == "log_loss"
    assert AuditEvent.objects.filter(action="model.updated").exists()


def test_the_api_answers_409_naming_the_request(owner, churn, pending, api_client_for, last_seq):
    client = api_client_for(owner)
    start = last_seq()
    body = {"primary_metric_higher_is_better": False}
    response = post_json(client, f"/api/v1/models/{churn.name}/", body, method="patch")
    error = assert_error(response, 409)
    assert error["code"] == "conflict" and f"#{pending.pk}" in error["message"]
    assert error["details"] == {"pending_request": pending.pk, "fields": ["primary_metric_higher_is_better"]}
    assert last_seq() == start


def test_the_edit_page_shows_the_refusal(owner, churn, pending, client_for, last_seq):
    client = client_for(owner)
    url = f"/models/{churn.name}/edit/"
    parser = _Fields()
    parser.feed(client.get(url).content.decode())
    start = last_seq()
    response = client.post(url, {**parser.data, "primary_metric": "log_loss"})
    assert response.status_code == 409
    assert f"#{pending.pk}" in response.content.decode()
    churn.refresh_from_db()
    assert churn.primary_metric == "roc_auc" and last_seq() == start


def test_the_risk_tier_cannot_change_under_a_pending_request_either(admin_user, churn, pending, last_seq):
    """The request is judged by the policy of the tier it was opened under (approvals, fairness gate):
    raised to high meanwhile, it would still pass with one approval and no fairness gate."""
    start = last_seq()
    with pytest.raises(PromotionConflict) as err:
        model_update(model=churn, actor=admin_user, context=CLI, changes={"risk_tier": "high"})
    assert f"#{pending.pk}" in err.value.message and err.value.details["fields"] == ["risk_tier"]
    churn.refresh_from_db()
    assert churn.risk_tier != "high" and last_seq() == start
    promotion_cancel(request=pending, actor=admin_user, context=CLI)
    model_update(model=churn, actor=admin_user, context=CLI, changes={"risk_tier": "high"})
    churn.refresh_from_db()
    assert churn.risk_tier == "high"
