"""The fault suite: a failing machine, with production defaults (Redis' visibility timeout of an
hour, the window lease, the sweeps' schedules). Real PostgreSQL, Redis and Celery worker and
beat subprocesses; nothing mocked. Each test ends by comparing what the workers stored with a
fresh recompute of the same windows (``assert_equals_fresh_recompute``): nothing lost, nothing
doubled. The killed-mid-hour case is in test_monitoring_worker.py; the worker restarted during an
MLflow sync is in test_mlflow_worker.py; the faults the beat sweeps recover from (a broker that
lost every message, a window whose data fails) are in test_fault_sweeps.py, a file of their own
so that a parallel run can start them beside these.
"""

from __future__ import annotations

import re
import signal
import threading
import time

import psycopg
import pytest
from django.db import connection, connections

from monitoring.choices import Granularity, Metric
from monitoring.models import DirtyWindow, MetricValue, Prediction, ReferenceProfile
from monitoring.services.reference_profiles import reference_profile_compute
from monitoring.services.windows import window_compute
from tests.integration.conftest import wait_until, worker_database_url
from tests.integration.monitoring_data import (
    as_json,
    assert_equals_fresh_recompute,
    prediction_records,
    reference_csv,
)
from tests.integration.test_monitoring_worker import (
    DAY,
    HOUR,
    SCOPES,
    send_predictions,
    sweep_every_second,
    upload_reference,
    urls,
    window_metrics,
)

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def locker_connection() -> psycopg.Connection:
    return psycopg.connect(worker_database_url().replace("postgres://", "postgresql://", 1), autocommit=False)


def blocked_backends(locker: psycopg.Connection) -> list[int]:
    """Backends waiting for a lock the locker holds. (Matching pg_stat_activity's query text on
    the table's name missed a request blocked in a long statement: PostgreSQL keeps only the
    first 1,024 bytes of the text, and a batch's 400 ids come before the table's name.)"""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))", [locker.info.backend_pid]
        )
        return [row[0] for row in cursor.fetchall()]


def terminate(pid: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])


def received(worker, task: str) -> list[str]:
    return re.findall(rf"Task monitoring\.tasks\.{task}\[([0-9a-f-]+)\] received", worker.log())


def windows_done(model) -> bool:
    return (
        MetricValue.objects.filter(model=model, granularity=Granularity.DAILY).exists()
        and not DirtyWindow.objects.filter(version__model=model).exists()
    )


def windows_settled(model, quiet_seconds: float = 5.0) -> bool:
    """Done, and still done ``quiet_seconds`` later: a retried task still on its backoff may
    finish after the day was summed and mark the day dirty again (beat then sums it once more)."""
    if not windows_done(model):
        return False
    time.sleep(quiet_seconds)
    return windows_done(model)


def test_a_worker_killed_in_the_last_dirty_window_is_recovered_by_its_lease_not_by_redis(
    services, churn, churn_v1, owner, api_client_for
):
    """The day is the only dirty window and its worker dies storing it: no queued task will touch
    it again and Redis keeps the message for an hour. The sweep queues it once its lease expired."""
    api = api_client_for(owner, scopes=SCOPES)
    response = api.post(urls(churn_v1)["reference"], data=reference_csv(), content_type="text/csv")
    assert response.status_code == 202
    reference_profile_compute(profile_id=ReferenceProfile.objects.get(version=churn_v1).pk)  # no worker yet
    records = prediction_records(300, HOUR, seed=21, drifted=True)
    send_predictions(api, churn_v1, records)
    window_compute(version_id=churn_v1.pk, window_start=HOUR, granularity=Granularity.HOURLY)
    assert set(DirtyWindow.objects.values_list("granularity", flat=True)) == {Granularity.DAILY}

    locker = locker_connection()
    try:
        locker.execute("LOCK TABLE monitoring_metricvalue IN SHARE ROW EXCLUSIVE MODE")
        first = services.worker(name="first", ready=False)  # its first task blocks: a solo pool answers no ping then
        wait_until(lambda: blocked_backends(locker), timeout=90, what="the day to block mid-store")
        killed = received(first, "window_compute")[-1]
        first.kill(signal.SIGKILL)
    finally:
        locker.rollback()
        locker.close()
    mark = DirtyWindow.objects.get(version=churn_v1)
    assert mark.lease_until is not None, "the dead worker's claim"
    assert not window_metrics(churn_v1, Granularity.DAILY, DAY), "the killed transaction left nothing"

    second = services.worker(name="second")
    sweep_every_second()
    services.beat()
    wait_until(lambda: windows_done(churn), timeout=300, what="the sweep to requeue the day after its lease")
    assert f"{killed}] succeeded" not in second.log(), "Redis redelivered: the visibility timeout is not the default"
    assert window_metrics(churn_v1, Granularity.DAILY, DAY)[("", Metric.VOLUME)] == 300
    assert_equals_fresh_recompute(churn)


