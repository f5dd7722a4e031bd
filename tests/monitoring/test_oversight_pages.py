"""Oversight pages and reports: the incident PDFs render and name the articles, the
post-market section renders for the compliance report, the pages follow the roles, and the
"Open incident" button on alerts opens one."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.template import Context, Template
from django.test import RequestFactory
from django.utils import timezone

from monitoring.models import Alert
from monitoring.oversight.incidents import incident_open, incident_report, incident_resolve
from monitoring.oversight.models import Incident
from monitoring.oversight.reports import render_report_pdf
from registry.choices import Stage
from registry.services.audit import CLI
from tests.factories import ModelVersionFactory
from tests.pdf import pdf_parts


def pdf_text(pdf: bytes) -> bytes:
    """The PDF's bytes with every compressed stream inflated."""
    return b"\n".join(pdf_parts(pdf))


def _contains(haystack: bytes, text: str) -> bool:
    """PDF outlines and metadata hold text as Latin-1, or as UTF-16BE (raw or in a hex string)."""
    utf16 = text.encode("utf-16-be")
    return any(
        needle in haystack
        for needle in (text.encode("latin-1"), utf16, utf16.hex().encode(), utf16.hex().upper().encode())
    )


@pytest.fixture
def incident(churn, owner):
    ModelVersionFactory(model=churn, stage=Stage.PRODUCTION)
    opened = timezone.now() - dt.timedelta(hours=3)
    alert = Alert.objects.create(
        model=churn, kind="drift", severity="critical", title="Drift: income", opened_at=opened, updated_at=opened
    )
    return incident_open(
        model=churn,
        actor=owner,
        severity="serious",
        aware_at=timezone.now() - dt.timedelta(hours=2),
        summary="Churn scores inflated after an upstream change.",
        alerts=[alert],
        context=CLI,
    )


@pytest.mark.parametrize("kind", ["initial", "final"])
def test_incident_report_pdfs_render_and_name_the_articles(incident, owner, kind):
    incident_report(incident=incident, actor=owner, kind="initial", context=CLI, affected="1,200 customers")
    if kind == "final":
        incident_resolve(incident=incident, actor=owner, root_cause="Income in cents", context=CLI)
        incident_report(incident=incident, actor=owner, kind="final", context=CLI)
    pdf = render_report_pdf(Incident.objects.get(pk=incident.pk), kind)
    assert pdf.startswith(b"%PDF-")
    text = pdf_text(pdf)
    assert _contains(text, "Art. 73"), "the title and outline name Art. 73"
    assert _contains(text, "report of a serious incident")


def test_report_page_shows_fields_an_authority_asks_for(incident, owner, client_for, last_seq, audit_actions):
    incident_report(incident=incident, actor=owner, kind="initial", context=CLI, affected="1,200 customers")
    from django.template.loader import render_to_string

    from monitoring.oversight.reports import report_context

    html = render_to_string("monitoring/incident_report_pdf.html", report_context(incident, "initial"))
    for needle in (
        "Art. 73",
        "Art. 26(5)",
        "Provider",
        "Deployer",
        "AI system",
        "Version",
        "What happened",
        "Became aware",
        "Affected persons",
        "Corrective actions",
        "1,200 customers",
        "Status at filing",
    ):
        assert needle in html, needle
    client = client_for(owner)
    seq = last_seq()
    answer = client.get(f"/monitoring/incidents/{incident.pk}/report/initial.pdf")
    assert answer.status_code == 200 and answer["Content-Type"] == "application/pdf"
    assert audit_actions(seq) == ["incident.report_exported"]
    assert client.get(f"/monitoring/incidents/{incident.pk}/report/final.pdf").status_code == 404


