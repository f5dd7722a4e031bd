"""An alert leads to at most one incident still being worked: the alerts page links the incident
it is already part of instead of offering "Open incident" again, and a second incident from the
same alert is refused (each would start its own Art. 73 clock, reminders and review). The
incident form says which time zone counts the deadline: the model's own, if it has one."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from monitoring.models import Alert
from monitoring.oversight.incidents import IncidentConflict, incident_open
from monitoring.oversight.models import Incident
from registry.choices import Stage
from registry.models import AuditEvent
from registry.services.audit import CLI
from tests.factories import ModelVersionFactory


@pytest.fixture
def alert(churn):
    ModelVersionFactory(model=churn, stage=Stage.PRODUCTION)
    opened = timezone.now() - dt.timedelta(hours=3)
    return Alert.objects.create(
        model=churn, kind="drift", severity="critical", title="Drift: income", opened_at=opened, updated_at=opened
    )


def _open(model, owner, alerts):
    return incident_open(
        model=model,
        actor=owner,
        severity="serious",
        aware_at=timezone.now() - dt.timedelta(hours=1),
        summary="Scores inflated after an upstream change.",
        alerts=alerts,
        context=CLI,
    )


def test_a_second_incident_from_an_alert_already_in_an_open_incident_is_refused(churn, owner, alert):
    first = _open(churn, owner, [alert])
    events = AuditEvent.objects.count()
    with pytest.raises(IncidentConflict, match=rf"incident #{first.pk}"):
        _open(churn, owner, [alert])
    assert list(Incident.objects.values_list("pk", flat=True)) == [first.pk]
    assert AuditEvent.objects.count() == events  # nothing written


def test_an_alert_whose_incident_is_closed_may_open_a_new_one(churn, owner, alert):
    first = _open(churn, owner, [alert])
    Incident.objects.filter(pk=first.pk).update(status="closed")
    second = _open(churn, owner, [alert])
    assert list(second.alerts.all()) == [alert]


def test_the_alerts_page_links_the_open_incident_instead_of_offering_another(churn, owner, alert, client_for):
    client = client_for(owner)
    offer = f"/monitoring/incidents/new/?alert={alert.pk}"
    assert offer in client.get("/monitoring/alerts/").content.decode()
    incident = _open(churn, owner, [alert])
    page = client.get("/monitoring/alerts/").content.decode()
    assert offer not in page
    assert f'href="{incident.get_absolute_url()}"' in page and f"Incident #{incident.pk}" in page


def test_the_incident_form_of_an_alert_already_in_an_open_incident_leads_to_it(churn, owner, alert, client_for):
    incident = _open(churn, owner, [alert])
    client = client_for(owner)
    url = f"/monitoring/incidents/new/?alert={alert.pk}"
    answer = client.get(url, follow=True)
    assert answer.redirect_chain == [(incident.get_absolute_url(), 302)]
    assert f"Alert #{alert.pk} is already part of incident #{incident.pk}" in answer.content.decode()
    now = timezone.now().strftime("%Y-%m-%d %H:%M:%S")
    posted = client.post(url, {"severity": "serious", "aware_at": now, "summary": "Again"})
    assert posted.status_code == 409 and f"incident #{incident.pk}" in posted.content.decode()
    assert Incident.objects.count() == 1


def test_the_incident_form_names_the_models_time_zone(churn, owner, alert, client_for):
    client = client_for(owner)
    page = client.get(f"/monitoring/incidents/new/?alert={alert.pk}").content.decode()
    assert "counted in UTC" in page  # the installation's default (DEFAULT_MODEL_TIME_ZONE)
    type(churn).objects.filter(pk=churn.pk).update(time_zone="Europe/Berlin")
    page = client.get(f"/monitoring/incidents/new/?alert={alert.pk}").content.decode()
    assert "counted in Europe/Berlin" in page and "the installation's time zone" not in page


def test_a_review_names_the_alert_or_incident_of_each_later_trigger(churn, owner, client_for):
    # the demo's review #1 of credit-approval read "Fairness breach; then fairness breach; then
    # fairness breach; …" six times over, naming none of the alerts
    from monitoring.oversight.models import PeriodicReview

    ModelVersionFactory(model=churn, stage=Stage.PRODUCTION)
    incident_open(model=churn, actor=owner, severity="serious", aware_at=timezone.now(), summary="One", context=CLI)
    second = incident_open(
        model=churn, actor=owner, severity="serious", aware_at=timezone.now(), summary="Two", context=CLI
    )
    review = PeriodicReview.objects.get(model=churn)
    html = client_for(owner).get(review.get_absolute_url()).content.decode()
    day = timezone.now().strftime("%Y-%m-%d")
    link = f'<a href="{second.get_absolute_url()}">incident #{second.pk}</a>'
    assert f"<dt>Trigger</dt><dd>New incident; then new incident ({link}, {day})</dd>" in html
