"""The Art. 73 incident reports as PDF (WeasyPrint, as the compliance report): rendered from
the snapshot filed on the timeline, so the PDF shows what was reported, when. Downloading one
is audited (``incident.report_exported``)."""

from __future__ import annotations

import datetime as dt

from django.contrib.staticfiles import finders
from django.db import transaction
from django.http import Http404, HttpResponse
from django.template.loader import render_to_string

from mlops_portal import clock
from monitoring.choices import IncidentEventKind, ReportKind
from registry.services.audit import AuditContext, audit_record, file_digest

from .deadlines import ARTICLES
from .models import Incident

KIND_EVENTS = {ReportKind.INITIAL: IncidentEventKind.REPORT_INITIAL, ReportKind.FINAL: IncidentEventKind.REPORT_FINAL}


def report_context(incident: Incident, kind: str) -> dict:
    """The filed report's snapshot and what the template needs; 404 if not filed."""
    if kind not in KIND_EVENTS:
        raise Http404("No such report.")
    event = incident.events.filter(kind=KIND_EVENTS[kind]).select_related("actor").order_by("-created_at").first()
    if event is None:
        raise Http404(f"No {kind} report filed for incident #{incident.pk}.")
    report = event.data.get("report", {})
    return {
        "incident": incident,
        "report": report,
        # the reported moments as datetimes, for the template to show on the incident's wall clock
        "aware_at": _moment(report.get("aware_at")),
        "deadline": _moment(report.get("deadline")),
        "event": event,
        "kind": kind,
        "article": ARTICLES.get(incident.severity, "Art. 73"),
        "generated_at": clock.now(),
    }


def _moment(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if text else None


def render_report_pdf(incident: Incident, kind: str, *, request=None) -> bytes:
    from weasyprint import CSS, HTML

    html = render_to_string("monitoring/incident_report_pdf.html", report_context(incident, kind), request=request)
    css_path = finders.find("css/app.css")
    stylesheets = [CSS(filename=css_path)] if css_path else []
    base = request.build_absolute_uri("/") if request is not None else None
    return HTML(string=html, base_url=base).write_pdf(stylesheets=stylesheets)


def incident_report_pdf(request, incident: Incident, kind: str) -> HttpResponse:
    pdf = render_report_pdf(incident, kind, request=request)
    with transaction.atomic():
        event = audit_record(
            actor=request.user,
            action="incident.report_exported",
            obj=incident,
            model=incident.model,
            context=AuditContext.from_request(request, source="ui"),
            after={"kind": kind, "format": "pdf", **file_digest(pdf)},
        )
    response = HttpResponse(pdf, content_type="application/pdf")
    response["X-Audit-Seq"] = str(event.seq)  # the event holding this file's SHA-256
    response["Content-Disposition"] = f'attachment; filename="incident-{incident.pk}-{kind}-report.pdf"'
    return response