def test_post_market_section_renders_for_the_compliance_report(incident, owner, reviewer):
    request = RequestFactory().get("/")
    request.user = reviewer
    html = Template("{% load oversight %}{% post_market_report model %}").render(
        Context({"model": incident.model, "request": request})
    )
    for needle in ("Art. 72", "Art. 73", "SR 26-2", "Validator", "Last validation", "Open findings", "data_drift"):
        assert needle in html, needle
    assert f"<td>{incident.pk}</td><td>serious</td>" in html
    request.user = type(owner).objects.create(username="nobody")
    html = Template("{% load oversight %}{% post_market_report model %}").render(
        Context({"model": incident.model, "request": request})
    )
    assert html.strip() == ""


def test_alert_row_offers_open_incident_to_the_owner_only(churn, owner, auditor, client_for):
    now = timezone.now()
    alert = Alert.objects.create(
        model=churn, kind="drift", severity="critical", title="x", opened_at=now, updated_at=now
    )
    assert (
        f"/monitoring/incidents/new/?alert={alert.pk}" in client_for(owner).get("/monitoring/alerts/").content.decode()
    )
    assert "open-incident" not in client_for(auditor).get("/monitoring/alerts/").content.decode()


def test_open_incident_from_an_alert_through_the_page(churn, owner, client_for):
    ModelVersionFactory(model=churn, stage=Stage.PRODUCTION)
    now = timezone.now()
    alert = Alert.objects.create(
        model=churn, kind="drift", severity="critical", title="x", opened_at=now, updated_at=now
    )
    client = client_for(owner)
    form = client.get(f"/monitoring/incidents/new/?alert={alert.pk}")
    assert form.status_code == 200
    answer = client.post(
        f"/monitoring/incidents/new/?alert={alert.pk}",
        {"severity": "widespread", "aware_at": now.strftime("%Y-%m-%d %H:%M:%S"), "summary": "Outage"},
    )
    incident = Incident.objects.get()
    assert answer.status_code == 302 and answer["Location"] == incident.get_absolute_url()
    page = client.get(incident.get_absolute_url()).content.decode()
    assert "data-countdown" in page and "Reporting deadline" in page and list(incident.alerts.all()) == [alert]
    conflict = client.post(f"/monitoring/incidents/{incident.pk}/close/", {"comment": ""}, follow=True)
    assert "needs its root cause" in conflict.content.decode()


@pytest.mark.parametrize(
    ("who", "status"), [("owner", 200), ("reviewer", 200), ("auditor", 200), ("admin", 200), ("outsider", 404)]
)
def test_pages_follow_the_roles(incident, roles, client_for, who, status):
    client = client_for(roles[who])
    for path in (
        incident.get_absolute_url(),
        "/monitoring/models/churn/plan/",
        "/monitoring/models/churn/oversight/",
        "/monitoring/models/churn/post-market/",
    ):
        assert client.get(path).status_code == status, path
    listing = client.get("/monitoring/incidents/").content.decode()
    assert (f'id="incident-{incident.pk}"' in listing) == (status == 200)


@pytest.mark.parametrize("who", ["auditor", "reviewer", "outsider"])
def test_only_owner_or_admin_can_post_incident_actions(incident, roles, client_for, who):
    answer = client_for(roles[who]).post(f"/monitoring/incidents/{incident.pk}/note/", {"text": "x"})
    assert answer.status_code == (404 if who == "outsider" else 403)
    assert incident.events.count() == 1


def test_nav_badge_counts_overdue_incidents(churn, owner, roles, client_for):
    incident_open(
        model=churn,
        actor=owner,
        severity="widespread",
        aware_at=timezone.now() - dt.timedelta(days=3),
        summary="Late",
        context=CLI,
    )
    client = client_for(owner)
    assert 'hx-get="/monitoring/oversight/badges/"' in client.get("/monitoring/incidents/").content.decode()
    badges = client.get("/monitoring/oversight/badges/").content.decode()
    assert 'id="nav-badge-incidents" hx-swap-oob="true"' in badges
    assert 'title="Reporting deadlines passed">1<' in badges
    assert client_for(roles["outsider"]).get("/monitoring/oversight/badges/").content.decode().count("nav-count") == 0


