"""Incidents: Art. 73 deadline arithmetic (month ends, leap days, DST), the reminders sent once,
each transition audited, illegal transitions refused, suspend never leaving two production
versions, and who may do what."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone

from monitoring.models import Alert
from monitoring.oversight import deadlines
from monitoring.oversight.incidents import (
    IncidentConflict,
    incident_close,
    incident_note,
    incident_open,
    incident_reminders_send,
    incident_report,
    incident_resolve,
    incident_suspend,
    reminders_due,
)
from monitoring.oversight.models import Incident, IncidentReminder
from registry.choices import Stage
from registry.models import ModelVersion, PromotionRequest, Review, StageTransition
from registry.services.audit import CLI
from tests.factories import ModelVersionFactory

UTC = dt.UTC
BERLIN = "Europe/Berlin"


def at(*args, tz: str = "UTC") -> dt.datetime:
    return dt.datetime(*args, tzinfo=ZoneInfo(tz))


# --------------------------------------------------------------------------- deadline arithmetic


@pytest.mark.parametrize(
    ("severity", "aware", "expected"),
    [
        ("serious", at(2026, 1, 20, 9, 30), at(2026, 2, 4, 9, 30)),
        ("widespread", at(2026, 1, 31, 23, 0), at(2026, 2, 2, 23, 0)),  # over a month end
        ("widespread", at(2026, 2, 27, 12, 0), at(2026, 3, 1, 12, 0)),  # February of a common year
        ("widespread", at(2028, 2, 28, 12, 0), at(2028, 3, 1, 12, 0)),  # leap year: Feb 29 counts
        ("death", at(2026, 12, 25, 8, 0), at(2027, 1, 4, 8, 0)),  # over a year end
        ("serious", at(2026, 4, 30, 17, 45), at(2026, 5, 15, 17, 45)),
    ],
)
def test_deadline_is_aware_at_plus_the_legal_days_in_utc(severity, aware, expected):
    assert deadlines.reporting_deadline(severity=severity, aware_at=aware, zone="UTC") == expected


def test_deadline_keeps_the_local_time_across_the_spring_dst_change():
    # Berlin moves to summer time on 2026-03-29: 15 local days are 359 hours, not 360.
    aware = at(2026, 3, 20, 10, 0, tz=BERLIN)
    deadline = deadlines.reporting_deadline(severity="serious", aware_at=aware, zone=BERLIN)
    assert deadline.astimezone(ZoneInfo(BERLIN)) == at(2026, 4, 4, 10, 0, tz=BERLIN)
    assert deadline - aware == dt.timedelta(days=15) - dt.timedelta(hours=1)
    assert deadline == at(2026, 4, 4, 8, 0)  # UTC


def test_deadline_keeps_the_local_time_across_the_autumn_dst_change():
    aware = at(2026, 10, 20, 10, 0, tz=BERLIN)  # winter time from 2026-10-25
    deadline = deadlines.reporting_deadline(severity="serious", aware_at=aware, zone=BERLIN)
    assert deadline.astimezone(ZoneInfo(BERLIN)) == at(2026, 11, 4, 10, 0, tz=BERLIN)
    assert deadline - aware == dt.timedelta(days=15, hours=1)


def test_deadline_on_a_nonexistent_local_time_is_the_earlier_instant():
    # 02:30 does not exist in Berlin on 2026-03-29: never later than the law, so 01:30 CET.
    aware = at(2026, 3, 27, 2, 30, tz=BERLIN)
    deadline = deadlines.reporting_deadline(severity="widespread", aware_at=aware, zone=BERLIN)
    assert deadline == at(2026, 3, 29, 0, 30)


def test_deadline_on_an_ambiguous_local_time_is_the_first_occurrence():
    aware = at(2026, 10, 23, 2, 30, tz=BERLIN)  # 02:30 occurs twice on 2026-10-25
    deadline = deadlines.reporting_deadline(severity="widespread", aware_at=aware, zone=BERLIN)
    assert deadline == at(2026, 10, 25, 0, 30)  # 02:30 CEST


def test_malfunction_has_no_deadline_unless_an_internal_one_is_configured(settings):
    aware = at(2026, 1, 1, 0, 0)
    assert deadlines.reporting_deadline(severity="malfunction", aware_at=aware, zone="UTC") is None
    settings.INCIDENT_MALFUNCTION_DEADLINE_DAYS = 30
    assert deadlines.reporting_deadline(severity="malfunction", aware_at=aware, zone="UTC") == at(2026, 1, 31)


def test_reminders_fall_at_half_and_four_fifths_of_the_period():
    aware, deadline = at(2026, 1, 1), at(2026, 1, 11)
    assert deadlines.reminder_at(aware_at=aware, deadline=deadline, percent=50) == at(2026, 1, 6)
    assert deadlines.reminder_at(aware_at=aware, deadline=deadline, percent=80) == at(2026, 1, 9)


# --------------------------------------------------------------------------- services


@pytest.fixture
def prod(churn, reviewer):
    """churn with v1 archived (was production) and v2 in production, each via a transition."""
    v1 = ModelVersionFactory(model=churn, stage=Stage.ARCHIVED)
    v2 = ModelVersionFactory(model=churn, stage=Stage.PRODUCTION)
    t0 = timezone.now() - dt.timedelta(days=30)
    type(churn).objects.filter(pk=churn.pk).update(created_at=t0 - dt.timedelta(days=1))
    for version in (v1, v2):
        request = PromotionRequest.objects.create(
            version=version,
            target_stage=Stage.PRODUCTION,
            requested_by=churn.owner,
            justification="ok",
            status="applied",
        )
        Review.objects.create(request=request, reviewer=reviewer, requester=churn.owner, decision="approve")
        StageTransition.objects.create(
            version=version, model=churn, from_stage="staging", to_stage=Stage.PRODUCTION, promotion_request=request
        )
    Review.objects.filter(request__version__model=churn).update(created_at=t0 - dt.timedelta(hours=1))
    StageTransition.objects.filter(version=v1).update(created_at=t0)
    StageTransition.objects.filter(version=v2).update(created_at=t0 + dt.timedelta(days=10))
    StageTransition.objects.create(version=v1, model=churn, from_stage="production", to_stage="archived")
    StageTransition.objects.filter(version=v1, to_stage="archived").update(created_at=t0 + dt.timedelta(days=10))
    return churn


@pytest.fixture
def open_incident(prod, owner):
    def make(severity: str = "serious", aware_at=None, **kwargs) -> Incident:
        return incident_open(
            model=prod,
            actor=owner,
            severity=severity,
            aware_at=aware_at or timezone.now() - dt.timedelta(hours=1),
            summary="Scores drifted; customers wrongly flagged.",
            context=CLI,
            **kwargs,
        )

    return make


def test_open_records_the_version_in_production_when_it_began(open_incident, prod, audit_actions, last_seq):
    seq = last_seq()
    incident = open_incident(began_at=timezone.now() - dt.timedelta(days=25))
    assert incident.version.version == 1  # v1 was in production 25 days ago, v2 is now
    assert incident.approved_by == ["reviewer"] and incident.promotion_request.version == incident.version
    later = open_incident(began_at=timezone.now() - dt.timedelta(days=2))
    assert later.version.version == 2
    assert audit_actions(seq)[0] == "incident.opened"
    assert incident.events.get().kind == "opened"
    assert incident.deadline == incident.aware_at + dt.timedelta(days=15)


def test_an_incident_before_any_production_version_records_none(open_incident, prod, client_for, owner):
    """churn existed a day before v1 first went to production (30 days ago); v2 is in production now."""
    incident = open_incident(began_at=timezone.now() - dt.timedelta(days=30, hours=12))
    assert (incident.version, incident.promotion_request, incident.approved_by) == (None, None, [])
    page = client_for(owner).get(incident.get_absolute_url())
    assert page.status_code == 200 and "none was in production then" in page.content.decode()


def test_an_incident_through_the_api_before_any_production_version_has_no_version(prod, owner, api_client_for):
    aware = timezone.now() - dt.timedelta(days=30, hours=6)
    body = {"model": "churn", "severity": "serious", "summary": "Wrongly flagged.", "aware_at": aware.isoformat()}
    response = api_client_for(owner).post("/api/v1/incidents/", body, format="json")
    assert response.status_code == 201, response.content
    assert (response.json()["version"], response.json()["approved_by"]) == (None, [])


def test_the_deadline_is_computed_in_the_models_own_time_zone(open_incident, prod, settings):
    """A model operated from New York: a serious incident known at 23:30 local time on 25 Oct
    2026 (03:30 UTC on the 26th) is due at 23:30 New York time on 9 Nov, after the US clocks
    went back on 1 Nov (04:30 UTC on the 10th); the installation's zone (Europe/Berlin, whose
    clocks had gone back before the incident) gives 04:30 Berlin time on 10 Nov (03:30 UTC)."""
    settings.DEFAULT_MODEL_TIME_ZONE = "Europe/Berlin"
    aware = dt.datetime(2026, 10, 26, 3, 30, tzinfo=dt.UTC)
    assert open_incident(aware_at=aware).deadline == dt.datetime(2026, 11, 10, 3, 30, tzinfo=dt.UTC)
    type(prod).objects.filter(pk=prod.pk).update(time_zone="America/New_York")
    prod.refresh_from_db()
    incident = open_incident(aware_at=aware)
    assert incident.time_zone == "America/New_York"
    assert incident.deadline == dt.datetime(2026, 11, 10, 4, 30, tzinfo=dt.UTC)
    assert deadlines.local(incident.deadline, incident.time_zone).strftime("%Y-%m-%d %H:%M") == "2026-11-09 23:30"


def test_a_models_time_zone_is_an_iana_name(owner, churn, api_client_for):
    client = api_client_for(owner)
    bad = client.patch("/api/v1/models/churn/", {"time_zone": "Mars/Olympus"}, format="json")
    assert bad.status_code == 400 and "time_zone" in bad.json()["error"]["details"]
    good = client.patch("/api/v1/models/churn/", {"time_zone": "Asia/Kolkata"}, format="json")
    assert good.status_code == 200 and good.json()["time_zone"] == "Asia/Kolkata"
    churn.refresh_from_db()
    assert churn.time_zone == "Asia/Kolkata"


@pytest.mark.parametrize("name", ["localtime", "Factory"])
def test_a_time_zone_that_is_no_place_is_refused_and_never_offered(owner, churn, api_client_for, client_for, name):
    """The form offered "localtime" (the server's own zone) and "Factory" (a placeholder)."""
    bad = api_client_for(owner).patch("/api/v1/models/churn/", {"time_zone": name}, format="json")
    assert bad.status_code == 400 and "time_zone" in bad.json()["error"]["details"]
    form = client_for(owner).get("/models/churn/edit/").content.decode()
    assert 'value="Europe/Berlin"' in form and f'value="{name}"' not in form


def test_open_links_the_alerts_and_begins_at_the_first_one(open_incident, prod):
    opened = timezone.now() - dt.timedelta(days=3)
    alert = Alert.objects.create(
        model=prod, kind="drift", severity="critical", title="Drift", opened_at=opened, updated_at=opened
    )
    incident = open_incident(alerts=[alert])
    assert list(incident.alerts.all()) == [alert]
    assert incident.began_at == opened


def test_open_refuses_an_awareness_in_the_future(open_incident):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        open_incident(aware_at=timezone.now() + dt.timedelta(days=1))


def test_each_transition_is_audited_in_order(open_incident, owner, audit_actions, last_seq):
    incident = open_incident()
    seq = last_seq()
    incident_note(incident=incident, actor=owner, text="Looking at the income feature.", context=CLI)
    incident_suspend(incident=incident, actor=owner, mode="rollback", reason="Stop harm", context=CLI)
    incident_report(incident=incident, actor=owner, kind="initial", context=CLI, affected="About 300 customers")
    incident_resolve(incident=incident, actor=owner, root_cause="Upstream unit change", context=CLI)
    incident_report(incident=incident, actor=owner, kind="final", context=CLI, corrective_actions="Retrained")
    incident_close(incident=incident, actor=owner, context=CLI)
    actions = [a for a in audit_actions(seq) if a.startswith("incident.")]
    assert actions == [
        "incident.note",
        "incident.suspended",
        "incident.report_initial",
        "incident.resolved",
        "incident.report_final",
        "incident.closed",
    ]
    assert "rollback" in audit_actions(seq)
    kinds = list(incident.events.values_list("kind", flat=True))
    assert kinds == ["opened", "note", "suspended", "report_initial", "resolved", "report_final", "closed"]
    assert all(incident.events.values_list("audit_seq", flat=True))
    incident.refresh_from_db()
    assert incident.status == "closed" and incident.initial_report_at <= incident.deadline


@pytest.mark.parametrize(
    ("steps", "action"),
    [
        ([], "final"),  # no root cause yet
        ([], "close"),  # not resolved
        (["resolve"], "close"),  # serious: needs the final report
        (["initial"], "initial"),  # filed once
        (["resolve", "final"], "final"),
    ],
)
def test_illegal_transitions_are_conflicts(open_incident, owner, steps, action, last_seq):
    incident = open_incident()
    run = {
        "initial": lambda: incident_report(incident=incident, actor=owner, kind="initial", context=CLI),
        "final": lambda: incident_report(incident=incident, actor=owner, kind="final", context=CLI),
        "resolve": lambda: incident_resolve(incident=incident, actor=owner, root_cause="x", context=CLI),
        "close": lambda: incident_close(incident=incident, actor=owner, context=CLI),
    }
    for step in steps:
        run[step]()
    seq = last_seq()
    with pytest.raises(IncidentConflict):
        run[action]()
    assert last_seq() == seq  # nothing written


def test_a_closed_malfunction_needs_no_report(open_incident, owner):
    incident = open_incident(severity="malfunction")
    assert incident.deadline is None
    incident_resolve(incident=incident, actor=owner, root_cause="Bad batch", context=CLI)
    assert incident_close(incident=incident, actor=owner, context=CLI).status == "closed"


def test_suspend_by_rollback_leaves_exactly_one_production_version(open_incident, owner, prod):
    incident = open_incident()
    incident_suspend(incident=incident, actor=owner, mode="rollback", reason="Stop", context=CLI)
    production = list(ModelVersion.objects.filter(model=prod, stage=Stage.PRODUCTION))
    assert [v.version for v in production] == [1]
    event = incident.events.get(kind="suspended")
    assert event.data == {"mode": "rollback", "from_version": 2, "to_version": 1}


def test_suspend_by_retirement_leaves_no_production_version(open_incident, owner, prod, audit_actions, last_seq):
    incident = open_incident()
    seq = last_seq()
    incident_suspend(incident=incident, actor=owner, mode="retire", reason="Unsafe", context=CLI)
    assert not ModelVersion.objects.filter(model=prod, stage=Stage.PRODUCTION).exists()
    assert audit_actions(seq) == ["stage.changed", "incident.suspended"]
    transition = StageTransition.objects.filter(model=prod).order_by("-id").first()
    assert (transition.from_stage, transition.to_stage, transition.needs_follow_up) == ("production", "archived", True)
    with pytest.raises(IncidentConflict):  # nothing left to suspend
        incident_suspend(incident=incident, actor=owner, mode="retire", reason="again", context=CLI)


def test_the_database_refuses_a_second_production_version(prod):
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersionFactory(model=prod, stage=Stage.PRODUCTION)


@pytest.mark.parametrize("who", ["auditor", "outsider", "reviewer"])
def test_only_owner_or_admin_act_on_incidents(open_incident, roles, who):
    incident = open_incident()
    with pytest.raises(PermissionDenied):
        incident_note(incident=incident, actor=roles[who], text="x", context=CLI)


# --------------------------------------------------------------------------- reminders


def test_reminders_are_sent_once_each_at_50_and_80_percent(
    open_incident, owner, audit_actions, last_seq, django_capture_on_commit_callbacks
):
    mail.outbox.clear()
    incident = open_incident(severity="widespread", aware_at=timezone.now() - dt.timedelta(hours=30))  # 62.5%
    seq = last_seq()
    assert reminders_due() == [(incident.pk, 50)]
    with django_capture_on_commit_callbacks(execute=True):
        assert incident_reminders_send() == 1
        assert incident_reminders_send() == 0  # idempotent
    assert audit_actions(seq) == ["incident.reminder"]
    assert [m.subject for m in mail.outbox if "reminder" in m.subject] == [
        f"[MLOps] Incident #{incident.pk} on churn: reminder 50%"
    ]
    later = timezone.now() + dt.timedelta(hours=10)  # 83%
    assert incident_reminders_send(now=later) == 1
    assert incident_reminders_send(now=later) == 0
    assert sorted(IncidentReminder.objects.values_list("percent", flat=True)) == [50, 80]
    assert audit_actions(seq) == ["incident.reminder", "incident.reminder"]


def test_no_reminder_once_the_report_is_filed(open_incident, owner):
    incident = open_incident(severity="widespread", aware_at=timezone.now() - dt.timedelta(hours=30))
    incident_report(incident=incident, actor=owner, kind="initial", context=CLI)
    assert incident_reminders_send(now=timezone.now() + dt.timedelta(days=1)) == 0


def test_webhooks_get_the_same_payload_as_the_audit_log(open_incident, owner, admin_user):
    from registry.models import AuditEvent, Webhook, WebhookDelivery

    Webhook.objects.create(name="soc", url="https://hooks.example.com/x", secret="s", events=["incident"])
    Webhook.objects.create(name="promotions only", url="https://hooks.example.com/y", secret="s", events=["promotion"])
    incident = open_incident(severity="widespread", aware_at=timezone.now() - dt.timedelta(hours=30))
    incident_reminders_send()
    deliveries = list(WebhookDelivery.objects.order_by("pk"))
    assert [d.event for d in deliveries] == ["incident.opened", "incident.reminder"]
    assert {d.webhook.name for d in deliveries} == {"soc"}
    audit = AuditEvent.objects.get(action="incident.reminder")
    assert deliveries[1].payload["data"] == audit.after
    assert audit.after["percent"] == 50 and audit.after["incident"] == incident.pk
