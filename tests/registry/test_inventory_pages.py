import pytest
from django.urls import reverse
from django.utils import timezone

from registry.choices import Stage
from registry.models import AuditEvent, ModelVersion, RegisteredModel
from registry.services.audit import CLI
from registry.services.promotions import promotion_request
from tests.factories import ModelVersionFactory, RegisteredModelFactory, TeamFactory, UserFactory

ROLES = ["owner", "reviewer", "auditor", "admin", "outsider"]


@pytest.fixture
def hidden(db):
    model = RegisteredModelFactory(name="hidden", team=TeamFactory(slug="elsewhere"), description="secret stuff")
    model.tags.create(name="secret-tag")
    return model


@pytest.mark.parametrize("role", ROLES)
def test_inventory_page_lists_only_visible_models(roles, role, churn, hidden, client_for):
    ModelVersionFactory(model=churn, stage=Stage.PRODUCTION)
    response = client_for(roles[role]).get(reverse("registry:model_list"))
    assert response.status_code == 200
    names = [m.name for m in response.context["models"]]
    assert names == {"owner": ["churn"], "outsider": []}.get(role, ["churn", "hidden"])
    html = response.content.decode()
    assert ("secret stuff" in html) == (role in ("reviewer", "auditor", "admin"))
    assert ("secret-tag" in html) == (role in ("reviewer", "auditor", "admin"))
    assert ("elsewhere" in html) == (role in ("reviewer", "auditor", "admin"))
    if role != "outsider":
        assert 'class="badge badge-production">v1' in html


def test_home_redirects_to_the_fleet_overview(owner, client_for):
    response = client_for(owner).get("/")
    assert response.status_code == 302 and response["Location"] == reverse("monitoring:fleet")


def test_anonymous_users_are_sent_to_login(churn, client):
    for url in [reverse("registry:model_list"), reverse("registry:model_detail", args=["churn"])]:
        response = client.get(url)
        assert response.status_code == 302 and "/login/" in response["Location"]


def test_inventory_filters_search_sorting_and_pagination(owner, team, client_for):
    for i in range(30):
        RegisteredModelFactory(name=f"m{i:02d}", owner=owner, team=team, risk_tier="high" if i % 2 else "low")
    RegisteredModelFactory(name="zz-fraud", owner=owner, team=team, description="detects fraud")
    client = client_for(owner)
    url = reverse("registry:model_list")
    first = client.get(url)
    assert len(first.context["models"]) == 25 and first.context["page_obj"].paginator.count == 31
    second = client.get(url, {"page": 2})
    assert [m.name for m in second.context["models"]][-1] == "zz-fraud"
    assert [m.name for m in client.get(url, {"q": "fraud"}).context["models"]] == ["zz-fraud"]
    assert client.get(url, {"risk_tier": "high"}).context["page_obj"].paginator.count == 15
    assert client.get(url, {"ordering": "-name"}).context["models"][0].name == "zz-fraud"
    sorted_by_risk = client.get(url, {"ordering": "-risk"})
    assert sorted_by_risk.context["models"][0].risk_tier == "high"
    assert 'href="?ordering=risk"' in sorted_by_risk.content.decode()
    assert client.get(url, {"page": "abc"}).status_code == 200


