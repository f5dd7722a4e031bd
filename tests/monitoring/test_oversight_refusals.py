"""A refused action on an incident, a review, a finding or a model's oversight page answers a
4xx and changes nothing: the page again with the form as typed and its errors (a browser), or
the JSON error (htmx, which then keeps the page and its typed text as they are)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from monitoring.oversight.incidents import incident_open
from monitoring.oversight.models import Finding
from monitoring.oversight.reviews import review_open
from registry.choices import Stage
from registry.services.audit import CLI
from tests.factories import ModelVersionFactory

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def incident(churn, owner):
    ModelVersionFactory(model=churn, stage=Stage.PRODUCTION)
    return incident_open(
        model=churn,
        actor=owner,
        severity="serious",
        aware_at=timezone.now() - dt.timedelta(hours=2),
        summary="Scores shifted.",
        alerts=[],
        context=CLI,
    )


def test_a_too_long_incident_note_is_a_400_that_keeps_the_text_and_adds_nothing(incident, owner, client_for, last_seq):
    # it answered 302 back to the incident, the typed note gone, the error only in a banner
    client = client_for(owner)
    seq, text = last_seq(), "Checked the upstream feed. " * 800  # 21,600 characters
    answer = client.post(f"/monitoring/incidents/{incident.pk}/note/", {"text": text})
    assert answer.status_code == 400
    form = answer.context["forms"]["note"]
    assert form.data["text"] == text and form.errors["text"]
    assert "Checked the upstream feed." in answer.content.decode()
    assert incident.events.count() == 1 and last_seq() == seq


def test_a_refused_incident_action_sent_by_htmx_is_a_json_400(incident, owner, client_for, last_seq):
    client = client_for(owner)
    seq = last_seq()
    answer = client.post(f"/monitoring/incidents/{incident.pk}/suspend/", {"mode": "pause", "reason": "x"}, **HTMX)
    assert answer.status_code == 400 and answer["Content-Type"].startswith("application/json")
    assert "mode" in answer.json()["error"]["details"]
    assert last_seq() == seq


def test_an_incident_action_out_of_turn_is_a_409_naming_why(incident, owner, client_for, last_seq):
    client = client_for(owner)
    seq = last_seq()
    answer = client.post(f"/monitoring/incidents/{incident.pk}/close/", {"comment": ""})
    assert answer.status_code == 409 and "needs its root cause" in answer.content.decode()
    incident.refresh_from_db()
    assert incident.status == "open" and last_seq() == seq


def test_an_attestation_without_its_checks_is_a_400_that_keeps_the_comment(churn, owner, client_for, last_seq):
    ModelVersionFactory(model=churn, stage=Stage.PRODUCTION)
    review = review_open(model=churn, actor=owner, reason="Quarterly look", context=CLI)
    client = client_for(owner)
    seq = last_seq()
    answer = client.post(f"/monitoring/reviews/{review.pk}/attest/", {"comment": "Card re-read today"})
    assert answer.status_code == 400
    assert answer.context["attest_form"].data["comment"] == "Card re-read today"
    assert "Card re-read today" in answer.content.decode()
    review.refresh_from_db()
    assert review.status == "open" and last_seq() == seq


def test_a_finding_due_at_a_calendar_end_is_a_400_that_records_nothing(churn, reviewer, client_for, last_seq):
    client = client_for(reviewer)
    seq = last_seq()
    data = {"severity": "high", "description": "No runbook", "owner": "owner", "due_at": "9999-12-31 23:59"}
    answer = client.post("/monitoring/models/churn/oversight/finding/", data)
    assert answer.status_code == 400
    assert answer.context["finding_form"].data["description"] == "No runbook"
    assert not Finding.objects.exists() and last_seq() == seq


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"model": "x" * 101}, "model"),
        ({"severity": "catastrophic"}, "severity"),
        ({"aware_after": "soon"}, "aware_after"),
    ],
)
def test_bad_incident_list_filters_are_the_page_again_with_the_errors(incident, owner, client_for, params, field):
    # a browser got the bare JSON error instead of the page, unlike the fleet and alerts pages
    answer = client_for(owner).get("/monitoring/incidents/", params)
    assert answer.status_code == 400 and answer["Content-Type"].startswith("text/html")
    assert field in answer.context["field_errors"] and 'class="error"' in answer.content.decode()
    assert answer.context["incidents"] == []
    fragment = client_for(owner).get("/monitoring/incidents/", params, **HTMX)
    assert fragment.status_code == 400 and field in fragment.json()["error"]["details"]


def test_with_no_version_in_production_the_incident_page_offers_no_suspend_form(churn, owner, client_for):
    # it offered the form (mode, reason, Suspend) though it could only answer that nothing is in production
    incident = incident_open(
        model=churn, actor=owner, severity="serious", aware_at=timezone.now(), summary="x", alerts=[], context=CLI
    )
    page = client_for(owner).get(incident.get_absolute_url()).content.decode()
    assert "No version is in production: there is nothing to suspend." in page
    assert "incident-suspend-form" not in page and "incident-note-form" in page


def test_an_incident_holding_the_most_windows_it_records_says_later_ones_may_be_left_out(churn, owner, client_for):
    # it said "48 metric windows from … to …" as if that were all, ending days before the owner became aware
    from monitoring.choices import Granularity
    from monitoring.models import Alert, MetricValue
    from monitoring.oversight.models import MAX_WINDOWS

    version = ModelVersionFactory(model=churn, stage=Stage.PRODUCTION)
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    first = now - dt.timedelta(hours=MAX_WINDOWS + 10)
    for hour in range(MAX_WINDOWS + 10):
        start = first + dt.timedelta(hours=hour)
        MetricValue.objects.create(
            model=churn,
            version=version,
            granularity=Granularity.HOURLY,
            window_start=start,
            window_end=start + dt.timedelta(hours=1),
            feature="",
            metric="volume",
            value=100,
            computed_at=now,
        )
    alert = Alert.objects.create(
        model=churn, kind="drift", severity="critical", title="x", opened_at=first, updated_at=first
    )
    incident = incident_open(
        model=churn, actor=owner, severity="serious", aware_at=now, summary="x", alerts=[alert], context=CLI
    )
    assert len(incident.windows) == MAX_WINDOWS
    page = client_for(owner).get(incident.get_absolute_url()).content.decode()
    assert f"The first {MAX_WINDOWS} are listed; 10 later ones are left out" in page


@pytest.mark.parametrize("action", ["note", "suspend", "report", "resolve", "close"])
def test_someone_who_may_not_act_on_an_incident_gets_a_403_whatever_the_form(
    incident, auditor, reviewer, client_for, last_seq, action
):
    """An auditor posting an empty form got the form's errors ('root_cause: This field is
    required') in a 400, as if only the input were wrong; the 403 came only for a valid form."""
    clients = {user.username: client_for(user) for user in (auditor, reviewer)}  # their sign-ins are audited
    seq = last_seq()
    for name, client in clients.items():
        answer = client.post(f"/monitoring/incidents/{incident.pk}/{action}/", {})
        assert answer.status_code == 403, (name, answer.status_code)
    assert last_seq() == seq


def test_someone_who_may_not_attest_or_validate_a_review_gets_a_403_whatever_the_form(
    churn, owner, auditor, client_for, last_seq
):
    review = review_open(model=churn, actor=owner, reason="Quarterly look", context=CLI)
    client = client_for(auditor)
    seq = last_seq()
    for action in ("attest", "validate"):
        assert client.post(f"/monitoring/reviews/{review.pk}/{action}/", {}).status_code == 403
    assert last_seq() == seq


@pytest.mark.parametrize("action", ["review", "finding"])
def test_someone_who_may_not_open_a_review_or_record_a_finding_gets_a_403_whatever_the_form(
    churn, auditor, client_for, last_seq, action
):
    client = client_for(auditor)
    seq = last_seq()
    assert client.post(f"/monitoring/models/churn/oversight/{action}/", {}).status_code == 403
    assert last_seq() == seq
