"""The owner's incident path in real headless Chromium: from a critical alert on the alerts page,
"Open incident", set the severity and the time of awareness, see the deadline and its countdown,
suspend by a governed rollback, file the initial report, record the root cause, file the final
report and download its PDF, and close. Takes docs/screenshots/incident.png."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from mlops_portal import clock
from monitoring.models import Alert
from monitoring.oversight.models import Incident
from registry.choices import Stage
from registry.models import ModelVersion, RegisteredModel
from registry.services.audit import CLI
from registry.services.promotions import promotion_approve, promotion_request
from tests.browser.conftest import login, screenshot
from tests.factories import ModelVersionFactory

pytestmark = [pytest.mark.browser, pytest.mark.postgres]


@pytest.fixture
def churn_alerting(churn, owner, reviewer):
    """churn v2 approved into production over v1, and a critical drift alert open on it."""
    registered = timezone.now() - dt.timedelta(days=3)
    RegisteredModel.objects.filter(pk=churn.pk).update(created_at=registered)
    with clock.at(timezone.now() - dt.timedelta(days=2)):  # in production before the problem began
        for _ in range(2):
            version = ModelVersionFactory(model=churn)
            req = promotion_request(
                version=version, target_stage=Stage.PRODUCTION, requester=owner, justification="Release.", context=CLI
            )
            promotion_approve(request=req, reviewer=reviewer, comment="ok", context=CLI)
    opened = timezone.now() - dt.timedelta(hours=5)
    return Alert.objects.create(
        model=churn,
        kind="drift",
        severity="critical",
        title="Data drift: 3 of 5 features drifted (PSI income 0.41)",
        reasons=[{"kind": "drift", "severity": "critical", "message": "PSI income 0.41"}],
        opened_at=opened,
        updated_at=opened,
    )


def _submit(page, form_class: str, button: str, done: str) -> None:
    """Post one action form (htmx-boosted: the page body is swapped, no full reload)."""
    page.locator(f"form.{form_class}").get_by_role("button", name=button).click()
    page.locator(".messages", has_text=done).wait_for()


def test_owner_runs_an_incident_from_alert_to_closure(page, live_server, owner, churn_alerting):
    login(page, live_server, owner)
    page.goto(live_server.url + "/monitoring/alerts/")
    with page.expect_navigation():
        page.locator(f"#alert-{churn_alerting.pk} a.open-incident").click()
    assert "Open an incident on churn" in page.content()
    page.select_option("#id_severity", "serious")
    aware = (timezone.now() - dt.timedelta(hours=1)).replace(microsecond=0)
    page.fill("#id_aware_at", aware.strftime("%Y-%m-%d %H:%M:%S"))
    with page.expect_navigation():
        page.get_by_role("button", name="Open incident").click()

    incident = Incident.objects.get()
    assert page.url.endswith(incident.get_absolute_url())
    deadline = page.locator(".incident-deadline").inner_text()
    assert (aware + dt.timedelta(days=15)).strftime("%Y-%m-%d %H:%M") in deadline
    countdown = page.locator("time.countdown").inner_text()
    assert countdown.startswith("14 d 22 h") or countdown.startswith("14 d 23 h"), countdown
    assert list(incident.alerts.all()) == [churn_alerting] and incident.version.version == 2
    assert page.locator("#nav-badge-incidents .nav-count").inner_text() == "1"  # loaded by htmx

    page.check("input[name=mode][value=rollback]")
    page.fill("form.incident-suspend-form textarea[name=reason]", "Wrong offers going out")
    _submit(page, "incident-suspend-form", "Suspend", "Use suspended.")
    assert [v.version for v in ModelVersion.objects.filter(model=incident.model, stage=Stage.PRODUCTION)] == [1]

    page.select_option("form.incident-report-form select[name=kind]", "initial")
    page.fill("form.incident-report-form textarea[name=affected]", "About 300 customers")
    _submit(page, "incident-report-form", "File report", "Report filed.")
    assert "deadline met" in page.locator(".incident-deadline").inner_text()

    page.fill("form.incident-resolve-form textarea[name=root_cause]", "Income reported in cents upstream.")
    _submit(page, "incident-resolve-form", "Record root cause", "Root cause recorded.")
    page.select_option("form.incident-report-form select[name=kind]", "final")
    _submit(page, "incident-report-form", "File report", "Report filed.")
    screenshot(page, "incident")

    with page.expect_download() as download:
        page.get_by_role("link", name="Final report (PDF)").click()
    assert download.value.suggested_filename == f"incident-{incident.pk}-final-report.pdf"
    with open(download.value.path(), "rb") as pdf:
        assert pdf.read(5) == b"%PDF-"

    _submit(page, "incident-close-form", "Close incident", "Incident closed.")
    kinds = [e.get_attribute("data-kind") for e in page.locator(".incident-timeline li").all()]
    assert kinds == ["opened", "suspended", "report_initial", "resolved", "report_final", "closed"]
    incident.refresh_from_db()
    assert incident.status == "closed"
