"""Session authentication (registry.auth.RolesModelBackend): on PostgreSQL the user comes
with their group names and team membership in one statement, and the permission rules use
them without asking again; the answers are the same as ModelBackend's everywhere."""

import pytest
from django.contrib.auth import BACKEND_SESSION_KEY, SESSION_KEY
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from registry.auth import RolesModelBackend
from registry.rules import can_register_model, has_team, is_auditor, is_reviewer, sees_all_models
from tests.factories import UserFactory

ON_POSTGRES = connection.vendor == "postgresql"


@pytest.mark.parametrize(
    "role, in_reviewers, in_auditors, in_team",
    [
        ("owner", False, False, True),
        ("reviewer", True, False, False),
        ("auditor", False, True, False),
        ("outsider", False, False, False),
    ],
)
def test_the_user_comes_with_roles_that_answer_like_the_database(roles, role, in_reviewers, in_auditors, in_team):
    user = RolesModelBackend().get_user(roles[role].pk)
    assert user == roles[role] and user.username == roles[role].username
    with CaptureQueriesContext(connection) as captured:
        answers = (is_reviewer(user), is_auditor(user), has_team(user), sees_all_models(user))
    assert answers == (in_reviewers, in_auditors, in_team, in_reviewers or in_auditors)
    assert can_register_model(user) == in_team
    assert len(captured) == (0 if ON_POSTGRES else 2)  # groups and team asked once each elsewhere


def test_a_page_reads_the_user_and_roles_in_one_statement_on_postgres(reviewer, client_for):
    client = client_for(reviewer)
    with CaptureQueriesContext(connection) as captured:
        assert client.get(reverse("registry:token_list")).status_code == 200  # the nav asks for roles
    reads = [q["sql"] for q in captured.captured_queries if "auth_user" in q["sql"]]
    if ON_POSTGRES:
        assert len(reads) == 1 and "auth_user_groups" in reads[0] and "registry_team_members" in reads[0]
    else:
        assert len(reads) == 2  # ModelBackend's user, then the rules' group names


def test_unknown_malformed_and_inactive_users_are_anonymous(owner, client):
    backend = RolesModelBackend()
    assert backend.get_user(987654) is None
    assert backend.get_user("not-a-number") is None
    owner.is_active = False
    owner.save()
    assert backend.get_user(owner.pk) is None


def test_a_session_naming_a_missing_user_is_sent_to_login(db, client):
    session = client.session
    session[SESSION_KEY] = "987654"
    session[BACKEND_SESSION_KEY] = "registry.auth.RolesModelBackend"
    session.save()
    response = client.get(reverse("registry:model_list"))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_a_role_change_counts_from_the_next_request(owner, client_for):
    from django.contrib.auth.models import Group

    from registry.rules import AUDITOR_GROUP

    client = client_for(owner)
    assert client.get(reverse("registry:audit_log")).status_code == 403
    owner.groups.add(Group.objects.get_or_create(name=AUDITOR_GROUP)[0])
    assert client.get(reverse("registry:audit_log")).status_code == 200


def test_password_login_goes_through_the_backend(db, client):
    user = UserFactory(username="pat")
    user.set_password("a-long-password-1")
    user.save()
    response = client.post(reverse("login"), {"username": "pat", "password": "a-long-password-1"})
    assert response.status_code == 302
    assert client.session[BACKEND_SESSION_KEY] == "registry.auth.RolesModelBackend"
    assert client.get(reverse("registry:model_list")).status_code == 200