def test_inventory_htmx_request_gets_only_the_table_fragment(owner, churn, client_for):
    response = client_for(owner).get(reverse("registry:model_list"), {"q": "churn"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200
    assert "<table" in html and "<html" not in html


def test_invalid_inventory_filter_is_a_400_with_a_message(owner, churn, client_for):
    response = client_for(owner).get(reverse("registry:model_list"), {"risk_tier": "extreme"})
    assert response.status_code == 400
    assert "risk_tier" in response.content.decode()


@pytest.mark.parametrize("role", ROLES)
def test_model_page_for_each_role(roles, role, churn, client_for):
    ModelVersionFactory(model=churn, stage=Stage.PRODUCTION, metrics={"roc_auc": 0.9})
    ModelVersionFactory(model=churn, stage=Stage.STAGING)
    response = client_for(roles[role]).get(reverse("registry:model_detail", args=["churn"]))
    if role == "outsider":
        assert response.status_code == 404
        return
    assert response.status_code == 200
    html = response.content.decode()
    assert '<tr class="highlight">' in html
    assert "badge-staging" in html and "v1 in production" in html
    assert reverse("registry:model_timeline", args=["churn"]) in html
    assert reverse("registry:model_history", args=["churn"]) in html
    assert 'hx-get="' + reverse("registry:model_history", args=["churn"]) in html
    assert reverse("monitoring:model_dashboard", args=["churn"]) in html
    assert reverse("registry:compliance_report", args=["churn"]) in html
    can_edit = role in ("owner", "admin")
    assert (reverse("registry:model_edit", args=["churn"]) in html) == can_edit
    assert (reverse("registry:version_create", args=["churn"]) in html) == can_edit


@pytest.mark.parametrize("role", ROLES)
def test_version_page_for_each_role(roles, role, churn_v1, client_for):
    response = client_for(roles[role]).get(reverse("registry:version_detail", args=["churn", 1]))
    if role == "outsider":
        assert response.status_code == 404
        return
    assert response.status_code == 200
    html = response.content.decode()
    assert "0123456789abcdef0123456789abcdef01234567" in html and "<code>plan</code>" in html
    assert "roc_auc" in html
    can_promote = role in ("owner", "admin")
    assert (reverse("registry:promotion_create", args=["churn", 1]) in html) == can_promote


def test_unknown_model_and_version_pages_are_404(owner, churn_v1, client_for):
    client = client_for(owner)
    assert client.get(reverse("registry:model_detail", args=["nope"])).status_code == 404
    assert client.get(reverse("registry:version_detail", args=["churn", 7])).status_code == 404


# --- forms -----------------------------------------------------------------------------------


def test_owner_registers_a_model_through_the_form(owner, team, client_for, audit_actions, last_seq):
    client = client_for(owner)
    start = last_seq()
    response = client.post(
        reverse("registry:model_create"),
        {"name": "fraud", "team": team.slug, "risk_tier": "high", "tags": "pii, Fraud", "description": "d"},
    )
    assert response.status_code == 302 and response["Location"] == "/models/fraud/"
    model = RegisteredModel.objects.get(name="fraud")
    assert model.owner == owner and sorted(model.tags.values_list("name", flat=True)) == ["fraud", "pii"]
    assert audit_actions(start) == ["model.created"]
    assert AuditEvent.objects.get(seq__gt=start).source == "ui"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"name": "churn"}, "name"),
        ({"name": "Bad Name"}, "name"),
        ({"name": ""}, "name"),
        ({"name": "ok", "retrain_cadence_days": "weekly"}, "retrain_cadence_days"),
        ({"name": "ok", "risk_tier": "extreme"}, "risk_tier"),
        ({"name": "ok", "team": "elsewhere"}, "team"),
        ({"name": "ok", "tags": "!!!"}, "tags"),
    ],
)
def test_bad_model_form_input_shows_field_errors_and_writes_nothing(
    owner, team, churn, client_for, last_seq, data, field
):
    TeamFactory(slug="elsewhere")
    client = client_for(owner)
    start = last_seq()
    body = {"team": team.slug, "risk_tier": "medium", **data}
    response = client.post(reverse("registry:model_create"), body)
    assert response.status_code == 400
    assert response.context["form"].errors[field]
    assert f'id="id_{field}_errors"' in response.content.decode()
    assert RegisteredModel.objects.count() == 1 and last_seq() == start


@pytest.mark.parametrize(("role", "status"), [("reviewer", 403), ("auditor", 403), ("outsider", 403)])
def test_roles_without_a_team_cannot_open_the_register_form(roles, role, status, client_for):
    client = client_for(roles[role])
    assert client.get(reverse("registry:model_create")).status_code == status
    assert client.post(reverse("registry:model_create"), {"name": "x"}).status_code == status
    assert not RegisteredModel.objects.exists()


