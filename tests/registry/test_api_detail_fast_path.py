"""The API's model detail and token authentication read in one statement each on PostgreSQL.

The fast path must answer byte for byte what ``ModelDetailSerializer`` answers for the same
model, show only what the user may see, and see every write at once. (The detail cache of
registry/cache.py stands aside here: these tests' writes are uncommitted, and a transaction
always sees its own writes; tests/registry/test_inventory_cache.py covers the cache.)
On SQLite the same tests run through the ORM path.
"""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from monitoring.models import HealthStatus
from registry.api.inventory import ModelDetailSerializer
from registry.choices import Stage
from registry.models import ApiToken, ModelVersion
from registry.rules import is_auditor, is_reviewer, sees_all_models
from registry.selectors.inventory import model_detail_row, model_get
from registry.services.audit import CLI
from registry.services.tokens import token_authenticate, token_create
from tests.factories import ModelVersionFactory, RegisteredModelFactory, TeamFactory

ON_POSTGRES = connection.vendor == "postgresql"


def _reference(user, name) -> bytes:
    return JSONRenderer().render(ModelDetailSerializer(model_get(user=user, name=name)).data)


@pytest.fixture
def models(owner, team):
    """A full model (tags, versions in every stage, health with reasons), a bare one, a draft-only one."""
    full = RegisteredModelFactory(name="full", owner=owner, team=team, description="  ", limitations="")
    for tag in ("zeta", "alpha", "pii"):
        full.tags.create(name=tag)
    for stage in (Stage.ARCHIVED, Stage.PRODUCTION, Stage.STAGING, Stage.NONE):
        ModelVersionFactory(model=full, stage=stage)
    ModelVersion.objects.filter(model=full, version=1).update(
        created_at=timezone.now().replace(microsecond=0)  # isoformat drops zero microseconds
    )
    HealthStatus.objects.create(
        model=full,
        status="warning",
        reasons=[{"kind": "drift", "severity": "warning", "message": "psi 0.21 > 0.2", "value": 0.1 + 0.2}],
        computed_at=timezone.now(),
    )
    bare = RegisteredModelFactory(name="bare", owner=owner, team=team, retrain_cadence_days=30)
    staged = RegisteredModelFactory(
        name="staged", owner=owner, team=team, primary_metric_higher_is_better=False, ai_act_category="Annex III"
    )
    ModelVersionFactory(model=staged, stage=Stage.STAGING)
    return [full, bare, staged]


@pytest.mark.parametrize("role", ["owner", "reviewer", "admin", "auditor"])
def test_detail_answers_exactly_what_the_serializer_answers(roles, role, models, api_client_for):
    user = roles[role]
    client = api_client_for(user, scopes=["models:read"])
    for model in models:
        response = client.get(f"/api/v1/models/{model.name}/")
        assert response.status_code == 200
        assert response.content == _reference(user, model.name), model.name


def test_detail_row_is_one_statement_on_postgres(owner, models, django_assert_num_queries):
    sees_all_models(owner)  # group names are read once per request (with the token, for the API)
    with django_assert_num_queries(1 if ON_POSTGRES else 0):
        row = model_detail_row(user=owner, name="full")
    if ON_POSTGRES:
        assert row["tags"] == ["alpha", "pii", "zeta"]
        assert [v[0] for v in row["versions"]] == [4, 3, 2, 1]
        assert (row["production_version"], row["latest_version"], row["version_count"]) == (2, 4, 4)
    else:
        assert row is None


def test_detail_request_makes_two_statements_on_postgres(owner, models, api_client_for):
    client = api_client_for(owner, scopes=["models:read"])
    client.get("/api/v1/models/full/")  # the first use writes last_used_at
    with CaptureQueriesContext(connection) as captured:
        assert client.get("/api/v1/models/full/").status_code == 200
    # The request's transaction is a savepoint inside the test's: not a statement of ours.
    statements = [q["sql"] for q in captured.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]
    assert len(statements) == (2 if ON_POSTGRES else 5), statements


def test_team_member_sees_the_detail_and_outsider_gets_404(owner, outsider, models, api_client_for):
    colleague = api_client_for(TeamFactory(slug="risk-analytics").members.create(username="colleague"))
    assert colleague.get("/api/v1/models/full/").status_code == 200
    assert api_client_for(outsider).get("/api/v1/models/full/").status_code == 404
    other_team = TeamFactory(name="Other", slug="other")
    hidden = RegisteredModelFactory(name="hidden", team=other_team)
    assert api_client_for(owner).get(f"/api/v1/models/{hidden.name}/").status_code == 404
    assert api_client_for(owner).get("/api/v1/models/no-such-model/").status_code == 404


def test_model_owned_but_in_another_team_is_visible_to_its_owner(owner, api_client_for):
    mine = RegisteredModelFactory(name="mine", owner=owner, team=TeamFactory(name="Elsewhere", slug="elsewhere"))
    response = api_client_for(owner).get(f"/api/v1/models/{mine.name}/")
    assert response.status_code == 200
    assert response.content == _reference(owner, mine.name)


def test_every_write_shows_in_the_next_detail(owner, reviewer, models, api_client_for):
    client = api_client_for(reviewer, scopes=["models:read"])
    full = models[0]
    before = client.get("/api/v1/models/full/").json()
    ModelVersion.objects.filter(model=full, stage=Stage.PRODUCTION).update(stage=Stage.ARCHIVED)
    ModelVersion.objects.filter(model=full, version=4).update(stage=Stage.PRODUCTION)
    ModelVersionFactory(model=full)
    full.tags.remove(*full.tags.filter(name="zeta"))
    HealthStatus.objects.filter(model=full).update(status="critical", reasons=[])
    full.owner.username = "renamed"
    full.owner.save()
    after = client.get("/api/v1/models/full/").json()
    assert before["production_version"] == 2
    assert (after["production_version"], after["latest_version"], after["version_count"]) == (4, 5, 5)
    assert after["tags"] == ["alpha", "pii"]
    assert after["health"]["status"] == "critical" and after["health"]["reasons"] == []
    assert after["owner"] == "renamed"
    assert client.get("/api/v1/models/full/").content == _reference(reviewer, "full")


def test_token_authentication_reads_the_user_and_groups(reviewer, django_assert_max_num_queries):
    token, raw = token_create(
        user=reviewer, name="t", scopes=["models:read"], expires_at=None, actor=reviewer, context=CLI
    )
    with django_assert_max_num_queries(2):  # the lookup, and last_used_at written once a minute
        found = token_authenticate(raw)
    assert found.pk == token.pk and found.scopes == ["models:read"]
    assert found.user == reviewer and found.user.username == "reviewer" and found.user.is_active
    with django_assert_max_num_queries(1 if ON_POSTGRES else 2):  # group names come with the token
        found = token_authenticate(raw)
        assert is_reviewer(found.user) and sees_all_models(found.user) and not is_auditor(found.user)


def test_revoked_expired_unknown_tokens_and_inactive_users_are_refused(owner):
    token, raw = token_create(user=owner, name="t", scopes=["models:read"], expires_at=None, actor=owner, context=CLI)
    assert token_authenticate(raw) is not None
    assert token_authenticate(raw + "x") is None
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert token_authenticate(raw) is None
    ApiToken.objects.filter(pk=token.pk).update(expires_at=None, revoked_at=timezone.now())
    assert token_authenticate(raw) is None
    ApiToken.objects.filter(pk=token.pk).update(revoked_at=None)
    owner.is_active = False
    owner.save()
    assert token_authenticate(raw) is None
