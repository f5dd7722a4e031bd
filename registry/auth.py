"""Loading the requesting user together with their roles, in one statement.

Every page and API call asks the permission rules about the user's groups (reviewer,
auditor) and often whether they belong to a team. Read separately that is two more
statements per request on top of the user's own; on PostgreSQL the user row, an array of
group names and a team-membership flag come back together instead, and are put where
``registry.rules`` looks first (``_group_names_cache``, as django-rules itself caches them,
and ``_has_team_cache``). Elsewhere (SQLite) the rules read them when first asked.

Used by session authentication (``RolesModelBackend``, in ``AUTHENTICATION_BACKENDS``) and
by API token authentication (``registry.services.tokens``).
"""

from __future__ import annotations

from functools import cache

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import ValidationError
from django.db import connection


@cache
def user_sql() -> tuple[str, str, list]:
    """(select list for alias ``u``: user columns, group names, has-team flag; FROM clause; user fields)."""
    from registry.models import Team

    User = get_user_model()
    user_fields = list(User._meta.concrete_fields)
    groups = User._meta.get_field("groups")
    through, group = groups.remote_field.through._meta, groups.related_model._meta
    members = Team.members.through._meta
    pk = User._meta.pk.column
    select = (
        ", ".join(f"u.{f.column}" for f in user_fields)
        + f", ARRAY(SELECT g.{group.get_field('name').column} FROM {through.db_table} ug"
        f" JOIN {group.db_table} g ON g.{group.pk.column} = ug.{groups.m2m_reverse_name()}"
        f" WHERE ug.{groups.m2m_column_name()} = u.{pk})"
        f", EXISTS(SELECT 1 FROM {members.db_table} tm WHERE tm.{Team.members.field.m2m_reverse_name()} = u.{pk})"
    )
    return select, f"{User._meta.db_table} u", user_fields


def instance_from_row(model, fields: list, values) -> object:
    """A model instance from raw column values (the fields' own database converters applied)."""
    converted = [
        f.from_db_value(v, None, connection) if hasattr(f, "from_db_value") else v
        for f, v in zip(fields, values, strict=True)
    ]
    return model.from_db(connection.alias, [f.attname for f in fields], converted)


def user_from_row(values) -> object:
    """The user from the columns ``user_sql()`` selected (group names and team flag last)."""
    *columns, group_names, has_team = values
    user = instance_from_row(get_user_model(), user_sql()[2], columns)
    user._group_names_cache = set(group_names)  # what rules.is_group_member reads (it would query once)
    user._has_team_cache = has_team  # what registry.rules.has_team reads
    return user


def user_with_roles(pk) -> object | None:
    """The user with primary key ``pk`` and their roles (PostgreSQL; None if there is no such user)."""
    select, table, _ = user_sql()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {select} FROM {table} WHERE u.{get_user_model()._meta.pk.column} = %s", [pk])
        row = cursor.fetchone()
    return None if row is None else user_from_row(row)


class RolesModelBackend(ModelBackend):
    """Django's ModelBackend; on PostgreSQL the session's user comes with their roles (one statement)."""

    def get_user(self, user_id):
        try:
            pk = get_user_model()._meta.pk.to_python(user_id)
        except ValidationError:  # a malformed session value: no user
            return None
        if connection.vendor != "postgresql":
            return super().get_user(pk)
        user = user_with_roles(pk)
        return user if user is not None and self.user_can_authenticate(user) else None
