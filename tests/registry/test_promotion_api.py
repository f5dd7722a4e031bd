"""API: /api/v1/promotions/ and its actions, for every role, with the shared error format."""

import pytest

from registry.choices import PromotionStatus, Stage, TokenScope
from registry.models import AuditEvent, PromotionRequest
from registry.services.audit import CLI
from registry.services.promotions import promotion_request
from tests.factories import ModelVersionFactory

LIST = "/api/v1/promotions/"


def _open(version, requester, target=Stage.PRODUCTION):
    return promotion_request(
        version=version, target_stage=target, requester=requester, justification="Ship it.", context=CLI
    )


def _error(response):
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]


def test_owner_requests_a_promotion_over_the_api(churn_v1, owner, api_client_for, last_seq, audit_actions):
    client = api_client_for(owner, [TokenScope.PROMOTIONS_REQUEST])
    seq = last_seq()
    response = client.post(
        LIST,
        {"model": "churn", "version": 1, "target_stage": "production", "justification": "AUC +0.02"},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["model"], body["version"], body["status"], body["approvals_required"]) == (
        "churn",
        1,
        "pending",
        1,
    )
    gates = {
        "model_card",
        "lineage",
        "metric",
        "reference_data",
        "monitoring",
        "fairness",
        "live",
        "llm_safety",
        "llm_quality",
    }
    assert {g["key"] for g in body["gates"]} == gates
    assert audit_actions(seq) == ["promotion.requested"]
    assert AuditEvent.objects.get(seq=seq + 1).source == "api"


