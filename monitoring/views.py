"""Monitoring pages: fleet overview (the home page), model dashboard, alerts, scorecard.

Thin views: parse the GET filters (bad input is a 400 JSON error, never a 500), ask the
selectors in ``monitoring.dashboards`` / ``monitoring.scorecard``, let
``monitoring.charts`` build the figures, render. Figures travel as JSON in a
``json_script`` block and are drawn by ``static/js/charts.js`` (strict CSP).
"""

from __future__ import annotations

import numpy as np
import orjson
from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from mlops_portal.api.errors import json_error
from registry.rules import can_change_model
from registry.services.audit import AuditContext

from . import charts
from .choices import AlertKind, AlertSeverity, AlertStatus
from .dashboards import (
    RANGES,
    FleetFilterForm,
    alert_page_list,
    alert_recently_resolved,
    dashboard_query_parse,
    fleet_health_counts,
    fleet_models,
    fleet_rollup,
    model_dashboard_data,
)
from .fairness_charts import fairness_figures
from .scorecard import ack_hours_default, scorecard_compute
from .selectors import alert_get
from .services.alerts import AlertStateConflict, alert_acknowledge

ALERTS_PAGE_SIZE = 100


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    return DjangoJSONEncoder().default(value)


def json_script_text(value) -> str:
    """What ``{{ value|json_script:"id" }}`` puts inside its script tag (the same escapes of
    ``<``, ``>`` and ``&``), serialised with orjson: a 90-day dashboard's figures are ~200 KB,
    which ``json.dumps`` and the escape by ``str.translate`` took several ms to write.
    NaN, which ``json.dumps`` wrote as an invalid literal, becomes null."""
    data = orjson.dumps(
        value, default=_json_default, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_PASSTHROUGH_DATETIME
    )
    data = data.replace(b"<", b"\\u003C").replace(b">", b"\\u003E").replace(b"&", b"\\u0026")
    return mark_safe(data.decode())  # safe: <, > and & cannot appear unescaped


def _invalid(form_or_errors) -> object:
    errors = form_or_errors.errors.get_json_data() if hasattr(form_or_errors, "errors") else form_or_errors
    return json_error(400, "Invalid filter values.", errors)


# --------------------------------------------------------------------------- fleet


def _fleet_context(request):
    form = FleetFilterForm(request.GET)
    if not form.is_valid():
        return None, form
    models = list(fleet_models(user=request.user, filters=form.cleaned_data))
    return {
        "form": form,
        "models": models,
        "health_counts": fleet_health_counts(models),
        "sort": form.cleaned_data.get("sort") or "health",
        "query_string": request.GET.urlencode(),
    }, form


@login_required
def fleet_overview(request):
    context, form = _fleet_context(request)
    if context is None:
        return _invalid(form)
    rollup = fleet_rollup(user=request.user)
    context.update(nav_section="fleet", rollup=rollup, figures=charts.fleet_figures(rollup))
    return render(request, "monitoring/fleet.html", context)


@login_required
def fleet_live(request):
    """The live part of the fleet page (counts and rows), polled by htmx."""
    context, form = _fleet_context(request)
    if context is None:
        return _invalid(form)
    return render(request, "monitoring/inc/fleet_live.html", context)


# --------------------------------------------------------------------------- model dashboard


@login_required
def model_dashboard(request, name):
    try:
        query = dashboard_query_parse(request.GET)
    except ValidationError as exc:
        return json_error(400, "Invalid range or granularity.", exc.messages)
    data = model_dashboard_data(user=request.user, name=name, query=query)
    figures = {**charts.model_dashboard_figures(data), **fairness_figures(data)}  # monitoring/fairness_charts.py
    context = {
        "nav_section": "fleet",
        "d": data,
        "model": data.model,
        "query": query,
        "figures": figures,
        "figures_json": json_script_text(figures),
        "ranges": list(RANGES) + ["custom"],
        "can_acknowledge": can_change_model(request.user, data.model),
    }
    if request.htmx and request.htmx.target == "dashboard-charts":
        return render(request, "monitoring/inc/dashboard_charts.html", context)
    return render(request, "monitoring/model_dashboard.html", context)


# --------------------------------------------------------------------------- alerts


@login_required
def alert_list(request):
    try:
        alerts_qs, filterset = alert_page_list(user=request.user, params=request.GET)
    except ValidationError as exc:
        return json_error(
            400, "Invalid filter values.", exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        )
    alerts = list(alerts_qs[:ALERTS_PAGE_SIZE])
    # the default view (no filters): what is open now, and what was resolved in the last week
    recent = [] if request.GET else list(alert_recently_resolved(user=request.user)[:ALERTS_PAGE_SIZE])
    for alert in alerts:
        alert.can_acknowledge = can_change_model(request.user, alert.model)
    context = {
        "nav_section": "alerts",
        "alerts": alerts,
        "recent": recent,
        "filters": filterset.form.cleaned_data,
        "status": request.GET.get("status", "active"),
        "days": request.GET.get("days", ""),
        "statuses": AlertStatus.choices,
        "severities": AlertSeverity.choices,
        "kinds": AlertKind.choices,
    }
    return render(request, "monitoring/alerts.html", context)


class AcknowledgeForm(forms.Form):
    comment = forms.CharField(max_length=5000, strip=True)


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
        return _invalid(form)
    try:
        alert = alert_acknowledge(
            alert=alert,
            actor=request.user,
            comment=form.cleaned_data["comment"],
            context=AuditContext.from_request(request),
        )
    except AlertStateConflict as exc:
        return json_error(409, " ".join(exc.messages))
    except ValidationError as exc:
        return json_error(400, " ".join(exc.messages))
    alert.can_acknowledge = True
    if request.htmx:
        return render(request, "monitoring/inc/alert_row.html", {"alert": alert})
    messages.success(request, f"Alert #{alert.pk} acknowledged.")
    return redirect(reverse("monitoring:alert_list"))


# --------------------------------------------------------------------------- scorecard


class ScorecardForm(forms.Form):
    ack_hours = forms.IntegerField(required=False, min_value=1, max_value=24 * 30)


@login_required
def scorecard(request):
    form = ScorecardForm(request.GET)
    if not form.is_valid():
        return _invalid(form)
    card = scorecard_compute(user=request.user, ack_hours=form.cleaned_data.get("ack_hours") or ack_hours_default())
    return render(request, "monitoring/scorecard.html", {"nav_section": "scorecard", "card": card, "form": form})
