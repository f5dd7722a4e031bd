"""Accounts and teams changed in the Django admin are audited with the admin as the actor: who
became an administrator, who was created or deleted, who joined or left a team (team membership
decides who sees a model and its per-group results)."""

from django.contrib.auth import get_user_model

from registry.models import AuditEvent, Team

JOINED = {"date_joined_0": "2026-01-01", "date_joined_1": "10:00:00"}


def _user_form(user, **fields) -> dict:
    return {"username": user.username, "email": user.email, "is_active": "on", **JOINED, **fields}


def test_making_a_user_an_administrator_in_the_admin_is_audited_with_before_and_after(
    admin_user, outsider, client_for, last_seq
):
    client = client_for(admin_user)
    since = last_seq()
    response = client.post(
        f"/admin/auth/user/{outsider.pk}/change/", _user_form(outsider, is_staff="on", is_superuser="on")
    )
    assert response.status_code == 302, response.content[:2000]
    outsider.refresh_from_db()
    assert outsider.is_superuser and outsider.is_staff
    event = AuditEvent.objects.get(seq__gt=since, action="user.admin_changed")
    assert event.actor_id == admin_user.pk and event.source == "ui"
    assert event.object_id == str(outsider.pk) and event.object_repr == outsider.username
    assert event.before == {"is_staff": False, "is_superuser": False}
    assert event.after == {"is_staff": True, "is_superuser": True}


def test_other_account_changes_in_the_admin_are_audited_and_a_save_without_changes_is_not(
    admin_user, outsider, client_for, last_seq
):
    client = client_for(admin_user)
    since = last_seq()
    form = _user_form(outsider, email="new-address@example.com")
    assert client.post(f"/admin/auth/user/{outsider.pk}/change/", form).status_code == 302
    event = AuditEvent.objects.get(seq__gt=since, action="user.changed")
    assert event.actor_id == admin_user.pk
    assert event.before == {"email": outsider.email} and event.after == {"email": "new-address@example.com"}
    since = last_seq()
    assert client.post(f"/admin/auth/user/{outsider.pk}/change/", form).status_code == 302
    assert not AuditEvent.objects.filter(seq__gt=since).exclude(action="user.logged_in").exists()


