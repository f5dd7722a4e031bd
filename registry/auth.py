"""Loading the requesting user together with their roles, through the ORM.

Every page and API call asks the permission rules about the user's groups (reviewer,
auditor) and whether they belong to a team. ``users_with_roles()`` is the user queryset that
brings both along, so the rules never ask again:

- PostgreSQL: one statement. The group names come as an array subquery (``ArraySubquery``)
  and team membership as ``Exists``, next to the user's own columns.
- SQLite: two statements. The user row with the ``Exists`` flag, then the group names
  (``Prefetch``).

``role_names(user)`` and ``in_a_team(user)`` are what ``registry.rules`` asks; they read what
was loaded and query only for a user that came from elsewhere (then once, kept on the user).

Used by session authentication (``RolesModelBackend``, in ``AUTHENTICATION_BACKENDS``), by the
OpenID Connect backend (``registry.oidc``) and by API token authentication
(``registry.services.tokens``).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, Prefetch, QuerySet

from mlops_portal.db import is_postgresql

ROLE_NAMES_ATTR = "role_names"  # frozenset of group names, set on the loaded user
IN_A_TEAM_ATTR = "in_a_team"  # bool, annotated on the loaded user


def role_annotations(user_ref: str) -> dict:
    """Annotations that load the roles of the user whose key is at ``user_ref`` (``pk`` on the
    user queryset, ``user_id`` on a row that points at a user); the group names only on
    PostgreSQL (an array), SQLite prefetches them (``role_prefetch``)."""
    from registry.models import Team

    annotations = {IN_A_TEAM_ATTR: Exists(Team.members.through.objects.filter(user_id=OuterRef(user_ref)))}
    if is_postgresql():
        from django.contrib.postgres.expressions import ArraySubquery

        names = Group.objects.filter(user=OuterRef(user_ref)).order_by().values("name")
        annotations[ROLE_NAMES_ATTR + "_list"] = ArraySubquery(names)
    return annotations


def role_prefetch(path: str = "groups") -> list:
    """What to prefetch for the group names where they are not annotated (SQLite)."""
    if is_postgresql():
        return []
    return [Prefetch(path, queryset=Group.objects.only("name"))]


def users_with_roles() -> QuerySet:
    """Users with ``role_names`` (their group names) and ``in_a_team`` loaded alongside."""
    return get_user_model().objects.annotate(**role_annotations("pk")).prefetch_related(*role_prefetch())


def adopt_roles(user, row) -> None:
    """Move role annotations made on ``row`` (e.g. a token, see ``role_annotations``) onto ``user``."""
    for attr in (ROLE_NAMES_ATTR + "_list", IN_A_TEAM_ATTR):
        if hasattr(row, attr):
            setattr(user, attr, getattr(row, attr))


def role_names(user) -> frozenset[str]:
    """The names of the user's groups (their roles); read once per loaded user."""
    if not getattr(user, "is_authenticated", False) or user.pk is None:
        return frozenset()
    names = getattr(user, ROLE_NAMES_ATTR, None)
    if names is None:
        listed = getattr(user, ROLE_NAMES_ATTR + "_list", None)
        if listed is None:  # prefetched by users_with_roles() on SQLite, else one query
            listed = [group.name for group in user.groups.all()]
        names = frozenset(listed)
        setattr(user, ROLE_NAMES_ATTR, names)
    return names


def in_a_team(user) -> bool:
    """Whether the user is a member of at least one team; read once per loaded user."""
    if not getattr(user, "is_authenticated", False) or user.pk is None:
        return False
    flag = getattr(user, IN_A_TEAM_ATTR, None)
    if flag is None:
        flag = user.teams.exists()
        setattr(user, IN_A_TEAM_ATTR, flag)
    return flag


def forget_roles(user) -> None:
    """Drop what was loaded, after the user's groups or teams changed in this request."""
    for attr in (ROLE_NAMES_ATTR, ROLE_NAMES_ATTR + "_list", IN_A_TEAM_ATTR):
        if hasattr(user, attr):
            delattr(user, attr)


def user_with_roles(pk) -> object | None:
    """The user with primary key ``pk`` and their roles, or None."""
    return users_with_roles().filter(pk=pk).first()


def password_login_allowed(username: str | None) -> bool:
    """Passwords work for everyone with LOCAL_LOGIN (the default), else only for the break-glass account."""
    if settings.LOCAL_LOGIN:
        return True
    return bool(settings.BREAK_GLASS_USERNAME) and username == settings.BREAK_GLASS_USERNAME


class RolesModelBackend(ModelBackend):
    """Django's ModelBackend; the session's user comes with their roles, and LOCAL_LOGIN is obeyed."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if not password_login_allowed(username):
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)

    def get_user(self, user_id):
        try:
            pk = get_user_model()._meta.pk.to_python(user_id)
        except ValidationError:  # a malformed session value: no user
            return None
        from registry.cache import cached_access  # registry.rules, which it imports, imports this module

        user = cached_access("user", pk, user_with_roles)
        return user if user is not None and self.user_can_authenticate(user) else None
