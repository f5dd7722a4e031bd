"""/healthz against a real beat and a real Celery worker on Redis: the worker entry turns healthy
only once beat has queued the heartbeat task and a worker has run it."""

from __future__ import annotations

import pytest
from django.test import Client
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from tests.integration.conftest import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.postgres]


def test_healthz_turns_healthy_when_beat_and_a_real_worker_write_the_heartbeat(services):
    client = Client()
    before = client.get("/healthz")
    assert before.status_code == 503 and before.json()["worker"]["ok"] is False
    assert before.json()["database"]["ok"] and before.json()["broker"]["ok"]
    every_second, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.update_or_create(
        name="ops: worker heartbeat",
        defaults={"task": "mlops_portal.health.worker_heartbeat", "interval": every_second, "enabled": True},
    )
    services.worker()
    services.beat()
    wait_until(lambda: client.get("/healthz").status_code == 200, timeout=60, what="a healthy /healthz")
    body = client.get("/healthz").json()
    assert body["status"] == "ok" and body["worker"]["heartbeat_age_seconds"] < 30