def test_owner_edits_the_model_card(owner, churn, client_for, audit_actions, last_seq):
    client = client_for(owner)
    form = client.get(reverse("registry:model_edit", args=["churn"]))
    assert form.status_code == 200 and "name" not in form.context["form"].fields
    start = last_seq()
    response = client.post(
        reverse("registry:model_edit", args=["churn"]),
        {
            "team": "risk-analytics",
            "risk_tier": "medium",  # unchanged: only an admin changes it (tests/registry/test_risk_tier.py)
            "description": churn.description,
            "intended_use": churn.intended_use,
            "limitations": "Only EU customers.",
            "primary_metric": "roc_auc",
            "primary_metric_higher_is_better": "on",
            "tags": "",
        },
    )
    assert response.status_code == 302
    churn.refresh_from_db()
    assert churn.risk_tier == "medium" and churn.limitations == "Only EU customers."
    event = AuditEvent.objects.get(seq__gt=start)
    assert event.action == "model.updated" and set(event.after) == {"limitations"}
    assert audit_actions(start) == ["model.updated"]


@pytest.mark.parametrize(("role", "status"), [("reviewer", 403), ("auditor", 403), ("outsider", 404)])
def test_only_owner_or_admin_can_edit(roles, role, status, churn_v1, client_for, last_seq):
    client = client_for(roles[role])
    start = last_seq()
    for url in [
        reverse("registry:model_edit", args=["churn"]),
        reverse("registry:version_create", args=["churn"]),
        reverse("registry:version_edit", args=["churn", 1]),
    ]:
        assert client.get(url).status_code == status
        assert client.post(url, {"description": "x", "task_type": "binary"}).status_code == status
    assert ModelVersion.objects.count() == 1 and last_seq() == start


def test_admin_can_edit_any_model(admin_user, churn, client_for):
    assert client_for(admin_user).get(reverse("registry:model_edit", args=["churn"])).status_code == 200


def test_owner_registers_a_version_through_the_form(owner, churn_v1, client_for, audit_actions, last_seq):
    client = client_for(owner)
    page = client.get(reverse("registry:version_create", args=["churn"]))
    assert "&quot;name&quot;: &quot;age&quot;" in page.content.decode()  # schema prefilled from the latest version
    start = last_seq()
    response = client.post(
        reverse("registry:version_create", args=["churn"]),
        {
            "task_type": "binary",
            "metrics": '{"roc_auc": 0.9}',
            "feature_schema": '[{"name": "age", "type": "numeric"}]',
            "source_commit": "abc",
        },
    )
    assert response.status_code == 302 and response["Location"] == "/models/churn/versions/2/"
    v2 = ModelVersion.objects.get(model=churn_v1.model, version=2)
    assert v2.metrics == {"roc_auc": 0.9} and v2.stage == "none"
    assert audit_actions(start) == ["version.registered"]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"metrics": "{not json"}, "metrics"),
        ({"metrics": '{"auc": NaN}'}, "metrics"),
        ({"metrics": '{"auc": 1e999}'}, "metrics"),
        ({"metrics": '{"auc": "high"}'}, "metrics"),
        ({"metrics": "[1]"}, "metrics"),
        ({"feature_schema": '[{"name": "a", "type": "text"}]'}, "feature_schema"),
        ({"feature_schema": '{"a": "numeric"}'}, "feature_schema"),
        ({"task_type": "ranking"}, "task_type"),
        ({"artifact_uri": "x" * 501}, "artifact_uri"),
        ({"description": "neither artifact nor lineage", "source_commit": ""}, "artifact_uri"),
        ({"artifact_uri": " ", "source_commit": "", "training_run_id": ""}, "training_run_id"),
    ],
)
def test_bad_version_form_input_shows_field_errors_and_writes_nothing(owner, churn, client_for, last_seq, data, field):
    client = client_for(owner)
    start = last_seq()
    data = {"task_type": "binary", "source_commit": "abc123", **data}  # each is wrong in its one field only
    response = client.post(reverse("registry:version_create", args=["churn"]), data)
    assert response.status_code == 400
    assert response.context["form"].errors[field]
    assert not ModelVersion.objects.exists() and last_seq() == start


