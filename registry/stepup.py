"""Step-up: sensitive actions need a sign-in at most ``STEP_UP_MAX_AGE`` seconds old.

Sensitive: approving a high-risk promotion, an admin gate override (or waiver), changing a
promotion policy, a legal hold or retention change, an erasure (monitoring/api/retention.py,
monitoring/views_privacy.py). How to use it:

- a view where every call is sensitive: ``@step_up_required``;
- a view where some calls are: ``@step_up_required_if(predicate)``, ``predicate(request,
  *args, **kwargs) -> bool`` (``promotion_approval_is_sensitive`` for approvals);
- inside a view or an API endpoint: ``step_up_check(request)`` raises ``StepUpRequired``
  (a 403; DRF answers it as JSON with code ``step_up_required``);
- in a rule: ``is_freshly_authenticated(user, request)``.

A browser session is fresh for ``STEP_UP_MAX_AGE`` seconds after a sign-in, a provider
re-authentication (``prompt=login``, ``max_age=0``) or a password confirmation on
``/login/step-up/``. An API token is fresh only if it carries the ``step-up:sensitive`` scope.
"""

from __future__ import annotations

import time
from functools import wraps
from urllib.parse import urlencode, urlsplit

import rules
from django.conf import settings
from django.http import HttpResponseRedirect
from django.urls import reverse
from django_htmx.http import HttpResponseClientRedirect
from rest_framework import exceptions

from registry.choices import RiskTier, TokenScope
from registry.models import ApiToken

AUTH_TIME_KEY = "auth_time"
DRAFT_KEY = "step_up_draft"  # what was typed in the form whose POST was stopped for a step-up
DRAFT_MAX_CHARS = 10_000


class StepUpRequired(exceptions.PermissionDenied):
    """A 403 asking for a fresh sign-in; the API answers it with code ``step_up_required``."""

    default_detail = "This action needs a fresh sign-in: confirm your identity and try again."
    default_code = "step_up_required"


def mark_authenticated(request, when: float | None = None) -> None:
    """Record in the session that the user has just signed in (or re-authenticated)."""
    request.session[AUTH_TIME_KEY] = int(when if when is not None else time.time())


def is_fresh(request) -> bool:
    """Whether this request may do a sensitive action now."""
    auth = getattr(request, "auth", None)
    if isinstance(auth, ApiToken):
        return TokenScope.STEP_UP in auth.scopes
    session = getattr(request, "session", None)
    auth_time = session.get(AUTH_TIME_KEY) if session is not None else None
    return bool(auth_time) and time.time() - float(auth_time) <= settings.STEP_UP_MAX_AGE


def step_up_check(request) -> None:
    if not is_fresh(request):
        raise StepUpRequired()


@rules.predicate
def is_freshly_authenticated(user, request) -> bool:
    return request is not None and is_fresh(request)


def step_up_url(request, back: str | None = None) -> str:
    """Where to confirm identity, coming back to ``back`` (default: the page the action was
    started from)."""
    if back is None:
        back = _started_from(request)
    return reverse("step_up") + "?" + urlencode({"next": back})


def _started_from(request) -> str:
    """The page the user was on: this one for a GET, else the page that posted (htmx names it in
    ``HX-Current-URL``; a plain form in ``Referer``). ``step_up`` only follows a same-host one."""
    if request.method == "GET":
        return request.get_full_path()
    return request.headers.get("HX-Current-URL") or request.META.get("HTTP_REFERER") or "/"


def _ask(request, keep: tuple[str, ...] = (), back: str | None = None):
    """Send the user to the step-up page, then ``back`` (default: the page the user was on). An
    htmx request gets a 200 with ``HX-Redirect`` (htmx navigates the whole page; it never sees
    the header of a 3xx, whose target the browser would fetch and swap into the fragment). A
    stopped POST is marked in the session (the step-up page then says it was not recorded) with
    its ``keep`` fields, to fill the form in again on return (``step_up_draft``)."""
    if request.path.startswith("/api/"):
        raise StepUpRequired()
    back = back or _started_from(request)
    if request.method == "POST":
        fields = {name: str(request.POST.get(name, ""))[:DRAFT_MAX_CHARS] for name in keep}
        request.session[DRAFT_KEY] = {"path": urlsplit(back).path, "fields": fields}
    url = step_up_url(request, back)
    if request.headers.get("HX-Request") == "true":
        return HttpResponseClientRedirect(url)
    return HttpResponseRedirect(url)


def step_up_interrupted(request) -> bool:
    """Whether the step-up just confirmed stopped a POST (its action was not recorded)."""
    return DRAFT_KEY in request.session


def step_up_draft(request) -> dict[str, str]:
    """What was typed in this page's form before a step-up stopped its POST (once; else {})."""
    draft = request.session.get(DRAFT_KEY)
    if not isinstance(draft, dict) or draft.get("path") != request.path:
        return {}
    del request.session[DRAFT_KEY]
    return dict(draft.get("fields") or {})


def step_up_required_if(predicate, keep: tuple[str, ...] = ()):
    """Ask for a fresh sign-in before the view when ``predicate(request, *args, **kwargs)``;
    ``keep`` names the POST fields to give back to the form after the step-up."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if predicate(request, *args, **kwargs) and not is_fresh(request):
                return _ask(request, keep)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


step_up_required = step_up_required_if(lambda request, *args, **kwargs: True)


def promotion_approval_is_sensitive(request, pk=None, *args, override: bool | None = None, **kwargs) -> bool:
    """Approving a high-risk model's promotion, or any approval that overrides red gates."""
    from registry.models import PromotionRequest

    if override is None:
        data = getattr(request, "data", None) or request.POST
        override = bool(str(data.get("override_reason") or "").strip())
    promotion = PromotionRequest.objects.filter(pk=pk).select_related("version__model").first()
    if promotion is None or not request.user.has_perm("registry.review_promotion", promotion):
        return False  # not allowed at all: the review rule answers with its own reason, not a step-up
    return override or promotion.version.model.risk_tier == RiskTier.HIGH


def promotion_approval_check(request, promotion, override_reason) -> None:
    """For the API: ``StepUpRequired`` unless the approval is routine or the caller is fresh."""
    if promotion_approval_is_sensitive(request, promotion.pk, override=bool(override_reason)):
        step_up_check(request)


class StepUpOnSave:
    """An admin-site ``ModelAdmin`` mixin: saving its change form (and, for accounts, the password
    form) needs a fresh sign-in, as a policy change does; reading it does not. For what grants
    power: a policy, the admin flags, roles and Django permissions of an account (or of a group),
    its password, a provider mapping."""

    def _stale_post(self, request):
        if request.method == "POST" and not is_fresh(request):
            return _ask(request, back=request.get_full_path())  # back to the form, told it was not saved
        return None

    def changeform_view(self, request, *args, **kwargs):
        return self._stale_post(request) or super().changeform_view(request, *args, **kwargs)

    def user_change_password(self, request, *args, **kwargs):
        return self._stale_post(request) or super().user_change_password(request, *args, **kwargs)
