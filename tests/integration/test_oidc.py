"""Single sign-on against a real OpenID Connect provider process (tests/oidc_provider, started on
127.0.0.1 by tests/oidc_harness.py): provisioning, roles and teams from the groups claim,
removal at the next sign-in, refused ID tokens, state and nonce, step-up through the provider.
Nothing here is mocked: the portal fetches the discovery document, exchanges the code with
PKCE, fetches the JWKS and verifies the RS256 signature over HTTP."""

from __future__ import annotations

import base64
import json
import secrets
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import SuspiciousOperation
from django.test import Client

from registry.models import AuditEvent, ExternalIdentity, GroupMapping
from registry.rules import AUDITOR_GROUP, REVIEWER_GROUP
from registry.services.accounts import group_mapping_save
from registry.services.audit import CLI
from tests.oidc_harness import (  # noqa: F401  (fixtures)
    CLIENT_ID,
    TEST_CALLBACK,
    oidc_provider,
    provider_sign_in,
    sso_login,
    sso_settings,
)

pytestmark = pytest.mark.integration
User = get_user_model()
PASSWORD = "provider-pass-123"


@pytest.fixture
def mapping(db, team, admin_user):
    reviewer, _ = Group.objects.get_or_create(name=REVIEWER_GROUP)
    auditor, _ = Group.objects.get_or_create(name=AUDITOR_GROUP)
    for claim, kwargs in {
        "ml-reviewers": {"group": reviewer},
        "risk-audit": {"group": auditor},
        "team-risk": {"team": team},
        "portal-admins": {"grants_admin": True},
    }.items():
        group_mapping_save(mapping=GroupMapping(claim_value=claim, **kwargs), actor=admin_user, context=CLI)


def _roles(user) -> tuple[list[str], list[str], bool]:
    user = User.objects.get(pk=user.pk)
    return (
        sorted(user.groups.values_list("name", flat=True)),
        sorted(user.teams.values_list("slug", flat=True)),
        user.is_superuser,
    )


def test_first_login_provisions_and_maps_groups_to_roles_and_teams(sso_settings, oidc_provider, mapping, last_seq):
    oidc_provider.user("alice", PASSWORD, ["ml-reviewers", "team-risk", "unmapped"])
    start = last_seq()
    client = Client()
    response = sso_login(client, "alice", PASSWORD)
    assert response.status_code == 302 and response["Location"] == "/models/"
    user = User.objects.get(username="alice")
    assert client.session[SESSION_KEY] == str(user.pk) and not user.has_usable_password()
    assert _roles(user) == (["reviewer"], ["risk-analytics"], False)
    identity = ExternalIdentity.objects.get(user=user)
    assert identity.issuer == oidc_provider.issuer and identity.groups == ["ml-reviewers", "team-risk", "unmapped"]
    events = AuditEvent.objects.filter(seq__gt=start)
    actions = list(events.order_by("seq").values_list("action", flat=True))
    assert actions[0] == "user.provisioned" and "user.logged_in" in actions
    signed_in = events.get(action="user.sso_signed_in")
    assert signed_in.after["subject"] == identity.subject and signed_in.after["provisioned"] is True
    assert signed_in.after["roles_added"] == ["reviewer"]
    assert events.filter(action="user.role_changed").get().after["added"] == ["reviewer"]
    assert events.get(action="user.teams_changed").after["teams"] == ["risk-analytics"]
    assert client.get("/audit/").status_code == 403  # no auditor role


def test_a_removed_group_removes_the_role_at_the_next_login(sso_settings, oidc_provider, mapping, last_seq):
    oidc_provider.user("bob", PASSWORD, ["ml-reviewers", "risk-audit", "team-risk", "portal-admins"])
    sso_login(Client(), "bob", PASSWORD)
    bob = User.objects.get(username="bob")
    assert _roles(bob) == (["auditor", "reviewer"], ["risk-analytics"], True)
    oidc_provider.user("bob", PASSWORD, ["ml-reviewers"])
    start = last_seq()
    client = Client()
    assert sso_login(client, "bob", PASSWORD).status_code == 302
    assert _roles(bob) == (["reviewer"], [], False)
    events = AuditEvent.objects.filter(seq__gt=start)
    assert events.get(action="user.role_changed").after == {"groups": ["reviewer"], "removed": ["auditor"]}
    assert events.get(action="user.teams_changed").before == {"teams": ["risk-analytics"]}
    assert events.get(action="user.admin_changed").after["is_superuser"] is False
    assert events.get(action="user.sso_signed_in").after["roles_removed"] == ["auditor"]
    assert client.get("/audit/").status_code == 403


