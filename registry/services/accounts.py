"""Accounts: service accounts, deactivation, the provider's group mapping and what it grants
at each sign-in, and login lockout events. Every write records its audit event in the same
transaction."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from mlops_portal import clock
from registry.auth import forget_roles
from registry.models import ExternalIdentity, GroupMapping, ServiceAccount, Team
from registry.rules import is_admin

from .audit import AuditContext, acting_as, audit_record, audit_save, diff
from .inventory import team_create
from .tokens import tokens_revoke_for_user

SERVICE_ACCOUNT_PREFIX = "svc-"
MAPPING_FIELDS = ("claim_value", "group", "team", "grants_admin")


# --- service accounts and deactivation ---------------------------------------------------------


@transaction.atomic
def service_account_create(*, name: str, team: Team, description: str = "", actor, context: AuditContext):
    """A team-owned account for pipelines: a user ``svc-<name>`` without a password, in ``team``."""
    User = get_user_model()
    user = User(username=SERVICE_ACCOUNT_PREFIX + name)
    user.set_unusable_password()
    user.full_clean(exclude=["password"])
    user.save()
    team.members.add(user)
    account = ServiceAccount(user=user, team=team, description=description, created_by=actor)
    audit_save(
        account,
        actor=actor,
        action="service_account.created",
        context=context,
        after={"username": user.username, "team": team.slug, "description": description},
    )
    return account


@transaction.atomic
def account_deactivate(*, user, actor, context: AuditContext) -> int:
    """Deactivate a person or a service account and revoke all its tokens at once.
    Returns the number of tokens revoked."""
    User = get_user_model()
    user = User.objects.select_for_update().get(pk=user.pk)
    was_active = user.is_active
    if was_active:
        user.is_active = False
        user.save(update_fields=["is_active"])
    revoked = tokens_revoke_for_user(user=user, actor=actor, context=context, reason="account deactivated")
    if was_active:
        kind = "service_account" if ServiceAccount.objects.filter(user=user).exists() else "user"
        audit_record(
            actor=actor,
            action=f"{kind}.deactivated",
            obj=user,
            context=context,
            before={"is_active": True},
            after={"is_active": False, "tokens_revoked": revoked},
        )
    return revoked


# --- accounts and teams edited in the admin -----------------------------------------------------

ACCOUNT_FIELDS = ("username", "first_name", "last_name", "email", "is_active", "is_staff", "is_superuser")
ADMIN_FLAGS = frozenset({"is_staff", "is_superuser"})


def _account_state(user) -> dict:
    return {name: getattr(user, name) for name in ACCOUNT_FIELDS}


def _permission_names(permissions) -> list[str]:
    """Django permissions as ``app_label.codename``, sorted."""
    return sorted(f"{p.content_type.app_label}.{p.codename}" for p in permissions.select_related("content_type"))


def _permissions_set(*, holder, field: str, permissions, action: str, actor, context: AuditContext) -> None:
    """Set a user's ``user_permissions`` or a group's ``permissions`` (which admin pages a staff
    account may open and what it may change there): ``action`` with the names before and after;
    ``None`` leaves them alone, the same ones record nothing."""
    if permissions is None:
        return
    related = getattr(holder, field)
    before = _permission_names(related.all())
    related.set(permissions)
    after = _permission_names(related.all())
    if before != after:
        was, now = {"permissions": before}, {"permissions": after}
        audit_record(actor=actor, action=action, obj=holder, context=context, before=was, after=now)


@transaction.atomic
def account_save(*, user, actor, context: AuditContext, permissions=None):
    """Save a person's account as an admin edited it (never the password): ``user.created``
    with its fields, ``user.admin_changed`` when the staff or superuser flag changed, else
    ``user.changed``, each with the fields that changed before and after; no change, no event.
    ``permissions`` (Django's, for the admin site) replace theirs: ``user.permissions_changed``."""
    User = get_user_model()
    before = _account_state(User.objects.get(pk=user.pk)) if user.pk else None
    user.save()
    after = _account_state(user)
    if before is None:
        audit_record(actor=actor, action="user.created", obj=user, context=context, after=after)
    else:
        was, now = diff(before, after)
        if now:
            action = "user.admin_changed" if ADMIN_FLAGS & set(now) else "user.changed"
            audit_record(actor=actor, action=action, obj=user, context=context, before=was, after=now)
    _permissions_set(
        holder=user,
        field="user_permissions",
        permissions=permissions,
        action="user.permissions_changed",
        actor=actor,
        context=context,
    )
    forget_roles(user)
    return user


@transaction.atomic
def account_password_set(*, user, password: str | None, actor, context: AuditContext):
    """An admin sets a person's password, or turns password sign-in off (``None``):
    ``user.password_set``, without the password or its hash (whoever sets it can sign in as them)."""
    if password is None:
        user.set_unusable_password()
    else:
        user.set_password(password)
    user.save(update_fields=["password"])
    after = {"password_sign_in": password is not None}
    audit_record(actor=actor, action="user.password_set", obj=user, context=context, after=after)
    return user


@transaction.atomic
def account_delete(*, user, actor, context: AuditContext) -> None:
    """Delete an account; the event, written first, keeps what it was (its tokens go with it)."""
    before = {**_account_state(user), "groups": sorted(user.groups.values_list("name", flat=True))}
    audit_record(actor=actor, action="user.deleted", obj=user, context=context, before=before)
    user.delete()


@transaction.atomic
def role_group_save(*, group, actor, context: AuditContext, permissions=None):
    """Create or rename a group (roles are groups found by name: a rename takes the role from its
    members): ``role.created`` or ``role.changed`` with the name before and after. ``permissions``
    (Django's, which its staff members get on the admin site) replace the group's:
    ``role.permissions_changed``."""
    from django.contrib.auth.models import Group

    before = {"name": Group.objects.get(pk=group.pk).name} if group.pk else None
    group.full_clean()
    group.save()
    after = {"name": group.name}
    if before != after:
        action = "role.changed" if before else "role.created"
        audit_record(actor=actor, action=action, obj=group, context=context, before=before, after=after)
    _permissions_set(
        holder=group,
        field="permissions",
        permissions=permissions,
        action="role.permissions_changed",
        actor=actor,
        context=context,
    )
    return group


@transaction.atomic
def role_group_delete(*, group, actor, context: AuditContext) -> None:
    """Delete a group: its members lose the role at once; the event names them."""
    members = sorted(group.user_set.values_list("username", flat=True))
    before = {"name": group.name, "members": members}
    audit_record(actor=actor, action="role.deleted", obj=group, context=context, before=before)
    group.delete()


def _team_state(team: Team) -> dict:
    return {
        "name": team.name,
        "slug": team.slug,
        "description": team.description,
        "members": sorted(team.members.values_list("username", flat=True)),
    }


@transaction.atomic
def team_save(*, team: Team, members, actor, context: AuditContext) -> Team:
    """Create (``team_create``) or change a team and set its members (who see its models):
    ``team.changed`` with the fields that changed before and after. Admins only."""
    if not is_admin(actor):
        raise PermissionDenied("Only administrators change teams.")
    if team.pk is None:
        return team_create(
            name=team.name, slug=team.slug, description=team.description, members=members, actor=actor, context=context
        )
    before = _team_state(Team.objects.get(pk=team.pk))
    team.full_clean()
    team.save()
    team.members.set(members)
    after = _team_state(team)
    was, now = diff(before, after)
    if now:
        audit_record(actor=actor, action="team.changed", obj=team, context=context, before=was, after=now)
    return team


@transaction.atomic
def team_delete(*, team: Team, actor, context: AuditContext) -> None:
    """Delete a team that owns nothing (models and service accounts protect it). Admins only."""
    if not is_admin(actor):
        raise PermissionDenied("Only administrators delete teams.")
    audit_record(actor=actor, action="team.deleted", obj=team, context=context, before=_team_state(team))
    team.delete()


# --- group mapping (admin) ----------------------------------------------------------------------


def _mapping_state(mapping: GroupMapping) -> dict:
    return {
        "claim_value": mapping.claim_value,
        "group": mapping.group.name if mapping.group_id else None,
        "team": mapping.team.slug if mapping.team_id else None,
        "grants_admin": mapping.grants_admin,
    }


@transaction.atomic
def group_mapping_save(*, mapping: GroupMapping, actor, context: AuditContext) -> GroupMapping:
    """Create or change one mapping; the audit event holds the state before and after."""
    before = _mapping_state(GroupMapping.objects.get(pk=mapping.pk)) if mapping.pk else None
    mapping.full_clean()
    mapping.save()
    after = _mapping_state(mapping)
    if before != after:
        action = "group_mapping.changed" if before else "group_mapping.created"
        audit_record(actor=actor, action=action, obj=mapping, context=context, before=before, after=after)
    return mapping


@transaction.atomic
def group_mapping_delete(*, mapping: GroupMapping, actor, context: AuditContext) -> None:
    before = _mapping_state(mapping)
    audit_record(actor=actor, action="group_mapping.deleted", obj=mapping, context=context, before=before)
    mapping.delete()


# --- single sign-on: provisioning and grants ------------------------------------------------------


@dataclass
class Grants:
    """What the mapping gives for a set of claim values, and what it manages at all."""

    groups: set = field(default_factory=set)
    teams: set = field(default_factory=set)
    admin: bool = False
    managed_groups: set = field(default_factory=set)
    managed_teams: set = field(default_factory=set)


def grants_for(claim_values: list[str]) -> Grants:
    grants = Grants()
    values = set(claim_values)
    for mapping in GroupMapping.objects.select_related("group", "team"):
        if mapping.group_id:
            grants.managed_groups.add(mapping.group)
        if mapping.team_id:
            grants.managed_teams.add(mapping.team)
        if mapping.claim_value in values:
            grants.groups |= {mapping.group} if mapping.group_id else set()
            grants.teams |= {mapping.team} if mapping.team_id else set()
            grants.admin = grants.admin or mapping.grants_admin
    return grants


def _apply_teams(user, grants: Grants, previous: dict, context: AuditContext) -> None:
    current = set(Team.objects.filter(members=user))
    add = grants.teams - current
    managed = grants.managed_teams | {t for t in current if t.slug in previous.get("teams", [])}
    remove = (current & managed) - grants.teams
    for team in add:
        team.members.add(user)
    for team in remove:
        team.members.remove(user)
    if add or remove:
        audit_record(
            actor=user,
            action="user.teams_changed",
            obj=user,
            context=context,
            before={"teams": sorted(t.slug for t in current)},
            after={"teams": sorted(t.slug for t in (current | add) - remove), "source": "identity provider"},
        )


def _apply_admin(user, grants: Grants, any_admin_mapping: bool, context: AuditContext) -> None:
    if not any_admin_mapping or user.is_superuser == grants.admin:
        return
    before = {"is_staff": user.is_staff, "is_superuser": user.is_superuser}
    user.is_staff = user.is_superuser = grants.admin
    user.save(update_fields=["is_staff", "is_superuser"])
    audit_record(
        actor=user,
        action="user.admin_changed",
        obj=user,
        context=context,
        before=before,
        after={"is_staff": grants.admin, "is_superuser": grants.admin, "source": "identity provider"},
    )


@transaction.atomic
def sso_sign_in(*, user, issuer: str, subject: str, claim_values: list[str], context: AuditContext):
    """Record the provider's subject and set roles, teams and admin from the groups claim,
    exactly as the mapping says: what a mapped claim value grants is added; what a mapping
    manages, or what the last sign-in granted, but the claim no longer grants is removed.
    Each change is audited (role changes as ``user.role_changed``, attributed to the user)."""
    identity, created = ExternalIdentity.objects.get_or_create(
        user=user, defaults={"issuer": issuer, "subject": subject}
    )
    if (identity.issuer, identity.subject) != (issuer, subject):
        raise ValidationError("This account is linked to another identity at the provider.")
    grants = grants_for(claim_values)
    previous = identity.granted or {}
    current = set(user.groups.all())
    add = grants.groups - current
    managed = grants.managed_groups | {g for g in current if g.name in previous.get("groups", [])}
    remove = (current & managed) - grants.groups
    with acting_as(user, context):
        if add:
            user.groups.add(*add)
        if remove:
            user.groups.remove(*remove)
    _apply_teams(user, grants, previous, context)
    identity.last_login_at = clock.now()
    identity.groups = sorted(set(claim_values))
    identity.granted = {"groups": sorted(g.name for g in grants.groups), "teams": sorted(t.slug for t in grants.teams)}
    identity.save(update_fields=["last_login_at", "groups", "granted"])
    _apply_admin(user, grants, GroupMapping.objects.filter(grants_admin=True).exists(), context)
    forget_roles(user)
    audit_record(
        actor=user,
        action="user.sso_signed_in",
        obj=user,
        context=context,
        after={
            "issuer": issuer,
            "subject": subject,
            "provisioned": created,
            "claim_groups": identity.groups,
            "roles_added": sorted(g.name for g in add),
            "roles_removed": sorted(g.name for g in remove),
        },
    )
    return user


@transaction.atomic
def sso_user_provision(*, username: str, email: str, first_name: str, last_name: str, context: AuditContext):
    """The account for a first sign-in through the provider (no usable password)."""
    User = get_user_model()
    base, n = username[:140] or "user", 1
    candidate = base
    while User.objects.filter(username=candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    user = User(username=candidate, email=email, first_name=first_name[:150], last_name=last_name[:150])
    user.set_unusable_password()
    user.save()
    audit_record(actor=user, action="user.provisioned", obj=user, context=context, after={"username": candidate})
    return user


# --- lockout ----------------------------------------------------------------------------------------


@transaction.atomic
def login_locked_out(*, username: str | None, ip: str | None, context: AuditContext) -> None:
    """An account or an address reached the failure limit (or tried again while locked)."""
    audit_record(
        actor="anonymous",
        action="user.locked_out",
        context=context,
        object_type="auth.user",
        object_repr=(username or "")[:150],
        after={"username": username or "", "ip_address": ip},
    )


@transaction.atomic
def login_unlock(*, attempts, actor, context: AuditContext) -> int:
    """An admin lifts the lockout of the given access-attempt rows (django-axes)."""
    rows = list(attempts)
    for attempt in rows:
        audit_record(
            actor=actor,
            action="user.unlocked",
            context=context,
            object_type="axes.accessattempt",
            object_id=str(attempt.pk),
            object_repr=(attempt.username or attempt.ip_address or "")[:150],
            after={
                "username": attempt.username,
                "ip_address": attempt.ip_address,
                "failures": attempt.failures_since_start,
            },
        )
        attempt.delete()
    return len(rows)
