"""A version's evidence (metrics, lineage, artifact, reference data) is frozen for good once a
promotion request for it was approved: the report and the request page show it as approved."""

import json

import pytest
from django.urls import reverse

from registry.choices import Stage
from registry.models import AuditEvent
from registry.services.audit import CLI
from registry.services.inventory import version_update
from registry.services.promotions import promotion_approve, promotion_request
from registry.services.stages import PromotionConflict

APPROVED_METRICS = {"roc_auc": 0.85, "accuracy": 0.8}


@pytest.fixture
def approved(churn_v1, owner, reviewer):
    """churn v1, approved to production by a reviewer (its request is returned)."""
    req = promotion_request(
        version=churn_v1, target_stage=Stage.PRODUCTION, requester=owner, justification="Ship it.", context=CLI
    )
    promotion_approve(request=req, reviewer=reviewer, comment="Evidence is solid.", context=CLI)
    churn_v1.refresh_from_db()
    assert churn_v1.stage == Stage.PRODUCTION
    return req


@pytest.mark.parametrize(
    "changes",
    [
        {"metrics": {"roc_auc": 0.99}},
        {"source_commit": "f" * 40, "training_data_ref": "s3://other"},
        {"training_data_hash": "0" * 64},
        {"training_run_id": "run-other"},
        {"artifact_uri": "s3://models/other.pkl"},
    ],
)
def test_the_evidence_of_an_approved_version_cannot_be_rewritten(owner, churn_v1, approved, changes, last_seq):
    start = last_seq()
    with pytest.raises(PromotionConflict) as err:
        version_update(version=churn_v1, actor=owner, context=CLI, changes=changes)
    assert f"#{approved.pk}" in err.value.message and "approved" in err.value.message
    assert err.value.details == {"approved_request": approved.pk, "fields": list(changes)}
    churn_v1.refresh_from_db()
    assert churn_v1.metrics == APPROVED_METRICS and last_seq() == start


def test_an_admin_cannot_rewrite_approved_evidence_either(admin_user, churn_v1, approved):
    with pytest.raises(PromotionConflict, match=f"#{approved.pk}"):
        version_update(version=churn_v1, actor=admin_user, context=CLI, changes={"metrics": {"roc_auc": 0.99}})


def test_the_description_of_an_approved_version_stays_editable(owner, churn_v1, approved, last_seq):
    start = last_seq()
    version_update(version=churn_v1, actor=owner, context=CLI, changes={"description": "Now serving."})
    event = AuditEvent.objects.get(seq__gt=start)
    assert event.action == "version.updated" and event.after == {"description": "Now serving."}


def test_the_evidence_stays_frozen_after_the_version_leaves_production(owner, churn, churn_v1, approved, reviewer):
    from tests.factories import ModelVersionFactory

    v2 = ModelVersionFactory(model=churn)
    req = promotion_request(
        version=v2, target_stage=Stage.PRODUCTION, requester=owner, justification="Better.", context=CLI
    )
    promotion_approve(request=req, reviewer=reviewer, comment="ok", context=CLI)
    churn_v1.refresh_from_db()
    assert churn_v1.stage == Stage.ARCHIVED
    with pytest.raises(PromotionConflict, match=f"#{approved.pk}"):
        version_update(version=churn_v1, actor=owner, context=CLI, changes={"metrics": {"roc_auc": 0.99}})


def test_api_patch_of_approved_metrics_is_a_409_naming_the_request(owner, churn_v1, approved, api_client_for):
    client = api_client_for(owner)
    url = "/api/v1/models/churn/versions/1/"
    response = client.patch(url, data=json.dumps({"metrics": {"roc_auc": 0.99}}), content_type="application/json")
    assert response.status_code == 409, response.content
    error = response.json()["error"]
    assert error["code"] == "conflict" and f"#{approved.pk}" in error["message"]
    assert error["details"] == {"approved_request": approved.pk, "fields": ["metrics"]}
    lineage = {"source_commit": "ffff", "training_data_ref": "s3://other"}
    assert client.patch(url, data=json.dumps(lineage), content_type="application/json").status_code == 409
    described = client.patch(url, data=json.dumps({"description": "Live."}), content_type="application/json")
    assert described.status_code == 200 and described.json()["description"] == "Live."
    assert described.json()["metrics"] == APPROVED_METRICS


def test_edit_form_refuses_new_metrics_of_an_approved_version(owner, churn_v1, approved, client_for, last_seq):
    client = client_for(owner)
    start = last_seq()
    response = client.post(
        reverse("registry:version_edit", args=["churn", 1]),
        {"description": "tuned", "source_commit": churn_v1.source_commit, "metrics": '{"roc_auc": 0.99}'},
    )
    assert response.status_code == 409
    assert f"#{approved.pk}" in " ".join(response.context["form"].non_field_errors())
    churn_v1.refresh_from_db()
    assert churn_v1.metrics == APPROVED_METRICS and churn_v1.description == "" and last_seq() == start
