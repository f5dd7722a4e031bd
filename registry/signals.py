"""Auditing of what Django only announces through signals: logins, logouts, failed
logins, and role changes (a user's group membership, e.g. edited in the admin).

Everything else is audited explicitly by the services. Each handler writes its event
in its own (possibly nested) transaction, so the event commits with the change.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import transaction
from django.db.models.signals import m2m_changed
from django.dispatch import receiver

from registry.choices import AuditSource
from registry.services.audit import CLI, AuditContext, audit_record, current_actor

User = get_user_model()


def _context(request) -> AuditContext:
    return AuditContext.from_request(request, source=AuditSource.UI) if request is not None else CLI


@receiver(user_logged_in, dispatch_uid="registry_audit_login")
def audit_login(sender, request, user, **kwargs):
    with transaction.atomic():
        audit_record(actor=user, action="user.logged_in", obj=user, context=_context(request))


@receiver(user_logged_out, dispatch_uid="registry_audit_logout")
def audit_logout(sender, request, user, **kwargs):
    if user is None:
        return
    with transaction.atomic():
        audit_record(actor=user, action="user.logged_out", obj=user, context=_context(request))


@receiver(user_login_failed, dispatch_uid="registry_audit_login_failed")
def audit_login_failed(sender, credentials, request=None, **kwargs):
    # Django has already replaced the password with '********'; keep only the username.
    username = str(credentials.get(User.USERNAME_FIELD) or credentials.get("username") or "")[:150]
    with transaction.atomic():
        audit_record(
            actor="anonymous",
            action="user.login_failed",
            context=_context(request),
            object_type="auth.user",
            object_repr=username,
            after={"username": username},
        )


def _groups(user) -> list[str]:
    return sorted(user.groups.values_list("name", flat=True))


@receiver(m2m_changed, sender=User.groups.through, dispatch_uid="registry_audit_role_changed")
def audit_role_changed(sender, instance, action, reverse, model, pk_set, **kwargs):
    """``user.groups.add(...)`` (instance is a user) or ``group.user_set.add(...)`` (instance is a group)."""
    if action not in ("pre_clear", "post_add", "post_remove", "post_clear"):
        return
    if action == "pre_clear":
        # Remember who is affected, before the rows are gone.
        if isinstance(instance, Group):
            instance._audit_clear = {u.pk: _groups(u) for u in instance.user_set.all()}
        else:
            instance._audit_clear = {instance.pk: _groups(instance)}
        return
    if isinstance(instance, Group):
        group_names = [instance.name]
        if action == "post_clear":
            affected = User.objects.filter(pk__in=list(getattr(instance, "_audit_clear", {})))
        else:
            affected = User.objects.filter(pk__in=pk_set or [])
    else:
        affected = [instance]
        if action == "post_clear":
            group_names = getattr(instance, "_audit_clear", {}).get(instance.pk, [])
        else:
            group_names = sorted(Group.objects.filter(pk__in=pk_set or []).values_list("name", flat=True))
    if not group_names:
        return
    verb = "added" if action == "post_add" else "removed"
    actor, context = current_actor(CLI)
    with transaction.atomic():
        for user in affected:
            now = _groups(user)
            if verb == "added":
                before = sorted(set(now) - set(group_names))
            else:
                before = sorted(set(now) | set(group_names))
            audit_record(
                actor=actor,
                action="user.role_changed",
                obj=user,
                context=context,
                before={"groups": before},
                after={"groups": now, verb: sorted(group_names)},
            )
