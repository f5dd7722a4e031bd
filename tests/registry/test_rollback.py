"""Rollback: restores the most recent previously-approved production version, audited and flagged."""

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError

from registry.choices import Stage
from registry.models import AuditEvent, ModelVersion, StageTransition
from registry.services.audit import CLI
from registry.services.promotions import PromotionConflict, promotion_approve, promotion_request
from registry.services.stages import model_rollback
from tests.factories import ModelVersionFactory


def _promote(version, owner, reviewer):
    req = promotion_request(
        version=version, target_stage=Stage.PRODUCTION, requester=owner, justification="better", context=CLI
    )
    promotion_approve(request=req, reviewer=reviewer, comment="", context=CLI)
    return req


def _stages(model):
    return dict(ModelVersion.objects.filter(model=model).values_list("version", "stage"))


@pytest.fixture
def three_promotions(churn, owner, reviewer):
    versions = [ModelVersionFactory(model=churn) for _ in range(3)]
    for v in versions:
        _promote(v, owner, reviewer)
    return versions


def test_rollback_restores_the_previous_production_version(
    churn, owner, three_promotions, last_seq, audit_actions, django_capture_on_commit_callbacks
):
    seq = last_seq()
    with django_capture_on_commit_callbacks(execute=True):
        restored = model_rollback(model=churn, actor=owner, reason="Latency doubled after v3.", context=CLI)
    assert _stages(churn) == {1: "archived", 2: "production", 3: "archived"}
    assert restored.version.version == 2
    assert (restored.kind, restored.needs_follow_up, restored.reason) == ("rollback", True, "Latency doubled after v3.")
    archived = StageTransition.objects.get(version__version=3, kind="rollback")
    assert (archived.from_stage, archived.to_stage, archived.needs_follow_up) == ("production", "archived", True)
    assert audit_actions(seq) == ["stage.changed", "stage.changed", "rollback"]
    event = AuditEvent.objects.get(seq=seq + 3)
    assert event.before == {"production_version": 3}
    assert event.after["production_version"] == 2 and event.after["needs_follow_up"] is True
    assert any("Rollback" in m.subject for m in mail.outbox)


def test_a_second_rollback_goes_further_back_not_forward_again(churn, owner, three_promotions):
    model_rollback(model=churn, actor=owner, reason="v3 broke", context=CLI)
    model_rollback(model=churn, actor=owner, reason="v2 also broke", context=CLI)
    assert _stages(churn) == {1: "production", 2: "archived", 3: "archived"}
    with pytest.raises(PromotionConflict, match="no previously approved"):
        model_rollback(model=churn, actor=owner, reason="again", context=CLI)


def test_a_version_rolled_back_away_from_and_approved_again_is_restored(churn, owner, reviewer):
    v1, v2, v3 = (ModelVersionFactory(model=churn) for _ in range(3))
    _promote(v1, owner, reviewer)
    _promote(v2, owner, reviewer)
    model_rollback(model=churn, actor=owner, reason="v2 drifted", context=CLI)
    _promote(v2, owner, reviewer)  # fixed, re-approved by a new request, in production until v3
    _promote(v3, owner, reviewer)
    restored = model_rollback(model=churn, actor=owner, reason="v3 regressed", context=CLI)
    assert restored.version.version == 2
    assert _stages(churn) == {1: "archived", 2: "production", 3: "archived"}


def test_rollback_skips_a_version_rolled_back_away_from_since_its_approval(churn, owner, reviewer):
    v1, v2, v3 = (ModelVersionFactory(model=churn) for _ in range(3))
    _promote(v1, owner, reviewer)
    _promote(v2, owner, reviewer)
    model_rollback(model=churn, actor=owner, reason="v2 drifted", context=CLI)
    _promote(v3, owner, reviewer)
    model_rollback(model=churn, actor=owner, reason="v3 regressed", context=CLI)
    assert _stages(churn) == {1: "production", 2: "archived", 3: "archived"}


def test_rollback_skips_versions_that_never_went_through_an_approved_promotion(churn, owner, reviewer):
    v1 = ModelVersionFactory(model=churn)
    _promote(v1, owner, reviewer)
    ModelVersionFactory(model=churn, stage=Stage.ARCHIVED)  # archived but never approved for production
    v3 = ModelVersionFactory(model=churn)
    _promote(v3, owner, reviewer)
    model_rollback(model=churn, actor=owner, reason="v3 regressed", context=CLI)
    assert _stages(churn) == {1: "production", 2: "archived", 3: "archived"}


def test_rollback_without_a_production_version_is_a_conflict(churn_v1, owner, last_seq):
    seq = last_seq()
    with pytest.raises(PromotionConflict, match="no production version"):
        model_rollback(model=churn_v1.model, actor=owner, reason="x", context=CLI)
    assert last_seq() == seq


def test_rollback_with_only_one_approved_version_is_a_conflict(churn, owner, reviewer):
    _promote(ModelVersionFactory(model=churn), owner, reviewer)
    with pytest.raises(PromotionConflict):
        model_rollback(model=churn, actor=owner, reason="x", context=CLI)
    assert _stages(churn) == {1: "production"}