def test_reviewer_approves_over_the_api_and_the_version_goes_to_production(
    churn_v1, owner, reviewer, api_client_for, last_seq, audit_actions
):
    req = _open(churn_v1, owner)
    client = api_client_for(reviewer, [TokenScope.PROMOTIONS_REVIEW])
    seq = last_seq()
    response = client.post(f"{LIST}{req.pk}/approve/", {"comment": "Evidence reviewed."}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "applied"
    assert response.json()["reviews"][0]["comment"] == "Evidence reviewed."
    churn_v1.refresh_from_db()
    assert churn_v1.stage == Stage.PRODUCTION
    assert audit_actions(seq) == ["promotion.approved", "stage.changed", "promotion.applied"]


def test_self_approval_over_the_api_is_refused_with_a_clear_message(churn_v1, admin_user, api_client_for):
    req = _open(churn_v1, admin_user)
    response = api_client_for(admin_user).post(f"{LIST}{req.pk}/approve/", {"comment": "mine"}, format="json")
    assert response.status_code == 403
    error = _error(response)
    assert error["code"] == "permission_denied"
    assert "you cannot review it" in error["message"]
    assert PromotionRequest.objects.get(pk=req.pk).status == PromotionStatus.PENDING


def test_approving_a_request_that_is_not_pending_is_a_conflict(churn_v1, owner, reviewer, api_client_for):
    req = _open(churn_v1, owner)
    client = api_client_for(reviewer)
    assert client.post(f"{LIST}{req.pk}/reject/", {"comment": "No."}, format="json").status_code == 200
    response = client.post(f"{LIST}{req.pk}/approve/", {}, format="json")
    assert response.status_code == 409
    assert "not pending" in _error(response)["message"]


def test_red_gates_are_a_conflict_naming_the_gates(churn, owner, reviewer, api_client_for, last_seq, audit_actions):
    ModelVersionFactory(model=churn, stage=Stage.PRODUCTION, metrics={"roc_auc": 0.9})
    worse = ModelVersionFactory(model=churn, metrics={"roc_auc": 0.7}, source_commit="")
    req = _open(worse, owner)
    client = api_client_for(reviewer)
    seq = last_seq()
    response = client.post(f"{LIST}{req.pk}/approve/", {"comment": "ok"}, format="json")
    assert response.status_code == 409
    error = _error(response)
    assert "Lineage present" in error["message"] and "Offline primary metric" in error["message"]
    assert {g["key"] for g in error["details"]["gates"]} == {"lineage", "metric"}
    assert audit_actions(seq) == []


def test_admin_overrides_red_gates_over_the_api(churn, owner, admin_user, api_client_for):
    ModelVersionFactory(model=churn, stage=Stage.PRODUCTION, metrics={"roc_auc": 0.9})
    worse = ModelVersionFactory(model=churn, metrics={"roc_auc": 0.7})
    req = _open(worse, owner)
    response = api_client_for(admin_user).post(
        f"{LIST}{req.pk}/approve/", {"comment": "", "override_reason": "Incident fix"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["override_reason"] == "Incident fix"
    assert response.json()["overridden_by"] == "admin"


def test_requester_cancels_over_the_api(churn_v1, owner, reviewer, api_client_for, last_seq, audit_actions):
    req = _open(churn_v1, owner)
    assert api_client_for(reviewer).post(f"{LIST}{req.pk}/cancel/", {}, format="json").status_code == 403
    client = api_client_for(owner)
    seq = last_seq()
    response = client.post(f"{LIST}{req.pk}/cancel/", {"comment": "oops"}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert audit_actions(seq) == ["promotion.cancelled"]


def test_list_filters_by_status_and_model(churn, owner, reviewer, api_client_for):
    from tests.factories import RegisteredModelFactory

    other = RegisteredModelFactory(name="fraud", owner=owner, team=churn.team)
    a = _open(ModelVersionFactory(model=churn), owner)
    b = _open(ModelVersionFactory(model=other), owner)
    promotion_request(
        version=ModelVersionFactory(model=churn),
        target_stage="staging",
        requester=owner,
        justification="x",
        context=CLI,
    )
    client = api_client_for(reviewer, [TokenScope.PROMOTIONS_REVIEW])
    ids = [r["id"] for r in client.get(LIST, {"model": "fraud"}).json()["results"]]
    assert ids == [b.pk]
    ids = {r["id"] for r in client.get(LIST, {"status": "pending", "target_stage": "production"}).json()["results"]}
    assert ids == {a.pk, b.pk}
    assert client.get(LIST, {"status": "applied"}).json()["count"] == 0


def test_invalid_filter_is_a_400(churn_v1, reviewer, api_client_for):
    response = api_client_for(reviewer).get(LIST, {"status": "bogus"})
    assert response.status_code == 400
    assert "status" in _error(response)["details"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"model": "churn", "version": 1, "target_stage": "production"},
        {"model": "churn", "version": 1, "target_stage": "nowhere", "justification": "x"},
        {"model": "churn", "version": "one", "target_stage": "production", "justification": "x"},
        {"model": "churn", "version": -1, "target_stage": "production", "justification": "x"},
        {"model": "churn", "version": 1, "target_stage": "production", "justification": "   "},
        {"model": "churn", "version": 1, "target_stage": "production", "justification": "x" * 10_001},
        [1, 2, 3],
    ],
)
def test_bad_promotion_requests_are_400_and_write_nothing(churn_v1, owner, api_client_for, body, last_seq):
    client = api_client_for(owner)
    seq = last_seq()
    response = client.post(LIST, body, format="json")
    assert response.status_code == 400, response.content
    assert _error(response)["code"] == "invalid"
    assert not PromotionRequest.objects.exists()
    assert last_seq() == seq


def test_malformed_json_is_a_400(churn_v1, owner, api_client_for):
    response = api_client_for(owner).post(LIST, data="{not json", content_type="application/json")
    assert response.status_code == 400
    _error(response)


def test_unknown_model_or_version_is_404(churn_v1, owner, api_client_for):
    client = api_client_for(owner)
    body = {"model": "nope", "version": 1, "target_stage": "production", "justification": "x"}
    assert client.post(LIST, body, format="json").status_code == 404
    body["model"], body["version"] = "churn", 99
    response = client.post(LIST, body, format="json")
    assert response.status_code == 404
    assert "no version 99" in _error(response)["message"]


def test_second_request_for_the_same_version_is_a_conflict(churn_v1, owner, api_client_for):
    _open(churn_v1, owner, target=Stage.STAGING)
    body = {"model": "churn", "version": 1, "target_stage": "production", "justification": "x"}
    response = api_client_for(owner).post(LIST, body, format="json")
    assert response.status_code == 409
    assert "pending_request" in _error(response)["details"]


def test_rejecting_without_a_comment_is_a_400(churn_v1, owner, reviewer, api_client_for):
    req = _open(churn_v1, owner)
    response = api_client_for(reviewer).post(f"{LIST}{req.pk}/reject/", {"comment": ""}, format="json")
    assert response.status_code == 400
    assert "comment" in _error(response)["details"]
    assert PromotionRequest.objects.get(pk=req.pk).status == PromotionStatus.PENDING


def test_token_without_the_review_scope_cannot_approve(churn_v1, owner, reviewer, api_client_for):
    req = _open(churn_v1, owner)
    response = api_client_for(reviewer, [TokenScope.MODELS_READ, TokenScope.PROMOTIONS_REQUEST]).post(
        f"{LIST}{req.pk}/approve/", {}, format="json"
    )
    assert response.status_code == 403
    assert "promotions:review" in _error(response)["message"]


def test_token_without_the_request_scope_cannot_request(churn_v1, owner, api_client_for):
    body = {"model": "churn", "version": 1, "target_stage": "production", "justification": "x"}
    response = api_client_for(owner, [TokenScope.MODELS_READ]).post(LIST, body, format="json")
    assert response.status_code == 403
    assert "promotions:request" in _error(response)["message"]


def test_token_with_an_unrelated_scope_cannot_list(churn_v1, owner, api_client_for):
    assert api_client_for(owner, [TokenScope.INCIDENTS_WRITE]).get(LIST).status_code == 403


def test_anonymous_requests_are_401(churn_v1):
    from rest_framework.test import APIClient

    response = APIClient().get(LIST)
    assert response.status_code in (401, 403)
    _error(response)


@pytest.mark.parametrize(
    ("role", "sees", "approve", "reject", "cancel"),
    [
        ("owner", True, 403, 403, 200),
        ("reviewer", True, 200, 200, 403),
        ("auditor", True, 403, 403, 403),
        ("outsider", False, 403, 403, 403),  # its token holds no promotions scope
    ],
)
def test_every_role_on_the_promotion_endpoints(
    churn, owner, roles, api_client_for, role, sees, approve, reject, cancel
):
    client = api_client_for(roles[role])
    reqs = [_open(ModelVersionFactory(model=churn), owner) for _ in range(3)]
    listed = [r["id"] for r in client.get(LIST).json()["results"]]
    assert bool(listed) is sees
    assert client.get(f"{LIST}{reqs[0].pk}/").status_code == (200 if sees else 404)
    assert client.post(f"{LIST}{reqs[0].pk}/approve/", {"comment": "c"}, format="json").status_code == approve
    assert client.post(f"{LIST}{reqs[1].pk}/reject/", {"comment": "c"}, format="json").status_code == reject
    assert client.post(f"{LIST}{reqs[2].pk}/cancel/", {"comment": "c"}, format="json").status_code == cancel
    body = {"model": "churn", "version": 1, "target_stage": "staging", "justification": "x"}
    created = client.post(LIST, body, format="json").status_code
    assert created == {"owner": 409, "reviewer": 403, "auditor": 403, "outsider": 403}[role]


def test_unknown_request_is_404(reviewer, api_client_for, db):
    response = api_client_for(reviewer).post(f"{LIST}999999/approve/", {}, format="json")
    assert response.status_code == 404
    _error(response)


@pytest.mark.parametrize("action", ["create", "approve", "reject", "cancel", "rollback"])
def test_promotion_review_and_rollback_bodies_are_limited_and_strict(
    churn_v1, owner, admin_user, api_client_for, action
):
    """The 1 MiB body limit and the unknown-field refusal hold on every lifecycle endpoint."""
    req = _open(churn_v1, owner)
    url, body = {
        "create": (LIST, {"model": "churn", "version": 1, "target_stage": "staging", "justification": "x"}),
        "approve": (f"{LIST}{req.pk}/approve/", {"comment": "ok"}),
        "reject": (f"{LIST}{req.pk}/reject/", {"comment": "no"}),
        "cancel": (f"{LIST}{req.pk}/cancel/", {"comment": "stop"}),
        "rollback": ("/api/v1/models/churn/rollback/", {"reason": "drift"}),
    }[action]
    client = api_client_for(admin_user)
    huge = client.post(url, {**body, "padding": "x" * (30 * 1024 * 1024)}, format="json")
    assert huge.status_code == 413
    assert _error(huge)["code"] == "payload_too_large"
    unknown = client.post(url, {**body, "surprise": 1}, format="json")
    assert unknown.status_code == 400
    assert _error(unknown)["details"] == {"surprise": ["Unknown field."]}
    wrong_type = client.post(url, {**body, next(iter(body)): 7}, format="json")
    assert wrong_type.status_code == 400
    assert PromotionRequest.objects.get(pk=req.pk).status == PromotionStatus.PENDING
    assert PromotionRequest.objects.count() == 1


def test_requesting_the_stage_a_version_is_already_in_is_a_conflict(churn, owner, api_client_for):
    ModelVersionFactory(model=churn, stage=Stage.STAGING)
    body = {"model": "churn", "version": 1, "target_stage": "staging", "justification": "again"}
    response = api_client_for(owner).post(LIST, body, format="json")
    assert response.status_code == 409
    assert "already in staging" in _error(response)["message"]
    assert not PromotionRequest.objects.exists()