def test_a_worker_whose_database_connection_is_dropped_mid_window_retries_and_stores_it_once(
    services, churn, churn_v1, owner, api_client_for
):
    worker = services.worker()
    api = api_client_for(owner, scopes=SCOPES)
    upload_reference(api, churn_v1)
    records = prediction_records(300, HOUR, seed=31, drifted=True)
    locker = locker_connection()
    try:
        locker.execute("LOCK TABLE monitoring_metricvalue IN SHARE ROW EXCLUSIVE MODE")
        send_predictions(api, churn_v1, records)
        pids = wait_until(lambda: blocked_backends(locker), timeout=90, what="the worker to block mid-store")
        terminate(pids[0])
        wait_until(lambda: "Retry in" in worker.log(), timeout=60, what="the task to be retried")
    finally:
        locker.rollback()
        locker.close()
    # the retried hour marks its day dirty again when it finishes after the day was summed;
    # beat's sweep (every minute in production) sums the day once more, as it would there
    sweep_every_second()
    services.beat()
    wait_until(lambda: windows_settled(churn), timeout=180, what="the retried task to finish the windows")
    assert "OperationalError" in worker.log()
    assert worker.running
    assert window_metrics(churn_v1, Granularity.HOURLY, HOUR)[("", Metric.VOLUME)] == 300
    assert_equals_fresh_recompute(churn)


def test_a_request_whose_database_connection_is_dropped_stores_nothing_and_its_retry_stores_the_batch_once(
    services, churn, churn_v1, owner, api_client_for
):
    services.worker()
    api = api_client_for(owner, scopes=SCOPES)
    upload_reference(api, churn_v1)
    api.raise_request_exception = False
    records = prediction_records(400, HOUR, seed=41, drifted=True)
    answers: list = []
    locker = locker_connection()
    try:
        locker.execute("LOCK TABLE monitoring_prediction IN ACCESS EXCLUSIVE MODE")

        def post() -> None:
            try:
                answers.append(
                    api.post(urls(churn_v1)["predictions"], data=as_json(records), content_type="application/json")
                )
            finally:
                connections.close_all()  # this thread's own connections

        request = threading.Thread(target=post)
        request.start()
        pids = wait_until(lambda: blocked_backends(locker), timeout=60, what="the request to block")
        terminate(pids[0])
        request.join(timeout=60)
    finally:
        locker.rollback()
        locker.close()
    assert answers and answers[0].status_code >= 500, answers
    assert not Prediction.objects.exists() and not DirtyWindow.objects.exists(), "no half-written batch"

    assert send_predictions(api, churn_v1, records)["rows"] == 400  # the client's retry
    wait_until(lambda: windows_done(churn), timeout=120, what="the worker to compute the windows")
    assert Prediction.objects.filter(version=churn_v1).count() == 400
    assert_equals_fresh_recompute(churn)
