"""The monitoring engine end to end with real processes: PostgreSQL (the pytest-django test
database), Redis, and ``celery -A mlops_portal worker`` / ``beat`` subprocesses. Nothing is
mocked and no task runs eagerly; the test process only sends HTTP requests (Django's test
client, whose transactions commit for real here) and reads the database.
"""

from __future__ import annotations

import json
import re
import signal
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
import pytest
from django.db import connection
from django_celery_beat.models import IntervalSchedule, PeriodicTask
from sklearn.metrics import accuracy_score

from monitoring.choices import AlertKind, AlertSeverity, AlertStatus, Granularity, HealthState, Metric, ProfileStatus
from monitoring.models import Alert, DirtyWindow, HealthStatus, MetricValue, Prediction, ReferenceProfile
from monitoring.services.config import monitoring_config_get
from monitoring.stats import DriftSettings, compute_window_drift
from registry.models import AuditEvent
from tests.integration.conftest import wait_until, worker_database_url
from tests.integration.monitoring_data import (
    as_json,
    assert_equals_fresh_recompute,
    labels_for,
    prediction_records,
    reference_csv,
    window_columns,
)

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

HOUR = datetime(2026, 3, 2, 10, tzinfo=UTC)
DAY = HOUR.replace(hour=0)
SCOPES = ["monitoring:write", "monitoring:read"]
SWEEP_TASK = "monitoring.tasks.monitoring_sweep_dirty_windows"


def urls(version) -> dict[str, str]:
    base = f"/api/v1/models/{version.model.name}"
    return {
        "reference": f"{base}/versions/{version.version}/reference/",
        "predictions": f"{base}/versions/{version.version}/predictions/",
        "labels": f"{base}/ground-truth/",
    }


def upload_reference(api, version) -> ReferenceProfile:
    """Upload the reference over the API and wait for a worker to profile it."""
    response = api.post(urls(version)["reference"], data=reference_csv(), content_type="text/csv")
    assert response.status_code == 202, response.content
    return wait_until(
        lambda: ReferenceProfile.objects.filter(version=version, status=ProfileStatus.READY).first(),
        timeout=90,
        what="the worker to compute the reference profile",
    )


def send_predictions(api, version, records) -> dict:
    response = api.post(urls(version)["predictions"], data=as_json(records), content_type="application/json")
    assert response.status_code == 201, response.content
    return response.json()


def send_labels(api, version, labels) -> None:
    response = api.post(urls(version)["labels"], data=json.dumps(labels), content_type="application/json")
    assert response.status_code == 201, response.content


def wait_for_daily(version, metric: str, value: float, *, what: str) -> None:
    """Wait for a worker to store ``value`` as the dataset-level ``metric`` of the day ``DAY``."""
    wait_until(
        lambda: window_metrics(version, Granularity.DAILY, DAY).get(("", metric)) == value, timeout=120, what=what
    )


def window_metrics(version, granularity: str, start: datetime) -> dict[tuple[str, str], float | None]:
    return {
        (m.feature, m.metric): m.value
        for m in MetricValue.objects.filter(version=version, granularity=granularity, window_start=start)
    }


def assert_matches_recomputation(stored: dict, profile: dict, records: list[dict], model) -> None:
    """The worker's values equal the pure function run here on the same rows."""
    settings = DriftSettings.from_config(monitoring_config_get(model=model))
    expected = compute_window_drift(profile, window_columns(records), settings)
    assert expected, "nothing to compare"
    for row in expected:
        key = (row["feature"], row["metric"])
        assert key in stored, f"{key} missing from the stored metrics"
        if row["value"] is None:
            assert stored[key] is None, key
        else:
            assert stored[key] == pytest.approx(row["value"], rel=1e-9, abs=1e-12), key


def sweep_every_second() -> None:
    """The beat schedule of the dirty-window sweep (django-celery-beat rows), every second."""
    every_second, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.update_or_create(
        name="monitoring: sweep dirty windows", defaults={"task": SWEEP_TASK, "interval": every_second}
    )


