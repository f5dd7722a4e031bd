"""Oversight pages: incidents (list, open from an alert, the incident with its timeline and
countdown, its actions), the monitoring plan, reviews and findings. Thin: forms → the same
services as the API; a refused action changes nothing and answers 400 (409 out of turn) with
the page again, the form as typed and why (the JSON error for htmx); 403 if not allowed."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from mlops_portal import clock
from mlops_portal.api.errors import form_error_details, json_error
from monitoring.choices import IncidentSeverity
from monitoring.form_errors import invalid_page, wants_json
from monitoring.selectors import alert_get
from registry.forms import apply_service_errors, form_submit, posted
from registry.selectors.inventory import model_get
from registry.selectors.promotions import production_version, rollback_candidate
from registry.services.audit import AuditContext

from . import findings, forms, incidents, plan, reviews, selectors
from .deadlines import model_time_zone
from .filters import IncidentFilterSet
from .incidents import IncidentConflict
from .rules import (
    can_attest_review,
    can_edit_plan,
    can_manage_incident,
    can_remediate_finding,
    can_retest_finding,
    can_validate,
    can_validate_review,
)

PAGE = 200


def _context(request) -> AuditContext:
    return AuditContext.from_request(request, source="ui")


def _run(request, form_class, call, done: str):
    """Validate the posted form and call the service. Returns None once done (its message
    queued), else the bound form, as typed and carrying why it was refused, and the status to
    answer with: 400 for invalid input or a refusal by the service, 409 when the action does
    not fit the object's state."""
    form = form_class(request.POST)
    if not form.is_valid():
        return form, 400
    try:
        call(**form.cleaned_data)
    except IncidentConflict as exc:
        form.add_error(None, exc.message)
        return form, 409
    except ValidationError as exc:
        apply_service_errors(form, exc)
        return form, 400
    messages.success(request, done)
    return None


def _refused(request, form, status: int, page):
    """A refused action changes nothing: the JSON error for htmx (which keeps the page and the
    typed text as they are), else ``page()`` (the object's page with ``form`` bound) with the
    reasons also at its top, since the form may sit below the fold."""
    details = form_error_details(form.errors)
    if wants_json(request):
        return json_error(status, "Not done.", details)
    reasons = "; ".join(" ".join(v) if k == "__all__" else f"{k}: {' '.join(v)}" for k, v in details.items())
    messages.error(request, f"Not done: {reasons}")
    return page()


# --------------------------------------------------------------------------- incidents


@login_required
@require_GET
def incident_list_view(request):
    filterset = IncidentFilterSet(
        request.GET or {"active": "true"}, queryset=selectors.incident_list(user=request.user)
    )
    if not filterset.is_valid():  # the page without rows, the errors above the filters (JSON for htmx)
        context = {"filter": filterset, "incidents": [], "nav_section": "incidents", "now": clock.now()}
        return invalid_page(request, filterset.errors, template="monitoring/incidents.html", context=context)
    rows = list(filterset.qs.order_by("-aware_at", "-id")[:PAGE])
    for incident in rows:
        incident.outcome = selectors.deadline_outcome(incident)
    return render(
        request,
        "monitoring/incidents.html",
        {"filter": filterset, "incidents": rows, "nav_section": "incidents", "now": clock.now()},
    )


@login_required
@require_http_methods(["GET", "POST"])
def incident_open_view(request):
    alert = None
    if request.GET.get("alert", "").isdigit():
        alert = alert_get(user=request.user, pk=int(request.GET["alert"]))
        model = alert.model
    else:
        model = model_get(user=request.user, name=request.GET.get("model", "")[:100])
    if not can_manage_incident(request.user, model):
        raise PermissionDenied("Only the model's owner or an admin may open an incident.")
    if request.method == "GET" and alert is not None and (existing := selectors.open_incident_of(alert)):
        messages.info(request, f"Alert #{alert.pk} is already part of incident #{existing.pk}: add to it here.")
        return redirect(existing.get_absolute_url())
    initial = {"severity": IncidentSeverity.SERIOUS, "aware_at": clock.now().replace(microsecond=0)}
    if alert is not None:
        initial["summary"] = alert.title
    form = forms.IncidentOpenForm(posted(request), initial=initial)
    try:
        incident, status = form_submit(
            request,
            form,
            lambda data: incidents.incident_open(
                model=model, actor=request.user, alerts=[alert] if alert else [], context=_context(request), **data
            ),
        )
    except IncidentConflict as exc:  # the alert is already part of an incident still being worked
        form.add_error(None, exc.message)
        incident, status = None, 409
    if incident is not None:
        messages.success(request, f"Incident #{incident.pk} opened.")
        return redirect(incident.get_absolute_url())
    return render(
        request,
        "monitoring/incident_open.html",
        {"form": form, "model": model, "alert": alert, "zone": model_time_zone(model), "nav_section": "incidents"},
        status=status,
    )


