"""Monitoring pages: fleet overview (the home page), model dashboard, alerts, scorecard.

Thin views: parse the GET filters with the forms and FilterSets the API shares (bad input
is a 400, never a 500: the page again with the errors beside the fields, or JSON for an htmx
fragment; ``monitoring.form_errors``), ask the selectors in ``monitoring.selectors`` /
``monitoring.scorecard``, let ``monitoring.charts`` build the figures, render. Figures
travel as JSON in a ``json_script`` block and are drawn by ``static/js/charts.js`` (strict CSP).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from mlops_portal import clock
from mlops_portal.api.errors import json_error
from registry.rules import can_change_model
from registry.selectors.inventory import model_get_changeable, models_to_complete
from registry.services.audit import AuditContext

from . import charts
from .charts.cost import cost_figures
from .charts_llm import llm_figures
from .choices import AlertKind, AlertSeverity, AlertStatus
from .fairness_charts import fairness_figures
from .filters import FleetFilterSet
from .form_errors import VALUES, invalid_page, invalid_values, wants_json
from .forms import RANGES, AcknowledgeForm, BatchesSinceForm, ScorecardForm, dashboard_query_parse
from .oversight.selectors import open_incident_of, with_open_incident
from .scorecard import ack_hours_default, scorecard_compute
from .selectors import (
    alert_get,
    alert_page_list,
    alert_recently_resolved,
    fleet_health_counts,
    fleet_models,
    fleet_rollup,
)
from .selectors.cost import cost_panel
from .selectors.dashboard import model_dashboard_data
from .selectors.ingest import batches_since
from .selectors.llm import llm_panels
from .selectors.windows import window_failures
from .services.alerts import AlertStateConflict, alert_acknowledge

ALERTS_PAGE_SIZE = 100
ALERTS_TEMPLATE = "monitoring/alerts.html"


# --------------------------------------------------------------------------- fleet


def _fleet_page(request, template: str, *, full: bool):
    """The fleet's rows and counts through ``FleetFilterSet``; the ``full`` page adds the roll-up
    chart and the models left to complete. Invalid filters: the page without rows, the errors
    beside the filters (400); the polled fragment answers the JSON error."""
    errors = None
    try:
        models_qs, filterset = fleet_models(user=request.user, filters=request.GET)
        models, form = list(models_qs), filterset.form
    except ValidationError as exc:
        if not full:
            return invalid_values(exc)
        errors, models, form = exc, [], FleetFilterSet(request.GET).form
    context = {
        "filters": form,
        "models": models,
        "health_counts": fleet_health_counts(models),
        "query_string": request.GET.urlencode(),
    }
    if full:
        rollup = fleet_rollup(user=request.user)
        context.update(
            nav_section="fleet",
            rollup=rollup,
            figures_json=charts.figures_json_script(charts.fleet_figures(rollup)),
            models_to_complete=models_to_complete(user=request.user),
        )
    if errors is not None:
        return invalid_page(request, errors, template=template, context=context)
    return render(request, template, context)


@login_required
@require_GET
def fleet_overview(request):
    return _fleet_page(request, "monitoring/fleet.html", full=True)


@login_required
@require_GET
def fleet_live(request):
    """The live part of the fleet page (counts and rows), polled by htmx."""
    return _fleet_page(request, "monitoring/inc/fleet_live.html", full=False)


# --------------------------------------------------------------------------- model dashboard


@login_required
@require_GET
def model_dashboard(request, name):
    """Bad picker values: the dashboard drawn for the values that are valid (else its default
    range), the picker as submitted with the errors beside its fields (400)."""
    errors = None
    try:
        data = model_dashboard_data(user=request.user, name=name, query=dashboard_query_parse(request.GET))
    except ValidationError as exc:  # the picker's values, or a version the model does not have
        if wants_json(request):
            return invalid_values(exc, "Invalid range, granularity or version.")
        errors, data = _dashboard_of_valid_part(request, name, exc)
    llm = llm_panels(data)  # LLM applications only (monitoring/selectors/llm.py, monitoring/charts_llm.py)
    first, last = data.query.cost_days  # the days whose start the range holds (forms.range_days)
    cost = cost_panel(
        user=request.user,
        model=data.model,
        start=first,
        end=last,
        today=clock.now().date(),
        unit_label="requests" if data.model.is_llm_app else "predictions",
        left_out=data.query.cost_day_left_out,
    )
    figures = {
        **charts.model_dashboard_figures(data),
        **fairness_figures(data),
        **llm_figures(llm),
        **cost_figures(cost),
    }
    context = {
        "nav_section": "fleet",
        "d": data,
        "llm": llm,
        "model": data.model,
        "query": data.query,  # as drawn: the dashboard may widen a default range or draw daily
        "figures": figures,
        "figures_json": charts.figures_json_script(figures),
        "ranges": list(RANGES) + ["custom"],
        "can_acknowledge": can_change_model(request.user, data.model),
        "window_failures": window_failures(user=request.user, model=data.model)[:20],
        "cost": cost,  # templates/monitoring/_cost_panel.html
    }
    if errors is not None:
        context["submitted"] = request.GET
        return invalid_page(
            request, errors, template="monitoring/model_dashboard.html", context=context, message="Invalid range."
        )
    if request.htmx and request.htmx.target == "dashboard-charts":  # the header's version swapped out of band
        return render(request, "monitoring/inc/dashboard_charts.html", {**context, "charts_only": True})
    return render(request, "monitoring/model_dashboard.html", context)


def _dashboard_of_valid_part(request, name, errors: ValidationError):
    """The errors and the dashboard drawn without the refused values. The model is read only
    once the picker's values parse, so a missing version may be refused on this second pass."""
    try:
        return errors, model_dashboard_data(user=request.user, name=name, query=_valid_part(request.GET, errors))
    except ValidationError as more:
        errors = ValidationError({**errors.message_dict, **more.message_dict})
        return errors, model_dashboard_data(user=request.user, name=name, query=_valid_part(request.GET, errors))