def test_creating_a_user_in_the_admin_is_audited_without_the_password(admin_user, client_for, last_seq):
    client = client_for(admin_user)
    since = last_seq()
    response = client.post(
        "/admin/auth/user/add/",
        {
            "username": "mallory",
            "usable_password": "true",
            "password1": "Zx9!a-long-pass-42",
            "password2": "Zx9!a-long-pass-42",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    user = get_user_model().objects.get(username="mallory")
    event = AuditEvent.objects.get(seq__gt=since, action="user.created")
    assert event.actor_id == admin_user.pk and event.object_id == str(user.pk)
    assert event.after["username"] == "mallory" and event.after["is_superuser"] is False
    assert "password" not in event.after and "Zx9" not in str(event.after)


def test_deleting_a_user_in_the_admin_is_audited_before_the_row_goes(admin_user, outsider, client_for, last_seq):
    client = client_for(admin_user)
    since = last_seq()
    response = client.post(f"/admin/auth/user/{outsider.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302, response.content[:2000]
    assert not get_user_model().objects.filter(pk=outsider.pk).exists()
    event = AuditEvent.objects.get(seq__gt=since, action="user.deleted")
    assert event.actor_id == admin_user.pk and event.object_id == str(outsider.pk)
    assert event.before["username"] == outsider.username and event.after is None


def test_adding_a_member_to_a_team_in_the_admin_is_audited_with_the_members_before_and_after(
    admin_user, owner, outsider, team, client_for, last_seq
):
    client = client_for(admin_user)
    since = last_seq()
    response = client.post(
        f"/admin/registry/team/{team.pk}/change/",
        {"name": team.name, "slug": team.slug, "members": [owner.pk, outsider.pk]},
    )
    assert response.status_code == 302, response.content[:2000]
    assert set(team.members.all()) == {owner, outsider}
    event = AuditEvent.objects.get(seq__gt=since, action="team.changed")
    assert event.actor_id == admin_user.pk and event.source == "ui"
    assert event.before == {"members": [owner.username]}
    assert event.after == {"members": sorted([owner.username, outsider.username])}


def test_creating_and_deleting_a_team_in_the_admin_are_audited(admin_user, owner, client_for, last_seq):
    client = client_for(admin_user)
    since = last_seq()
    response = client.post("/admin/registry/team/add/", {"name": "Fraud", "slug": "fraud", "members": [owner.pk]})
    assert response.status_code == 302, response.content[:2000]
    fraud = Team.objects.get(slug="fraud")
    assert client.post(f"/admin/registry/team/{fraud.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not Team.objects.filter(slug="fraud").exists()
    events = list(AuditEvent.objects.filter(seq__gt=since).exclude(action="user.logged_in").order_by("seq"))
    assert [e.action for e in events] == ["team.created", "team.deleted"]
    assert events[0].after == {"name": "Fraud", "slug": "fraud", "description": "", "members": [owner.username]}
    assert events[1].before["slug"] == "fraud" and events[1].object_id == str(fraud.pk)
    assert all(e.actor_id == admin_user.pk for e in events)


def test_setting_a_users_password_in_the_admin_is_audited_without_the_password(
    admin_user, outsider, client_for, last_seq
):
    # An admin who sets someone's password can sign in as them: the chain says who did it, when.
    client = client_for(admin_user)
    since = last_seq()
    response = client.post(
        f"/admin/auth/user/{outsider.pk}/password/",
        {"usable_password": "true", "password1": "Qv7!another-pass-91", "password2": "Qv7!another-pass-91"},
    )
    assert response.status_code == 302, response.content[:2000]
    outsider.refresh_from_db()
    assert outsider.check_password("Qv7!another-pass-91")
    event = AuditEvent.objects.get(seq__gt=since, action="user.password_set")
    assert event.actor_id == admin_user.pk and event.source == "ui" and event.object_id == str(outsider.pk)
    assert event.after == {"password_sign_in": True}
    assert "Qv7" not in str(event.after) and outsider.password not in str(event.after)
    since = last_seq()
    off = client.post(f"/admin/auth/user/{outsider.pk}/password/", {"usable_password": "false", "unset-password": "1"})
    assert off.status_code == 302, off.content[:2000]
    outsider.refresh_from_db()
    assert not outsider.has_usable_password()
    assert AuditEvent.objects.get(seq__gt=since, action="user.password_set").after == {"password_sign_in": False}


def test_renaming_and_deleting_a_role_group_in_the_admin_are_audited_with_its_members(
    admin_user, auditor, client_for, last_seq
):
    # Roles are groups found by name: renaming or deleting 'auditor' takes the role from everyone
    # in it at once, which the chain must show (membership signals do not fire on either).
    from django.contrib.auth.models import Group

    client = client_for(admin_user)
    group = Group.objects.get(name="auditor")
    since = last_seq()
    assert client.post(f"/admin/auth/group/{group.pk}/change/", {"name": "auditors-old"}).status_code == 302
    assert client.post(f"/admin/auth/group/{group.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not Group.objects.filter(pk=group.pk).exists()
    events = list(AuditEvent.objects.filter(seq__gt=since).exclude(action="user.logged_in").order_by("seq"))
    assert [e.action for e in events] == ["role.changed", "role.deleted"]
    assert events[0].before == {"name": "auditor"} and events[0].after == {"name": "auditors-old"}
    assert events[1].before == {"name": "auditors-old", "members": [auditor.username]}
    assert all(e.actor_id == admin_user.pk for e in events)


def test_an_admin_changing_their_own_password_in_the_admin_is_audited(admin_user, outsider, client_for, last_seq):
    denied = client_for(outsider).get("/admin/password_change/")
    assert denied.status_code == 302 and denied["Location"].startswith("/admin/login/")
    admin_user.set_password("Old-pass-7731!")
    admin_user.save()
    client = client_for(admin_user)
    since = last_seq()
    response = client.post(
        "/admin/password_change/",
        {
            "old_password": "Old-pass-7731!",
            "new_password1": "Qv7!own-new-pass-42",
            "new_password2": "Qv7!own-new-pass-42",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    admin_user.refresh_from_db()
    assert admin_user.check_password("Qv7!own-new-pass-42")
    event = AuditEvent.objects.get(seq__gt=since, action="user.password_set")
    assert event.actor_id == admin_user.pk and event.object_id == str(admin_user.pk) and event.source == "ui"
    assert event.after == {"password_sign_in": True}
    assert client.get("/admin/").status_code == 200  # still signed in after the change