def _incident_page(request, incident, status: int = 200, bound: dict | None = None):
    """The incident, its timeline and its action forms (``bound``: action → the form as posted)."""
    rollback_to = rollback_candidate(incident.model)
    return render(
        request,
        "monitoring/incident_detail.html",
        {
            "incident": incident,
            "events": selectors.incident_events(incident),
            "outcome": selectors.deadline_outcome(incident),
            "windows": selectors.incident_windows(incident),  # as the API and the filed reports say them
            "can_act": can_manage_incident(request.user, incident.model) and incident.status != "closed",
            "in_production": production_version(incident.model),  # what the suspend form acts on
            "rollback_to": rollback_to,
            "forms": {
                "note": forms.NoteForm(),
                # nothing to roll back to: retiring is the one suspension that can succeed
                "suspend": forms.SuspendForm(initial={"mode": "rollback" if rollback_to else "retire"}),
                "report": forms.ReportForm(
                    initial={"affected": incident.affected, "corrective_actions": incident.corrective_actions}
                ),
                "resolve": forms.ResolveForm(),
                "close": forms.CloseForm(),
                **(bound or {}),
            },
            "reports": [e for e in selectors.incident_events(incident) if e.kind.startswith("report_")],
            "nav_section": "incidents",
        },
        status=status,
    )


@login_required
@require_GET
def incident_detail_view(request, pk: int):
    return _incident_page(request, selectors.incident_get(user=request.user, pk=pk))


# action name → (service, its form, the message once done); the object goes in by keyword
INCIDENT_ACTIONS = {
    "note": (incidents.incident_note, forms.NoteForm, "Note added."),
    "suspend": (incidents.incident_suspend, forms.SuspendForm, "Use suspended."),
    "report": (incidents.incident_report, forms.ReportForm, "Report filed."),
    "resolve": (incidents.incident_resolve, forms.ResolveForm, "Root cause recorded."),
    "close": (incidents.incident_close, forms.CloseForm, "Incident closed."),
}


@login_required
@require_GET
def incident_report_pdf_view(request, pk: int, kind: str):
    from .reports import incident_report_pdf

    incident = selectors.incident_get(user=request.user, pk=pk)
    return incident_report_pdf(request, incident, kind)


# --------------------------------------------------------------------------- plan


@login_required
@require_http_methods(["GET", "POST"])
def plan_view(request, name: str):
    """The plan and its narrative's form: a POST saves a new version (PRG); invalid input (a
    missing or empty narrative) re-renders the form with a 400 and saves nothing."""
    model = model_get(user=request.user, name=name)
    if request.method == "POST" and not can_edit_plan(request.user, model):
        raise PermissionDenied("Only the model's owner or an admin may edit its monitoring plan.")
    current = plan.plan_current(model)
    form = forms.PlanForm(posted(request), initial={"narrative": current["narrative"]})
    saved, status = form_submit(
        request,
        form,
        lambda data: plan.plan_save(
            model=model, actor=request.user, narrative=data["narrative"], context=_context(request)
        ),
    )
    if saved is not None:
        messages.success(request, f"Plan saved as version {saved.version}.")
        return redirect("monitoring:plan", name=model.name)
    history = model.monitoring_plans.select_related("created_by").order_by("-version")[:20]
    return render(
        request,
        "monitoring/plan.html",
        {
            "model": model,
            "plan": current,
            "form": form,
            "history": history,
            "can_edit": can_edit_plan(request.user, model),
            "nav_section": "reviews_oversight",
        },
        status=status,
    )


