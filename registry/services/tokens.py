"""Personal access tokens: created (shown once), revoked, authenticated."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from functools import cache

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from registry.auth import instance_from_row, user_from_row, user_sql
from registry.choices import TokenScope
from registry.models import ApiToken

from .audit import AuditContext, audit_record

TOKEN_PREFIX = "mlp_"


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


@transaction.atomic
def token_create(
    *, user, name: str, scopes: list[str], expires_at: datetime | None, actor, context: AuditContext
) -> tuple[ApiToken, str]:
    """Create a token for ``user``; returns the row and the raw secret (shown once)."""
    unknown = sorted(set(scopes) - set(TokenScope.values))
    if unknown:
        raise ValidationError(
            {"scopes": f"Unknown scope(s): {', '.join(unknown)}. Valid: {', '.join(TokenScope.values)}."}
        )
    if not scopes:
        raise ValidationError({"scopes": "Choose at least one scope."})
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": "Expiry must be in the future."})
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user=user,
        name=name,
        prefix=raw[: len(TOKEN_PREFIX) + 6],
        token_hash=hash_token(raw),
        scopes=sorted(set(scopes)),
        expires_at=expires_at,
    )
    token.full_clean()
    token.save()
    audit_record(
        actor=actor,
        action="token.created",
        obj=token,
        context=context,
        after={"user": user.get_username(), "name": name, "scopes": token.scopes, "expires_at": expires_at},
    )
    return token, raw


@transaction.atomic
def token_revoke(*, token: ApiToken, actor, context: AuditContext) -> ApiToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_record(
            actor=actor,
            action="token.revoked",
            obj=token,
            context=context,
            before={"revoked_at": None},
            after={"revoked_at": token.revoked_at},
        )
    return token


def token_authenticate(raw: str) -> ApiToken | None:
    """The live token for a raw secret, or None. Updates last_used_at at most once a minute.

    On PostgreSQL the token, its user and the user's roles (which every permission check
    needs, see ``registry.auth``) come in one statement; elsewhere through the ORM."""
    if connection.vendor == "postgresql":
        token = _token_with_user_and_roles(hash_token(raw))
    else:
        token = (
            ApiToken.objects.select_related("user").filter(token_hash=hash_token(raw), revoked_at__isnull=True).first()
        )
    if token is None or not token.user.is_active:
        return None
    now = timezone.now()
    if token.expires_at is not None and token.expires_at <= now:
        return None
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


@cache
def _token_sql() -> tuple[str, list]:
    user_select, user_table, _ = user_sql()
    token_fields = list(ApiToken._meta.concrete_fields)
    sql = (
        f"SELECT {', '.join(f't.{f.column}' for f in token_fields)}, {user_select}"
        f" FROM {ApiToken._meta.db_table} t JOIN {user_table} ON u.{get_user_model()._meta.pk.column} = t.user_id"
        f" WHERE t.token_hash = %s AND t.revoked_at IS NULL"
    )
    return sql, token_fields


def _token_with_user_and_roles(token_hash: str) -> ApiToken | None:
    sql, token_fields = _token_sql()
    with connection.cursor() as cursor:
        cursor.execute(sql, [token_hash])
        row = cursor.fetchone()
    if row is None:
        return None
    token = instance_from_row(ApiToken, token_fields, row[: len(token_fields)])
    ApiToken.user.field.set_cached_value(token, user_from_row(row[len(token_fields) :]))
    return token
