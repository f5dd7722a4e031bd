"""Sign-in pages: the login page (single sign-on button, passwords where allowed) and the
step-up page that confirms a signed-in user's identity before a sensitive action."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from registry.models import ExternalIdentity
from registry.oidc import oidc_enabled
from registry.services.audit import AuditContext, audit_record
from registry.stepup import mark_authenticated, step_up_interrupted


def _sso_context() -> dict:
    return {
        "sso_enabled": oidc_enabled(),
        "sso_name": settings.OIDC_PROVIDER_NAME,
        "local_login": settings.LOCAL_LOGIN,
    }


class LoginView(auth_views.LoginView):
    """Django's login view; shows the single sign-on button when it is configured."""

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(_sso_context())
        context["sso_failed"] = self.request.GET.get("sso") == "failed"
        return context


class PasswordConfirmForm(forms.Form):
    password = forms.CharField(widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))


def _safe_next(request) -> str:
    url = request.POST.get("next") or request.GET.get("next") or "/"
    allowed = url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return url if allowed else "/"


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def step_up(request):
    """Confirm identity: through the provider (fresh sign-in) for its users, else the password."""
    next_url = _safe_next(request)
    if oidc_enabled() and ExternalIdentity.objects.filter(user=request.user).exists():
        return redirect(f"{reverse('oidc_authentication_init')}?step_up=1&next={next_url}")
    # bound on every POST: an empty one (or a JSON body) shows the field's error
    form = PasswordConfirmForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        user = None
        if form.is_valid():
            user = authenticate(request, username=request.user.get_username(), password=form.cleaned_data["password"])
        if user is not None and user.pk == request.user.pk:
            mark_authenticated(request)
            with transaction.atomic():
                audit_record(
                    actor=request.user,
                    action="user.stepped_up",
                    obj=request.user,
                    context=AuditContext.from_request(request),
                )
            if step_up_interrupted(request):
                messages.warning(
                    request,
                    "Identity confirmed. The action you started was not recorded: check the form and submit it again.",
                )
            return redirect(next_url)
        if form.is_valid():
            form.add_error(None, "That password is not right.")
        status = 400
    context = {"form": form, "next": next_url, "max_age_minutes": settings.STEP_UP_MAX_AGE // 60}
    return render(request, "registration/step_up.html", context, status=status)
