"""Session authentication (registry.auth.RolesModelBackend): the user comes with their group
names and team membership through the ORM (one statement on PostgreSQL, two on SQLite), and
the permission rules use them without asking again; the answers are the same as the database's."""

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
    assert len(captured) == 0  # loaded with the user: nothing asked again


def test_a_page_reads_the_user_and_roles_in_one_statement_on_postgres_two_on_sqlite(reviewer, client_for):
    client = client_for(reviewer)
    with CaptureQueriesContext(connection) as captured:
        assert client.get(reverse("registry:token_list")).status_code == 200  # the nav asks for roles
    reads = [
        q["sql"] for q in captured.captured_queries if "auth_user" in q["sql"] and "registry_apitoken" not in q["sql"]
    ]
    if ON_POSTGRES:
        assert len(reads) == 1 and "auth_user_groups" in reads[0] and "registry_team_members" in reads[0]
    else:
        assert len(reads) == 2 and "registry_team_members" in reads[0] and "auth_user_groups" in reads[1]


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


# --- lockout (django-axes): an account at an address; an address or an account overall -----


def _login(client, username, password, ip="192.0.2.10"):
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=ip)


@pytest.fixture
def pat(db):
    user = UserFactory(username="pat")
    user.set_password("a-long-password-1")
    user.save()
    return user


def test_thirty_wrong_passwords_then_the_right_one_does_not_log_in(pat, client):
    for _ in range(30):
        assert _login(client, "pat", "wrong-password").status_code in (200, 429)
    response = _login(client, "pat", "a-long-password-1")
    assert response.status_code == 429
    assert SESSION_KEY not in client.session
    assert client.get(reverse("registry:model_list")).status_code == 302  # still anonymous


def test_one_account_locked_at_an_address_leaves_the_others_there_free(pat, admin_user, client, settings):
    """Behind a shared NAT one user's (or an outsider's) wrong passwords lock that account at that
    address only: the admin and everyone else at the address still sign in, and so does the user
    from elsewhere."""
    admin_user.set_password("admin-pass-12345")
    admin_user.save()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _login(client, "pat", "wrong-password", ip="198.51.100.9")
    assert _login(client, "pat", "a-long-password-1", ip="198.51.100.9").status_code == 429
    assert SESSION_KEY not in client.session
    assert _login(client, admin_user.username, "admin-pass-12345", ip="198.51.100.9").status_code == 302
    assert client.session[SESSION_KEY] == str(admin_user.pk)
    client.logout()
    assert _login(client, "pat", "a-long-password-1", ip="198.51.100.10").status_code == 302


def test_an_address_spraying_passwords_over_many_accounts_is_locked(pat, client, settings):
    # one guess per account, each far under the per-account limit: only the address's total shows it
    for n in range(settings.LOGIN_WIDE_FAILURE_LIMIT):
        _login(client, f"guess{n}", "Winter2026!", ip="198.51.100.9")
    assert _login(client, "pat", "a-long-password-1", ip="198.51.100.9").status_code == 429
    assert _login(client, "pat", "a-long-password-1", ip="198.51.100.10").status_code == 302


def test_an_account_guessed_from_many_addresses_is_locked(pat, client, settings):
    for n in range(settings.LOGIN_WIDE_FAILURE_LIMIT):
        _login(client, "pat", "wrong-password", ip=f"198.51.{100 + n // 250}.{n % 250 + 1}")
    assert _login(client, "pat", "a-long-password-1", ip="203.0.113.77").status_code == 429


def test_an_office_s_typos_under_the_wide_limit_lock_nobody_else(pat, client, settings):
    for n in range(settings.LOGIN_WIDE_FAILURE_LIMIT - 1):
        _login(client, f"colleague{n % 7}", "typo", ip="198.51.100.9")
    assert _login(client, "pat", "a-long-password-1", ip="198.51.100.9").status_code == 302


def test_failures_outside_the_window_are_forgotten(pat, client, settings):
    from datetime import timedelta

    from axes.models import AccessAttempt
    from django.utils import timezone

    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        _login(client, "pat", "wrong-password")
    AccessAttempt.objects.update(attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1))
    _login(client, "pat", "wrong-password")
    assert _login(client, "pat", "a-long-password-1").status_code == 302