def test_open_incident_without_an_alert_from_the_model_page(churn, roles, client_for):
    owner_page = client_for(roles["owner"]).get("/monitoring/models/churn/oversight/").content.decode()
    assert "/monitoring/incidents/new/?model=churn" in owner_page
    assert (
        "Open an incident"
        not in client_for(roles["auditor"]).get("/monitoring/models/churn/oversight/").content.decode()
    )
    assert client_for(roles["auditor"]).get("/monitoring/incidents/new/?model=churn").status_code == 403
    assert client_for(roles["outsider"]).get("/monitoring/incidents/new/?model=churn").status_code == 404
    answer = client_for(roles["owner"]).post(
        "/monitoring/incidents/new/?model=churn",
        {"severity": "death", "aware_at": "2026-10-20T10:00:00+02:00", "summary": "Harm reported"},
    )
    incident = Incident.objects.get()
    assert answer.status_code == 302 and incident.deadline == dt.datetime(2026, 10, 30, 8, 0, tzinfo=dt.UTC)


def test_the_deadline_is_written_once_when_the_incidents_zone_is_utc(incident, owner, client_for):
    # the demo's incident read "2026-12-17 10:54 UTC · 2026-12-17 10:54 UTC (UTC)"
    Incident.objects.filter(pk=incident.pk).update(time_zone="UTC")
    html = client_for(owner).get(f"/monitoring/incidents/{incident.pk}/").content.decode()
    line = re.search(r'<p class="deadline-line">(.*?)</p>', html, re.S).group(1)
    assert line.count(incident.deadline.strftime("%Y-%m-%d %H:%M")) == 1 and "(UTC)" not in line
    Incident.objects.filter(pk=incident.pk).update(time_zone="Europe/Berlin")
    html = client_for(owner).get(f"/monitoring/incidents/{incident.pk}/").content.decode()
    assert "(Europe/Berlin)" in re.search(r'<p class="deadline-line">(.*?)</p>', html, re.S).group(1)


@pytest.fixture
def berlin_incident(churn, owner):
    """A serious incident of a model operated from Berlin, known at 09:00 UTC on 27 Nov 2026
    (10:00 CET), due 15 days later at 09:00 UTC on 12 Dec (10:00 CET)."""
    ModelVersionFactory(model=churn, stage=Stage.PRODUCTION)
    type(churn).objects.filter(pk=churn.pk).update(time_zone="Europe/Berlin")
    churn.refresh_from_db()
    return incident_open(
        model=churn,
        actor=owner,
        severity="serious",
        aware_at=dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC),
        summary="Scores inflated.",
        context=CLI,
    )


def test_the_incident_page_shows_the_local_times_on_the_incidents_wall_clock(berlin_incident, owner, client_for):
    # the demo's page read "2026-12-12 09:00 UTC · 2026-12-12 09:00 UTC (Europe/Berlin)"
    html = client_for(owner).get(f"/monitoring/incidents/{berlin_incident.pk}/").content.decode()
    line = re.search(r'<p class="deadline-line">(.*?)</p>', html, re.S).group(1)
    assert line == "<strong>2026-12-12 09:00 UTC</strong> · 2026-12-12 10:00 CET (Europe/Berlin)"
    assert "aware at 2026-11-27 09:00 UTC (2026-11-27 10:00 CET, Europe/Berlin)" in html


