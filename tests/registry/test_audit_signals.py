"""Logins, logouts, failed logins and role changes leave chained audit events."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from registry.models import AuditEvent
from registry.rules import AUDITOR_GROUP, REVIEWER_GROUP
from registry.services.audit import AuditContext, acting_as
from tests.factories import UserFactory


def _events_after(seq, action):
    return list(AuditEvent.objects.filter(seq__gt=seq, action=action).order_by("seq"))


def test_login_and_logout_are_audited_with_ip_and_request_id(owner, last_seq):
    start = last_seq()
    client = Client(REMOTE_ADDR="203.0.113.9")
    response = client.post(
        "/login/", {"username": "owner", "password": "pass-1234-word"}, HTTP_X_REQUEST_ID="login-req-1"
    )
    assert response.status_code == 302
    [login] = _events_after(start, "user.logged_in")
    assert login.actor == owner and login.source == "ui"
    assert login.ip == "203.0.113.9" and login.request_id == "login-req-1"
    client.post("/logout/", HTTP_X_REQUEST_ID="logout-req-1")
    [logout] = _events_after(start, "user.logged_out")
    assert logout.actor == owner and logout.request_id == "logout-req-1"


def test_failed_login_is_audited_with_the_username_but_never_the_password(owner, last_seq):
    start = last_seq()
    response = Client(REMOTE_ADDR="198.51.100.20").post("/login/", {"username": "owner", "password": "wrong-guess-99"})
    assert response.status_code == 200
    [failed] = _events_after(start, "user.login_failed")
    assert failed.actor is None
    assert failed.object_repr == "owner" and failed.after == {"username": "owner"}
    assert failed.ip == "198.51.100.20" and failed.source == "ui" and failed.request_id
    assert "wrong-guess-99" not in str(AuditEvent.objects.filter(seq__gt=start).values())
    assert not _events_after(start, "user.logged_in")


def test_adding_and_removing_a_role_is_audited_with_before_and_after(db, last_seq):
    user = UserFactory(username="carol")
    reviewer_group, _ = Group.objects.get_or_create(name=REVIEWER_GROUP)
    auditor_group, _ = Group.objects.get_or_create(name=AUDITOR_GROUP)
    start = last_seq()
    user.groups.add(reviewer_group)
    user.groups.add(auditor_group)
    user.groups.remove(reviewer_group)
    added, added2, removed = _events_after(start, "user.role_changed")
    assert added.object_repr == "carol" and added.object_id == str(user.pk)
    assert added.before == {"groups": []} and added.after == {"groups": ["reviewer"], "added": ["reviewer"]}
    assert added2.after == {"groups": ["auditor", "reviewer"], "added": ["auditor"]}
    assert removed.before == {"groups": ["auditor", "reviewer"]}
    assert removed.after == {"groups": ["auditor"], "removed": ["reviewer"]}
    assert added.actor is None and added.actor_name == "system" and added.source == "cli"


def test_role_changes_from_the_group_side_and_clear_are_audited(db, last_seq):
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    group, _ = Group.objects.get_or_create(name=AUDITOR_GROUP)
    start = last_seq()
    group.user_set.add(alice, bob)
    group.user_set.clear()
    events = _events_after(start, "user.role_changed")
    assert sorted(e.object_repr for e in events[:2]) == ["alice", "bob"]
    assert all(e.after["added"] == ["auditor"] for e in events[:2])
    assert sorted(e.object_repr for e in events[2:]) == ["alice", "bob"]
    assert all(e.after == {"groups": [], "removed": ["auditor"]} for e in events[2:])


def test_role_change_is_attributed_to_the_admin_inside_acting_as(admin_user, db, last_seq):
    user = UserFactory(username="dave")
    group, _ = Group.objects.get_or_create(name=REVIEWER_GROUP)
    start = last_seq()
    with acting_as(admin_user, AuditContext(source="ui", request_id="r-42", ip="192.0.2.1")):
        user.groups.add(group)
    [event] = _events_after(start, "user.role_changed")
    assert event.actor == admin_user and event.request_id == "r-42" and event.source == "ui"


@pytest.mark.parametrize("action", ["user.logged_in", "user.role_changed"])
def test_signal_events_are_part_of_the_verified_chain(owner, reviewer, client_for, action):
    from registry.services.audit import audit_verify

    client_for(owner)
    assert AuditEvent.objects.filter(action=action).exists()
    assert audit_verify().ok
