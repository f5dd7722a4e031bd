"""Alerts do not flap: an open alert resolves only after ``alert_recovery_windows`` consecutive
windows judged its condition within thresholds (each window counts once, a window that cannot
judge it neither counts nor resets), and a condition found again within ``alert_reopen_windows``
windows after its alert resolved reopens that alert (audited, its webhook; an e-mail unless the
owner had acknowledged it) instead of opening a new one. Both are three by default."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from mlops_portal import clock
from monitoring.choices import AlertKind, AlertStatus, Granularity, Metric
from monitoring.fairness_monitoring import DI
from monitoring.models import Alert, MetricValue
from monitoring.services.alerts import alert_acknowledge
from monitoring.services.config import monitoring_config_update
from monitoring.services.health import health_evaluate
from registry.choices import Stage
from registry.services.audit import CLI
from tests.factories import ModelVersionFactory
from tests.monitoring.helpers import T0, metric_row

pytestmark = pytest.mark.django_db

SCHEMA = [{"name": "age", "type": "numeric"}, {"name": "age_band", "type": "categorical", "sensitive": True}]
NO_FIGURE = None  # a window whose age_band groups are too small to compare: fairness not judged


@pytest.fixture
def version(churn, owner):
    owner.email = "owner@example.com"
    owner.save()
    return ModelVersionFactory(
        model=churn, stage=Stage.PRODUCTION, stage_changed_at=timezone.now(), feature_schema=SCHEMA
    )


@pytest.fixture
def judge(version, django_capture_on_commit_callbacks):
    """judge(day, disparate impact of age_band) -> the model's health after that day's daily
    window, evaluated the next morning (the policy's minimum is 0.80)."""

    def run(day: int, value: float | None):
        start = T0 + timedelta(days=day)
        rows = [metric_row(version, start, Metric.VOLUME, 500.0, granularity=Granularity.DAILY)]
        if value is not None:
            rows.append(metric_row(version, start, DI, value, feature="age_band", granularity=Granularity.DAILY))
        MetricValue.objects.bulk_create(rows)
        return evaluate(start + timedelta(days=1, hours=7))

    def evaluate(moment):
        with clock.at(moment), django_capture_on_commit_callbacks(execute=True):
            return health_evaluate(model=version.model, context=CLI)

    run.again = evaluate
    return run


def _fairness_alerts(version):
    return list(Alert.objects.filter(model=version.model, kind=AlertKind.FAIRNESS).order_by("pk"))


def test_a_parity_figure_at_the_threshold_opens_one_alert_that_stays_open_while_it_flaps(
    version, judge, last_seq, audit_actions
):
    seq = last_seq()
    mail.outbox.clear()
    for day, value in enumerate([0.79, 0.82, 0.78, 0.83, 0.84, 0.79, 0.84]):
        health = judge(day, value)
    (alert,) = _fairness_alerts(version)
    assert alert.status == AlertStatus.OPEN and alert.resolved_at is None
    actions = audit_actions(seq)
    assert actions.count("alert.opened") == 1
    assert "alert.resolved" not in actions and "alert.reopened" not in actions
    assert [m.subject for m in mail.outbox] == ["[MLOps] churn: Fairness warning alert opened"]
    # the model's health tells the same story: still a warning, the reason says why
    assert health.status == "warning"
    (reason,) = health.reasons
    assert reason["recovering"] is True and reason["attribute"] == "age_band"
    assert "recovering: 1 of 3 windows within thresholds" in reason["message"]
    assert (alert.clear_windows, alert.recovery_windows) == (1, 3)


def test_a_clear_recovery_resolves_after_three_windows_within_thresholds(version, judge, last_seq, audit_actions):
    judge(0, 0.70)
    seq = last_seq()
    judge(1, 0.92)
    judge(2, 0.93)
    (alert,) = _fairness_alerts(version)
    assert alert.status == AlertStatus.OPEN and alert.clear_windows == 2 and audit_actions(seq) == []
    health = judge(3, 0.94)
    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED and alert.resolved_at == T0 + timedelta(days=4, hours=7)
    assert audit_actions(seq) == ["alert.resolved"]
    assert (health.status, health.reasons) == ("ok", [])


def test_one_window_evaluated_again_counts_once(version, judge):
    judge(0, 0.70)
    judge(1, 0.92)
    judge.again(T0 + timedelta(days=2, hours=8))  # the same latest window, evaluated again
    judge.again(T0 + timedelta(days=2, hours=9))
    (alert,) = _fairness_alerts(version)
    assert alert.status == AlertStatus.OPEN and alert.clear_windows == 1
    judge(2, 0.95)
    judge(3, 0.95)
    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED


def test_a_window_that_cannot_judge_the_attribute_neither_counts_nor_resets_the_recovery(version, judge):
    judge(0, 0.70)
    judge(1, 0.92)
    health = judge(2, NO_FIGURE)
    (alert,) = _fairness_alerts(version)
    assert alert.status == AlertStatus.OPEN and alert.clear_windows == 1
    (held,) = health.reasons
    assert held["held"] is True
    assert "not judged since 2026-03-04 07:00 UTC" in held["message"]  # the morning it was last judged
    judge(3, 0.93)
    judge(4, 0.94)
    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED


def test_a_breach_during_the_recovery_starts_it_again(version, judge):
    judge(0, 0.70)
    judge(1, 0.92)
    judge(2, 0.75)
    (alert,) = _fairness_alerts(version)
    assert alert.clear_windows == 0 and "0.75" in alert.title
    judge(3, 0.92)
    alert.refresh_from_db()
    assert alert.status == AlertStatus.OPEN and alert.clear_windows == 1


def test_a_condition_found_again_soon_after_resolving_reopens_the_same_alert(version, judge, last_seq, audit_actions):
    for day, value in enumerate([0.70, 0.92, 0.93, 0.94]):
        judge(day, value)
    (alert,) = _fairness_alerts(version)
    assert alert.status == AlertStatus.RESOLVED
    seq = last_seq()
    mail.outbox.clear()
    judge(5, 0.76)  # the second window after the one that resolved it
    (reopened,) = _fairness_alerts(version)
    assert reopened.pk == alert.pk
    assert reopened.status == AlertStatus.OPEN and reopened.resolved_at is None
    assert reopened.reopen_count == 1 and reopened.reopened_at == T0 + timedelta(days=6, hours=7)
    assert "0.76" in reopened.title and reopened.opened_at == alert.opened_at
    assert audit_actions(seq) == ["alert.reopened"]
    # nobody had taken it on: the recipients, told it had resolved, are told it is back
    assert [m.subject for m in mail.outbox] == ["[MLOps] churn: Fairness warning alert reopened"]
    # long after the next resolution (day 8), the condition is a new alert
    for day, value in enumerate([0.91, 0.92, 0.95, 0.95, 0.95, 0.95], start=6):
        judge(day, value)
    judge(12, 0.71)
    first, second = _fairness_alerts(version)
    assert first.status == AlertStatus.RESOLVED and second.status == AlertStatus.OPEN
    assert audit_actions(seq).count("alert.opened") == 1
    assert [m.subject.rsplit(" ", 1)[1] for m in mail.outbox] == ["reopened", "resolved", "opened"]


def test_acknowledging_an_alert_does_not_move_when_it_was_last_judged(version, judge, owner):
    # after an acknowledgement the held reason said "not judged since" the acknowledgement's time
    judge(0, 0.70)
    judge(1, 0.92)  # judged the morning of 2026-03-04
    (alert,) = _fairness_alerts(version)
    with clock.at(T0 + timedelta(days=2, hours=15)):
        alert_acknowledge(alert=alert, actor=owner, comment="Looking at the age bands", context=CLI)
    health = judge(2, NO_FIGURE)
    (held,) = health.reasons
    assert "not judged since 2026-03-04 07:00 UTC" in held["message"], held["message"]


def test_a_reopened_alert_keeps_its_acknowledgement_and_sends_no_email(version, judge, owner):
    judge(0, 0.70)
    (alert,) = _fairness_alerts(version)
    alert_acknowledge(alert=alert, actor=owner, comment="Age bands re-weighted next release.", context=CLI)
    for day in (1, 2, 3):
        judge(day, 0.92)
    mail.outbox.clear()
    judge(4, 0.74)
    alert.refresh_from_db()
    assert alert.status == AlertStatus.ACKNOWLEDGED and alert.acknowledge_comment.startswith("Age bands")
    assert alert.reopen_count == 1 and mail.outbox == []


def test_the_owner_can_go_back_to_resolving_at_the_first_window_and_to_no_reopening(
    version, judge, owner, last_seq, audit_actions
):
    seq = last_seq()
    monitoring_config_update(
        model=version.model,
        actor=owner,
        context=CLI,
        changes={"alert_recovery_windows": 1, "alert_reopen_windows": 0},
    )
    assert audit_actions(seq) == ["monitoring.thresholds_changed"]
    for day, value in enumerate([0.79, 0.82, 0.78]):
        judge(day, value)
    first, second = _fairness_alerts(version)
    assert first.status == AlertStatus.RESOLVED and second.status == AlertStatus.OPEN
    assert audit_actions(seq).count("alert.opened") == 2


def test_the_alert_recovery_settings_are_served_and_checked_by_the_api(version, judge, owner, api_client_for):
    client = api_client_for(owner)
    url = f"/api/v1/models/{version.model.name}/monitoring/"
    assert client.get(url).json()["alert_recovery_windows"] == 3
    assert client.get(url).json()["alert_reopen_windows"] == 3
    assert client.patch(url, {"alert_recovery_windows": 0}, format="json").status_code == 400
    assert client.patch(url, {"alert_reopen_windows": -1}, format="json").status_code == 400
    response = client.patch(url, {"alert_recovery_windows": 4}, format="json")
    assert response.status_code == 200 and response.json()["alert_recovery_windows"] == 4
    judge(0, 0.70)
    judge(1, 0.92)
    (row,) = client.get("/api/v1/alerts/", {"kind": "fairness"}).json()["results"]
    assert (row["clear_windows"], row["recovery_windows"], row["reopen_count"]) == (1, 4, 0)


def test_the_alerts_page_says_why_a_recovering_alert_is_still_open(version, judge, owner, client_for):
    judge(0, 0.70)
    judge(1, 0.92)
    page = client_for(owner).get(reverse("monitoring:alert_list")).content.decode()
    assert "recovering, 1 of 3 windows within thresholds" in page


def test_an_alert_that_came_back_worse_after_its_acknowledgement_can_be_acknowledged_again(owner, client_for):
    """Reopened or escalated, an acknowledged alert is open again: its page keeps the earlier
    acknowledgement and offers the form (it showed only the old acknowledgement)."""
    from tests.factories import AlertFactory, RegisteredModelFactory

    model = RegisteredModelFactory(name="credit", owner=owner)
    alert = AlertFactory(
        model=model, status=AlertStatus.OPEN, acknowledged_by=owner, acknowledged_at=clock.now(),
        acknowledge_comment="Looking into the age bands",
    )  # fmt: skip
    page = client_for(owner).get(reverse("monitoring:alert_list")).content.decode()
    row = page.split(f'id="alert-{alert.pk}"')[1].split("</tr>")[0]
    assert "Looking into the age bands" in row and "Acknowledge</button>" in row
    response = client_for(owner).post(reverse("monitoring:alert_acknowledge", args=[alert.pk]), {"comment": "Again"})
    assert response.status_code in (200, 302)
    alert.refresh_from_db()
    assert alert.status == AlertStatus.ACKNOWLEDGED and alert.acknowledge_comment == "Again"


def test_retiring_the_version_resolves_its_window_alerts_and_health_has_no_data(
    version, judge, owner, last_seq, audit_actions
):
    """After a retirement (nothing in production) the retired version's alerts stayed open and the
    model's health 'critical' for good: no window would ever judge them again."""
    from monitoring.choices import HealthState
    from monitoring.oversight.retire import model_retire

    judge(0, 0.70)
    (alert,) = _fairness_alerts(version)
    assert alert.status == AlertStatus.OPEN
    model_retire(model=version.model, actor=owner, reason="Unfair scores.", context=CLI)
    seq = last_seq()
    health = judge.again(T0 + timedelta(days=2, hours=7))
    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED
    assert audit_actions(seq) == ["alert.resolved"]
    assert health.status == HealthState.NO_DATA and health.reasons == []
    judge.again(T0 + timedelta(days=3, hours=7))  # and nothing opens again from the retired version's windows
    assert [a.status for a in _fairness_alerts(version)] == [AlertStatus.RESOLVED]