def test_lock_and_admin_unlock_are_audited(pat, admin_user, client, client_for, settings, last_seq):
    from axes.models import AccessAttempt

    from registry.models import AuditEvent

    start = last_seq()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _login(client, "pat", "wrong-password", ip="192.0.2.44")
    locked = AuditEvent.objects.filter(seq__gt=start, action="user.locked_out")
    assert locked.count() == 1
    assert locked.get().after == {"username": "pat", "ip_address": "192.0.2.44"} and locked.get().ip == "192.0.2.44"
    assert AuditEvent.objects.filter(seq__gt=start, action="user.login_failed").count() == settings.AXES_FAILURE_LIMIT
    admin = client_for(admin_user)
    start = last_seq()
    attempts = list(AccessAttempt.objects.values_list("pk", flat=True))
    response = admin.post(
        reverse("admin:axes_accessattempt_changelist"), {"action": "unlock", "_selected_action": attempts}
    )
    assert response.status_code == 302 and not AccessAttempt.objects.exists()
    unlocked = AuditEvent.objects.get(seq__gt=start, action="user.unlocked")
    assert unlocked.actor_name == "admin" and unlocked.after["username"] == "pat"
    assert _login(client, "pat", "a-long-password-1", ip="192.0.2.44").status_code == 302


def test_without_local_login_only_the_break_glass_account_uses_a_password(pat, client, settings):
    glass = UserFactory(username="glass", is_staff=True, is_superuser=True)
    glass.set_password("break-glass-pass-1")
    glass.save()
    settings.LOCAL_LOGIN = False
    settings.BREAK_GLASS_USERNAME = "glass"
    assert _login(client, "pat", "a-long-password-1").status_code == 200  # refused: the form again
    assert SESSION_KEY not in client.session
    assert _login(client, "glass", "break-glass-pass-1").status_code == 302
    assert client.session[SESSION_KEY] == str(glass.pk)


# --- the client address: REMOTE_ADDR unless a trusted proxy forwarded the request -------------


def test_a_forged_forwarded_for_from_an_untrusted_client_is_ignored(rf, settings):
    from registry.services.audit import AuditContext

    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    request = rf.get("/", HTTP_X_FORWARDED_FOR="1.2.3.4", REMOTE_ADDR="198.51.100.7")
    assert AuditContext.from_request(request).ip == "198.51.100.7"
    from mlops_portal.net import client_ip

    assert client_ip(request) == "198.51.100.7"
    settings.TRUSTED_PROXIES = []
    assert client_ip(rf.get("/", HTTP_X_FORWARDED_FOR="1.2.3.4", REMOTE_ADDR="10.0.0.1")) == "10.0.0.1"


@pytest.mark.parametrize(
    "forwarded, remote, expected",
    [
        ("203.0.113.9", "10.0.0.1", "203.0.113.9"),  # one trusted proxy
        ("6.6.6.6, 203.0.113.9", "10.0.0.1", "203.0.113.9"),  # the client's own claim is left of its address
        ("6.6.6.6, 203.0.113.9, 10.0.0.2", "10.0.0.1", "203.0.113.9"),  # two trusted proxies
        ("::ffff:203.0.113.9", "10.0.0.1", "203.0.113.9"),
        ("not-an-ip", "10.0.0.1", "10.0.0.1"),  # nothing usable: the proxy itself
    ],
)
def test_a_trusted_proxy_is_believed_for_the_hops_it_added(rf, settings, forwarded, remote, expected):
    from mlops_portal.net import client_ip

    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    assert client_ip(rf.get("/", HTTP_X_FORWARDED_FOR=forwarded, REMOTE_ADDR=remote)) == expected


def test_lockout_counts_the_resolved_address_not_a_forged_header(pat, client, settings):
    for n in range(settings.LOGIN_WIDE_FAILURE_LIMIT):
        client.post(
            reverse("login"),
            {"username": f"guess{n}", "password": "x"},
            REMOTE_ADDR="198.51.100.50",
            HTTP_X_FORWARDED_FOR=f"203.0.113.{n}",
        )
    assert _login(client, "pat", "a-long-password-1", ip="198.51.100.50").status_code == 429