def _valid_part(params, errors: ValidationError):
    """The dashboard query of ``params`` without the refused values (a refused custom range
    falls back to the default range)."""
    refused = set(errors.message_dict)
    if refused & {"__all__", "range", "start", "end"}:
        refused |= {"range", "start", "end"}
    try:
        return dashboard_query_parse({k: v for k, v in params.items() if k not in refused})
    except ValidationError:
        return dashboard_query_parse({})


@login_required
@require_GET
def batches_since_check(request, name):
    """The "Connect a pipeline" page's check, polled by htmx: "waiting…" until a prediction
    batch of the model arrives after ``since``, then the first batch's time and rows."""
    denied = "Only the model's owner or an administrator may check its pipeline."
    model = model_get_changeable(user=request.user, name=name, denied=denied)
    form = BatchesSinceForm(request.GET)
    if not form.is_valid():
        context = {"m": model, "since": None, "found": None}
        return invalid_page(request, form.errors, template="monitoring/inc/batches_since.html", context=context)
    since = form.cleaned_data["since"]
    found = batches_since(user=request.user, model=model, since=since)
    return render(request, "monitoring/inc/batches_since.html", {"m": model, "since": since, "found": found})


# --------------------------------------------------------------------------- alerts


@login_required
@require_GET
def alert_list(request):
    try:
        context = _alert_page(request, request.GET)
    except ValidationError as exc:  # no rows, the filters as sent with the errors beside them
        context = _alert_context(alerts=[], recent=[], filters=request.GET.dict())
        return invalid_page(request, exc, template=ALERTS_TEMPLATE, context=context)
    return render(request, ALERTS_TEMPLATE, context)


def _alert_page(request, params) -> dict:
    """The alerts page for the filters ``params`` (ValidationError when they are invalid)."""
    alerts_qs, filterset = alert_page_list(user=request.user, params=params)
    alerts = list(with_open_incident(alerts_qs)[:ALERTS_PAGE_SIZE])
    # the default view (no filters): what is open now, and what was resolved in the last week
    recent = [] if params else list(alert_recently_resolved(user=request.user)[:ALERTS_PAGE_SIZE])
    for alert in alerts:
        alert.can_acknowledge = can_change_model(request.user, alert.model)
    return _alert_context(alerts=alerts, recent=recent, filters=filterset.form.cleaned_data)


def _alert_context(*, alerts: list, recent: list, filters: dict) -> dict:
    return {
        "nav_section": "alerts",
        "alerts": alerts,
        "recent": recent,
        "filters": filters,
        "statuses": AlertStatus.choices,
        "severities": AlertSeverity.choices,
        "kinds": AlertKind.choices,
    }


def _acknowledge_refused(request, alert, errors):
    """The alerts page again, the error beside this alert's comment (400); JSON for htmx."""
    context = {**_alert_page(request, {}), "ack_error_for": alert.pk, "submitted": request.POST}
    return invalid_page(request, errors, template=ALERTS_TEMPLATE, context=context, message=VALUES)


@login_required
@require_POST
def alert_acknowledge_view(request, pk):
    """Acknowledge with a comment (owner or admin), through the monitoring service (audited).
    htmx gets the updated table row back; a plain form post is redirected to the list."""
    alert = alert_get(user=request.user, pk=pk)
    if not can_change_model(request.user, alert.model):
        raise PermissionDenied("Only the model's owner or an admin can acknowledge its alerts.")
    form = AcknowledgeForm(request.POST)
    if not form.is_valid():
        return _acknowledge_refused(request, alert, form.errors)
    try:
        alert = alert_acknowledge(
            alert=alert,
            actor=request.user,
            comment=form.cleaned_data["comment"],
            context=AuditContext.from_request(request),
        )
    except AlertStateConflict as exc:  # acknowledged or resolved meanwhile: the list as it is now, saying so
        if wants_json(request):
            return json_error(409, " ".join(exc.messages))
        messages.error(request, " ".join(exc.messages))
        return render(request, ALERTS_TEMPLATE, _alert_page(request, {}), status=409)
    except ValidationError as exc:
        return _acknowledge_refused(request, alert, exc)
    alert.can_acknowledge = True
    alert.open_incident_id = getattr(open_incident_of(alert), "pk", None)
    if request.htmx:
        return render(request, "monitoring/inc/alert_row.html", {"alert": alert})
    messages.success(request, f"Alert #{alert.pk} acknowledged.")
    return redirect(reverse("monitoring:alert_list"))


# --------------------------------------------------------------------------- scorecard


@login_required
@require_GET
def scorecard(request):
    form = ScorecardForm(request.GET)
    valid = form.is_valid()
    ack_hours = (form.cleaned_data.get("ack_hours") if valid else None) or ack_hours_default()
    card = scorecard_compute(user=request.user, ack_hours=ack_hours)
    context = {"nav_section": "scorecard", "card": card, "form": form}
    if not valid:  # the card for the default, the error beside the field
        return invalid_page(request, form.errors, template="monitoring/scorecard.html", context=context)
    return render(request, "monitoring/scorecard.html", context)
