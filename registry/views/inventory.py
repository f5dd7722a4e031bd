"""Inventory pages: list, model, version, and the owner's forms.

Thin views: reads through selectors, writes through the same services as the API,
permissions from ``registry.rules``. Invalid input re-renders the form with a 400.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_GET, require_http_methods

from registry.cache import cached_render
from registry.choices import PromotionStatus, RiskTier, Stage
from registry.filters import ModelFilterSet
from registry.forms import LLMVersionForm, ModelForm, VersionForm, form_submit, posted
from registry.models import MODEL_CARD_FIELDS
from registry.rules import can_change_model, can_change_risk_tier, can_register_model, can_request_promotion
from registry.selectors.inventory import (
    model_get,
    model_get_changeable,
    model_list,
    tag_names,
    team_choices,
    team_list,
    version_get,
)
from registry.selectors.llm import llm_comparison_base, llm_display, llm_parts, llm_version_diff
from registry.selectors.promotions import promotion_list
from registry.services.audit import AuditContext
from registry.services.inventory import (
    VERSION_EDITABLE,
    model_create,
    model_update,
    version_create,
    version_update,
)
from registry.services.stages import PromotionConflict

PAGE_SIZE = 25
SORTABLE = ["name", "risk", "updated"]


def _context(request) -> AuditContext:
    return AuditContext.from_request(request, source="ui")


@login_required
@require_GET
def home(request):
    return redirect("monitoring:fleet")


@transaction.non_atomic_requests
@login_required
@require_GET
def model_list_view(request):
    """The inventory. Its filter form and results are rendered once per revision of the inventory,
    visibility scope and query (``registry.cache``); the page around them per request.

    It writes nothing, so it runs without ATOMIC_REQUESTS' transaction: every statement reads
    committed data either way (READ COMMITTED), and BEGIN/COMMIT were two of its five round
    trips to the database (the benchmark's most-requested page, docs/performance.md)."""
    fragment = bool(request.htmx)
    query = sorted(request.GET.lists())
    status, body = cached_render(
        request.user,
        # The rows show local times: the active time zone is part of the key.
        ("model_list", "table" if fragment else "page", timezone.get_current_timezone_name(), query),
        lambda: _model_list_body(request, fragment),
    )
    if fragment:
        return HttpResponse(body, status=status)
    context = {"nav_section": "inventory", "body": body, "can_register": can_register_model(request.user)}
    return render(request, "registry/model_list.html", context, status=status)


def _model_list_body(request, fragment: bool) -> tuple[int, SafeString]:
    """(status, HTML) of the filter form and results (only the results for htmx): 400 for invalid filters."""
    models = model_list(user=request.user)
    filterset = ModelFilterSet(request.GET, queryset=models, request=request)
    valid = filterset.is_valid()
    page = Paginator(filterset.qs if valid else models.none(), PAGE_SIZE).get_page(request.GET.get("page"))
    ordering = request.GET.get("ordering", "")
    context = {
        "filterset": filterset,
        "page_obj": page,
        "models": page.object_list,
        "sort": {key: _sort_state(ordering, key) for key in SORTABLE},
        "ordering": ordering,
    }
    if not fragment:
        context |= {
            "teams": team_list(user=request.user),
            "tags": tag_names(user=request.user),
            "stages": Stage.choices,
            "risk_tiers": RiskTier.choices,
        }
    template = "registry/inc/model_table.html" if fragment else "registry/inc/model_list_body.html"
    return (200 if valid else 400), mark_safe(render_to_string(template, context, request))  # noqa: S308


def _sort_state(current: str, key: str) -> dict[str, str]:
    """A column header's link target (clicking a sorted column flips it) and its aria-sort."""
    direction = "ascending" if current == key else "descending" if current == f"-{key}" else "none"
    return {"next": f"-{key}" if current == key else key, "dir": direction}


@login_required
@require_http_methods(["GET", "POST"])
def model_create_view(request):
    if not can_register_model(request.user):
        raise PermissionDenied("You need to belong to a team to register models.")
    form = ModelForm(posted(request), teams=team_choices(user=request.user))
    model, status = form_submit(
        request, form, lambda data: model_create(actor=request.user, context=_context(request), **data)
    )
    if model is not None:
        messages.success(request, f"Model '{model.name}' registered.")
        return redirect(model)
    context = {"form": form, "nav_section": "inventory", "creating": True}
    return render(request, "registry/model_form.html", context, status=status)


@login_required
@require_GET
def model_detail(request, name):
    model = model_get(user=request.user, name=name)
    versions = list(model.versions.all())
    can_change = can_change_model(request.user, model)
    context = {
        "nav_section": "inventory",
        "m": model,
        "versions": versions,
        "production": next((v for v in versions if v.stage == Stage.PRODUCTION), None),
        "tags": list(model.tags.all()),
        "can_change": can_change,
        "can_promote": can_request_promotion(request.user, model),
        "setup_banner": [model] if can_change and model.setup_missing else [],
    }
    return render(request, "registry/model_detail.html", context)


def _changes(form) -> dict:
    """The edited fields' new values (what an edit service takes)."""
    return {k: v for k, v in form.cleaned_data.items() if k in form.changed_data}


def _saved(request, form, done: str) -> None:
    """After an edit: ``done``, or that nothing was changed (the service then wrote nothing)."""
    if _changes(form):
        messages.success(request, done)
    else:
        messages.info(request, "Nothing to save: no field was changed.")


@login_required
@require_http_methods(["GET", "POST"])
def model_edit(request, name):
    model = model_get_changeable(
        user=request.user, name=name, denied="Only the model's owner or an administrator may edit it."
    )
    initial = {
        "team": model.team,
        "tags": ", ".join(t.name for t in model.tags.all()),
        **{field: getattr(model, field) for field in MODEL_CARD_FIELDS},
    }
    form = ModelForm(posted(request), initial=initial, teams=team_choices(user=request.user), editing=True)
    if not can_change_risk_tier(request.user):
        form.fields["risk_tier"].help_text = "Only an administrator may change the risk tier."
    try:
        updated, status = form_submit(
            request,
            form,
            lambda data: model_update(
                model=model, actor=request.user, context=_context(request), changes=_changes(form)
            ),
        )
    except PermissionDenied as exc:  # an owner changing the risk tier (registry.rules.can_change_risk_tier)
        form.add_error("risk_tier" if "risk_tier" in form.changed_data else None, str(exc))
        updated, status = None, 403
    except PromotionConflict as exc:  # the primary metric of a model with a pending request
        form.add_error(None, exc.message)
        updated, status = None, 409
    if updated is not None:
        _saved(request, form, f"Model '{model.name}' updated.")
        return redirect(model)
    context = {"form": form, "m": model, "nav_section": "inventory"}
    return render(request, "registry/model_form.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def version_create_view(request, name):
    model = model_get_changeable(
        user=request.user, name=name, denied="Only the model's owner or an administrator may register versions."
    )
    latest = next(iter(model.versions.all()), None)
    if model.is_llm_app:  # its parts, prefilled with the latest version's: an edit is the next version
        # Not its metrics: they were measured on the latest version, not on the one being registered.
        parts = llm_parts(latest) if latest is not None else None
        form = LLMVersionForm(posted(request), initial=parts or {})
    else:
        carried = ("task_type", "feature_schema", "classes", "positive_class")
        initial = {name: getattr(latest, name) for name in carried} if latest else {}
        form = VersionForm(posted(request), initial=initial)
    version, status = form_submit(
        request, form, lambda data: version_create(model=model, actor=request.user, context=_context(request), **data)
    )
    if version is not None:
        messages.success(request, f"Version {version.version} of '{model.name}' registered.")
        return redirect(version.get_absolute_url())
    context = {"form": form, "m": model, "nav_section": "inventory", "creating": True}
    return render(request, "registry/version_form.html", context, status=status)


@login_required
@require_GET
def version_detail(request, name, version):
    found = version_get(user=request.user, name=name, version=version)
    requests_ = list(promotion_list(user=request.user).filter(version=found).order_by("-created_at", "-pk"))
    context = {
        "nav_section": "inventory",
        "v": found,
        "m": found.model,
        "can_change": can_change_model(request.user, found.model),
        "can_promote": can_request_promotion(request.user, found.model),
        "promotion_requests": requests_,
        "pending_request": next((r for r in requests_ if r.status == PromotionStatus.PENDING), None),
    }
    if (parts := llm_parts(found)) is not None:
        base = llm_comparison_base(found)
        diff = llm_version_diff(found, base)
        context |= {
            "llm": found.llm,
            "parts": parts,
            "llm_shown": llm_display(parts),
            "llm_base": base,
            "llm_diff": diff,
        }
    return render(request, "registry/version_detail.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def version_edit(request, name, version):
    found = version_get(user=request.user, name=name, version=version)
    if not can_change_model(request.user, found.model):
        raise PermissionDenied("Only the model's owner or an administrator may edit versions.")
    initial = {field: getattr(found, field) for field in VERSION_EDITABLE}
    form = VersionForm(posted(request), initial=initial, editing=True)
    try:
        updated, status = form_submit(
            request,
            form,
            lambda data: version_update(
                version=found, actor=request.user, context=_context(request), changes=_changes(form)
            ),
        )
    except PromotionConflict as exc:  # its evidence is frozen: a request is pending or was approved
        form.add_error(None, exc.message)
        updated, status = None, 409
    if updated is not None:
        _saved(request, form, f"Version {found.version} of '{found.model.name}' updated.")
        return redirect(found.get_absolute_url())
    context = {"form": form, "m": found.model, "v": found, "nav_section": "inventory"}
    return render(request, "registry/version_form.html", context, status=status)
