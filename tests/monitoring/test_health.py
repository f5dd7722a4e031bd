"""Health, alerts (open / escalate / resolve / acknowledge), notifications and retrain triggers."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from monitoring.choices import AlertKind, AlertSeverity, AlertStatus, HealthState, RetrainStatus
from monitoring.models import Alert, HealthStatus, MonitoringConfig, RetrainTrigger
from monitoring.services.alerts import AlertStateConflict, alert_acknowledge
from monitoring.services.config import monitoring_config_update
from monitoring.services.health import health_evaluate
from monitoring.services.ingestion import labels_ingest, predictions_ingest, reference_upload
from registry.choices import Stage
from registry.models import ModelVersion
from registry.services.audit import CLI
from tests.factories import ModelVersionFactory
from tests.monitoring.helpers import T0, as_json, csv_bytes, prediction_records, reference_frame

pytestmark = pytest.mark.django_db


@pytest.fixture
def production(churn, owner, django_capture_on_commit_callbacks):
    version = ModelVersionFactory(model=churn, stage=Stage.PRODUCTION, stage_changed_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        reference_upload(
            version=version, body=csv_bytes(reference_frame(4000)), content_type="text/csv", actor=owner, context=CLI
        )
    return version


def send(version, owner, records, capture):
    with capture(execute=True):
        predictions_ingest(
            version=version, body=as_json(records), content_type="application/json", actor=owner, context=CLI
        )


class Receiver(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 - http.server API
        length = int(self.headers["Content-Length"])
        Receiver.received.append((dict(self.headers), json.loads(self.rfile.read(length))))
        self.send_response(202)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def pipeline(settings):
    """A real HTTP endpoint standing in for the training pipeline (on 127.0.0.1, allow-listed)."""
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    Receiver.received = []
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/retrain", Receiver.received
    server.shutdown()


def test_a_sample_from_the_reference_distribution_raises_no_alert(
    production, owner, django_capture_on_commit_callbacks
):
    send(production, owner, prediction_records(1500, spread_hours=12, seed=3), django_capture_on_commit_callbacks)
    health = HealthStatus.objects.get(model=production.model)
    assert health.status == HealthState.OK, health.reasons
    assert not Alert.objects.exists()
    assert not RetrainTrigger.objects.exists()


def test_model_without_data_has_no_data_health(churn):
    assert health_evaluate(model=churn).status == HealthState.NO_DATA


def test_drift_opens_an_alert_notifies_and_fires_one_retrain_trigger_per_cool_down(
    production, owner, django_capture_on_commit_callbacks, pipeline, last_seq, audit_actions
):
    url, received = pipeline
    owner.email = "owner@example.com"
    owner.save()
    monitoring_config_update(
        model=production.model,
        actor=owner,
        context=CLI,
        changes={"retrain_url": url, "drift_share_critical": 0.3, "alert_recipients": ["oncall@example.com"]},
    )
    seq = last_seq()
    mail.outbox.clear()
    send(production, owner, prediction_records(800, seed=4, age_shift=15.0), django_capture_on_commit_callbacks)
    health = HealthStatus.objects.get(model=production.model)
    assert health.status == HealthState.CRITICAL
    kinds = {r["kind"] for r in health.reasons}
    assert AlertKind.DRIFT in kinds
    alert = Alert.objects.get(model=production.model, kind=AlertKind.DRIFT)
    assert alert.status == AlertStatus.OPEN and alert.severity == AlertSeverity.CRITICAL
    assert "age" in alert.title
    actions = audit_actions(seq)
    assert "alert.opened" in actions and "retrain.triggered" in actions
    assert {m.to[0] for m in mail.outbox} >= {"owner@example.com", "oncall@example.com"}
    trigger = RetrainTrigger.objects.get(model=production.model)
    assert trigger.status == RetrainStatus.SENT and trigger.response_code == 202
    assert received[0][1]["model"] == "churn" and received[0][1]["trigger_id"] == trigger.pk
    # more drifted data within the cool-down: same alert, no second trigger
    send(
        production,
        owner,
        prediction_records(300, seed=5, age_shift=15.0, prefix="q", start=T0 + timedelta(hours=2)),
        django_capture_on_commit_callbacks,
    )
    assert Alert.objects.filter(model=production.model, kind=AlertKind.DRIFT).count() == 1
    assert RetrainTrigger.objects.filter(model=production.model).count() == 1


def test_alert_resolves_when_the_latest_window_recovers(
    production, owner, django_capture_on_commit_callbacks, audit_actions
):
    send(production, owner, prediction_records(800, seed=6, age_shift=15.0), django_capture_on_commit_callbacks)
    alert = Alert.objects.get(model=production.model, kind=AlertKind.DRIFT)
    send(
        production,
        owner,
        prediction_records(800, seed=7, prefix="next", start=T0 + timedelta(days=1)),
        django_capture_on_commit_callbacks,
    )
    alert.refresh_from_db()  # one window within thresholds: recovering, not resolved yet
    assert alert.status == AlertStatus.OPEN and alert.clear_windows == 1
    assert HealthStatus.objects.get(model=production.model).status != HealthState.OK
    for day in (2, 3):
        send(
            production,
            owner,
            prediction_records(800, seed=7 + day, prefix=f"after{day}-", start=T0 + timedelta(days=day)),
            django_capture_on_commit_callbacks,
        )
    alert.refresh_from_db()  # the third one resolves it
    assert alert.status == AlertStatus.RESOLVED and alert.resolved_at is not None
    assert HealthStatus.objects.get(model=production.model).status == HealthState.OK
    assert "alert.resolved" in audit_actions()


def test_open_alerts_stay_open_when_production_changes_to_a_version_without_data(
    production, owner, django_capture_on_commit_callbacks, last_seq, audit_actions
):
    send(production, owner, prediction_records(800, seed=6, age_shift=15.0), django_capture_on_commit_callbacks)
    alert = Alert.objects.get(model=production.model, kind=AlertKind.DRIFT)
    ModelVersion.objects.filter(pk=production.pk).update(stage=Stage.ARCHIVED)
    restored = ModelVersionFactory(model=production.model, stage=Stage.PRODUCTION, stage_changed_at=timezone.now())
    seq = last_seq()
    health = health_evaluate(model=production.model)
    # no data is not a recovery: the open alert's reasons hold the model's health, marked so
    active = Alert.objects.filter(model=production.model, status=AlertStatus.OPEN)
    worst = "critical" if active.filter(severity="critical").exists() else "warning"
    assert health.status == worst and health.reasons and all(r["held"] for r in health.reasons)
    assert {r["kind"] for r in health.reasons} == set(active.values_list("kind", flat=True))
    alert.refresh_from_db()
    assert alert.status == AlertStatus.OPEN and alert.resolved_at is None
    assert "alert.resolved" not in audit_actions(seq)
    # the new production version's own data, within thresholds, is the evidence that resolves it
    with django_capture_on_commit_callbacks(execute=True):
        reference_upload(
            version=restored, body=csv_bytes(reference_frame(4000)), content_type="text/csv", actor=owner, context=CLI
        )
    for day, prefix in ((1, "v2-"), (2, "v2b-"), (3, "v2c-")):  # three windows within thresholds
        send(
            restored,
            owner,
            prediction_records(800, seed=6 + day, prefix=prefix, start=T0 + timedelta(days=day)),
            django_capture_on_commit_callbacks,
        )
    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED
    assert HealthStatus.objects.get(model=production.model).status == HealthState.OK
    assert "alert.resolved" in audit_actions(seq)


def test_overdue_retrain_cadence_is_a_warning_with_a_recorded_trigger(churn, owner):
    churn.retrain_cadence_days = 30
    churn.save()
    ModelVersionFactory(model=churn, stage=Stage.PRODUCTION, stage_changed_at=timezone.now() - timedelta(days=45))
    health = health_evaluate(model=churn)
    assert health.status == HealthState.WARNING
    assert health.reasons[0]["kind"] == AlertKind.CADENCE
    trigger = RetrainTrigger.objects.get(model=churn)
    assert trigger.status == RetrainStatus.NO_URL
    health_evaluate(model=churn)
    assert RetrainTrigger.objects.filter(model=churn).count() == 1


def test_performance_drop_against_offline_metric_is_critical_once_labels_cover_the_window(
    production, owner, django_capture_on_commit_callbacks
):
    records = prediction_records(400, seed=8)
    send(production, owner, records, django_capture_on_commit_callbacks)
    wrong = [{"prediction_id": r["prediction_id"], "label": 1 - r["prediction"]} for r in records]
    with django_capture_on_commit_callbacks(execute=True):
        labels_ingest(
            model=production.model, body=as_json(wrong), content_type="application/json", actor=owner, context=CLI
        )
    health = HealthStatus.objects.get(model=production.model)
    perf = [r for r in health.reasons if r["kind"] == AlertKind.PERFORMANCE]
    assert perf and perf[0]["severity"] == AlertSeverity.CRITICAL and perf[0]["metric"] == "roc_auc"


def _open_alert(model):
    now = timezone.now()
    return Alert.objects.create(
        model=model,
        kind=AlertKind.DRIFT,
        severity=AlertSeverity.WARNING,
        title="Data drift",
        opened_at=now,
        updated_at=now,
    )


def test_owner_acknowledges_an_alert_with_a_comment_and_it_is_audited(churn, owner, last_seq, audit_actions):
    alert = _open_alert(churn)
    seq = last_seq()
    alert = alert_acknowledge(alert=alert, actor=owner, comment="Looking into the age shift.", context=CLI)
    assert alert.status == AlertStatus.ACKNOWLEDGED and alert.acknowledged_by == owner
    assert audit_actions(seq) == ["alert.acknowledged"]
    with pytest.raises(AlertStateConflict):
        alert_acknowledge(alert=alert, actor=owner, comment="again", context=CLI)


def test_acknowledging_needs_the_owner_and_a_comment(churn, reviewer, auditor, owner, last_seq, audit_actions):
    alert = _open_alert(churn)
    seq = last_seq()
    for user in (reviewer, auditor):
        with pytest.raises(PermissionDenied):
            alert_acknowledge(alert=alert, actor=user, comment="ok", context=CLI)
    with pytest.raises(ValidationError):
        alert_acknowledge(alert=alert, actor=owner, comment="   ", context=CLI)
    alert.refresh_from_db()
    assert alert.status == AlertStatus.OPEN
    assert audit_actions(seq) == []


def test_threshold_changes_are_audited_and_validated(churn, owner, reviewer, last_seq, audit_actions):
    seq = last_seq()
    config = monitoring_config_update(model=churn, actor=owner, context=CLI, changes={"psi_warning": 0.15})
    churn.refresh_from_db()
    assert churn.monitoring_configured_at is not None
    monitoring_config_update(model=churn, actor=owner, context=CLI, changes={"psi_critical": 0.3})
    assert audit_actions(seq) == ["monitoring.thresholds_changed", "monitoring.thresholds_changed"]
    with pytest.raises(ValidationError):
        monitoring_config_update(model=churn, actor=owner, context=CLI, changes={"psi_critical": 0.01})
    with pytest.raises(PermissionDenied):
        monitoring_config_update(model=churn, actor=reviewer, context=CLI, changes={"psi_warning": 0.2})
    config.refresh_from_db()
    assert (config.psi_warning, config.psi_critical) == (0.15, 0.3)
    assert MonitoringConfig.objects.count() == 1
    assert len(audit_actions(seq)) == 2


def test_alerts_and_retrain_triggers_go_out_through_the_signed_webhooks(
    production, owner, django_capture_on_commit_callbacks, pipeline
):
    from registry.models import Webhook, WebhookDelivery

    url, received = pipeline
    Webhook.objects.create(name="ops", url=url, secret="s3cret", model=production.model, events=["alert", "retrain"])
    monitoring_config_update(model=production.model, actor=owner, context=CLI, changes={"drift_share_critical": 0.3})
    send(production, owner, prediction_records(800, seed=14, age_shift=15.0), django_capture_on_commit_callbacks)
    events = set(WebhookDelivery.objects.values_list("event", flat=True))
    assert {"alert.opened", "retrain.triggered"} <= events
    trigger = RetrainTrigger.objects.get(model=production.model)
    assert trigger.delivery_ref
    sent = {headers.get("X-MLOps-Event") for headers, _ in received}
    assert {"alert.opened", "retrain.triggered"} <= sent
    assert all(h.get("X-MLOps-Signature", "").startswith("sha256=") for h, _ in received)


def test_each_reason_kind_is_decided_by_its_own_small_check():
    """The window checks read one window's values; each returns only its own kind of reason."""
    from monitoring.choices import Metric
    from monitoring.services.health import WINDOW_CHECKS, Window, drift_reasons, prediction_drift_reasons

    values = {
        ("", Metric.DRIFT_SHARE): (0.6, False),
        ("age", Metric.DRIFT_DETECTED): (1.0, False),
        ("__score__", Metric.DRIFT_DETECTED): (1.0, False),
        ("__score__", Metric.PSI): (0.3, False),
    }
    window = Window(model=None, version=None, config=MonitoringConfig(), start=T0, end=T0, values=values)
    judged, reasons = drift_reasons(window)
    assert judged == {AlertKind.DRIFT}
    assert [(r["kind"], r["severity"], r["features"]) for r in reasons] == [
        (AlertKind.DRIFT, AlertSeverity.CRITICAL, ["age"])
    ]
    judged, reasons = prediction_drift_reasons(window)
    assert judged == {AlertKind.PREDICTION_DRIFT}
    assert [(r["kind"], r["severity"], r["feature"]) for r in reasons] == [
        (AlertKind.PREDICTION_DRIFT, AlertSeverity.CRITICAL, "__score__")
    ]
    quiet = Window(model=None, version=None, config=MonitoringConfig(), start=T0, end=T0, values={})
    assert drift_reasons(quiet) == (set(), []) and prediction_drift_reasons(quiet) == (set(), [])
    assert len(WINDOW_CHECKS) == 7  # drift, prediction drift, quality, performance, fairness, estimated, LLM apps


