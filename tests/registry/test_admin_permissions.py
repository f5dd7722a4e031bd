"""Django's own permissions (a user's ``user_permissions``, a group's ``permissions``) decide which
admin pages a staff account may open and what it may change there: the schedule, the accounts,
the policies. The portal's own rules (``registry.rules``) never read them. Granting them in the
admin is audited with the permissions before and after, and needs a fresh sign-in, as granting
a role does."""

import time

import pytest
from django.contrib.auth.models import Group, Permission

from registry.models import AuditEvent
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
JOINED = {"date_joined_0": "2026-01-01", "date_joined_1": "10:00:00"}
SCHEDULE = "/admin/django_celery_beat/periodictask/"


def _perm(codename: str) -> Permission:
    return Permission.objects.get(codename=codename)


def _user_form(user, **fields) -> dict:
    return {"username": user.username, "email": user.email, "is_active": "on", **JOINED, **fields}


def _stale(client):
    session = client.session
    session["auth_time"] = int(time.time()) - 3600
    session.save()


def test_a_django_permission_opens_an_admin_page_to_a_staff_account(client_for):
    staff = UserFactory(username="ops", is_staff=True)
    assert client_for(staff).get(SCHEDULE).status_code == 403
    staff.user_permissions.add(_perm("change_periodictask"))
    assert client_for(staff).get(SCHEDULE).status_code == 200


def test_granting_and_taking_a_users_django_permissions_in_the_admin_is_audited_with_both_lists(
    admin_user, outsider, client_for, last_seq
):
    client = client_for(admin_user)
    url = f"/admin/auth/user/{outsider.pk}/change/"
    granted = [_perm("change_periodictask").pk, _perm("view_user").pk]
    since = last_seq()
    assert client.post(url, _user_form(outsider, user_permissions=granted)).status_code == 302
    assert client.post(url, _user_form(outsider, user_permissions=[granted[1]])).status_code == 302
    events = list(AuditEvent.objects.filter(seq__gt=since).exclude(action="user.logged_in").order_by("seq"))
    assert [e.action for e in events] == ["user.permissions_changed", "user.permissions_changed"]
    assert events[0].before == {"permissions": []}
    assert events[0].after == {"permissions": ["auth.view_user", "django_celery_beat.change_periodictask"]}
    assert events[1].before == events[0].after and events[1].after == {"permissions": ["auth.view_user"]}
    assert all(e.actor_id == admin_user.pk and e.source == "ui" and e.object_id == str(outsider.pk) for e in events)
    assert list(outsider.user_permissions.values_list("codename", flat=True)) == ["view_user"]
    since = last_seq()
    assert client.post(url, _user_form(outsider, user_permissions=[granted[1]])).status_code == 302
    assert not AuditEvent.objects.filter(seq__gt=since).exclude(action="user.logged_in").exists()


def test_granting_a_groups_django_permissions_in_the_admin_is_audited_with_both_lists(admin_user, client_for, last_seq):
    ops = Group.objects.create(name="ops")
    since = last_seq()
    response = client_for(admin_user).post(
        f"/admin/auth/group/{ops.pk}/change/", {"name": "ops", "permissions": [_perm("change_promotionpolicy").pk]}
    )
    assert response.status_code == 302, response.content[:2000]
    event = AuditEvent.objects.get(seq__gt=since, action="role.permissions_changed")
    assert event.actor_id == admin_user.pk and event.object_repr == "ops"
    assert event.before == {"permissions": []} and event.after == {"permissions": ["registry.change_promotionpolicy"]}
    assert list(ops.permissions.values_list("codename", flat=True)) == ["change_promotionpolicy"]


def test_a_new_group_created_with_permissions_records_them(admin_user, client_for, last_seq):
    since = last_seq()
    response = client_for(admin_user).post(
        "/admin/auth/group/add/", {"name": "schedulers", "permissions": [_perm("change_periodictask").pk]}
    )
    assert response.status_code == 302, response.content[:2000]
    events = list(AuditEvent.objects.filter(seq__gt=since).exclude(action="user.logged_in").order_by("seq"))
    assert [e.action for e in events] == ["role.created", "role.permissions_changed"]
    assert events[1].after == {"permissions": ["django_celery_beat.change_periodictask"]}


def test_granting_django_permissions_in_the_admin_needs_a_fresh_sign_in(admin_user, outsider, client_for, last_seq):
    ops = Group.objects.create(name="ops")
    client = client_for(admin_user)
    _stale(client)
    since = last_seq()
    perm = _perm("change_periodictask").pk
    for url, data in (
        (f"/admin/auth/user/{outsider.pk}/change/", _user_form(outsider, user_permissions=[perm])),
        (f"/admin/auth/group/{ops.pk}/change/", {"name": "ops", "permissions": [perm]}),
    ):
        response = client.post(url, data)
        assert response.status_code == 302 and response["Location"].startswith("/login/step-up/")
    assert not outsider.user_permissions.exists() and not ops.permissions.exists()
    assert not AuditEvent.objects.filter(seq__gt=since).exists()