def _critical_and_swept(model, version) -> bool:
    """The model's health is critical and no window of the version is left to compute."""
    return (
        HealthStatus.objects.filter(model=model, status=HealthState.CRITICAL).exists()
        and not DirtyWindow.objects.filter(version=version).exists()
    )


def sources_of(action: str) -> list[str]:
    return list(AuditEvent.objects.filter(action=action).values_list("source", flat=True))


# --------------------------------------------------------------------------- the happy path


def test_predictions_and_late_labels_sent_over_the_api_become_metrics_health_and_alerts_in_a_real_worker(
    services, churn, churn_v1, owner, api_client_for
):
    services.worker()
    api = api_client_for(owner, scopes=SCOPES)
    reference = upload_reference(api, churn_v1)

    records = prediction_records(500, HOUR, seed=2, drifted=True)
    summary = send_predictions(api, churn_v1, records)
    assert summary["rows"] == 500
    assert Prediction.objects.filter(version=churn_v1).count() == 500

    health = wait_until(
        lambda: HealthStatus.objects.filter(model=churn, status=HealthState.CRITICAL).first(),
        timeout=120,
        what="the worker to compute the windows and mark the model critical",
    )
    hourly = window_metrics(churn_v1, Granularity.HOURLY, HOUR)
    assert_matches_recomputation(hourly, reference.profile, records, churn)
    assert hourly[("", Metric.VOLUME)] == 500
    assert hourly[("age", Metric.DRIFT_DETECTED)] == 1.0
    assert hourly[("income", Metric.DRIFT_DETECTED)] == 1.0
    assert hourly[("plan", Metric.DRIFT_DETECTED)] == 0.0
    assert hourly[("", Metric.DRIFT_SHARE)] == pytest.approx(2 / 3)

    # The day holds one hour: its metrics, summed from the stored hourly counts, are the same.
    daily = window_metrics(churn_v1, Granularity.DAILY, DAY)
    assert daily[("", Metric.VOLUME)] == 500
    for key in [("age", Metric.PSI), ("income", Metric.KS_STATISTIC), ("plan", Metric.JS_DISTANCE)]:
        assert daily[key] == pytest.approx(hourly[key])

    assert any(r["kind"] == AlertKind.DRIFT for r in health.reasons)
    alert = Alert.objects.get(model=churn, kind=AlertKind.DRIFT)
    assert (alert.severity, alert.status) == (AlertSeverity.CRITICAL, AlertStatus.OPEN)
    assert sources_of("predictions.ingested") == ["api"]
    assert sources_of("reference.uploaded") == ["api"]
    assert sources_of("reference.profiled") == ["worker"]
    assert "worker" in sources_of("alert.opened")
    assert not DirtyWindow.objects.filter(version=churn_v1).exists()

    # Labels arrive later: the same windows get performance metrics, once.
    labels = labels_for(records, seed=3)
    send_labels(api, churn_v1, labels)
    wait_for_daily(churn_v1, Metric.LABEL_COVERAGE, 1.0, what="the worker to compute performance from the late labels")
    hourly = window_metrics(churn_v1, Granularity.HOURLY, HOUR)
    expected_accuracy = accuracy_score([str(x["label"]) for x in labels], [str(r["prediction"]) for r in records])
    assert hourly[("", Metric.ACCURACY)] == pytest.approx(expected_accuracy)
    assert hourly[("", Metric.LABELLED)] == 500
    assert not MetricValue.objects.filter(version=churn_v1, metric=Metric.ACCURACY, provisional=True).exists()
    assert sources_of("labels.ingested") == ["api"]
    # recomputation overwrote, it did not duplicate: one row per (window, feature, metric)
    assert MetricValue.objects.filter(version=churn_v1, granularity=Granularity.HOURLY, metric=Metric.PSI).count() == 5

    # Corrected labels for the same ids replace the old ones: no double counting.
    corrected = [{"prediction_id": r["prediction_id"], "label": r["prediction"]} for r in records]
    send_labels(api, churn_v1, corrected)
    wait_for_daily(churn_v1, Metric.ACCURACY, 1.0, what="the worker to recompute performance from the corrected labels")
    for granularity, start in ((Granularity.HOURLY, HOUR), (Granularity.DAILY, DAY)):
        stored = window_metrics(churn_v1, granularity, start)
        assert stored[("", Metric.LABELLED)] == 500
        assert stored[("", Metric.ACCURACY)] == 1.0
    assert MetricValue.objects.filter(version=churn_v1, metric=Metric.ACCURACY).count() == 2


