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


def test_unticking_active_in_the_user_admin_revokes_the_users_tokens(admin_user, owner, client_for, last_seq):
    from registry.models import ApiToken
    from registry.services.audit import CLI
    from registry.services.tokens import token_create

    token_create(user=owner, name="ci", scopes=["models:read"], expires_at=None, actor=owner, context=CLI)
    client = client_for(admin_user)
    since = last_seq()
    response = client.post(
        f"/admin/auth/user/{owner.pk}/change/",
        {"username": owner.username, "email": owner.email, "date_joined_0": "2026-01-01", "date_joined_1": "10:00:00"},
    )
    assert response.status_code == 302, response.content[:2000]
    owner.refresh_from_db()
    assert not owner.is_active
    assert not ApiToken.objects.filter(user=owner, revoked_at__isnull=True).exists()
    actions = list(AuditEvent.objects.filter(seq__gt=since).order_by("seq").values_list("action", flat=True))
    assert "token.revoked" in actions and actions[-1] == "user.deactivated"
    assert AuditEvent.objects.get(seq__gt=since, action="user.deactivated").actor_id == admin_user.pk


def test_group_mapping_changes_in_the_admin_are_audited_with_before_and_after(admin_user, team, client_for, last_seq):
    from registry.models import GroupMapping

    client = client_for(admin_user)
    auditor = Group.objects.get_or_create(name="auditor")[0]
    since = last_seq()
    assert (
        client.post("/admin/registry/groupmapping/add/", {"claim_value": "risk-audit", "group": auditor.pk}).status_code
        == 302
    )
    mapping = GroupMapping.objects.get(claim_value="risk-audit")
    change = {"claim_value": "risk-audit", "group": auditor.pk, "team": team.pk}
    assert client.post(f"/admin/registry/groupmapping/{mapping.pk}/change/", change).status_code == 302
    delete = client.post(f"/admin/registry/groupmapping/{mapping.pk}/delete/", {"post": "yes"})
    assert delete.status_code == 302 and not GroupMapping.objects.exists()
    events = list(AuditEvent.objects.filter(seq__gt=since).order_by("seq"))
    assert [e.action for e in events] == ["group_mapping.created", "group_mapping.changed", "group_mapping.deleted"]
    assert events[1].before["team"] is None and events[1].after["team"] == team.slug
    assert all(e.actor_id == admin_user.pk for e in events)


def test_a_mapping_must_grant_something(admin_user, client_for):
    response = client_for(admin_user).post("/admin/registry/groupmapping/add/", {"claim_value": "nothing"})
    assert response.status_code == 200 and "Map the claim value" in response.content.decode()


def test_only_admins_reach_the_access_admin_pages(client_for, owner, reviewer, auditor, outsider):
    for path in ("groupmapping", "serviceaccount", "apitoken", "externalidentity"):
        for user in (owner, reviewer, auditor, outsider):
            assert client_for(user).get(f"/admin/registry/{path}/").status_code == 302
    for user in (owner, reviewer, auditor, outsider):
        assert client_for(user).get("/admin/axes/accessattempt/").status_code == 302
