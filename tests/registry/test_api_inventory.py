import json

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from registry.choices import Stage
from registry.models import AuditEvent, ModelVersion, RegisteredModel
from registry.services.audit import CLI
from registry.services.promotions import promotion_request
from tests.factories import ModelVersionFactory, RegisteredModelFactory, TeamFactory

LIST = "/api/v1/models/"
ROLES = ["owner", "reviewer", "auditor", "admin", "outsider"]
SEES_ALL = {"reviewer", "auditor", "admin"}


def post_json(client, url, body, method="post"):
    return getattr(client, method)(url, data=json.dumps(body), content_type="application/json")


def assert_error(response, status, *, field=None):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["message"]
    if field:
        assert field in body["error"]["details"], body
    return body["error"]


@pytest.fixture
def hidden(db):
    """A model in another team, owned by someone else: only reviewers, auditors and admins see it."""
    return RegisteredModelFactory(name="hidden", team=TeamFactory(slug="elsewhere"))


def test_url_names_live_in_the_api_namespace():
    assert reverse("api:model-list") == LIST
    assert reverse("api:model-detail", args=["churn"]) == "/api/v1/models/churn/"
    assert reverse("api:version-list", args=["churn"]) == "/api/v1/models/churn/versions/"
    assert reverse("api:version-detail", args=["churn", 2]) == "/api/v1/models/churn/versions/2/"


@pytest.mark.parametrize("role", ROLES)
def test_model_list_shows_each_role_only_what_it_may_see(roles, role, churn, hidden, api_client_for):
    ModelVersionFactory(model=churn, stage=Stage.PRODUCTION)
    ModelVersionFactory(model=churn)
    response = api_client_for(roles[role]).get(LIST)
    assert response.status_code == 200
    names = [m["name"] for m in response.json()["results"]]
    expected = {"owner": ["churn"], "outsider": []}.get(role, ["churn", "hidden"])
    assert names == expected
    if "churn" in names:
        churn_row = response.json()["results"][0]
        assert churn_row["production_version"] == 1
        assert churn_row["latest_version"] == 2
        assert churn_row["version_count"] == 2
        assert churn_row["owner"] == "owner" and churn_row["team"] == "risk-analytics"


@pytest.mark.parametrize("role", ROLES)
def test_model_detail_for_each_role(roles, role, churn_v1, api_client_for):
    response = api_client_for(roles[role]).get("/api/v1/models/churn/")
    if role == "outsider":
        assert_error(response, 404)
        return
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "churn"
    assert body["health"] == {"status": "no_data", "reasons": [], "computed_at": None}
    assert [v["version"] for v in body["versions"]] == [1]
    assert body["production_version"] is None


@pytest.mark.parametrize("role", ROLES)
def test_version_list_and_detail_for_each_role(roles, role, churn_v1, api_client_for):
    client = api_client_for(roles[role])
    listing = client.get("/api/v1/models/churn/versions/")
    detail = client.get("/api/v1/models/churn/versions/1/")
    if role == "outsider":
        assert_error(listing, 404)
        assert_error(detail, 404)
        return
    assert listing.status_code == 200 and [v["version"] for v in listing.json()["results"]] == [1]
    assert detail.status_code == 200
    assert detail.json()["metrics"] == {"roc_auc": 0.85, "accuracy": 0.8}
    assert detail.json()["feature_schema"][0] == {"name": "age", "type": "numeric"}


def test_unknown_model_and_version_are_json_404(owner, churn_v1, api_client_for):
    client = api_client_for(owner)
    assert_error(client.get("/api/v1/models/nope/"), 404)
    assert_error(client.get("/api/v1/models/churn/versions/9/"), 404)


def test_unknown_url_under_api_is_a_json_404(owner, api_client_for):
    error = assert_error(api_client_for(owner).get("/api/v1/no-such-thing/"), 404)
    assert error["code"] == "not_found"


def test_unknown_html_url_is_not_json(client_for, owner):
    response = client_for(owner).get("/no-such-page/")
    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")