def test_outsider_cannot_send_predictions_and_nothing_reaches_the_worker(
    services, churn, churn_v1, owner, outsider, api_client_for
):
    # an outsider's token cannot hold monitoring:write (registry.rules.usable_scopes): refused before any lookup
    response = api_client_for(outsider).post(
        urls(churn_v1)["predictions"],
        data=as_json(prediction_records(10, HOUR, seed=5)),
        content_type="application/json",
    )
    assert response.status_code == 403
    assert "error" in response.json()
    assert not Prediction.objects.exists()
    assert not DirtyWindow.objects.exists()
    assert services.broker.queue_length() == 0


# --------------------------------------------------------------------------- a worker killed mid-task


def _blocked_on_metric_table(dbname: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock' AND query ILIKE %s",
            [dbname, "%monitoring_metricvalue%"],
        )
        return cursor.fetchone()[0] > 0


def test_a_worker_killed_mid_window_loses_nothing_with_the_default_visibility_timeout(
    services, churn, churn_v1, owner, api_client_for
):
    first = services.worker(name="first")
    api = api_client_for(owner, scopes=SCOPES)
    reference = upload_reference(api, churn_v1)
    records = prediction_records(300, HOUR, seed=7, drifted=True)
    dbname = connection.settings_dict["NAME"]

    # Another session locks the metric table, so the first worker's window computation stops
    # half-way (counts written, metrics waiting) inside its transaction; then it is killed.
    locker = psycopg.connect(worker_database_url().replace("postgres://", "postgresql://", 1), autocommit=False)
    try:
        locker.execute("LOCK TABLE monitoring_metricvalue IN SHARE ROW EXCLUSIVE MODE")
        send_predictions(api, churn_v1, records)
        wait_until(lambda: _blocked_on_metric_table(dbname), timeout=90, what="the first worker to block mid-task")
        received = re.findall(r"Task monitoring\.tasks\.window_compute\[([0-9a-f-]+)\] received", first.log())
        assert received, first.log()[-3000:]
        killed_task = received[-1]
        first.kill(signal.SIGKILL)
    finally:
        locker.rollback()
        locker.close()
    assert not first.running
    assert f"{killed_task}] succeeded" not in first.log()
    assert not MetricValue.objects.filter(version=churn_v1).exists(), "the killed transaction must leave nothing"

    second = services.worker(name="second")
    # beat keeps sweeping, as in production. Redis would hand the killed task out again only
    # after the production visibility timeout (an hour): the window must be recovered from the
    # database (its dirty mark and lease), not from the broker's redelivery.
    sweep_every_second()
    services.beat()
    wait_until(
        lambda: _critical_and_swept(churn, churn_v1),
        timeout=240,
        what="the second worker to finish the windows the first one was killed in",
    )
    assert f"{killed_task}] succeeded" not in second.log(), "redelivered by Redis: the timeout is not the default"
    hourly = window_metrics(churn_v1, Granularity.HOURLY, HOUR)
    assert_matches_recomputation(hourly, reference.profile, records, churn)
    daily = window_metrics(churn_v1, Granularity.DAILY, DAY)
    assert daily[("", Metric.VOLUME)] == 300
    for key in [("age", Metric.PSI), ("income", Metric.PSI), ("plan", Metric.PSI)]:
        assert daily[key] == pytest.approx(hourly[key]), key
    # exactly once: one row per (version, window, feature, metric), and one open alert per kind
    rows = list(
        MetricValue.objects.filter(version=churn_v1).values_list("window_start", "window_end", "feature", "metric")
    )
    assert len(rows) == len(set(rows))
    assert Alert.objects.filter(model=churn, kind=AlertKind.DRIFT).count() == 1
    assert (
        AuditEvent.objects.filter(action="alert.opened", model=churn).count()
        == Alert.objects.filter(model=churn).count()
    )
    assert_equals_fresh_recompute(churn)