def test_a_mapping_change_is_audited_and_applies_at_the_next_login(sso_settings, oidc_provider, mapping, admin_user):
    oidc_provider.user("carol", PASSWORD, ["risk-audit"])
    sso_login(Client(), "carol", PASSWORD)
    carol = User.objects.get(username="carol")
    assert _roles(carol)[0] == ["auditor"]
    admin = Client()
    admin.force_login(admin_user)
    row = GroupMapping.objects.get(claim_value="risk-audit")
    response = admin.post(
        f"/admin/registry/groupmapping/{row.pk}/change/",
        {"claim_value": "risk-audit", "group": Group.objects.get(name=REVIEWER_GROUP).pk, "team": ""},
    )
    assert response.status_code == 302
    event = AuditEvent.objects.get(action="group_mapping.changed")
    assert (event.actor_name, event.before["group"], event.after["group"]) == ("admin", "auditor", "reviewer")
    sso_login(Client(), "carol", PASSWORD)
    assert _roles(carol)[0] == ["reviewer"]


def test_a_deactivated_user_cannot_sign_in_through_the_provider(sso_settings, oidc_provider, mapping):
    oidc_provider.user("dave", PASSWORD, ["ml-reviewers"])
    sso_login(Client(), "dave", PASSWORD)
    User.objects.filter(username="dave").update(is_active=False)
    client = Client()
    response = sso_login(client, "dave", PASSWORD)
    assert response.status_code == 302 and "sso=failed" in response["Location"]
    assert SESSION_KEY not in client.session


# --- the ID token, state and nonce ---------------------------------------------------------


def _real_id_token(oidc_provider, username: str, nonce: str) -> str:
    """An ID token the provider issues through the code flow with PKCE (the test plays the client)."""
    import hashlib

    discovery = requests.get(oidc_provider.discovery_url, timeout=10).json()
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": TEST_CALLBACK,
        "scope": "openid profile email",
        "state": "s",
        "nonce": nonce,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    authorize = requests.Request("GET", discovery["authorization_endpoint"], params=query).prepare().url
    back = provider_sign_in(requests.Session(), authorize, username, PASSWORD)
    code = parse_qs(urlparse(back).query)["code"][0]
    from tests.oidc_harness import CLIENT_SECRET

    token = requests.post(
        discovery["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": TEST_CALLBACK,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "code_verifier": verifier,
        },
        timeout=10,
    )
    token.raise_for_status()
    return token.json()["id_token"]


def _tamper(id_token: str, **claims) -> str:
    header, payload, signature = id_token.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data.update(claims)
    forged = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def test_the_id_token_signature_is_checked_against_the_providers_jwks(sso_settings, oidc_provider):
    from registry.oidc import OidcBackend

    oidc_provider.user("erin", PASSWORD, [])
    token = _real_id_token(oidc_provider, "erin", nonce="n-1")
    backend = OidcBackend().configured()
    assert backend.verify_token(token, nonce="n-1")["preferred_username"] == "erin"
    with pytest.raises(SuspiciousOperation, match="verification failed"):
        backend.verify_token(_tamper(token, preferred_username="admin", groups=["portal-admins"]), nonce="n-1")


def test_an_expired_id_token_is_refused(sso_settings, oidc_provider):
    import jwt

    from registry.oidc import OidcBackend

    expired = oidc_provider.manage(
        "provider_token", "--issuer", oidc_provider.issuer, "--audience", CLIENT_ID, "--subject", "1",
        "--nonce", "n-2", "--expired",
    ).strip()  # fmt: skip
    fresh = oidc_provider.manage(
        "provider_token", "--issuer", oidc_provider.issuer, "--audience", CLIENT_ID, "--subject", "1", "--nonce", "n-2"
    ).strip()
    backend = OidcBackend().configured()
    assert backend.verify_token(fresh, nonce="n-2")["sub"] == "1"  # the same key, valid: accepted
    with pytest.raises(jwt.ExpiredSignatureError):
        backend.verify_token(expired, nonce="n-2")


def test_a_token_for_another_client_or_issuer_is_refused(sso_settings, oidc_provider):
    from registry.oidc import OidcBackend

    other_client = oidc_provider.manage(
        "provider_token", "--issuer", oidc_provider.issuer, "--audience", "someone-else", "--subject", "1"
    ).strip()
    other_issuer = oidc_provider.manage(
        "provider_token", "--issuer", "http://evil.example/o", "--audience", CLIENT_ID, "--subject", "1"
    ).strip()
    with pytest.raises(SuspiciousOperation, match="another client"):
        OidcBackend().configured().verify_token(other_client, nonce=None)
    with pytest.raises(SuspiciousOperation, match="another issuer"):
        OidcBackend().configured().verify_token(other_issuer, nonce=None)


def test_the_nonce_is_checked(sso_settings, oidc_provider):
    from registry.oidc import OidcBackend

    oidc_provider.user("frank", PASSWORD, [])
    token = _real_id_token(oidc_provider, "frank", nonce="the-real-nonce")
    with pytest.raises(SuspiciousOperation, match="Nonce"):
        OidcBackend().configured().verify_token(token, nonce="another-nonce")


