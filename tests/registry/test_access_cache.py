"""API tokens and sessions' users cached under the ACCESS revision (registry/cache.py): a cached
token or user costs one small read, and every change to what authenticating reads — revocation,
deactivation, a password, a group or team membership, a group's name — is obeyed by the next
request after its commit.

These tests commit for real (transactional database), as requests do: the revision is bumped
after the commit, which a test inside a rolled-back transaction would never reach."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from mlops_portal import clock
from registry.cache import ACCESS
from registry.models import ApiToken, InventoryRevision
from registry.rules import AUDITOR_GROUP
from registry.services.audit import CLI
from registry.services.tokens import token_authenticate, token_create, token_revoke
from tests.factories import RegisteredModelFactory, TeamFactory, UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

AUDIT = reverse("api:audit_list")
AUDIT_PAGE = reverse("registry:audit_log")


def access_revision() -> int:
    return InventoryRevision.objects.filter(pk=ACCESS).values_list("value", flat=True).first() or 0


@pytest.fixture
def auditor(db):
    user = UserFactory(username="ada")
    user.groups.add(Group.objects.get_or_create(name=AUDITOR_GROUP)[0])
    return user


def bearer(user, scopes=("audit:read",)) -> tuple[APIClient, str]:
    _, raw = token_create(user=user, name="t", scopes=list(scopes), expires_at=None, actor=user, context=CLI)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client, raw


def test_a_cached_token_costs_one_small_read(auditor):
    _, raw = bearer(auditor)
    assert token_authenticate(raw, ip="10.0.0.1") is not None  # loads it, writes its last use
    with CaptureQueriesContext(connection) as queries:
        token = token_authenticate(raw, ip="10.0.0.1")
    assert token is not None and token.user == auditor
    assert len(queries) == 1 and "registry_inventoryrevision" in queries[0]["sql"]
    assert "registry_apitoken" not in queries[0]["sql"]


def test_an_unknown_secret_is_never_cached(auditor):
    with CaptureQueriesContext(connection) as queries:
        assert token_authenticate("mlp_nope") is None
        assert token_authenticate("mlp_nope") is None
    assert sum("registry_apitoken" in q["sql"] for q in queries) == 2


def test_revocation_is_obeyed_by_the_next_request(auditor):
    client, raw = bearer(auditor)
    assert client.get(AUDIT).status_code == 200
    assert client.get(AUDIT).status_code == 200  # served from the cache
    before = access_revision()
    token_revoke(token=ApiToken.objects.get(user=auditor), actor=auditor, context=CLI)
    assert access_revision() == before + 1
    assert client.get(AUDIT).status_code == 401


def test_deactivation_is_obeyed_by_the_next_request(auditor):
    client, _ = bearer(auditor)
    assert client.get(AUDIT).status_code == 200
    auditor.is_active = False
    auditor.save(update_fields=["is_active"])
    assert client.get(AUDIT).status_code == 401


def test_losing_a_role_is_obeyed_by_the_next_request(auditor):
    client, _ = bearer(auditor)
    assert client.get(AUDIT).status_code == 200
    auditor.groups.clear()
    assert client.get(AUDIT).status_code == 403


def test_renaming_the_group_is_obeyed_by_the_next_request(auditor):
    client, _ = bearer(auditor)
    assert client.get(AUDIT).status_code == 200
    group = Group.objects.get(name=AUDITOR_GROUP)
    group.name = "former-auditors"
    group.save()
    assert client.get(AUDIT).status_code == 403


def test_joining_a_team_is_obeyed_by_the_next_request():
    owner = UserFactory(username="olive")
    team = TeamFactory(slug="risk")
    RegisteredModelFactory(name="churn", owner=UserFactory(username="other"), team=team)
    client, _ = bearer(owner, scopes=("models:read",))
    url = reverse("api:model-detail", args=["churn"])
    assert client.get(url).status_code == 404  # outsiders do not learn the model exists
    team.members.add(owner)
    assert client.get(url).status_code == 200


def test_deleting_the_users_only_team_is_obeyed_by_the_next_request():
    # the memberships go by cascade, which sends no m2m_changed: the team's own deletion bumps
    owner = UserFactory(username="olive")
    team = TeamFactory(slug="risk")
    team.members.add(owner)
    _, raw = bearer(owner, scopes=("models:read",))
    assert token_authenticate(raw).user.in_a_team is True
    before = access_revision()
    team.delete()
    assert access_revision() == before + 1
    assert token_authenticate(raw).user.in_a_team is False


def test_expiry_is_checked_on_a_cached_token(auditor):
    client, raw = bearer(auditor)
    assert client.get(AUDIT).status_code == 200
    expires_at = ApiToken.objects.get(user=auditor).expires_at
    assert token_authenticate(raw) is not None  # cached now
    with clock.at(expires_at + timedelta(seconds=1)):
        assert token_authenticate(raw) is None


def test_logins_do_not_empty_the_token_cache(auditor):
    bearer(auditor)
    before = access_revision()
    auditor.last_login = timezone.now()
    auditor.save(update_fields=["last_login"])
    assert access_revision() == before


# --------------------------------------------------------------------------- sessions


def test_a_sessions_cached_user_costs_one_small_read(auditor, client_for):
    client = client_for(auditor)
    assert client.get(AUDIT_PAGE).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        assert client.get(AUDIT_PAGE).status_code == 200
    assert not [q["sql"] for q in queries if 'FROM "auth_user"' in q["sql"]]


def test_a_password_change_ends_the_other_sessions(auditor, client_for):
    client = client_for(auditor)
    assert client.get(AUDIT_PAGE).status_code == 200
    auditor.set_password("a new long passphrase")
    auditor.save(update_fields=["password"])
    assert client.get(AUDIT_PAGE).status_code == 302  # to the login page


def test_deactivation_ends_the_session(auditor, client_for):
    client = client_for(auditor)
    assert client.get(AUDIT_PAGE).status_code == 200
    auditor.is_active = False
    auditor.save(update_fields=["is_active"])
    assert client.get(AUDIT_PAGE).status_code == 302


def test_a_sessions_lost_role_is_obeyed_by_the_next_request(auditor, client_for):
    client = client_for(auditor)
    assert client.get(AUDIT_PAGE).status_code == 200
    auditor.groups.clear()
    assert client.get(AUDIT_PAGE).status_code == 403