def test_the_initial_report_shows_the_local_times_on_the_incidents_wall_clock(berlin_incident, owner):
    # the PDF read "Became aware 2026-11-27T09:00:00 UTC (Europe/Berlin)"
    from django.template.loader import render_to_string

    from monitoring.oversight.reports import report_context

    incident_report(incident=berlin_incident, actor=owner, kind="initial", context=CLI)
    html = render_to_string("monitoring/incident_report_pdf.html", report_context(berlin_incident, "initial"))
    assert "2026-11-27T09:00:00 UTC (2026-11-27 10:00 CET, Europe/Berlin)" in html
    assert "2026-12-12T09:00:00 UTC (2026-12-12 10:00 CET, Europe/Berlin)" in html


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"severity": "serious", "aware_at": "2026-11-27 09:00", "summary": ""}, "summary"),
        ({"severity": "catastrophic", "aware_at": "2026-11-27 09:00", "summary": "x"}, "severity"),
        ({"severity": "serious", "aware_at": "yesterday", "summary": "x"}, "aware_at"),
        ({"severity": "serious", "aware_at": "2999-01-01 09:00", "summary": "x"}, "aware_at"),  # the service refuses
    ],
)
def test_an_invalid_incident_form_is_a_400_like_the_other_forms_and_opens_nothing(
    churn, owner, client_for, last_seq, data, field
):
    # it answered 200 while the other forms answer 400
    now = timezone.now()
    alert = Alert.objects.create(
        model=churn, kind="drift", severity="critical", title="x", opened_at=now, updated_at=now
    )
    client = client_for(owner)
    seq = last_seq()
    answer = client.post(f"/monitoring/incidents/new/?alert={alert.pk}", data)
    assert answer.status_code == 400
    assert answer.context["form"].errors[field]
    assert not Incident.objects.exists() and last_seq() == seq


def test_an_alert_lists_only_the_reasons_its_title_does_not_already_say(churn, owner, client_for):
    from monitoring.services.alerts import alert_open

    one = {"kind": "drift", "severity": "critical", "message": "PSI 0.31 on income"}
    long = {"kind": "data_quality", "severity": "warning", "message": "Missing values " + "x" * 320}
    now = timezone.now()
    single = alert_open(model=churn, kind="drift", severity="critical", reasons=[one], context=CLI, now=now)
    cut = alert_open(model=churn, kind="data_quality", severity="warning", reasons=[long], context=CLI, now=now)
    html = client_for(owner).get("/monitoring/alerts/").content.decode()
    row = html[html.index(f'id="alert-{single.pk}"') : html.index("</tr>", html.index(f'id="alert-{single.pk}"'))]
    assert row.count("PSI 0.31 on income") == 1 and 'class="reasons' not in row
    row = html[html.index(f'id="alert-{cut.pk}"') : html.index("</tr>", html.index(f'id="alert-{cut.pk}"'))]
    assert f"<li>{long['message']}</li>" in row  # the title is cut at 300 characters: the bullet says it all


def test_a_review_opened_by_an_incident_names_that_incident_once_and_lists_only_later_triggers(
    churn, owner, client_for
):
    from monitoring.oversight.models import PeriodicReview

    ModelVersionFactory(model=churn, stage=Stage.PRODUCTION)
    incident_open(model=churn, actor=owner, severity="serious", aware_at=timezone.now(), summary="One", context=CLI)
    review = PeriodicReview.objects.get(model=churn)
    html = client_for(owner).get(review.get_absolute_url()).content.decode()
    assert "<dt>Trigger</dt><dd>New incident</dd>" in html
    two = incident_open(
        model=churn, actor=owner, severity="serious", aware_at=timezone.now(), summary="Two", context=CLI
    )
    html = client_for(owner).get(review.get_absolute_url()).content.decode()
    assert "<dt>Trigger</dt><dd>New incident; then new incident (" in html and f"incident #{two.pk}</a>" in html


def test_an_incident_report_download_records_the_digest_of_the_file(incident, owner, client_for, last_seq):
    import hashlib

    from registry.models import AuditEvent

    incident_report(incident=incident, actor=owner, kind="initial", context=CLI, affected="1,200 customers")
    before = last_seq()
    response = client_for(owner).get(f"/monitoring/incidents/{incident.pk}/report/initial.pdf")
    assert response.status_code == 200
    pdf = response.content
    event = AuditEvent.objects.get(seq__gt=before, action="incident.report_exported")
    assert event.after["sha256"] == hashlib.sha256(pdf).hexdigest() and event.after["bytes"] == len(pdf)
    assert response["X-Audit-Seq"] == str(event.seq)