def test_version_edit_changes_metadata_but_offers_no_stage(owner, churn_v1, client_for, audit_actions, last_seq):
    client = client_for(owner)
    form = client.get(reverse("registry:version_edit", args=["churn", 1])).context["form"]
    assert not {"stage", "feature_schema", "task_type"} & set(form.fields)
    start = last_seq()
    response = client.post(
        reverse("registry:version_edit", args=["churn", 1]),
        {
            "description": "tuned",
            "artifact_uri": churn_v1.artifact_uri,
            "source_commit": churn_v1.source_commit,
            "training_run_id": churn_v1.training_run_id,
            "training_data_ref": churn_v1.training_data_ref,
            "training_data_hash": churn_v1.training_data_hash,
            "metrics": '{"roc_auc": 0.85, "accuracy": 0.8}',
            "stage": "production",
        },
    )
    assert response.status_code == 302
    churn_v1.refresh_from_db()
    assert churn_v1.description == "tuned" and churn_v1.stage == "none"
    event = AuditEvent.objects.get(seq__gt=start)
    assert event.action == "version.updated" and event.after == {"description": "tuned"}
    assert audit_actions(start) == ["version.updated"]


def test_version_edit_refuses_new_metrics_while_a_request_is_pending(owner, churn_v1, client_for, last_seq):
    req = promotion_request(
        version=churn_v1, target_stage=Stage.STAGING, requester=owner, justification="Ship it.", context=CLI
    )
    client = client_for(owner)
    start = last_seq()
    response = client.post(
        reverse("registry:version_edit", args=["churn", 1]),
        {"description": "tuned", "source_commit": churn_v1.source_commit, "metrics": '{"roc_auc": 0.99}'},
    )
    assert response.status_code == 409
    assert f"#{req.pk}" in " ".join(response.context["form"].non_field_errors())
    churn_v1.refresh_from_db()
    assert churn_v1.metrics == {"roc_auc": 0.85, "accuracy": 0.8} and churn_v1.description == ""
    assert last_seq() == start


# --- query counts ------------------------------------------------------------------------------


def _inventory(owner, team, count):
    for i in range(count):
        m = RegisteredModelFactory(name=f"m{i:02d}", owner=owner, team=team)
        m.tags.create(name=f"t{i}")
        ModelVersionFactory(model=m, stage=Stage.PRODUCTION)
        ModelVersionFactory(model=m, stage=Stage.STAGING)


@pytest.mark.parametrize("count", [3, 30])
@pytest.mark.parametrize("role", ["owner", "admin"])
def test_pages_run_a_constant_number_of_queries(roles, role, team, client_for, django_assert_max_num_queries, count):
    _inventory(roles["owner"], team, count)
    client = client_for(roles[role])
    urls = [
        reverse("registry:model_list"),
        reverse("registry:model_list") + "?q=m&ordering=-risk&stage=production",
        reverse("registry:model_detail", args=["m00"]),
        reverse("registry:version_detail", args=["m00", 1]),
        reverse("registry:model_edit", args=["m00"]),
        reverse("registry:version_create", args=["m00"]),
        reverse("registry:version_edit", args=["m00", 1]),
        reverse("registry:model_create"),
        reverse("registry:token_list"),
    ]
    for url in urls:
        with django_assert_max_num_queries(16, info=url):
            assert client.get(url).status_code == 200, url


