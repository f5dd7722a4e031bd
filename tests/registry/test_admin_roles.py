"""Role changes made in the Django admin are audited with the admin as the actor."""

from django.contrib.auth.models import Group

from registry.models import AuditEvent


def test_adding_a_user_to_the_reviewer_group_in_the_admin_is_audited_as_the_admin(
    admin_user, outsider, client_for, last_seq
):
    client = client_for(admin_user)
    reviewer_group = Group.objects.get(name="reviewer")
    page = client.get(f"/admin/auth/user/{outsider.pk}/change/")
    assert page.status_code == 200
    since = last_seq()
    response = client.post(
        f"/admin/auth/user/{outsider.pk}/change/",
        {
            "username": outsider.username,
            "email": outsider.email,
            "is_active": "on",
            "groups": [reviewer_group.pk],
            "date_joined_0": "2026-01-01",
            "date_joined_1": "10:00:00",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    event = AuditEvent.objects.get(seq__gt=since, action="user.role_changed")
    assert event.actor_id == admin_user.pk and event.source == "ui"
    assert event.after["groups"] == ["reviewer"]
    assert outsider.groups.filter(name="reviewer").exists()


def test_only_admins_reach_the_user_admin(client_for, owner, reviewer, auditor, outsider):
    for user in (owner, reviewer, auditor, outsider):
        assert client_for(user).get("/admin/auth/user/").status_code == 302  # to the admin login
