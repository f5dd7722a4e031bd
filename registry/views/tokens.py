"""API tokens page: create (the secret is shown once), list, revoke. Admins see every token
(people's and service accounts') and may revoke any of them."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from registry.forms import TokenForm, apply_service_errors
from registry.models import ApiToken
from registry.rules import is_admin
from registry.services.audit import AuditContext
from registry.services.tokens import token_create, token_revoke


def tokens_manageable_by(user):
    """The tokens ``user`` may see and revoke: their own; every token for an admin."""
    tokens = ApiToken.objects.select_related("user").order_by("-created_at")
    return tokens if is_admin(user) else tokens.filter(user=user)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def token_list(request):
    form = TokenForm(request.POST if request.method == "POST" else None, user=request.user)
    raw = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            days = form.cleaned_data["expires_days"]
            try:
                _, raw = token_create(
                    user=request.user,
                    name=form.cleaned_data["name"],
                    scopes=form.cleaned_data["scopes"],
                    expires_at=timezone.now() + timedelta(days=days) if days else None,
                    actor=request.user,
                    context=AuditContext.from_request(request, source="ui"),
                )
            except ValidationError as exc:
                apply_service_errors(form, exc)
        if raw is None:
            status = 400
        else:
            form = TokenForm(user=request.user)
    context = {
        "form": form,
        "raw_token": raw,
        "tokens": tokens_manageable_by(request.user),
        "all_users": is_admin(request.user),
        "now": timezone.now(),
        "nav_section": "tokens",
    }
    return render(request, "registry/token_list.html", context, status=status)


@login_required
@require_POST
def token_revoke_view(request, pk):
    token = tokens_manageable_by(request.user).filter(pk=pk).first()
    if token is None:
        raise Http404("No such token.")
    token_revoke(token=token, actor=request.user, context=AuditContext.from_request(request, source="ui"))
    messages.success(request, f"Token '{token.name}' revoked.")
    return redirect("registry:token_list")