def test_unknown_url_under_api_is_a_json_404_in_debug_too(owner, api_client_for, client_for, settings):
    # with DEBUG on (the demo), Django answered its HTML debug page instead of handler404
    settings.DEBUG = True
    client = api_client_for(owner)
    for answer in (
        client.get("/api/v1/no-such-thing/"),
        client.post("/api/v1/no-such-thing/", {"a": 1}, format="json"),
        client_for(owner).post("/api/v1/models/churn/nope/"),  # a session without a CSRF token
    ):
        assert assert_error(answer, 404)["code"] == "not_found"
    assert "Did you mean /api/v1/models/?" in assert_error(client.get("/api/v1/models"), 404)["message"]
    assert "Did you mean" not in assert_error(client.get("/api/v1/nothing"), 404)["message"]
    page = client_for(owner).get("/no-such-page/")
    assert page.status_code == 404 and not page["Content-Type"].startswith("application/json")


def test_anonymous_requests_get_a_json_401(churn):
    response = APIClient().get(LIST)
    assert_error(response, 401)


def test_list_filters_search_and_ordering(owner, team, api_client_for):
    a = RegisteredModelFactory(name="alpha", owner=owner, team=team, risk_tier="high", description="fraud detection")
    b = RegisteredModelFactory(name="beta", owner=owner, team=team, risk_tier="low")
    c = RegisteredModelFactory(name="gamma", owner=owner, team=team, risk_tier="medium")
    b.tags.create(name="pii")
    ModelVersionFactory(model=c, stage=Stage.STAGING)
    client = api_client_for(owner)

    def names(query):
        response = client.get(LIST, query)
        assert response.status_code == 200, response.content
        return [m["name"] for m in response.json()["results"]]

    assert names({"q": "fraud"}) == ["alpha"]
    assert names({"q": "pii"}) == ["beta"]
    assert names({"q": "owner"}) == ["alpha", "beta", "gamma"]
    assert names({"tag": "pii"}) == ["beta"]
    assert names({"risk_tier": "high"}) == ["alpha"]
    assert names({"stage": "staging"}) == ["gamma"]
    assert names({"team": "risk-analytics", "owner": "owner"}) == ["alpha", "beta", "gamma"]
    assert names({"team": "elsewhere"}) == []
    assert names({"ordering": "-name"}) == ["gamma", "beta", "alpha"]
    assert names({"ordering": "-risk"}) == ["alpha", "gamma", "beta"]
    assert a.pk


@pytest.mark.parametrize("query", [{"risk_tier": "extreme"}, {"stage": "prod"}, {"ordering": "password"}])
def test_invalid_filters_are_a_400_naming_the_filter(owner, churn, api_client_for, query):
    assert_error(api_client_for(owner).get(LIST, query), 400, field=next(iter(query)))


def test_owner_registers_a_model_and_a_version_over_the_api(owner, api_client_for, audit_actions, last_seq):
    client = api_client_for(owner, scopes=["models:write", "models:read"])
    start = last_seq()
    created = post_json(
        client, LIST, {"name": "fraud", "description": "Flags fraud", "risk_tier": "high", "tags": ["pii"]}
    )
    assert created.status_code == 201, created.content
    assert created["Location"] == "/api/v1/models/fraud/"
    assert created.json()["tags"] == ["pii"] and created.json()["team"] == "risk-analytics"
    version = post_json(
        client,
        "/api/v1/models/fraud/versions/",
        {
            "artifact_uri": "s3://m/fraud/1",
            "source_commit": "abc123",
            "metrics": {"roc_auc": 0.93},
            "feature_schema": [{"name": "amount", "type": "numeric"}],
            "task_type": "binary",
        },
    )
    assert version.status_code == 201, version.content
    assert version.json()["version"] == 1 and version.json()["stage"] == "none"
    second = post_json(client, "/api/v1/models/fraud/versions/", {"training_run_id": "run-2"})
    assert second.json()["version"] == 2
    assert audit_actions(start) == ["model.created", "version.registered", "version.registered"]
    assert set(AuditEvent.objects.filter(seq__gt=start).values_list("source", flat=True)) == {"api"}


def test_patch_edits_the_model_card_and_version_metadata(owner, churn_v1, api_client_for, audit_actions, last_seq):
    client = api_client_for(owner)
    start = last_seq()
    model = post_json(client, "/api/v1/models/churn/", {"limitations": "EU only", "tags": ["a"]}, method="patch")
    assert model.status_code == 200, model.content
    assert model.json()["limitations"] == "EU only" and model.json()["tags"] == ["a"]
    version = post_json(client, "/api/v1/models/churn/versions/1/", {"metrics": {"roc_auc": 0.9}}, method="patch")
    assert version.status_code == 200 and version.json()["metrics"] == {"roc_auc": 0.9}
    assert audit_actions(start) == ["model.updated", "version.updated"]