# --------------------------------------------------------------------------- Redis down during ingestion


def test_predictions_sent_while_redis_is_down_are_stored_and_computed_by_beat_after_redis_returns(
    services, private_redis, worker_on_private_redis, churn, churn_v1, owner, api_client_for
):
    """A private redis-server (never the shared one) is stopped during ingestion."""
    api = api_client_for(owner, scopes=SCOPES)
    reference = upload_reference(api, churn_v1)

    private_redis.kill()
    records = prediction_records(400, HOUR, seed=11, drifted=True)
    summary = send_predictions(api, churn_v1, records)  # 201 although the broker is unreachable
    assert summary["rows"] == 400
    assert Prediction.objects.filter(version=churn_v1).count() == 400
    dirty = set(DirtyWindow.objects.filter(version=churn_v1).values_list("window_start", "granularity"))
    assert dirty == {(HOUR, Granularity.HOURLY), (DAY, Granularity.DAILY)}
    assert not MetricValue.objects.filter(version=churn_v1).exists()
    labels = labels_for(records, seed=12)
    send_labels(api, churn_v1, labels)  # labels too are stored (201) without the broker

    # Redis returns empty (no persistence): the lost messages are not needed, the dirty
    # windows are. A real beat process sends the sweep; the worker reconnects and computes.
    private_redis.start()
    sweep_every_second()
    beat = services.beat(broker_url=private_redis.url)
    wait_until(
        lambda: _critical_and_swept(churn, churn_v1),
        timeout=150,
        what="beat's sweep and the worker to compute the windows after Redis returned",
    )
    assert beat.running
    assert f"Sending due task monitoring: sweep dirty windows ({SWEEP_TASK})" in beat.log()
    hourly = window_metrics(churn_v1, Granularity.HOURLY, HOUR)
    assert hourly[("", Metric.VOLUME)] == 400
    assert_matches_recomputation(hourly, reference.profile, records, churn)
    daily = window_metrics(churn_v1, Granularity.DAILY, DAY)
    assert daily[("", Metric.VOLUME)] == 400
    assert daily[("", Metric.LABEL_COVERAGE)] == 1.0
    expected_accuracy = accuracy_score([str(x["label"]) for x in labels], [str(r["prediction"]) for r in records])
    assert daily[("", Metric.ACCURACY)] == pytest.approx(expected_accuracy)
    assert Alert.objects.filter(model=churn, kind=AlertKind.DRIFT, status=AlertStatus.OPEN).count() == 1
    assert_equals_fresh_recompute(churn)


def test_a_reference_sample_sent_as_predictions_raises_no_alert(services, churn, churn_v1, owner, api_client_for):
    services.worker()
    api = api_client_for(owner, scopes=SCOPES)
    upload_reference(api, churn_v1)
    records = prediction_records(1000, HOUR + timedelta(hours=1), seed=13, drifted=False)
    send_predictions(api, churn_v1, records)
    health = wait_until(
        lambda: HealthStatus.objects.filter(model=churn).exclude(status=HealthState.NO_DATA).first(),
        timeout=120,
        what="health from the worker",
    )
    wait_until(lambda: not DirtyWindow.objects.filter(version=churn_v1).exists(), timeout=60, what="the sweep")
    health.refresh_from_db()
    assert health.status == HealthState.OK, health.reasons
    assert not Alert.objects.filter(model=churn).exists()
    drifted = MetricValue.objects.filter(version=churn_v1, metric=Metric.DRIFT_DETECTED, value=1.0)
    assert not drifted.exclude(feature__in=["__prediction__", "__score__"]).exists()
    assert np.isclose(window_metrics(churn_v1, Granularity.DAILY, DAY)[("", Metric.VOLUME)], 1000)