def test_the_state_is_checked(sso_settings, oidc_provider, mapping):
    oidc_provider.user("gina", PASSWORD, ["ml-reviewers"])
    victim, attacker = Client(), Client()
    start = victim.get("/oidc/authenticate/")
    back = provider_sign_in(requests.Session(), start["Location"], "gina", PASSWORD)
    parsed = urlparse(back)
    # Another browser (no such state in its session) cannot use the code: login CSRF refused.
    attacker.get("/oidc/authenticate/")
    response = attacker.get(f"{parsed.path}?{parsed.query}")
    assert response.status_code == 400 and SESSION_KEY not in attacker.session
    forged = victim.get(parsed.path, {"code": parse_qs(parsed.query)["code"][0], "state": "forged"})
    assert forged.status_code == 400 and SESSION_KEY not in victim.session
    assert not User.objects.filter(username="gina").exists()


def test_the_authorization_request_uses_pkce_state_and_nonce(db, sso_settings):
    response = Client().get("/oidc/authenticate/")
    query = parse_qs(urlparse(response["Location"]).query)
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) >= 43
    assert len(query["state"][0]) >= 32 and len(query["nonce"][0]) >= 32
    assert query["response_type"] == ["code"] and query["client_id"] == [CLIENT_ID]


# --- step-up through the provider ------------------------------------------------------------


def test_step_up_is_asked_and_honoured_through_the_provider(sso_settings, oidc_provider, mapping, owner, churn_v1):
    import time

    from registry.choices import RiskTier, Stage
    from registry.models import PromotionRequest
    from registry.services.promotions import promotion_request

    churn_v1.model.risk_tier = RiskTier.HIGH
    churn_v1.model.save()
    req = promotion_request(
        version=churn_v1, target_stage=Stage.STAGING, requester=owner, justification="Ship it.", context=CLI
    )
    oidc_provider.user("hana", PASSWORD, ["ml-reviewers"])
    client = Client()
    session = requests.Session()
    sso_login(client, "hana", PASSWORD, session=session)
    stale = client.session
    stale["auth_time"] = int(time.time()) - 3600  # signed in an hour ago
    stale.save()
    url = f"/promotions/{req.pk}/approve/"
    asked = client.post(url, {"comment": "ok"}, HTTP_REFERER=f"http://testserver/promotions/{req.pk}/")
    assert asked.status_code == 302 and asked["Location"].startswith("/login/step-up/")
    assert not req.reviews.exists()
    to_provider = client.get(asked["Location"])
    assert to_provider.status_code == 302 and "step_up=1" in to_provider["Location"]
    start = client.get(to_provider["Location"])
    assert parse_qs(urlparse(start["Location"]).query)["prompt"] == ["login"]
    # The provider asks for the password again although its own session is still signed in.
    back = provider_sign_in(session, start["Location"], "hana", PASSWORD)
    parsed = urlparse(back)
    done = client.get(f"{parsed.path}?{parsed.query}")
    assert done.status_code == 302 and done["Location"] == f"http://testserver/promotions/{req.pk}/"
    approved = client.post(url, {"comment": "ok"})
    assert not (approved.status_code == 302 and "/login/step-up/" in approved["Location"])
    assert PromotionRequest.objects.get(pk=req.pk).reviews.filter(reviewer__username="hana").exists()


def test_signed_in_people_keep_working_while_the_provider_is_down(sso_settings, oidc_provider, mapping):
    oidc_provider.user("kim", PASSWORD, ["ml-reviewers"])
    client = Client()
    sso_login(client, "kim", PASSWORD)
    sso_settings.OIDC_OP_DISCOVERY_URL = "http://127.0.0.1:1/o/.well-known/openid-configuration"  # unreachable
    assert client.get("/models/").status_code == 200
    start = Client().get("/oidc/authenticate/")
    assert start.status_code == 302 and start["Location"] == "/login/?sso=failed"


def test_explicit_endpoint_variables_work_without_discovery(settings, oidc_provider, mapping):
    from tests.oidc_harness import CLIENT_SECRET

    document = requests.get(oidc_provider.discovery_url, timeout=10).json()
    settings.OIDC_RP_CLIENT_ID, settings.OIDC_RP_CLIENT_SECRET = CLIENT_ID, CLIENT_SECRET
    settings.OIDC_OP_DISCOVERY_URL = ""
    settings.OIDC_OP_AUTHORIZATION_ENDPOINT = document["authorization_endpoint"]
    settings.OIDC_OP_TOKEN_ENDPOINT = document["token_endpoint"]
    settings.OIDC_OP_USER_ENDPOINT = document["userinfo_endpoint"]
    settings.OIDC_OP_JWKS_ENDPOINT = document["jwks_uri"]
    settings.OIDC_OP_ISSUER = document["issuer"]
    oidc_provider.user("lee", PASSWORD, ["risk-audit"])
    client = Client()
    assert sso_login(client, "lee", PASSWORD).status_code == 302
    assert _roles(User.objects.get(username="lee"))[0] == ["auditor"]
    assert client.get("/audit/").status_code == 200
