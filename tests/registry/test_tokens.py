import io
import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from registry.choices import TokenScope
from registry.models import ApiToken, AuditEvent, PromotionPolicy
from registry.services.audit import CLI
from registry.services.tokens import hash_token, token_create, token_revoke
from tests.factories import UserFactory

ROLES = ["owner", "reviewer", "auditor", "admin", "outsider"]


def read_token(user, name: str = "t", expires_at=None):
    """A token of ``user`` with the models:read scope, by default with no expiry: (token, raw secret)."""
    return token_create(user=user, name=name, scopes=["models:read"], expires_at=expires_at, actor=user, context=CLI)


def admin_action(client, changelist: str, action: str, pk):
    """Run an admin changelist action (``changelist`` as in ``admin:<changelist>``) on one object."""
    return client.post(reverse(f"admin:{changelist}"), {"action": action, "_selected_action": [pk]})


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
    assert token.user == owner and token.scopes == ["models:read", "models:write"]
    assert timedelta(days=364) < token.expires_at - timezone.now() <= timedelta(days=365)  # TOKEN_MAX_LIFETIME_DAYS
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
    token, raw = read_token(owner, expires_at=timezone.now() + timedelta(seconds=60))
    assert bearer(raw).get("/api/v1/models/").status_code == 200
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = bearer(raw).get("/api/v1/models/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_revoked_token_is_refused(owner, churn):
    token, raw = read_token(owner)
    token_revoke(token=token, actor=owner, context=CLI)
    assert bearer(raw).get("/api/v1/models/").status_code == 401


def test_wrong_or_malformed_tokens_are_refused(owner):
    assert bearer("mlp_not-a-real-token").get("/api/v1/models/").status_code == 401
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer two parts")
    assert client.get("/api/v1/models/").status_code == 401


def test_inactive_users_tokens_are_refused(owner):
    _, raw = read_token(owner)
    owner.is_active = False
    owner.save()
    assert bearer(raw).get("/api/v1/models/").status_code == 401


def test_token_use_records_last_used(owner):
    token, raw = read_token(owner)
    assert token.last_used_at is None
    bearer(raw).get("/api/v1/models/")
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_tokens_are_stored_hashed(owner):
    token, raw = read_token(owner)
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
    token, raw = read_token(owner)
    client = client_for(owner)
    start = last_seq()
    response = client.post(reverse("registry:token_revoke", args=[token.pk]))
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert audit_actions(start) == ["token.revoked"]
    assert bearer(raw).get("/api/v1/models/").status_code == 401


@pytest.mark.parametrize("role", ["reviewer", "auditor", "outsider"])
def test_nobody_but_an_admin_can_revoke_someone_elses_token(roles, role, owner, client_for, last_seq):
    token, _ = read_token(owner)
    client = client_for(roles[role])
    start = last_seq()
    assert client.post(reverse("registry:token_revoke", args=[token.pk])).status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None and last_seq() == start


def test_revoke_needs_post(owner, client_for):
    token, _ = read_token(owner)
    assert client_for(owner).get(reverse("registry:token_revoke", args=[token.pk])).status_code == 405


def test_token_page_needs_login(db, client):
    response = client.get(reverse("registry:token_list"))
    assert response.status_code == 302 and "/login/" in response["Location"]


# --- access: admins revoke anyone's token, lifetime limit, last use, deactivation, service accounts


def test_an_admin_sees_and_revokes_another_users_token_on_the_tokens_page(owner, admin_user, client_for, last_seq):
    token, _ = read_token(owner, "ci")
    client = client_for(admin_user)
    page = client.get(reverse("registry:token_list"))
    assert page.context["all_users"] and token in list(page.context["tokens"])
    start = last_seq()
    assert client.post(reverse("registry:token_revoke", args=[token.pk])).status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    event = AuditEvent.objects.get(seq__gt=start)
    assert (event.action, event.actor_name, event.after["user"]) == ("token.revoked", "admin", "owner")


def test_an_admin_revokes_another_users_token_in_the_admin(owner, admin_user, client_for, last_seq):
    token, raw = read_token(owner, "ci")
    client = client_for(admin_user)
    start = last_seq()
    response = admin_action(client, "registry_apitoken_changelist", "revoke", token.pk)
    assert response.status_code == 302
    assert bearer(raw).get("/api/v1/models/").status_code == 401
    event = AuditEvent.objects.get(seq__gt=start)
    assert event.action == "token.revoked" and event.actor_name == "admin" and event.after["reason"]


def test_a_token_may_not_outlive_the_maximum_lifetime(owner, settings):
    from django.core.exceptions import ValidationError

    settings.TOKEN_MAX_LIFETIME_DAYS = 30
    with pytest.raises(ValidationError, match="within 30 days"):
        read_token(owner, expires_at=timezone.now() + timedelta(days=31))
    token, _ = read_token(owner)
    assert token.expires_at - timezone.now() <= timedelta(days=30)


def test_last_use_shows_time_and_the_address_a_trusted_proxy_forwarded(owner, client_for, settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    token, raw = read_token(owner, "ci")
    forged = bearer(raw).get("/api/v1/models/", HTTP_X_FORWARDED_FOR="6.6.6.6", REMOTE_ADDR="198.51.100.20")
    assert forged.status_code == 200
    token.refresh_from_db()
    assert token.last_used_ip == "198.51.100.20" and token.last_used_at is not None  # not trusted: the peer
    proxied = bearer(raw).get("/api/v1/models/", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.5", REMOTE_ADDR="10.1.2.3")
    assert proxied.status_code == 200
    token.refresh_from_db()
    assert token.last_used_ip == "203.0.113.5"  # the proxy's own hop; the client's claim before it is ignored
    page = client_for(owner).get(reverse("registry:token_list")).content.decode()
    assert "203.0.113.5" in page


def test_deactivating_a_user_revokes_all_their_tokens_at_once(owner, admin_user, client_for, last_seq):
    _, raw1 = read_token(owner, "a")
    _, raw2 = read_token(owner, "b")
    client = client_for(admin_user)
    start = last_seq()
    response = admin_action(client, "auth_user_changelist", "deactivate", owner.pk)
    assert response.status_code == 302
    assert not ApiToken.objects.filter(user=owner, revoked_at__isnull=True).exists()
    assert bearer(raw1).get("/api/v1/models/").status_code == 401
    assert bearer(raw2).get("/api/v1/models/").status_code == 401
    actions = list(AuditEvent.objects.filter(seq__gt=start).order_by("seq").values_list("action", flat=True))
    assert actions == ["token.revoked", "token.revoked", "user.deactivated"]
    owner.is_active = True
    owner.save()
    assert bearer(raw1).get("/api/v1/models/").status_code == 401  # revoked, not merely suspended


def test_a_deactivated_service_accounts_token_gets_401(team, churn, admin_user, client_for, last_seq):
    from registry.services.accounts import account_deactivate, service_account_create

    account = service_account_create(name="nightly", team=team, actor=admin_user, context=CLI)
    assert account.user.username == "svc-nightly" and not account.user.has_usable_password()
    _, raw = token_create(
        user=account.user, name="pipeline", scopes=["models:read"], expires_at=None, actor=admin_user, context=CLI
    )
    listed = bearer(raw).get("/api/v1/models/").json()
    assert [m["name"] for m in listed["results"]] == ["churn"]  # sees its team's models
    start = last_seq()
    assert account_deactivate(user=account.user, actor=admin_user, context=CLI) == 1
    assert bearer(raw).get("/api/v1/models/").status_code == 401
    actions = list(AuditEvent.objects.filter(seq__gt=start).order_by("seq").values_list("action", flat=True))
    assert actions == ["token.revoked", "service_account.deactivated"]


def test_service_accounts_are_created_in_the_admin_for_a_team(team, admin_user, client_for, last_seq):
    from registry.models import ServiceAccount

    client = client_for(admin_user)
    start = last_seq()
    response = client.post(
        reverse("admin:registry_serviceaccount_add"), {"name": "scorer", "team": team.pk, "description": "batch"}
    )
    assert response.status_code == 302
    account = ServiceAccount.objects.get(user__username="svc-scorer")
    assert account.team == team and team.members.filter(pk=account.user.pk).exists()
    event = AuditEvent.objects.get(seq__gt=start, action="service_account.created")
    assert event.actor_name == "admin" and event.after["team"] == team.slug


def test_token_authentication_reads_token_user_and_roles_in_one_statement_on_postgres(
    reviewer, django_assert_num_queries
):
    from django.db import connection

    from registry.rules import is_auditor, is_reviewer, sees_all_models
    from registry.services.tokens import token_authenticate

    token, raw = token_create(
        user=reviewer, name="t", scopes=["models:read"], expires_at=None, actor=reviewer, context=CLI
    )
    with django_assert_num_queries(2):  # the lookup, and the last use (written once a minute)
        found = token_authenticate(raw, ip="192.0.2.1")
    statements = 1 if connection.vendor == "postgresql" else 2  # SQLite: the group names when first asked
    with django_assert_num_queries(statements):
        found = token_authenticate(raw, ip="192.0.2.1")
        assert found.pk == token.pk and found.user == reviewer
        assert is_reviewer(found.user) and sees_all_models(found.user) and not is_auditor(found.user)


# --- what the token form offers -----------------------------------------------------------------

READ = {"models:read", "monitoring:read"}
OFFERED = {
    "owner": READ | {"models:write", "monitoring:write", "promotions:request", "incidents:write", "reviews:write"},
    "reviewer": READ | {"promotions:request", "promotions:review", "step-up:sensitive", "reviews:write"},
    "auditor": READ | {"audit:read"},
    "privacy": READ | {"audit:read", "step-up:sensitive", "privacy:write"},
    "admin": set(TokenScope.values),
    "outsider": READ,
}


@pytest.mark.parametrize("role", sorted(OFFERED))
def test_the_token_form_offers_only_the_scopes_the_users_roles_can_use(roles, role, churn, client_for):
    # every scope was offered to every role: an auditor could ask for models:write
    page = client_for(roles[role]).get(reverse("registry:token_list"))
    assert {value for value, _ in page.context["form"].fields["scopes"].choices} == OFFERED[role]
    offered = set(re.findall(r'name="scopes" value="([^"]+)"', page.content.decode()))
    assert offered == OFFERED[role]


def test_a_member_of_a_policys_approver_group_is_offered_the_review_scope(db, client_for):
    PromotionPolicy.objects.update_or_create(risk_tier="high", defaults={"approver_group": "model-risk"})
    validator = UserFactory(username="validator")
    validator.groups.add(Group.objects.create(name="model-risk"))
    page = client_for(validator).get(reverse("registry:token_list"))
    assert "promotions:review" in dict(page.context["form"].fields["scopes"].choices)


def test_a_scope_the_users_roles_cannot_use_is_a_400_naming_it(auditor, client_for, last_seq):
    client = client_for(auditor)
    start = last_seq()
    response = client.post(
        reverse("registry:token_list"),
        {"name": "x", "scopes": ["models:read", "models:write", "promotions:review"], "expires_days": "30"},
    )
    assert response.status_code == 400
    assert response.context["form"].errors["scopes"] == ["models:write is not a scope your roles can use."]
    assert "models:write is not a scope your roles can use." in response.content.decode()
    assert not ApiToken.objects.exists() and last_seq() == start


def test_an_empty_expiry_gives_the_installations_maximum_and_the_form_says_so(owner, client_for, settings):
    # the help text said "Leave empty for a token that never expires"; the token expired in 365 days
    settings.TOKEN_MAX_LIFETIME_DAYS = 30
    client = client_for(owner)
    page = client.get(reverse("registry:token_list")).content.decode()
    assert "never expires" not in page and "Leave empty for this installation&#x27;s maximum: 30 days." in page
    response = client.post(reverse("registry:token_list"), {"name": "ci", "scopes": ["models:read"]})
    assert response.status_code == 200
    lifetime = ApiToken.objects.get().expires_at - timezone.now()
    assert timedelta(days=29, hours=23) < lifetime <= timedelta(days=30)
    too_long = client.post(
        reverse("registry:token_list"), {"name": "x", "scopes": ["models:read"], "expires_days": "31"}
    )
    assert too_long.status_code == 400 and too_long.context["form"].errors["expires_days"]
    assert ApiToken.objects.count() == 1