# --------------------------------------------------------------------------- reviews and findings


@login_required
@require_GET
def oversight_overview(request):
    """Every open review and finding of the models the user may see, overdue first."""
    user, now = request.user, clock.now()
    open_reviews = selectors.review_list(user=user).exclude(status="completed").order_by("due_at")
    open_findings = selectors.finding_list(user=user).exclude(status="closed").order_by("due_at")
    return render(
        request,
        "monitoring/oversight.html",
        {
            "reviews": open_reviews[:PAGE],
            "findings": open_findings[:PAGE],
            "now": now,
            "nav_section": "reviews_oversight",
        },
    )


def _model_oversight_page(request, model, status: int = 200, bound: dict | None = None):
    """The model's reviews and findings with the forms to open one (``bound``: action → the
    form as posted)."""
    bound = bound or {}
    return render(
        request,
        "monitoring/model_oversight.html",
        {
            "model": model,
            "reviews": selectors.review_list(user=request.user, model=model).order_by("-opened_at"),
            "findings": selectors.finding_list(user=request.user, model=model).order_by("status", "due_at"),
            "next_due": reviews.next_review_due(model),
            "now": clock.now(),
            "can_open": MODEL_ACTION_RULES["review"](request.user, model),
            "can_validate": MODEL_ACTION_RULES["finding"](request.user, model),
            "can_open_incident": can_manage_incident(request.user, model),
            "review_form": bound.get("review") or forms.ReviewOpenForm(),
            "finding_form": bound.get("finding") or forms.FindingForm(),
            "nav_section": "reviews_oversight",
        },
        status=status,
    )


@login_required
@require_GET
def model_oversight_view(request, name: str):
    return _model_oversight_page(request, model_get(user=request.user, name=name))


@login_required
@require_POST
def model_oversight_action(request, name: str, action: str):
    model = model_get(user=request.user, name=name)
    if action in MODEL_ACTION_RULES and not MODEL_ACTION_RULES[action](request.user, model):
        raise PermissionDenied(f"You may not open a {action} on this model.")  # before the form: a 403, not its errors
    ctx = _context(request)
    if action == "review":
        refused = _run(
            request,
            forms.ReviewOpenForm,
            lambda reason: reviews.review_open(model=model, actor=request.user, reason=reason, context=ctx),
            "Review opened.",
        )
    elif action == "finding":

        def create(owner, **data):
            user = get_user_model().objects.filter(username=owner).first()
            findings.finding_create(model=model, actor=request.user, owner=user, context=ctx, **data)

        refused = _run(request, forms.FindingForm, create, "Finding recorded.")
    else:
        raise Http404("No such action.")
    if refused is None:
        return redirect("monitoring:model_oversight", name=model.name)
    form, status = refused
    return _refused(request, form, status, lambda: _model_oversight_page(request, model, status, {action: form}))


REVIEW_ACTIONS = {
    "attest": (reviews.review_attest, forms.AttestForm, "Attested."),
    "validate": (reviews.review_validate, forms.ValidateForm, "Revalidation signed."),
}
FINDING_ACTIONS = {
    "remediate": (findings.finding_remediate, forms.RemediateForm, "Remediation submitted."),
    "retest": (findings.finding_retest, forms.RetestForm, "Retest recorded."),
}


def _object_page(request, kind: str, obj, actions: dict, allowed: dict[str, bool], status=200, bound=None, **extra):
    """A review's or a finding's page: the object, and per action its form (``bound``: action →
    the form as posted) and whether the user may take it now (``can_<action>``,
    ``<action>_form``), and ``extra``."""
    context = {kind: obj, "now": clock.now(), "nav_section": "reviews_oversight", **extra}
    for action, (_, form_class, _) in actions.items():
        context[f"can_{action}"] = allowed[action]
        context[f"{action}_form"] = (bound or {}).get(action) or form_class()
    return render(request, f"monitoring/{kind}_detail.html", context, status=status)


