"""API tokens: created (shown once, expiring within TOKEN_MAX_LIFETIME_DAYS), revoked (by their
owner or an admin, and all at once when their user is deactivated), authenticated."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from mlops_portal import clock
from registry.auth import adopt_roles, role_annotations
from registry.cache import access_recache, cached_access
from registry.choices import TokenScope
from registry.models import ApiToken
from registry.rules import usable_scopes

from .audit import AuditContext, audit_record, audit_save

TOKEN_PREFIX = "mlp_"
LAST_USE_RESOLUTION_SECONDS = 60  # last_used_at/ip are written at most once a minute per token


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def token_expiry(expires_at: datetime | None) -> datetime:
    """The expiry to store: the one asked for, or the longest allowed; later than allowed is refused."""
    now = clock.now()
    latest = now + timedelta(days=settings.TOKEN_MAX_LIFETIME_DAYS)
    if expires_at is None:
        return latest
    if expires_at <= now:
        raise ValidationError({"expires_at": "Expiry must be in the future."})
    if expires_at > latest + timedelta(minutes=1):
        raise ValidationError(
            {"expires_at": f"Tokens expire within {settings.TOKEN_MAX_LIFETIME_DAYS} days (TOKEN_MAX_LIFETIME_DAYS)."}
        )
    return expires_at


@transaction.atomic
def token_create(
    *, user, name: str, scopes: list[str], expires_at: datetime | None, actor, context: AuditContext
) -> tuple[ApiToken, str]:
    """Create a token for ``user`` with scopes its roles can use (``registry.rules.usable_scopes``:
    the one check for the tokens page, the pipeline page and ``manage.py create_token``); returns
    the row and the raw secret (shown once)."""
    unknown = sorted(set(scopes) - set(TokenScope.values))
    if unknown:
        raise ValidationError(
            {"scopes": f"Unknown scope(s): {', '.join(unknown)}. Valid: {', '.join(TokenScope.values)}."}
        )
    if not scopes:
        raise ValidationError({"scopes": "Choose at least one scope."})
    if not user.is_active:
        raise ValidationError({"user": "The account is deactivated."})
    usable = usable_scopes(user)
    beyond_roles = [scope for scope in TokenScope.values if scope in scopes and scope not in usable]
    if beyond_roles:
        raise ValidationError(
            {"scopes": f"Not a scope {user.get_username()}'s roles can use: {', '.join(beyond_roles)}."}
        )
    expires_at = token_expiry(expires_at)
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user=user,
        name=name,
        prefix=raw[: len(TOKEN_PREFIX) + 6],
        token_hash=hash_token(raw),
        scopes=sorted(set(scopes)),
        expires_at=expires_at,
    )
    audit_save(
        token,
        actor=actor,
        action="token.created",
        context=context,
        after={"user": user.get_username(), "name": name, "scopes": token.scopes, "expires_at": expires_at},
    )
    return token, raw


@transaction.atomic
def token_revoke(*, token: ApiToken, actor, context: AuditContext, reason: str = "") -> ApiToken:
    """Revoke one token (its owner, or an admin for anyone's); audited, idempotent."""
    if token.revoked_at is None:
        token.revoked_at = clock.now()
        token.save(update_fields=["revoked_at"])
        after = {"revoked_at": token.revoked_at, "user": token.user.get_username()}
        if reason:
            after["reason"] = reason
        audit_record(
            actor=actor, action="token.revoked", obj=token, context=context, before={"revoked_at": None}, after=after
        )
    return token


@transaction.atomic
def tokens_revoke_for_user(*, user, actor, context: AuditContext, reason: str) -> int:
    """Revoke every live token of ``user`` (deactivation); one audit event per token."""
    live = list(
        ApiToken.objects.select_for_update(of=("self",))
        .filter(user=user, revoked_at__isnull=True)
        .select_related("user")
    )
    for token in live:
        token_revoke(token=token, actor=actor, context=context, reason=reason)
    return len(live)


def token_authenticate(raw: str, *, ip: str | None = None) -> ApiToken | None:
    """The live token for a raw secret, or None. Records its last use (time and client address)
    at most once a minute.

    With the cache on, one small read (the ACCESS revision, ``registry.cache.cached_access``)
    when the token is cached; else one statement on PostgreSQL (token, user, group names and team
    flag: ``registry.auth``), on SQLite the group names follow in one more when a permission first
    asks for them. Plus the last-use update when it is due."""
    digest = hash_token(raw)
    token = cached_access("token", digest, _live_token)
    if token is None or not token.user.is_active:
        return None
    now = clock.now()
    if token.expires_at is not None and token.expires_at <= now:
        return None
    stale = token.last_used_at is None or (now - token.last_used_at).total_seconds() > LAST_USE_RESOLUTION_SECONDS
    if stale or (ip and ip != token.last_used_ip):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now, last_used_ip=ip)
        token.last_used_at, token.last_used_ip = now, ip
        access_recache("token", digest, token)
    return token


def _live_token(digest: str) -> ApiToken | None:
    """The unrevoked token with this hash, its user and the user's roles, from the database."""
    token = (
        ApiToken.objects.filter(token_hash=digest, revoked_at__isnull=True)
        .annotate(**role_annotations("user_id"))
        .select_related("user")
        .first()
    )
    if token is not None:
        adopt_roles(token.user, token)
    return token