@pytest.mark.parametrize("role", ["owner", "reviewer", "outsider"])
def test_query_count_does_not_grow_from_3_to_30_models(roles, role, team, client_for, api_client_for):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = client_for(roles[role])
    api = api_client_for(roles[role], scopes=["models:read"])
    urls = [
        (client, reverse("registry:model_list")),
        (client, reverse("registry:model_list") + "?ordering=-risk&tag=t1"),
        (client, reverse("registry:model_detail", args=["m00"])),
        (client, reverse("registry:version_detail", args=["m00", 1])),
        (api, "/api/v1/models/"),
        (api, "/api/v1/models/m00/"),
        (api, "/api/v1/models/m00/versions/"),
    ]

    def counts():
        out = []
        for c, url in urls:
            c.get(url)  # warm: last-used stamps, sessions
            with CaptureQueriesContext(connection) as ctx:
                c.get(url)
            out.append(len(ctx))
        return out

    _inventory(roles["owner"], team, 3)
    small = counts()
    for i in range(3, 30):
        m = RegisteredModelFactory(name=f"m{i:02d}", owner=roles["owner"], team=team)
        m.tags.create(name=f"t{i}")
        ModelVersionFactory(model=m, stage=Stage.PRODUCTION)
        ModelVersionFactory(model=m, stage=Stage.STAGING)
    ModelVersionFactory(model=RegisteredModel.objects.get(name="m00"))
    assert counts() == small


@pytest.mark.parametrize(
    ("url", "field"),
    [
        (reverse("registry:model_create"), "name"),
        (reverse("registry:version_create", args=["churn"]), "task_type"),
        (reverse("registry:token_list"), "name"),
    ],
)
def test_an_empty_post_shows_required_field_errors(owner, churn, client_for, last_seq, url, field):
    client = client_for(owner)
    start = last_seq()
    response = client.post(url, {})
    assert response.status_code == 400
    assert response.context["form"].errors[field]
    assert last_seq() == start


def test_inventory_rows_escape_every_value(admin_user, client_for):
    from monitoring.models import HealthStatus

    odd = RegisteredModelFactory(
        name="a-full",
        owner=UserFactory(username="o'brien+x@corp"),
        team=TeamFactory(name='R&D <"labs">', slug="rnd"),
        description='<script>alert("x")</script> & ' + "long " * 40,
    )
    odd.tags.create(name="customer-facing")
    ModelVersionFactory(model=odd, stage=Stage.ARCHIVED)
    ModelVersionFactory(model=odd, stage=Stage.PRODUCTION)
    HealthStatus.objects.create(model=odd, status="critical", reasons=[], computed_at=timezone.now())
    html = client_for(admin_user).get(reverse("registry:model_list")).content.decode()
    assert "<script>alert" not in html and "&lt;script&gt;" in html
    assert "R&amp;D &lt;&quot;labs&quot;&gt;" in html and "o&#x27;brien+x@corp" in html
    assert f'href="{reverse("registry:version_detail", args=["a-full", 2])}"' in html
    assert '<span class="badge badge-critical">critical</span>' in html
    assert '<a class="tag" href="?tag=customer-facing">customer-facing</a>' in html
    assert "(latest v2)" in html


@pytest.mark.parametrize(
    "path",
    ["/", "/models/", "/models/churn/", "/models/churn/versions/1/", "/models/churn/timeline/", "/reviews/"],
)
def test_a_post_to_a_read_only_registry_page_is_a_405(churn, admin_user, client_for, path):
    ModelVersionFactory(model=churn)
    client = client_for(admin_user)
    start = AuditEvent.objects.count()
    response = client.post(path, {"name": "x"})
    assert response.status_code == 405 and response["Allow"] == "GET"
    assert AuditEvent.objects.count() == start
    assert client.get(path).status_code in (200, 302)


def test_registration_times_say_their_zone(owner, client_for, churn_v1):
    """The model and version pages gave "Registered 2026-11-23 06:00" with no zone, beside pages
    that say UTC."""
    model_page = client_for(owner).get(reverse("registry:model_detail", args=["churn"])).content.decode()
    version_page = client_for(owner).get(reverse("registry:version_detail", args=["churn", 1])).content.decode()
    for page, when in ((model_page, churn_v1.model.created_at), (version_page, churn_v1.created_at)):
        assert f"<dt>Registered</dt><dd>{when:%Y-%m-%d %H:%M} UTC" in page