def _review_page(request, review, status: int = 200, bound: dict | None = None):
    may = ACTION_RULES["review"]
    allowed = {
        "attest": may(request.user, review, "attest") and review.status == "open",
        "validate": may(request.user, review, "validate") and review.status == "attested",
    }
    later = selectors.review_later_triggers(review)
    return _object_page(request, "review", review, REVIEW_ACTIONS, allowed, status, bound, later_triggers=later)


def _finding_page(request, finding, status: int = 200, bound: dict | None = None):
    may = ACTION_RULES["finding"]
    allowed = {
        "remediate": may(request.user, finding, "remediate") and finding.status == "open",
        "retest": may(request.user, finding, "retest") and finding.status == "remediated",
    }
    return _object_page(request, "finding", finding, FINDING_ACTIONS, allowed, status, bound)


@login_required
@require_GET
def review_detail_view(request, pk: int):
    return _review_page(request, selectors.review_get(user=request.user, pk=pk))


@login_required
@require_GET
def finding_detail_view(request, pk: int):
    return _finding_page(request, selectors.finding_get(user=request.user, pk=pk))


# kind of object → (its selector, its actions, its page); the URL patterns name the kind
OBJECT_ACTIONS = {
    "incident": (selectors.incident_get, INCIDENT_ACTIONS, _incident_page),
    "review": (selectors.review_get, REVIEW_ACTIONS, _review_page),
    "finding": (selectors.finding_get, FINDING_ACTIONS, _finding_page),
}
# a model's oversight action → the rule of who may take it (the service asks it again)
MODEL_ACTION_RULES = {
    "review": lambda user, model: can_attest_review(user, model) or can_validate(user, model),
    "finding": lambda user, model: can_validate(user, model),
}
# (kind, action) → the rule of who may take it (the service asks it again): asked before the
# form, so that someone who may not act gets a 403 rather than the form's errors
ACTION_RULES = {
    "incident": lambda user, incident, action: can_manage_incident(user, incident.model),
    "review": lambda user, review, action: (
        can_attest_review(user, review.model) if action == "attest" else can_validate_review(user, review)
    ),
    "finding": lambda user, finding, action: (
        can_remediate_finding(user, finding) if action == "remediate" else can_retest_finding(user, finding)
    ),
}


@login_required
@require_POST
def object_action_view(request, kind: str, pk: int, action: str):
    """Take ``action`` on an incident, a review or a finding from the posted form (the service
    gets the object as ``<kind>=``), then back to the object's page; refused, the page again
    with the form as posted (4xx, nothing changed)."""
    get, actions, page = OBJECT_ACTIONS[kind]
    if action not in actions:
        raise Http404("No such action.")
    obj = get(user=request.user, pk=pk)
    if not ACTION_RULES[kind](request.user, obj, action):
        raise PermissionDenied(f"You may not {action} this {kind}.")
    service, form_class, done = actions[action]
    ctx = _context(request)
    refused = _run(request, form_class, lambda **d: service(**{kind: obj}, actor=request.user, context=ctx, **d), done)
    if refused is None:
        return redirect(obj.get_absolute_url())
    form, status = refused
    obj = get(user=request.user, pk=pk)  # as stored: the refused call may have changed the copy in hand
    return _refused(request, form, status, lambda: page(request, obj, status, {action: form}))


@login_required
@require_GET
def post_market_view(request, name: str):
    """The compliance report's post-market section on its own page (Art. 72, Art. 73, SR 26-2)."""
    model = model_get(user=request.user, name=name)
    report = selectors.post_market_report(model, request.user)
    return render(
        request, "monitoring/post_market.html", {"model": model, "pm": report, "nav_section": "reviews_oversight"}
    )


@login_required
@require_GET
def oversight_badges_view(request):
    """The navigation badges (out-of-band swaps into base.html's slots)."""
    return render(request, "monitoring/inc/nav_badges.html")


@login_required
@require_GET
def oversight_overdue_view(request):
    """The overdue banner of the fleet, scorecard and alerts pages."""
    from monitoring.templatetags.oversight import overdue_items

    return render(request, "monitoring/inc/oversight_overdue.html", {"overdue": overdue_items(request.user)})