@pytest.mark.postgres
def test_health_evaluation_locks_the_models_config_before_the_audit_chain(
    production, owner, django_capture_on_commit_callbacks
):
    """Every writer takes its row locks before the audit chain's lock. Evaluating health took
    the config row's lock (in ``retrain_consider``) after its alerts' audit events, and deadlocked
    with a prediction batch under load (docs/performance.md, "Freshness")."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    monitoring_config_update(model=production.model, actor=owner, context=CLI, changes={"drift_share_critical": 0.3})
    with CaptureQueriesContext(connection) as queries:  # the batch, its window, then the health evaluation
        send(production, owner, prediction_records(800, seed=4, age_shift=15.0), django_capture_on_commit_callbacks)
    assert Alert.objects.filter(model=production.model, status=AlertStatus.OPEN).exists()
    sqls = [q["sql"] for q in queries.captured_queries]
    health = next(i for i, q in enumerate(sqls) if "monitoring_healthstatus" in q)
    config_lock = next(i for i, q in enumerate(sqls) if "monitoring_monitoringconfig" in q and "FOR UPDATE" in q)
    chain_lock = next(i for i, q in enumerate(sqls[health:], health) if "pg_advisory_xact_lock" in q)
    assert config_lock < chain_lock  # the alerts' audit events come after it
