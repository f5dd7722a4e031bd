"""Auditor pages: audit log, export, per-model history, as-of inventory, compliance report.

Thin views: models are read through ``registry.selectors.inventory.model_get`` (the one
visibility filter, ``RegisteredModel.objects.visible_to``); the FilterSet, the keyset page and
the report data come from ``registry.selectors.audit``; exports and report downloads are recorded by
``registry.services.audit``. The API (``registry.api.audit``) uses the same pieces.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.contrib.staticfiles import finders
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils import timezone
from django.views.decorators.http import require_GET

from mlops_portal.api.errors import form_error_details, json_error
from registry.choices import AuditSource
from registry.rules import can_view_audit
from registry.selectors.audit import (
    AuditEventFilter,
    InvalidTime,
    audit_event_page,
    audit_event_queryset,
    compliance_report_data,
    event_diff_rows,
    inventory_as_of,
    parse_as_of_time,
)
from registry.selectors.audit import model_history as model_history_page
from registry.selectors.inventory import model_get
from registry.services.audit import AuditContext, audit_export, compliance_report_record_export


class BadCursor(ValueError):
    """A ?before= / ?after= value that is not a positive integer."""


def parse_cursor(request) -> tuple[int | None, int | None]:
    """The keyset cursors of a page (``?before=<seq>`` or ``?after=<seq>``)."""
    values = []
    for key in ("before", "after"):
        raw = request.GET.get(key, "").strip()
        if not raw:
            values.append(None)
            continue
        if not raw.isdigit() or len(raw) > 19:
            raise BadCursor(f"'{key}' must be a positive integer sequence number.")
        values.append(int(raw))
    if values[0] is not None and values[1] is not None:
        raise BadCursor("Use either 'before' or 'after', not both.")
    return values[0], values[1]


def _query_without(request, *keys: str) -> str:
    query = request.GET.copy()
    for key in keys:
        query.pop(key, None)
    return query.urlencode()


@login_required
@require_GET
def audit_log(request):
    if not can_view_audit(request.user):
        raise PermissionDenied
    filterset = AuditEventFilter(request.GET or None, queryset=audit_event_queryset(user=request.user))
    status = 200
    page = None
    error = ""
    try:
        before, after = parse_cursor(request)
    except BadCursor as exc:
        error, status = str(exc), 400
    if not error:
        if filterset.is_bound and not filterset.is_valid():
            status = 400
        else:
            page = audit_event_page(filterset.qs, before=before, after=after)
    rows = [(event, event_diff_rows(event)) for event in page.events] if page else []
    return render(
        request,
        "registry/audit_log.html",
        {
            "nav_section": "audit",
            "filterset": filterset,
            "page": page,
            "rows": rows,
            "error": error,
            "filter_query": _query_without(request, "before", "after", "format"),
        },
        status=status,
    )


def start_export(request, filterset, source: str):
    """``audit_export`` of the filtered events in the ``format`` asked (CSV by default), by the
    user, recorded with ``source`` (shared with the API). A ``ValidationError`` for a bad format."""
    return audit_export(
        actor=request.user,
        queryset=filterset.qs,
        filters=filterset.active_filters(),
        fmt=request.GET.get("format", "csv"),
        context=AuditContext.from_request(request, source=source),
    )


def export_response(export) -> StreamingHttpResponse:
    """The streamed file of a started export (shared with the API)."""
    response = StreamingHttpResponse(export.stream, content_type=export.content_type)
    response["Content-Disposition"] = f'attachment; filename="{export.filename}"'
    response["X-Audit-Export-Event"] = str(export.event.seq)
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_GET
def audit_export_view(request):
    if not can_view_audit(request.user):
        return json_error(403, "Only auditors, privacy officers and admins may export the audit log.")
    filterset = AuditEventFilter(request.GET, queryset=audit_event_queryset(user=request.user))
    if not filterset.is_valid():
        return json_error(400, "Invalid filters.", form_error_details(filterset.errors))
    try:
        export = start_export(request, filterset, AuditSource.UI)
    except ValidationError as exc:
        return json_error(400, "; ".join(exc.messages), exc.message_dict if hasattr(exc, "error_dict") else None)
    return export_response(export)


@login_required
@require_GET
def model_history(request, name):
    model = model_get(user=request.user, name=name)
    try:
        before, _ = parse_cursor(request)
    except BadCursor as exc:
        return json_error(400, str(exc))
    page = model_history_page(user=request.user, model=model, before=before)
    context = {
        "model": model,
        "page": page,
        "rows": [(event, event_diff_rows(event)) for event in page.events],
        "nav_section": "inventory",
    }
    template = "registry/inc/model_history.html" if request.htmx else "registry/model_history.html"
    return render(request, template, context)


@login_required
@require_GET
def as_of_view(request):
    raw = request.GET.get("time", "").strip()
    error = ""
    status = 200
    moment = None
    if raw:
        try:
            moment = parse_as_of_time(raw)
        except InvalidTime as exc:
            error, status = str(exc), 400
    else:
        moment = timezone.now()
    entries = inventory_as_of(user=request.user, moment=moment) if moment else []
    return render(
        request,
        "registry/as_of.html",
        {
            "nav_section": "as_of",
            "moment": moment,
            "time_value": raw or (moment.strftime("%Y-%m-%dT%H:%M") if moment else ""),
            "entries": entries,
            "error": error,
        },
        status=status,
    )


def _report_context(request, name):
    model = model_get(user=request.user, name=name)
    report = compliance_report_data(user=request.user, model=model)
    if report is None:
        raise Http404("No such model.")
    return {"report": report, "model": model, "nav_section": "inventory"}


@login_required
@require_GET
def compliance_report(request, name):
    return render(request, "registry/compliance_report.html", _report_context(request, name))


def compliance_report_document(request, context: dict):
    """The report laid out on A4 pages by WeasyPrint (a ``weasyprint.Document``: its pages and
    their anchors are what the PDF is written from)."""
    from weasyprint import CSS, HTML

    html = render_to_string("registry/compliance_report_pdf.html", {**context, "pdf": True}, request=request)
    css_path = finders.find("css/app.css")
    stylesheets = [CSS(filename=css_path)] if css_path else []
    return HTML(string=html, base_url=request.build_absolute_uri("/")).render(stylesheets=stylesheets)


@login_required
@require_GET
def compliance_report_pdf(request, name):
    context = _report_context(request, name)
    pdf = compliance_report_document(request, context).write_pdf()
    event = compliance_report_record_export(
        model=context["model"],
        actor=request.user,
        context=AuditContext.from_request(request, source=AuditSource.UI),
        fmt="pdf",
        content=pdf,
    )
    response = HttpResponse(pdf, content_type="application/pdf")
    response["X-Audit-Seq"] = str(event.seq)  # the event holding this file's SHA-256
    stamp = context["report"].generated_at.strftime("%Y%m%d")
    response["Content-Disposition"] = f'attachment; filename="compliance-{context["model"].name}-{stamp}.pdf"'
    return response