def test_patch_cannot_change_a_version_stage(owner, churn_v1, api_client_for, last_seq):
    client = api_client_for(owner)
    start = last_seq()
    response = post_json(client, "/api/v1/models/churn/versions/1/", {"stage": "production"}, method="patch")
    assert_error(response, 400, field="stage")
    churn_v1.refresh_from_db()
    assert churn_v1.stage == "none" and last_seq() == start


def test_patch_cannot_change_the_metrics_of_a_version_with_a_pending_request(owner, churn_v1, api_client_for, last_seq):
    req = promotion_request(
        version=churn_v1, target_stage=Stage.STAGING, requester=owner, justification="Ship it.", context=CLI
    )
    client = api_client_for(owner)
    start = last_seq()
    response = post_json(client, "/api/v1/models/churn/versions/1/", {"metrics": {"roc_auc": 0.99}}, method="patch")
    error = assert_error(response, 409)
    assert error["code"] == "conflict" and f"#{req.pk}" in error["message"] and "metrics" in error["message"]
    assert error["details"] == {"pending_request": req.pk, "fields": ["metrics"]}
    churn_v1.refresh_from_db()
    assert churn_v1.metrics == {"roc_auc": 0.85, "accuracy": 0.8} and last_seq() == start
    described = post_json(client, "/api/v1/models/churn/versions/1/", {"description": "Retuned."}, method="patch")
    assert described.status_code == 200 and described.json()["description"] == "Retuned."


def test_patch_cannot_rename_a_model(owner, churn, api_client_for, last_seq):
    client = api_client_for(owner)
    start = last_seq()
    assert_error(post_json(client, "/api/v1/models/churn/", {"name": "x"}, method="patch"), 400, field="name")
    assert RegisteredModel.objects.get().name == "churn" and last_seq() == start


def test_an_llm_application_is_registered_with_its_kind_which_is_permanent(owner, api_client_for, audit_actions):
    client = api_client_for(owner)
    response = post_json(client, LIST, {"name": "support-assistant", "kind": "llm_app", "risk_tier": "low"})
    assert response.status_code == 201, response.content
    assert response.json()["kind"] == "llm_app"
    assert RegisteredModel.objects.get(name="support-assistant").is_llm_app
    assert post_json(client, LIST, {"name": "plain"}).json()["kind"] == "ml"
    assert "model.created" in audit_actions()
    patch = post_json(client, "/api/v1/models/support-assistant/", {"kind": "ml"}, method="patch")
    assert_error(patch, 400, field="kind")
    assert RegisteredModel.objects.get(name="support-assistant").kind == "llm_app"


@pytest.mark.parametrize("role", ["reviewer", "auditor", "outsider"])
def test_roles_without_a_team_cannot_register_models(roles, role, api_client_for, last_seq):
    client = api_client_for(roles[role])
    start = last_seq()
    assert_error(post_json(client, LIST, {"name": "m1"}), 403)
    assert not RegisteredModel.objects.exists() and last_seq() == start


@pytest.mark.parametrize(("role", "status"), [("reviewer", 403), ("auditor", 403), ("outsider", 403)])
def test_only_owner_or_admin_can_write_to_a_model(roles, role, status, churn_v1, api_client_for, last_seq):
    client = api_client_for(roles[role])
    start = last_seq()
    assert_error(post_json(client, "/api/v1/models/churn/", {"description": "x"}, method="patch"), status)
    assert_error(post_json(client, "/api/v1/models/churn/versions/", {"artifact_uri": "s3://x"}), status)
    assert_error(post_json(client, "/api/v1/models/churn/versions/1/", {"description": "x"}, method="patch"), status)
    assert ModelVersion.objects.count() == 1 and last_seq() == start


def test_admin_can_register_versions_of_any_model(admin_user, churn, api_client_for, audit_actions, last_seq):
    client = api_client_for(admin_user)
    start = last_seq()
    assert post_json(client, "/api/v1/models/churn/versions/", {"artifact_uri": "s3://x"}).status_code == 201
    assert audit_actions(start) == ["version.registered"]