@pytest.mark.parametrize("reason", ["", "   ", None, "x" * 10_001])
def test_rollback_needs_a_reason(churn, owner, three_promotions, reason):
    with pytest.raises(ValidationError):
        model_rollback(model=churn, actor=owner, reason=reason, context=CLI)
    assert _stages(churn)[3] == "production"


@pytest.mark.parametrize(
    ("role", "allowed"), [("reviewer", True), ("admin", True), ("auditor", False), ("outsider", False)]
)
def test_who_may_roll_back(churn, owner, roles, three_promotions, role, allowed):
    if allowed:
        model_rollback(model=churn, actor=roles[role], reason="incident", context=CLI)
        assert _stages(churn)[2] == "production"
    else:
        with pytest.raises(PermissionDenied):
            model_rollback(model=churn, actor=roles[role], reason="incident", context=CLI)
        assert _stages(churn)[3] == "production"


def test_rollback_over_the_api(churn, owner, three_promotions, api_client_for):
    response = api_client_for(owner).post("/api/v1/models/churn/rollback/", {"reason": "p99 latency"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json() == {
        "model": "churn",
        "production_version": 2,
        "archived_version": 3,
        "reason": "p99 latency",
        "needs_follow_up": True,
        "transition": response.json()["transition"],
    }
    assert AuditEvent.objects.filter(action="rollback").get().source == "api"


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "  "}, ["reason"]])
def test_rollback_api_bad_input_is_400(churn, owner, three_promotions, api_client_for, body):
    response = api_client_for(owner).post("/api/v1/models/churn/rollback/", body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert _stages(churn)[3] == "production"


@pytest.mark.parametrize(("role", "status"), [("auditor", 403), ("outsider", 403)])  # neither holds promotions:request
def test_rollback_api_refuses_auditor_and_outsider(churn, roles, three_promotions, api_client_for, role, status):
    response = api_client_for(roles[role]).post("/api/v1/models/churn/rollback/", {"reason": "x"}, format="json")
    assert response.status_code == status
    assert _stages(churn)[3] == "production"


def test_rollback_api_without_a_target_is_409(churn_v1, owner, api_client_for):
    response = api_client_for(owner).post("/api/v1/models/churn/rollback/", {"reason": "x"}, format="json")
    assert response.status_code == 409
    assert "no production version" in response.json()["error"]["message"]


def test_rollback_api_needs_the_request_scope(churn, owner, three_promotions, api_client_for):
    response = api_client_for(owner, ["models:read"]).post(
        "/api/v1/models/churn/rollback/", {"reason": "x"}, format="json"
    )
    assert response.status_code == 403


def test_rollback_form_in_the_browser(churn, owner, three_promotions, client_for):
    client = client_for(owner)
    page = client.get("/models/churn/rollback/")
    assert page.status_code == 200
    assert b"restores <strong>v2</strong>" in page.content
    assert client.post("/models/churn/rollback/", {"reason": ""}).status_code == 400
    assert _stages(churn)[3] == "production"
    response = client.post("/models/churn/rollback/", {"reason": "Drift alarm."})
    assert response.status_code == 302 and response["Location"] == "/models/churn/"
    assert _stages(churn)[2] == "production"


@pytest.mark.parametrize(("role", "status"), [("auditor", 403), ("outsider", 404)])
def test_rollback_form_refuses_auditor_and_outsider(churn, roles, three_promotions, client_for, role, status):
    client = client_for(roles[role])
    assert client.get("/models/churn/rollback/").status_code == status
    assert client.post("/models/churn/rollback/", {"reason": "x"}).status_code == status
    assert _stages(churn)[3] == "production"


def test_timeline_flags_the_rollback_for_follow_up(churn, owner, three_promotions, client_for):
    model_rollback(model=churn, actor=owner, reason="Drift alarm.", context=CLI)
    html = client_for(owner).get("/models/churn/timeline/", HTTP_HX_REQUEST="true").content.decode()
    assert html.count("needs follow-up review") == 2
    assert "transition-rollback" in html and "Drift alarm." in html


def test_rollback_page_without_a_target_offers_no_form(churn, owner, reviewer, client_for):
    _promote(ModelVersionFactory(model=churn), owner, reviewer)
    client = client_for(owner)
    page = client.get("/models/churn/rollback/").content.decode()
    assert "There is no previously approved production version to restore." in page
    assert 'class="rollback-form"' not in page and "Roll back</button>" not in page
    refused = client.post("/models/churn/rollback/", {"reason": "Drift alarm."})
    assert refused.status_code == 409
    assert "no previously approved production version" in refused.content.decode()
    assert _stages(churn) == {1: "production"}


def test_the_timeline_offers_a_rollback_only_when_there_is_a_version_to_restore(churn, owner, reviewer, client_for):
    """The timeline offered 'Roll back production…' on a model with one approved version, whose
    rollback page could only say there was nothing to restore."""
    _promote(ModelVersionFactory(model=churn), owner, reviewer)
    html = client_for(owner).get("/models/churn/timeline/", HTTP_HX_REQUEST="true").content.decode()
    assert "Roll back production" not in html
    assert "No earlier approved version to roll back to." in html
    _promote(ModelVersionFactory(model=churn), owner, reviewer)
    html = client_for(owner).get("/models/churn/timeline/", HTTP_HX_REQUEST="true").content.decode()
    assert "Roll back production" in html and "No earlier approved version" not in html
