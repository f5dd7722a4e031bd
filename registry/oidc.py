"""Single sign-on with OpenID Connect (mozilla-django-oidc).

Switched on by ``OIDC_RP_CLIENT_ID``, ``OIDC_RP_CLIENT_SECRET`` and ``OIDC_OP_DISCOVERY_URL``
(or the explicit ``OIDC_OP_*_ENDPOINT`` variables). The flow is the authorization code flow
with PKCE; mozilla-django-oidc checks the state against the session, the nonce against the
ID token, and the ID token's RS256 signature against the provider's JWKS (its expiry too, via
PyJWT). This module adds what the library leaves out: the issuer and audience of the ID token,
the endpoints from the discovery document, provisioning by the provider's subject, roles and
teams from the groups claim (``registry.services.accounts.sso_sign_in``) and audit events.
"""

from __future__ import annotations

import logging
from functools import cache

import jwt
import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured, SuspiciousOperation, ValidationError
from django.db import transaction
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import resolve_url
from django.views import View
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.utils import import_from_settings
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from registry.auth import RolesModelBackend
from registry.models import ExternalIdentity
from registry.services.accounts import sso_sign_in, sso_user_provision
from registry.services.audit import AuditContext, audit_record
from registry.stepup import mark_authenticated

log = logging.getLogger(__name__)

DISCOVERY_KEYS = {
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "authorization_endpoint",
    "OIDC_OP_TOKEN_ENDPOINT": "token_endpoint",
    "OIDC_OP_USER_ENDPOINT": "userinfo_endpoint",
    "OIDC_OP_JWKS_ENDPOINT": "jwks_uri",
    "OIDC_OP_ISSUER": "issuer",
}
STEP_UP_SESSION_KEY = "oidc_step_up"


def oidc_enabled() -> bool:
    return bool(settings.OIDC_RP_CLIENT_ID and settings.OIDC_RP_CLIENT_SECRET) and bool(
        settings.OIDC_OP_DISCOVERY_URL or settings.OIDC_OP_AUTHORIZATION_ENDPOINT
    )


@cache
def discovery(url: str) -> dict:
    """The provider's discovery document (read once per process and URL)."""
    response = requests.get(url, timeout=settings.OIDC_TIMEOUT, verify=settings.OIDC_VERIFY_SSL)
    response.raise_for_status()
    return response.json()


def oidc_setting(attr: str, *args):
    """A setting, the provider's endpoints taken from the discovery document unless set explicitly."""
    if attr in DISCOVERY_KEYS and not getattr(settings, attr, "") and settings.OIDC_OP_DISCOVERY_URL:
        value = discovery(settings.OIDC_OP_DISCOVERY_URL).get(DISCOVERY_KEYS[attr])
        if value:
            return value
    if attr in DISCOVERY_KEYS and not getattr(settings, attr, ""):
        if args:
            return args[0]
        raise ImproperlyConfigured(f"Setting {attr} not found (nor in OIDC_OP_DISCOVERY_URL)")
    return import_from_settings(attr, *args)


