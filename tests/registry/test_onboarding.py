"""The "Connect a pipeline" page: who may open it, the pipeline token (created through the
audited service, shown once), and snippets filled with the portal's URL, the model's name, its
next version and an example record the ingestion API accepts."""

from __future__ import annotations

import ast
import html
import json
import re
import shlex

import pytest
from django.urls import reverse

from monitoring.models import Prediction
from monitoring.services.ingestion import predictions_ingest
from registry.models import ApiToken, AuditEvent, ModelVersion
from registry.onboarding import PIPELINE_SCOPES, PLACEHOLDER_SCHEMA
from registry.services.audit import CLI
from registry.services.inventory import version_create
from registry.services.tokens import hash_token
from tests.factories import ModelVersionFactory, RegisteredModelFactory, TeamFactory, UserFactory

SNIPPET_IDS = ("snippet-python", "snippet-curl-register", "snippet-curl-batch", "snippet-cli")


def connect_url(name: str = "churn") -> str:
    return reverse("registry:model_connect", args=[name])


def snippet(page: str, snippet_id: str) -> str:
    """The text of one snippet as a reader copies it (HTML entities decoded)."""
    match = re.search(rf'<code id="{snippet_id}">(.*?)</code>', page, re.S)
    assert match, f"no snippet {snippet_id}"
    return html.unescape(match.group(1))


def curl_body(command: str):
    """The JSON a curl snippet posts, read as the shell would read it."""
    words = shlex.split(command.split("curl ", 1)[1])
    return json.loads(words[words.index("-d") + 1])


def create_token(client, model: str = "churn", **data):
    return client.post(connect_url(model), {"name": "pipeline: churn", "expires_days": 30, **data})


# --------------------------------------------------------------------------- permissions


@pytest.mark.parametrize(
    ("role", "status"),
    [("owner", 200), ("admin", 200), ("reviewer", 403), ("auditor", 403), ("outsider", 404)],
)
def test_only_who_may_change_the_model_opens_the_page(roles, role, status, churn_v1, client_for):
    client = client_for(roles[role])
    assert client.get(connect_url()).status_code == status
    tokens_before = ApiToken.objects.count()
    assert create_token(client).status_code == status
    assert ApiToken.objects.count() == tokens_before + (1 if status == 200 else 0)


def test_the_owner_of_another_model_gets_a_404_and_a_team_mate_a_403(churn_v1, team, client_for):
    other_owner = UserFactory(username="other-owner")
    RegisteredModelFactory(name="fraud", owner=other_owner, team=TeamFactory(slug="fraud-team"))
    assert client_for(other_owner).get(connect_url()).status_code == 404
    mate = UserFactory(username="mate")
    team.members.add(mate)
    assert client_for(mate).get(connect_url()).status_code == 403
    assert not ApiToken.objects.filter(user__in=[other_owner, mate]).exists()


def test_anonymous_is_sent_to_sign_in(churn_v1, client):
    for response in (client.get(connect_url()), create_token(client)):
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert not ApiToken.objects.exists()


@pytest.mark.parametrize(("name", "status"), [("nope", 404), ("x" * 5000, 404), ("a%00b", 400), ("ch%C3%BCrn", 404)])
def test_hostile_model_names_are_4xx(churn_v1, owner, client_for, name, status):
    client = client_for(owner)
    assert client.get(f"/models/{name}/connect/").status_code == status
    assert client.post(f"/models/{name}/connect/", {"name": "x", "expires_days": 1}).status_code == status
    assert not ApiToken.objects.exists()


def test_other_methods_are_refused(churn_v1, owner, client_for):
    client = client_for(owner)
    assert client.put(connect_url()).status_code == 405
    assert client.delete(connect_url()).status_code == 405


def test_the_model_page_links_to_it_for_the_owner_only(churn_v1, owner, reviewer, client_for):
    link = f'href="{connect_url()}"'
    assert link in client_for(owner).get(churn_v1.model.get_absolute_url()).content.decode()
    assert link not in client_for(reviewer).get(churn_v1.model.get_absolute_url()).content.decode()


# --------------------------------------------------------------------------- the token


def test_the_pipeline_token_is_created_audited_and_shown_once(churn_v1, owner, client_for, last_seq):
    client = client_for(owner)
    start = last_seq()
    response = create_token(client)
    assert response.status_code == 200
    page = response.content.decode()
    raw = html.unescape(re.search(r'<code id="raw-token">(.*?)</code>', page).group(1))
    token = ApiToken.objects.get(token_hash=hash_token(raw))
    assert token.user == owner and token.name == "pipeline: churn"
    assert token.scopes == sorted(str(s) for s in PIPELINE_SCOPES)
    event = AuditEvent.objects.get(seq__gt=start)
    assert event.action == "token.created" and event.source == "ui" and event.actor == owner
    assert raw not in json.dumps(event.after)
    # the snippets carry it on this answer only; the page opened again shows it nowhere
    assert raw in snippet(page, "snippet-curl-batch") and repr(raw) in snippet(page, "snippet-python")
    again = client.get(connect_url()).content.decode()
    assert raw not in again and token.prefix not in again
    assert "MLOPS_PORTAL_TOKEN" in snippet(again, "snippet-curl-batch")


@pytest.mark.parametrize(
    "data",
    [{"expires_days": 0}, {"expires_days": "soon"}, {"expires_days": 5000}, {"name": ""}, {"name": "x" * 101}],
)
def test_a_bad_token_form_is_a_400_and_creates_nothing(churn_v1, owner, client_for, data, last_seq):
    client = client_for(owner)  # signing in is audited too
    start = last_seq()
    response = create_token(client, **data)
    assert response.status_code == 400
    assert not ApiToken.objects.exists() and last_seq() == start
    assert 'id="raw-token"' not in response.content.decode()


