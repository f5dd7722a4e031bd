import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from registry.models import ApiToken, AuditEvent
from registry.services.audit import CLI
from registry.services.tokens import hash_token, token_create, token_revoke

ROLES = ["owner", "reviewer", "auditor", "admin", "outsider"]


def bearer(raw):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_create_token_prints_only_the_token(owner, last_seq):
    start = last_seq()
    out, err = io.StringIO(), io.StringIO()
    call_command("create_token", "owner", "--scope", "models:read", "--scope", "models:write", stdout=out, stderr=err)
    raw = out.getvalue().strip()
    assert out.getvalue() == raw + "\n" and raw.startswith("mlp_") and " " not in raw
    assert err.getvalue() == ""
    token = ApiToken.objects.get(token_hash=hash_token(raw))
    assert token.user == owner and token.scopes == ["models:read", "models:write"] and token.expires_at is None
    event = AuditEvent.objects.get(seq__gt=start)
    assert event.action == "token.created" and event.source == "cli"
    assert raw not in str(event.after)
    assert bearer(raw).get("/api/v1/models/").status_code == 200


def test_create_token_with_name_and_expiry(owner):
    out = io.StringIO()
    call_command("create_token", "owner", "--scope", "models:read", "--name", "ci", "--expires-days", "7", stdout=out)
    token = ApiToken.objects.get(token_hash=hash_token(out.getvalue().strip()))
    assert token.name == "ci"
    assert timedelta(days=6, hours=23) < token.expires_at - timezone.now() <= timedelta(days=7)


@pytest.mark.parametrize(
    "args",
    [
        ["nobody", "--scope", "models:read"],
        ["owner", "--scope", "models:delete"],
        ["owner"],
        ["owner", "--scope", "models:read", "--expires-days", "0"],
    ],
)
def test_create_token_refuses_bad_arguments_and_writes_nothing(owner, args, last_seq):
    start = last_seq()
    out = io.StringIO()
    with pytest.raises((CommandError, SystemExit)):
        call_command("create_token", *args, stdout=out, stderr=io.StringIO())
    assert out.getvalue() == ""
    assert not ApiToken.objects.exists() and last_seq() == start


def test_expired_token_is_refused(owner, churn):
    token, raw = token_create(
        user=owner,
        name="t",
        scopes=["models:read"],
        expires_at=timezone.now() + timedelta(seconds=60),
        actor=owner,
        context=CLI,
    )
    assert bearer(raw).get("/api/v1/models/").status_code == 200
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = bearer(raw).get("/api/v1/models/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_revoked_token_is_refused(owner, churn):
    token, raw = token_create(user=owner, name="t", scopes=["models:read"], expires_at=None, actor=owner, context=CLI)
    token_revoke(token=token, actor=owner, context=CLI)
    assert bearer(raw).get("/api/v1/models/").status_code == 401


def test_wrong_or_malformed_tokens_are_refused(owner):
    assert bearer("mlp_not-a-real-token").get("/api/v1/models/").status_code == 401
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer two parts")
    assert client.get("/api/v1/models/").status_code == 401


def test_inactive_users_tokens_are_refused(owner):
    _, raw = token_create(user=owner, name="t", scopes=["models:read"], expires_at=None, actor=owner, context=CLI)
    owner.is_active = False
    owner.save()
    assert bearer(raw).get("/api/v1/models/").status_code == 401


def test_token_use_records_last_used(owner):
    token, raw = token_create(user=owner, name="t", scopes=["models:read"], expires_at=None, actor=owner, context=CLI)
    assert token.last_used_at is None
    bearer(raw).get("/api/v1/models/")
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_tokens_are_stored_hashed(owner):
    token, raw = token_create(user=owner, name="t", scopes=["models:read"], expires_at=None, actor=owner, context=CLI)
    assert token.token_hash == hash_token(raw) and raw not in (token.token_hash, token.prefix)


# --- the tokens page --------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_every_role_can_create_a_token_and_sees_it_once(roles, role, client_for, audit_actions, last_seq):
    client = client_for(roles[role])
    start = last_seq()
    response = client.post(
        reverse("registry:token_list"), {"name": "laptop", "scopes": ["models:read"], "expires_days": "30"}
    )
    assert response.status_code == 200
    raw = response.context["raw_token"]
    assert raw and raw in response.content.decode()
    assert response["Cache-Control"].startswith("max-age=0") or "no-cache" in response["Cache-Control"]
    token = ApiToken.objects.get(user=roles[role])
    assert token.token_hash == hash_token(raw) and token.scopes == ["models:read"]
    assert audit_actions(start) == ["token.created"]
    again = client.get(reverse("registry:token_list")).content.decode()
    assert raw not in again and token.prefix in again


def test_token_page_lists_only_my_tokens(owner, reviewer, client_for):
    token_create(
        user=reviewer, name="reviewers-token", scopes=["models:read"], expires_at=None, actor=reviewer, context=CLI
    )
    token_create(user=owner, name="owners-token", scopes=["models:read"], expires_at=None, actor=owner, context=CLI)
    html = client_for(owner).get(reverse("registry:token_list")).content.decode()
    assert "owners-token" in html and "reviewers-token" not in html


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"name": "", "scopes": ["models:read"]}, "name"),
        ({"name": "x", "scopes": []}, "scopes"),
        ({"name": "x", "scopes": ["models:delete"]}, "scopes"),
        ({"name": "x", "scopes": ["models:read"], "expires_days": "0"}, "expires_days"),
        ({"name": "x", "scopes": ["models:read"], "expires_days": "soon"}, "expires_days"),
        ({"name": "x" * 101, "scopes": ["models:read"]}, "name"),
    ],
)
def test_bad_token_form_input_is_a_400_and_writes_nothing(owner, client_for, last_seq, data, field):
    client = client_for(owner)
    start = last_seq()
    response = client.post(reverse("registry:token_list"), data)
    assert response.status_code == 400
    assert response.context["form"].errors[field]
    assert response.context["raw_token"] is None
    assert not ApiToken.objects.exists() and last_seq() == start


def test_owner_revokes_their_token(owner, client_for, audit_actions, last_seq):
    token, raw = token_create(user=owner, name="t", scopes=["models:read"], expires_at=None, actor=owner, context=CLI)
    client = client_for(owner)
    start = last_seq()
    response = client.post(reverse("registry:token_revoke", args=[token.pk]))
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert audit_actions(start) == ["token.revoked"]
    assert bearer(raw).get("/api/v1/models/").status_code == 401


@pytest.mark.parametrize("role", ["reviewer", "auditor", "admin", "outsider"])
def test_nobody_can_revoke_someone_elses_token(roles, role, owner, client_for, last_seq):
    token, _ = token_create(user=owner, name="t", scopes=["models:read"], expires_at=None, actor=owner, context=CLI)
    client = client_for(roles[role])
    start = last_seq()
    assert client.post(reverse("registry:token_revoke", args=[token.pk])).status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None and last_seq() == start


def test_revoke_needs_post(owner, client_for):
    token, _ = token_create(user=owner, name="t", scopes=["models:read"], expires_at=None, actor=owner, context=CLI)
    assert client_for(owner).get(reverse("registry:token_revoke", args=[token.pk])).status_code == 405


def test_token_page_needs_login(db, client):
    response = client.get(reverse("registry:token_list"))
    assert response.status_code == 302 and "/login/" in response["Location"]
