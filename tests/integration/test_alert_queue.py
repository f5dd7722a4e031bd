"""The alert path's own queue, with a real worker on Redis (settings.py, CELERY_TASK_QUEUES): a
worker takes every queued dirty-window sweep and health evaluation before a backlog of window
computations, so an alert never waits behind recomputations of the live hour
(docs/performance.md, "Freshness under load").
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from monitoring import tasks
from monitoring.choices import Granularity
from monitoring.models import HealthStatus, MetricValue
from tests.integration.conftest import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

HOUR = datetime(2026, 3, 2, 10, tzinfo=UTC)
TASK_LINE = re.compile(r"Task monitoring\.tasks\.\w+\[([0-9a-f-]+)\] (received|succeeded)")


def taken_and_done(worker) -> tuple[list[str], set[str]]:
    """Task ids in the order the worker took them, and those that succeeded."""
    lines = TASK_LINE.findall(worker.log())
    return [i for i, what in lines if what == "received"], {i for i, what in lines if what == "succeeded"}


def test_a_worker_takes_queued_sweeps_and_health_evaluations_before_a_backlog_of_windows(services, churn, churn_v1):
    starts = [HOUR + timedelta(hours=h) for h in range(4)]
    windows = [tasks.window_compute.delay(churn_v1.pk, s.isoformat(), Granularity.HOURLY).id for s in starts]
    alert_path = [tasks.health_evaluate.delay(churn.pk).id, tasks.monitoring_sweep_dirty_windows.delay().id]
    alert_path.append(tasks.health_evaluate.delay(churn.pk).id)  # queued last of all
    assert services.broker.queue_length(("alerts",)) == 3
    assert services.broker.queue_length(("celery",)) == 4

    worker = services.worker()  # one process (solo), prefetch 1: it takes one message at a time

    def all_done() -> list[str] | None:
        taken, done = taken_and_done(worker)
        return taken if set(windows + alert_path) <= done else None

    taken = wait_until(all_done, timeout=90, what="the worker to run every queued task")

    positions = {task_id: taken.index(task_id) for task_id in windows + alert_path}
    assert max(positions[i] for i in alert_path) < min(positions[i] for i in windows), taken
    assert HealthStatus.objects.filter(model=churn).exists()
    computed = MetricValue.objects.filter(version=churn_v1, granularity=Granularity.HOURLY, feature="")
    assert set(computed.values_list("window_start", flat=True)) == set(starts)
