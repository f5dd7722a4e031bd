"""A token never holds a scope its user's roles cannot use (``registry.rules.usable_scopes``):
the token service refuses it, so the tokens page, the "Connect a pipeline" page and
``manage.py create_token`` all refuse it, for every role, outsiders included."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.urls import reverse

from registry.choices import TokenScope
from registry.models import ApiToken
from registry.rules import AUDITOR_GROUP
from registry.services.audit import CLI
from registry.services.tokens import token_create
from tests.factories import RegisteredModelFactory
from tests.registry.test_tokens import OFFERED

ROLES = sorted(OFFERED)


def beyond(role: str) -> list[str]:
    """The scopes ``role`` cannot use, in TokenScope order."""
    return [scope for scope in TokenScope.values if scope not in OFFERED[role]]


@pytest.mark.parametrize("role", ROLES)
def test_the_token_service_grants_only_the_scopes_the_users_roles_can_use(roles, role, churn, last_seq):
    user = roles[role]
    start = last_seq()
    for scope in beyond(role):
        with pytest.raises(ValidationError) as refused:
            token_create(user=user, name="x", scopes=["models:read", scope], expires_at=None, actor=user, context=CLI)
        assert refused.value.message_dict["scopes"] == [f"Not a scope {user.get_username()}'s roles can use: {scope}."]
    assert not ApiToken.objects.exists() and last_seq() == start
    usable = sorted(OFFERED[role])
    token, _ = token_create(user=user, name="ok", scopes=usable, expires_at=None, actor=user, context=CLI)
    assert token.scopes == usable


@pytest.mark.parametrize("role", ROLES)
def test_create_token_refuses_a_scope_the_users_roles_cannot_use(roles, role, churn, last_seq):
    user = roles[role]
    start = last_seq()
    for scope in beyond(role):
        out = io.StringIO()
        with pytest.raises(CommandError, match=f"roles can use: {scope}"):
            call_command("create_token", user.username, "--scope", "models:read", "--scope", scope, stdout=out)
        assert out.getvalue() == ""
    assert not ApiToken.objects.exists() and last_seq() == start


@pytest.mark.parametrize("role", ROLES)
def test_the_tokens_page_refuses_every_scope_the_users_roles_cannot_use(roles, role, churn, client_for, last_seq):
    client = client_for(roles[role])
    start = last_seq()
    data = {"name": "x", "scopes": list(TokenScope.values), "expires_days": "30"}
    response = client.post(reverse("registry:token_list"), data)
    if role == "admin":
        assert response.status_code == 200 and ApiToken.objects.get().scopes == sorted(TokenScope.values)
        return
    assert response.status_code == 400 and response.context["form"].errors["scopes"]
    assert not ApiToken.objects.exists() and last_seq() == start


def test_an_auditor_who_owns_a_model_gets_no_pipeline_token_with_write_scopes(owner, team, client_for, last_seq):
    # the pipeline page gave its fixed scopes (models:write, monitoring:write, ...) to any owner
    owner.groups.add(Group.objects.get_or_create(name=AUDITOR_GROUP)[0])
    RegisteredModelFactory(name="churn", owner=owner, team=team)
    client = client_for(owner)
    start = last_seq()
    response = client.post(
        reverse("registry:model_connect", args=["churn"]), {"name": "pipeline: churn", "expires_days": 30}
    )
    assert response.status_code == 400
    refused = "scopes: Not a scope owner's roles can use: models:write, promotions:request, monitoring:write."
    assert response.context["form"].non_field_errors() == [refused]
    assert not ApiToken.objects.exists() and last_seq() == start
