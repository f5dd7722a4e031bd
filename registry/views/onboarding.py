"""The "Connect a pipeline" page of a model, for those who may change it: a token with the
pipeline's scopes created in place (through the audited token service, its secret shown once),
then curl, Python client and command-line snippets filled with this portal's URL, the model's
name and schema, and a check that shows the first batch arriving (``monitoring:batches_since``)."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from registry.forms import PipelineTokenForm, form_submit, posted
from registry.onboarding import PIPELINE_SCOPES, pipeline_setup, pipeline_snippets
from registry.selectors.inventory import model_get_changeable
from registry.services.audit import AuditContext
from registry.services.tokens import token_create


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def model_connect(request, name):
    denied = "Only the model's owner or an administrator may connect a pipeline to it."
    model = model_get_changeable(user=request.user, name=name, denied=denied)
    form = PipelineTokenForm(posted(request), initial={"name": f"pipeline: {model.name}"})
    raw, status = form_submit(
        request,
        form,
        lambda data: token_create(
            user=request.user,
            name=data["name"],
            scopes=[str(scope) for scope in PIPELINE_SCOPES],
            expires_at=timezone.now() + timedelta(days=data["expires_days"]),
            actor=request.user,
            context=AuditContext.from_request(request, source="ui"),
        )[1],
    )
    opened_at = timezone.now()
    setup = pipeline_setup(
        base_url=request.build_absolute_uri("/"),
        model=model,
        latest_version=model.versions.first(),
        schema_version=model.versions.exclude(feature_schema=[]).first(),  # the latest one with a schema
        timestamp=opened_at,
        token=raw,
    )
    context = {
        "nav_section": "inventory",
        "m": model,
        "form": PipelineTokenForm(initial=form.initial) if raw else form,
        "raw_token": raw,
        "scopes": PIPELINE_SCOPES,
        "setup": setup,
        "snippets": pipeline_snippets(setup),
        "opened_at": opened_at,
    }
    return render(request, "registry/model_connect.html", context, status=status)
