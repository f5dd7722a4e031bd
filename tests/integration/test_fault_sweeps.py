"""Faults the beat sweeps recover from, with production defaults: a broker that came back empty
(every message sent while it was down lost) and a window whose data fails its computation. Real
PostgreSQL, Redis and Celery worker and beat subprocesses; nothing mocked. Each test ends by
comparing what the workers stored with a fresh recompute (``assert_equals_fresh_recompute``).
The other faults are in test_faults.py.
"""

from __future__ import annotations

import json
import time

import pytest
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from monitoring.choices import Granularity, HealthState, Metric, ProfileStatus
from monitoring.models import DirtyWindow, HealthStatus, Prediction, ReferenceProfile, WindowFailure
from monitoring.services.windows import windows_mark_dirty
from tests.integration import test_monitoring_worker as flow  # its API helpers and times
from tests.integration.conftest import wait_until
from tests.integration.monitoring_data import (
    assert_equals_fresh_recompute,
    labels_for,
    prediction_records,
    reference_csv,
)
from tests.integration.test_faults import windows_done

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

PROFILE_SWEEP = ("monitoring: queue pending reference profiles", "monitoring.tasks.profiles_sweep_pending")


def test_a_reference_uploaded_while_redis_is_down_is_profiled_and_its_windows_computed_after_redis_returns(
    services, private_redis, worker_on_private_redis, churn, churn_v1, owner, api_client_for
):
    api = api_client_for(owner, scopes=flow.SCOPES)
    private_redis.kill()
    response = api.post(flow.urls(churn_v1)["reference"], data=reference_csv(), content_type="text/csv")
    assert response.status_code == 202, response.content  # stored although the broker is unreachable
    records = prediction_records(500, flow.HOUR, seed=51, drifted=True)
    flow.send_predictions(api, churn_v1, records)
    labels = labels_for(records, seed=52)
    response = api.post(flow.urls(churn_v1)["labels"], data=json.dumps(labels), content_type="application/json")
    assert response.status_code == 201
    assert ReferenceProfile.objects.get(version=churn_v1).status == ProfileStatus.PENDING

    private_redis.start()  # empty: every message sent while it was down is lost
    flow.sweep_every_second()
    every_second, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.update_or_create(
        name=PROFILE_SWEEP[0], defaults={"task": PROFILE_SWEEP[1], "interval": every_second}
    )
    services.beat(broker_url=private_redis.url)
    wait_until(
        lambda: ReferenceProfile.objects.filter(version=churn_v1, status=ProfileStatus.READY).exists(),
        timeout=180,
        what="the pending-profile sweep to queue the profile after Redis returned",
    )
    wait_until(
        lambda: (
            windows_done(churn)
            and HealthStatus.objects.filter(model=churn, status=HealthState.CRITICAL).exists()
            and flow.window_metrics(churn_v1, Granularity.HOURLY, flow.HOUR).get(("age", Metric.PSI)) is not None
        ),
        timeout=180,
        what="the windows to be computed with drift once the profile exists",
    )
    daily = flow.window_metrics(churn_v1, Granularity.DAILY, flow.DAY)
    assert daily[("", Metric.VOLUME)] == 500 and daily[("", Metric.LABEL_COVERAGE)] == 1.0
    assert_equals_fresh_recompute(churn)


def test_a_poisoned_window_is_recorded_failed_once_by_the_worker_and_never_retried_in_a_loop(
    services, churn, churn_v1, owner, api_client_for
):
    """A prediction dated 9999-12-31 23:30 (stored before ingestion refused such dates): its
    hour ends in year 10000. The worker records the failure once; beat keeps sweeping."""
    worker = services.worker()
    api = api_client_for(owner, scopes=flow.SCOPES)
    flow.upload_reference(api, churn_v1)
    records = prediction_records(200, flow.HOUR, seed=61)
    flow.send_predictions(api, churn_v1, records)
    poisoned = flow.HOUR.replace(year=9999, month=12, day=31, hour=23, minute=30)
    Prediction.objects.create(
        version=churn_v1,
        prediction_id="poisoned",
        timestamp=poisoned,
        features=records[0]["features"],
        prediction=1,
        score=0.5,
        received_at=timezone.now(),
    )
    windows_mark_dirty(version_id=churn_v1.pk, hours=[poisoned.replace(minute=0)], slices=None)
    flow.sweep_every_second()
    services.beat()
    wait_until(
        lambda: WindowFailure.objects.count() == 2 and windows_done(churn),
        timeout=120,
        what="the poisoned hour and day to be recorded failed and the other windows computed",
    )
    before = worker.log().count("monitoring.tasks.window_compute[")
    time.sleep(15)  # fifteen sweeps later: nothing was queued again
    assert worker.log().count("monitoring.tasks.window_compute[") == before
    assert "Retry in" not in worker.log()
    assert list(WindowFailure.objects.values_list("attempts", flat=True)) == [1, 1]
    assert all("OverflowError" in reason for reason in WindowFailure.objects.values_list("reason", flat=True))
    assert not DirtyWindow.objects.exists()
    assert flow.window_metrics(churn_v1, Granularity.HOURLY, flow.HOUR)[("", Metric.VOLUME)] == 200
    assert set(WindowFailure.objects.values_list("granularity", flat=True)) == {Granularity.HOURLY, Granularity.DAILY}
    assert_equals_fresh_recompute(churn)
