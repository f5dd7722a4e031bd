"""The metric windows of an incident's period, as its page, its API answer and its filed report
say them: one granularity (hourly when the period has hourly windows, else daily: the daily
windows of the same hours hold the same traffic and are not counted again), the first
``MAX_WINDOWS`` listed, and when more exist, how many were left out with a link to the dashboard
range covering all of them."""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest
from django.template.loader import render_to_string
from django.utils import timezone

from monitoring.choices import Granularity
from monitoring.models import Alert, MetricValue
from monitoring.oversight.incidents import incident_open, incident_report
from monitoring.oversight.models import MAX_WINDOWS
from monitoring.oversight.reports import report_context
from registry.choices import Stage
from registry.services.audit import CLI
from tests.factories import ModelVersionFactory

pytestmark = pytest.mark.django_db

HOUR, DAY = dt.timedelta(hours=1), dt.timedelta(days=1)


def store_windows(version, granularity: str, first: dt.datetime, n: int) -> None:
    """``n`` windows from ``first``, two metric rows each (a window is counted once, not per row)."""
    length = HOUR if granularity == Granularity.HOURLY else DAY
    for i in range(n):
        start = first + i * length
        for metric in ("volume", "drift_share"):
            MetricValue.objects.create(
                model=version.model,
                version=version,
                granularity=granularity,
                window_start=start,
                window_end=start + length,
                feature="",
                metric=metric,
                value=100,
                computed_at=start + length,
            )


def open_incident(model, owner, began_at: dt.datetime, aware_at: dt.datetime):
    alert = Alert.objects.create(
        model=model, kind="drift", severity="critical", title="x", opened_at=began_at, updated_at=began_at
    )
    return incident_open(
        model=model, actor=owner, severity="serious", aware_at=aware_at, summary="x", alerts=[alert], context=CLI
    )


@pytest.fixture
def version(churn):
    return ModelVersionFactory(model=churn, stage=Stage.PRODUCTION)


@pytest.fixture
def midnight():
    return timezone.now().replace(hour=0, minute=0, second=0, microsecond=0) - 4 * DAY


def summary_of(api_client_for, owner, incident) -> dict:
    answer = api_client_for(owner).get(f"/api/v1/incidents/{incident.pk}/")
    assert answer.status_code == 200
    return answer.json()


def test_an_incident_counts_its_hourly_windows_not_the_daily_ones_of_the_same_hours(
    churn, version, owner, client_for, api_client_for, midnight
):
    # it said "32 metric windows": 30 hours and the 2 days holding them, the same traffic twice
    began = midnight + 6 * HOUR
    store_windows(version, Granularity.HOURLY, began, 30)
    store_windows(version, Granularity.DAILY, midnight, 2)
    incident = open_incident(churn, owner, began, began + 30 * HOUR)
    page = client_for(owner).get(incident.get_absolute_url()).content.decode()
    assert "30 hourly windows" in page
    assert "the daily windows of the same period are not counted again" in page
    assert "left out" not in page
    body = summary_of(api_client_for, owner, incident)
    assert body["windows_summary"] | {"dashboard_url": ""} == {
        "granularity": Granularity.HOURLY,
        "total": 30,
        "shown": 30,
        "left_out": 0,
        "start": began.isoformat().replace("+00:00", "Z"),
        "end": (began + 30 * HOUR).isoformat().replace("+00:00", "Z"),
        "dashboard_url": "",
    }
    assert len(body["windows"]) == 30 and {w["granularity"] for w in body["windows"]} == {Granularity.HOURLY}


def test_an_incident_of_a_model_with_daily_windows_only_counts_days(
    churn, version, owner, client_for, api_client_for, midnight
):
    store_windows(version, Granularity.DAILY, midnight, 3)
    incident = open_incident(churn, owner, midnight + 2 * HOUR, midnight + 2 * DAY + 2 * HOUR)
    page = client_for(owner).get(incident.get_absolute_url()).content.decode()
    assert "3 daily windows" in page and "not counted again" not in page
    body = summary_of(api_client_for, owner, incident)
    assert body["windows_summary"]["granularity"] == Granularity.DAILY and body["windows_summary"]["total"] == 3


def test_more_windows_than_listed_says_how_many_were_left_out_and_links_the_whole_incident(
    churn, version, owner, client_for, api_client_for, midnight
):
    # it stopped at 48 windows and only said "later ones ... are not listed", never how many
    began = midnight - 2 * DAY
    n = MAX_WINDOWS + 10
    store_windows(version, Granularity.HOURLY, began, n)
    store_windows(version, Granularity.DAILY, began, 3)
    incident = open_incident(churn, owner, began, began + n * HOUR)
    page = client_for(owner).get(incident.get_absolute_url()).content.decode()
    assert f"{n} hourly windows" in page
    assert f"The first {MAX_WINDOWS} are listed; 10 later ones are left out" in page
    link = html.unescape(re.search(r'<a class="incident-windows-dashboard" href="([^"]+)"', page).group(1))
    body = summary_of(api_client_for, owner, incident)
    summary = body["windows_summary"]
    assert (summary["total"], summary["shown"], summary["left_out"]) == (n, MAX_WINDOWS, 10)
    assert len(body["windows"]) == MAX_WINDOWS and summary["dashboard_url"] == link
    dashboard = client_for(owner).get(link)
    assert dashboard.status_code == 200
    query = dashboard.context["query"]
    assert (query.start, query.end) == (began, began + n * HOUR)
    assert (query.granularity, len(dashboard.context["d"].windows)) == (Granularity.HOURLY, n)


def test_the_filed_report_says_the_windows_the_api_and_the_page_say(
    churn, version, owner, client_for, api_client_for, midnight
):
    began = midnight - 2 * DAY
    n = MAX_WINDOWS + 10
    store_windows(version, Granularity.HOURLY, began, n)
    store_windows(version, Granularity.DAILY, began, 3)
    incident = open_incident(churn, owner, began, began + n * HOUR)
    incident_report(incident=incident, actor=owner, kind="initial", context=CLI)
    context = report_context(incident, "initial")
    summary = summary_of(api_client_for, owner, incident)["windows_summary"]
    filed = context["report"]["windows"]
    assert {k: filed[k] for k in ("granularity", "total", "shown", "left_out")} == {
        k: summary[k] for k in ("granularity", "total", "shown", "left_out")
    }
    report = render_to_string("monitoring/incident_report_pdf.html", context)
    assert f"{n} hourly windows" in report and "10 later ones are left out" in report


def test_the_api_keeps_the_windows_listed_when_the_incident_was_opened_beside_todays(
    churn, version, owner, api_client_for, midnight
):
    began = midnight + 6 * HOUR
    store_windows(version, Granularity.HOURLY, began, 10)
    incident = open_incident(churn, owner, began, began + 20 * HOUR)
    store_windows(version, Granularity.HOURLY, began + 10 * HOUR, 10)  # computed after the opening
    body = summary_of(api_client_for, owner, incident)
    assert body["windows_summary"]["total"] == 20 and len(body["windows"]) == 20
    opened = body["windows_at_opening"]
    assert len(opened) == 10 and opened[0]["window_start"].startswith(began.strftime("%Y-%m-%dT%H:%M"))
