"""The privacy officer's page: erasure requests and their status, retention and legal holds
per model, the latest purge receipts, and the records-of-processing downloads."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ImproperlyConfigured, PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from monitoring.form_errors import VALUES, invalid_page
from monitoring.forms import RetentionForm
from monitoring.selectors_privacy import (
    RECEIPTS_SHOWN,
    erasure_request_list,
    held_erasure_requests,
    held_erasures_by_model,
    purge_receipts,
    records_header,
    records_of_processing,
)
from monitoring.services.erasure import erasure_request_create
from monitoring.services.retention import retention_policy_update, tier_raw_days
from registry.rules import can_manage_retention, can_request_erasure, can_view_privacy
from registry.selectors.inventory import model_get_changeable
from registry.services.audit import AuditContext
from registry.stepup import step_up_required_if

from .models_retention import HIGH_RISK_FLOOR_DAYS

PAGE_SIZE = 100
PAGE = "monitoring/privacy.html"


@login_required
@require_GET
def privacy_overview(request):
    return render(request, PAGE, _privacy_context(request))


def _privacy_context(request) -> dict:
    if not can_view_privacy(request.user):
        raise PermissionDenied("Only privacy officers, auditors and admins see this page.")
    records = records_of_processing(user=request.user)
    held = held_erasures_by_model()  # shown beside the hold: lifting it erases these rows
    return {
        "nav_section": "privacy",
        "requests": list(erasure_request_list(user=request.user)[:PAGE_SIZE]),
        # each with the erasures its hold keeps and its risk tier's default (the form's empty days)
        "records": [(r, held.get(r["model"], []), tier_raw_days(r["risk_tier"])) for r in records],
        "records_header": records_header(records),
        "incomplete": [record["model"] for record in records if record["not_recorded"]],
        "receipts": list(purge_receipts()[:RECEIPTS_SHOWN]),
        "can_erase": can_request_erasure(request.user),
        "can_manage": can_manage_retention(request.user),
        "floor": HIGH_RISK_FLOOR_DAYS,
    }


@login_required
@require_POST
@step_up_required_if(lambda request: can_request_erasure(request.user))  # sensitive: a fresh sign-in
def erasure_request_view(request):
    try:
        erasure = erasure_request_create(
            subject_id=request.POST.get("subject_id", ""),
            actor=request.user,
            context=AuditContext.from_request(request),
        )
    except ValidationError as exc:
        messages.error(request, "; ".join(exc.messages))
        return redirect("monitoring:privacy")
    except ImproperlyConfigured as exc:
        messages.error(request, str(exc))
        return redirect("monitoring:privacy")
    messages.success(request, f"Erasure request #{erasure.pk}: {erasure.get_status_display()}.")
    return redirect("monitoring:privacy")


@login_required
@require_POST
@step_up_required_if(lambda request, name: can_manage_retention(request.user))  # as the API's PATCH
def retention_update_view(request, name):
    """Change one model's retention and legal hold from the privacy page (the service audits
    it): malformed values bring the page back with the errors beside the model's fields (400),
    a change the rules refuse (the high-risk floor, a hold without its article) comes back to
    the page as a message, as an erasure's does."""
    denied = "Only a privacy officer or an admin can change retention and legal holds."
    model = model_get_changeable(user=request.user, name=name, denied=denied, may=can_manage_retention)
    form = RetentionForm(request.POST)
    if not form.is_valid():
        context = {**_privacy_context(request), "retention_error_for": model.name}
        return invalid_page(request, form.errors, template=PAGE, context=context, message=VALUES)
    held = held_erasure_requests(model=model)
    try:
        policy = retention_policy_update(
            model=model, actor=request.user, context=AuditContext.from_request(request), changes=form.cleaned_data
        )
    except ValidationError as exc:
        messages.error(request, f"{model.name}: " + "; ".join(exc.messages))
        return redirect("monitoring:privacy")
    released = ""
    if held and not policy.legal_hold:  # lifting the hold carried them out (retention_policy_update)
        released = f"; the rows held for erasure request {', '.join(f'#{pk}' for pk in held)} were erased"
    messages.success(request, f"{model.name}: retention and legal hold saved{released}.")
    return redirect("monitoring:privacy")