class OidcBackend(OIDCAuthenticationBackend):
    """Users by the provider's subject; first sign-in provisions; every sign-in applies the mapping."""

    get_settings = staticmethod(oidc_setting)

    def __init__(self, *args, **kwargs):
        # Nothing read from the provider here: Django makes a backend for every request of a
        # signed-in user (get_user), which must keep working while the provider is down.
        self.UserModel = get_user_model()

    def authenticate(self, request, **kwargs):
        if not oidc_enabled() or request is None or "code" not in request.GET:
            return None
        self.context = AuditContext.from_request(request)
        try:
            self.configured()
            return super().authenticate(request, **kwargs)
        except (
            SuspiciousOperation,
            ImproperlyConfigured,
            jwt.PyJWTError,
            requests.RequestException,
            ValidationError,
        ) as exc:
            self._refused(f"{type(exc).__name__}: {exc}")
            return None

    def configured(self) -> OidcBackend:
        """The library's setup: endpoints (from discovery), client, signing algorithm."""
        super().__init__()
        return self

    def _refused(self, reason: str) -> None:
        log.warning("single sign-on refused: %s", reason)
        with transaction.atomic():
            audit_record(
                actor="anonymous",
                action="user.sso_refused",
                context=self.context,
                object_type="auth.user",
                after={"reason": reason[:300]},
            )

    def verify_token(self, token, **kwargs):
        """The library's checks (signature against the JWKS, expiry, nonce), then issuer and audience."""
        payload = super().verify_token(token, **kwargs)
        issuer = self.get_settings("OIDC_OP_ISSUER", "")
        if issuer and payload.get("iss") != issuer:
            raise SuspiciousOperation("ID token issued by another issuer.")
        audience = payload.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if self.OIDC_RP_CLIENT_ID not in audiences:
            raise SuspiciousOperation("ID token issued for another client.")
        if "exp" not in payload:
            raise SuspiciousOperation("ID token without expiry.")
        self.id_claims = payload
        return payload

    def get_userinfo(self, access_token, id_token, payload):
        """The ID token's claims, completed by the userinfo endpoint (same subject only)."""
        claims = dict(payload)
        userinfo = super().get_userinfo(access_token, id_token, payload)
        if userinfo.get("sub") != payload.get("sub"):
            raise SuspiciousOperation("userinfo names another subject than the ID token.")
        claims.update(userinfo)
        return claims

    def verify_claims(self, claims) -> bool:
        return bool(claims.get("sub"))

    def _issuer(self, claims) -> str:
        return claims.get("iss") or self.get_settings("OIDC_OP_ISSUER", "") or settings.OIDC_OP_DISCOVERY_URL

    def filter_users_by_claims(self, claims):
        identity = (
            ExternalIdentity.objects.select_related("user")
            .filter(issuer=self._issuer(claims), subject=claims["sub"])
            .first()
        )
        return [identity.user] if identity else []

    def create_user(self, claims):
        user = sso_user_provision(
            username=str(claims.get(settings.OIDC_USERNAME_CLAIM) or claims.get("email") or claims["sub"]),
            email=str(claims.get("email") or ""),
            first_name=str(claims.get("given_name") or ""),
            last_name=str(claims.get("family_name") or ""),
            context=self.context,
        )
        return self.update_user(user, claims)

    def update_user(self, user, claims):
        if not user.is_active:
            raise SuspiciousOperation("The account is deactivated.")
        groups = claims.get(settings.OIDC_GROUPS_CLAIM) or []
        if isinstance(groups, str):
            groups = [groups]
        sso_sign_in(
            user=user,
            issuer=self._issuer(claims),
            subject=str(claims["sub"]),
            claim_values=[str(g) for g in groups],
            context=self.context,
        )
        if claims.get("auth_time"):  # when the person last authenticated at the provider (step-up)
            mark_authenticated(self.request, float(claims["auth_time"]))
        return user

    def get_user(self, user_id):
        return RolesModelBackend().get_user(user_id)


class OidcRequestView(OIDCAuthenticationRequestView):
    """Sends the browser to the provider; ``?step_up=1`` asks it for a fresh sign-in."""

    get_settings = staticmethod(oidc_setting)

    def __init__(self, *args, **kwargs):
        View.__init__(self, *args, **kwargs)  # the provider's endpoints are read in get()

    def get(self, request):
        if not oidc_enabled():
            raise Http404("Single sign-on is not configured.")
        try:
            super().__init__()
        except (requests.RequestException, ImproperlyConfigured, ValueError) as exc:
            log.error("single sign-on unavailable: %s: %s", type(exc).__name__, exc)
            return HttpResponseRedirect(resolve_url(settings.LOGIN_REDIRECT_URL_FAILURE))
        return super().get(request)

    def get_extra_params(self, request):
        params = dict(super().get_extra_params(request))
        if request.GET.get("step_up"):
            params.update({"prompt": "login", "max_age": "0"})
        return params


class OidcCallbackView(OIDCAuthenticationCallbackView):
    get_settings = staticmethod(oidc_setting)

    def get(self, request):
        if not oidc_enabled():
            raise Http404("Single sign-on is not configured.")
        return super().get(request)