def test_read_scope_cannot_write_and_write_scope_cannot_read(owner, churn, api_client_for, last_seq):
    reader = api_client_for(owner, scopes=["models:read"])
    writer = api_client_for(owner, scopes=["models:write"])
    other = api_client_for(owner, scopes=["monitoring:read"])
    start = last_seq()
    error = assert_error(post_json(reader, "/api/v1/models/churn/versions/", {"artifact_uri": "s3://x"}), 403)
    assert "models:write" in error["message"]
    assert_error(writer.get(LIST), 403)
    assert_error(other.get("/api/v1/models/churn/"), 403)
    assert reader.get(LIST).status_code == 200
    assert not ModelVersion.objects.exists() and last_seq() == start


def test_delete_is_not_allowed(owner, churn, api_client_for):
    assert_error(api_client_for(owner).delete("/api/v1/models/churn/"), 405)
    assert RegisteredModel.objects.filter(name="churn").exists()


def test_openapi_schema_and_docs_are_served_offline(owner, client_for):
    client = client_for(owner)
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    text = schema.content.decode()
    assert "/api/v1/models/{name}/versions/{version}/" in text
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in html
    for cdn in ("cdn.jsdelivr", "unpkg.com", "cdnjs"):
        assert cdn not in html


@pytest.mark.parametrize("count", [3, 30])
def test_model_list_and_detail_api_use_a_constant_number_of_queries(
    owner, team, api_client_for, django_assert_max_num_queries, count
):
    for i in range(count):
        m = RegisteredModelFactory(name=f"m{i:02d}", owner=owner, team=team)
        m.tags.create(name=f"t{i}")
        ModelVersionFactory(model=m, stage=Stage.PRODUCTION)
        ModelVersionFactory(model=m)
    client = api_client_for(owner)
    with django_assert_max_num_queries(10):
        response = client.get(LIST, {"limit": 100})
    assert response.json()["count"] == count
    with django_assert_max_num_queries(10):
        assert client.get("/api/v1/models/m00/").status_code == 200
    with django_assert_max_num_queries(10):
        assert client.get("/api/v1/models/m00/versions/").status_code == 200


def test_out_of_range_version_numbers_are_a_404_not_a_500(owner, churn_v1, api_client_for, client_for):
    huge = "9" * 30
    assert_error(api_client_for(owner).get(f"/api/v1/models/churn/versions/{huge}/"), 404)
    assert client_for(owner).get(f"/models/churn/versions/{huge}/").status_code == 404


def test_non_numeric_version_under_the_api_is_a_json_404(owner, churn_v1, api_client_for):
    assert_error(api_client_for(owner).get("/api/v1/models/churn/versions/latest/"), 404)


UNCHANGED_PATCHES = [
    {},
    {"description": "Predicts churn", "risk_tier": "medium"},
    {"tags": ["pii", "fraud"], "team": "risk-analytics"},
    {"tags": ["Fraud", "pii", "pii"], "retrain_cadence_days": None},
]


@pytest.mark.parametrize("body", UNCHANGED_PATCHES)
def test_a_patch_that_changes_no_value_changes_nothing(
    owner, churn, api_client_for, last_seq, body, django_capture_on_commit_callbacks
):
    """No save (``updated_at`` stays), no audit event, no cache revision bump; 200 with the model."""
    RegisteredModel.objects.filter(pk=churn.pk).update(description="Predicts churn", risk_tier="medium")
    for name in ("fraud", "pii"):
        churn.tags.create(name=name)
    churn.refresh_from_db()
    client = api_client_for(owner)
    expected = client.get("/api/v1/models/churn/").json()
    start = last_seq()
    with django_capture_on_commit_callbacks() as callbacks:
        response = post_json(client, "/api/v1/models/churn/", body, method="patch")
    assert response.status_code == 200, response.content
    assert response.json() == expected
    assert RegisteredModel.objects.get(pk=churn.pk).updated_at == churn.updated_at
    assert last_seq() == start
    assert callbacks == []  # no revision bump queued