def test_an_expiry_beyond_the_installation_maximum_is_refused(churn_v1, owner, client_for, settings):
    settings.TOKEN_MAX_LIFETIME_DAYS = 10
    response = create_token(client_for(owner), expires_days=30)
    assert response.status_code == 400 and "10 days" in response.content.decode()
    assert not ApiToken.objects.exists()


# --------------------------------------------------------------------------- the snippets


def test_the_snippets_carry_the_url_the_model_the_next_version_and_the_schema(churn, owner, client_for, settings):
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "portal.example.com"]
    ModelVersionFactory(model=churn)
    ModelVersionFactory(model=churn, feature_schema=[{"name": "tenure", "type": "numeric"}], task_type="regression")
    page = client_for(owner).get(connect_url(), HTTP_HOST="portal.example.com:8443").content.decode()
    curl_batch = snippet(page, "snippet-curl-batch")
    assert "export MLOPS_PORTAL_URL=http://portal.example.com:8443\n" in curl_batch
    assert '"$MLOPS_PORTAL_URL"/api/v1/models/churn/versions/3/predictions/' in curl_batch
    [record] = curl_body(curl_batch)
    assert record["features"] == {"tenure": 1.0} and record["prediction"] == 12.5 and "score" not in record
    register = curl_body(snippet(page, "snippet-curl-register"))
    assert register["feature_schema"] == [{"name": "tenure", "type": "numeric"}]
    assert register["task_type"] == "regression"
    python = snippet(page, "snippet-python")
    ast.parse(python)
    assert "PortalClient('http://portal.example.com:8443', token=os.environ[\"MLOPS_PORTAL_TOKEN\"])" in python
    assert "MODEL = 'churn'" in python and "'tenure'" in python
    cli = snippet(page, "snippet-cli")
    assert "python -m mlops_portal_client predictions churn 3 predictions.jsonl" in cli
    assert "register churn " in cli and "--task-type regression" in cli


def test_a_model_without_versions_gets_a_placeholder_schema_and_version_1(owner, team, client_for):
    RegisteredModelFactory(name="fresh", owner=owner, team=team)
    page = client_for(owner).get(connect_url("fresh")).content.decode()
    assert "placeholder feature schema" in page
    assert "/api/v1/models/fresh/versions/1/predictions/" in snippet(page, "snippet-curl-batch")
    assert curl_body(snippet(page, "snippet-curl-register"))["feature_schema"] == PLACEHOLDER_SCHEMA


def test_the_snippets_bodies_are_accepted_by_the_services_they_call(churn, owner, client_for):
    """Awkward feature names (quotes, spaces, a sensitive attribute) still give snippets whose
    registration and batch the real services accept, for the version the snippet names."""
    schema = [
        {"name": "it's", "type": "numeric"},
        {"name": "plan type", "type": "categorical"},
        {"name": "sex", "type": "categorical", "sensitive": True, "use": "monitoring"},
    ]
    ModelVersionFactory(model=churn, feature_schema=schema)
    page = client_for(owner).get(connect_url()).content.decode()
    registered = version_create(
        model=churn, actor=owner, context=CLI, **curl_body(snippet(page, "snippet-curl-register"))
    )
    assert registered.version == 2 and registered.feature_schema == schema
    batch = snippet(page, "snippet-curl-batch")
    assert "/versions/2/predictions/" in batch
    body = json.dumps(curl_body(batch)).encode()
    summary = predictions_ingest(
        version=registered, body=body, content_type="application/json", actor=owner, context=CLI
    )
    assert summary["rows"] == 1
    stored = Prediction.objects.get(version=registered)
    assert stored.prediction_id == "curl-example-1" and stored.features["it's"] == 1.0
    assert ModelVersion.objects.filter(model=churn).count() == 2


def test_the_snippets_are_escaped_in_the_page(churn, owner, client_for):
    ModelVersionFactory(model=churn, feature_schema=[{"name": "<script>alert(1)</script>", "type": "numeric"}])
    page = client_for(owner).get(connect_url()).content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "<script>alert(1)</script>" in snippet(page, "snippet-python")


def test_a_latest_version_without_a_schema_gets_the_newest_schema_an_older_version_has(churn, owner, client_for):
    ModelVersionFactory(model=churn, feature_schema=[{"name": "old", "type": "numeric"}])
    ModelVersionFactory(model=churn, feature_schema=[{"name": "tenure", "type": "numeric"}])
    ModelVersionFactory(model=churn, feature_schema=[])  # v3: registered without a schema
    page = client_for(owner).get(connect_url()).content.decode()
    assert "placeholder feature schema" not in page and "feature schema of version 2" in page
    register = curl_body(snippet(page, "snippet-curl-register"))
    assert register["feature_schema"] == [{"name": "tenure", "type": "numeric"}]
    assert "/api/v1/models/churn/versions/4/predictions/" in snippet(page, "snippet-curl-batch")


def test_the_token_forms_expiry_is_bounded_by_the_installation_maximum(churn_v1, owner, client_for, settings):
    settings.TOKEN_MAX_LIFETIME_DAYS = 10
    client = client_for(owner)
    field = client.get(connect_url()).context["form"]["expires_days"]
    assert field.field.max_value == 10 and field.value() == 10
    response = create_token(client, expires_days=30)
    assert response.status_code == 400
    assert response.context["form"].errors["expires_days"] and "expires_at" not in response.content.decode()
    assert not ApiToken.objects.exists()
    assert create_token(client, expires_days=10).status_code == 200 and ApiToken.objects.count() == 1