def test_a_patch_with_one_new_value_saves_and_audits_only_that(owner, churn, api_client_for, audit_actions, last_seq):
    client = api_client_for(owner)
    start = last_seq()
    body = {"description": churn.description, "limitations": "EU only"}
    assert post_json(client, "/api/v1/models/churn/", body, method="patch").status_code == 200
    assert audit_actions(start) == ["model.updated"]
    event = AuditEvent.objects.get(seq__gt=start)
    assert set(event.after) == {"limitations"}
    assert RegisteredModel.objects.get(pk=churn.pk).updated_at > churn.updated_at


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"description": "v2", "metrics": {"auc": 0.9}, "task_type": "binary"},
        {"artifact_uri": "", "source_commit": " ", "training_run_id": ""},
    ],
)
def test_a_version_without_artifact_or_lineage_is_a_400_naming_the_fields(owner, churn, api_client_for, last_seq, body):
    client = api_client_for(owner)
    start = last_seq()
    error = assert_error(post_json(client, "/api/v1/models/churn/versions/", body), 400)
    assert {"artifact_uri", "source_commit", "training_run_id"} <= set(error["details"]), error
    assert not ModelVersion.objects.exists() and last_seq() == start


@pytest.mark.parametrize("field", ["artifact_uri", "source_commit", "training_run_id"])
def test_a_version_with_an_artifact_or_a_lineage_reference_is_registered(owner, churn, api_client_for, field):
    response = post_json(api_client_for(owner), "/api/v1/models/churn/versions/", {field: "abc123"})
    assert response.status_code == 201, response.content
    assert response.json()[field] == "abc123"


@pytest.mark.parametrize("body", [{"team": None}, {"tags": [None]}, {"description": None}])
def test_nulls_where_values_are_required_are_a_400(owner, churn, api_client_for, last_seq, body):
    client = api_client_for(owner)
    start = last_seq()
    assert_error(post_json(client, "/api/v1/models/churn/", body, method="patch"), 400, field=next(iter(body)))
    assert last_seq() == start


def test_team_member_sees_the_detail_and_outsider_gets_404(owner, outsider, churn, api_client_for):
    colleague = api_client_for(TeamFactory(slug="risk-analytics").members.create(username="colleague"))
    assert colleague.get("/api/v1/models/churn/").status_code == 200
    assert_error(api_client_for(outsider).get("/api/v1/models/churn/"), 404)
    hidden = RegisteredModelFactory(name="hidden", team=TeamFactory(name="Other", slug="other"))
    assert_error(api_client_for(owner).get(f"/api/v1/models/{hidden.name}/"), 404)


def test_model_owned_but_in_another_team_is_visible_to_its_owner(owner, api_client_for):
    RegisteredModelFactory(name="mine", owner=owner, team=TeamFactory(name="Elsewhere", slug="elsewhere"))
    response = api_client_for(owner).get("/api/v1/models/mine/")
    assert response.status_code == 200 and response.json()["owner"] == "owner"


def test_every_write_shows_in_the_next_detail(owner, reviewer, churn, api_client_for):
    from django.utils import timezone

    from monitoring.models import HealthStatus

    for stage in (Stage.ARCHIVED, Stage.PRODUCTION, Stage.STAGING):
        ModelVersionFactory(model=churn, stage=stage)
    churn.tags.create(name="zeta")
    client = api_client_for(reviewer, scopes=["models:read"])
    before = client.get("/api/v1/models/churn/").json()
    ModelVersion.objects.filter(model=churn, stage=Stage.PRODUCTION).update(stage=Stage.ARCHIVED)
    ModelVersion.objects.filter(model=churn, version=3).update(stage=Stage.PRODUCTION)
    ModelVersionFactory(model=churn)
    churn.tags.remove(*churn.tags.filter(name="zeta"))
    HealthStatus.objects.create(model=churn, status="critical", reasons=[{"kind": "drift"}], computed_at=timezone.now())
    churn.owner.username = "renamed"
    churn.owner.save()
    after = client.get("/api/v1/models/churn/").json()
    assert (before["production_version"], before["tags"], before["health"]["status"]) == (2, ["zeta"], "no_data")
    assert (after["production_version"], after["latest_version"], after["version_count"]) == (3, 4, 4)
    assert after["tags"] == [] and after["owner"] == "renamed"
    assert after["health"]["status"] == "critical" and after["health"]["reasons"] == [{"kind": "drift"}]
    assert [v["version"] for v in after["versions"]] == [4, 3, 2, 1]
