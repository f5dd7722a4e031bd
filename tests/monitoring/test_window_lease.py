"""The lease of a window computation: renewed while the computation runs, never after it.

Under ingestion the live hour's computation outgrew its 2-minute lease and the sweep queued the
hour again while it ran (docs/performance.md, "Freshness under load"). A killed computation's
recovery by the lease is in tests/monitoring/test_windows.py and, with a real worker killed,
tests/integration/test_faults.py and test_monitoring_worker.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta

import psycopg
import pytest
from django.db import connection, connections
from django.utils import timezone

from monitoring import tasks
from monitoring.choices import Granularity, Metric
from monitoring.models import DirtyWindow, MetricValue, Prediction
from monitoring.services import window_marks
from monitoring.services.ingestion import predictions_ingest
from monitoring.services.window_marks import (
    WINDOW_LEASE,
    dirty_windows_sweep,
    window_claim,
    window_done,
    window_lease_renew,
    window_release,
    windows_mark_dirty_one,
)
from monitoring.services.windows import window_compute
from registry.services.audit import CLI
from tests.integration.conftest import worker_database_url
from tests.monitoring.helpers import T0, as_json, other_connection, prediction_records

HOUR = (T0, Granularity.HOURLY)


def _mark(version):
    return DirtyWindow.objects.get(version=version, window_start=T0, granularity=Granularity.HOURLY)


def _claim(version, now):
    return window_claim(version_id=version.pk, window_start=T0, granularity=Granularity.HOURLY, now=now)


@pytest.mark.django_db
def test_a_renewal_extends_only_a_claim_still_held_never_one_finished_released_or_taken_over(churn_v1):
    now = timezone.now()
    windows_mark_dirty_one(churn_v1.pk, T0, Granularity.HOURLY)
    first = _claim(churn_v1, now)
    assert window_lease_renew(first, now=now + timedelta(seconds=40))
    assert _mark(churn_v1).lease_until == now + timedelta(seconds=40) + WINDOW_LEASE

    # Its process died: the sweep queues the window once the lease expired; a late renewal of the
    # dead claim (a heartbeat that outlived it) neither revives it nor touches the next claim.
    expired = now + timedelta(seconds=41) + WINDOW_LEASE
    assert (churn_v1.pk, *HOUR) in dirty_windows_sweep(now=expired)
    assert not window_lease_renew(first, now=expired)
    assert _mark(churn_v1).lease_until is None, "re-queued, not claimed again"
    second = _claim(churn_v1, expired + timedelta(seconds=1))
    assert not window_lease_renew(first, now=expired + timedelta(seconds=2))
    assert _mark(churn_v1).lease_until == expired + timedelta(seconds=1) + WINDOW_LEASE, "the second claim's"

    window_release(second)  # a transient error: the task retries
    assert not window_lease_renew(second)
    assert _mark(churn_v1).lease_until is None

    third = _claim(churn_v1, timezone.now())
    windows_mark_dirty_one(churn_v1.pk, T0, Granularity.HOURLY)  # data arrived meanwhile: freed, kept
    assert not window_done(third)
    assert not window_lease_renew(third)
    assert (_mark(churn_v1).claimed_at, _mark(churn_v1).lease_until) == (None, None)

    fourth = _claim(churn_v1, timezone.now())
    assert window_done(fourth)
    assert not window_lease_renew(fourth)
    assert not DirtyWindow.objects.filter(version=churn_v1).exists(), "a finished mark is not recreated"


@pytest.mark.django_db
def test_marking_a_marked_window_again_is_one_statement_that_keeps_its_claim(churn_v1, django_assert_num_queries):
    windows_mark_dirty_one(churn_v1.pk, T0, Granularity.HOURLY)
    first = _mark(churn_v1)
    claim = _claim(churn_v1, timezone.now())
    with django_assert_num_queries(1):
        windows_mark_dirty_one(churn_v1.pk, T0, Granularity.HOURLY)
    mark = _mark(churn_v1)
    assert mark.pk == first.pk and mark.marked_at > first.marked_at
    assert (mark.claimed_at, mark.lease_until) == (claim.claimed_at, claim.claimed_at + WINDOW_LEASE)
    assert not window_done(claim) and _mark(churn_v1).claimed_at is None  # marked again: freed, kept


@pytest.mark.django_db
def test_a_window_not_marked_has_no_claim_to_renew(churn_v1):
    claim = _claim(churn_v1, timezone.now())
    assert claim.claimed_at is None and not window_lease_renew(claim)
    assert not DirtyWindow.objects.exists()


def _blocked_by(locker: psycopg.Connection) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))", [locker.info.backend_pid]
        )
        return [row[0] for row in cursor.fetchall()]


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := predicate():
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_computation_running_longer_than_its_lease_keeps_its_claim_and_the_sweep_leaves_it(
    churn_v1, owner, monkeypatch
):
    """The computation's one long statement, the read of the hour's rows, waits here for a lock
    held three leases long (as a whole-hour read under load took minutes in one statement)."""
    lease = timedelta(seconds=1.5)
    monkeypatch.setattr(window_marks, "WINDOW_LEASE", lease)
    monkeypatch.setattr(tasks.monitoring_sweep_dirty_windows, "delay", lambda *a, **k: None)
    body = as_json(prediction_records(50))
    predictions_ingest(version=churn_v1, body=body, content_type="application/json", actor=owner, context=CLI)
    assert _mark(churn_v1).lease_until is None

    outcome: dict = {}

    def compute():
        try:
            outcome["stored"] = window_compute(version_id=churn_v1.pk, window_start=T0, granularity=Granularity.HOURLY)
        finally:
            connections.close_all()

    locker = other_connection(autocommit=False)
    computing = threading.Thread(target=compute)
    try:
        locker.execute(f"LOCK TABLE {Prediction._meta.db_table} IN ACCESS EXCLUSIVE MODE")
        computing.start()
        _wait_for(lambda: _blocked_by(locker), timeout=30, what="the computation to read the hour")
        claimed_at = _mark(churn_v1).claimed_at
        time.sleep(3 * lease.total_seconds())
        now = timezone.now()
        assert (churn_v1.pk, *HOUR) not in dirty_windows_sweep(now=now), "queued again while it runs"
        mark = _mark(churn_v1)
        assert mark.claimed_at == claimed_at and mark.lease_until > now, "the same claim, renewed"
    finally:
        locker.rollback()
        locker.close()
        computing.join(timeout=60)
    assert outcome["stored"] > 0
    assert MetricValue.objects.get(version=churn_v1, window_start=T0, feature="", metric=Metric.VOLUME).value == 50
    assert not DirtyWindow.objects.filter(version=churn_v1, granularity=Granularity.HOURLY).exists()
    assert not [t for t in threading.enumerate() if t.name.startswith("window-lease")], "the renewals stopped"


COMPUTE_IN_A_PROCESS = """
import sys
from datetime import datetime, timedelta
import django
django.setup()
from monitoring.services import window_marks
from monitoring.services.windows import window_compute
window_marks.WINDOW_LEASE = timedelta(seconds=float(sys.argv[2]))
window_compute(version_id=int(sys.argv[1]), window_start=datetime.fromisoformat(sys.argv[3]), granularity="hourly")
"""


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_killed_computation_stops_renewing_and_its_window_is_queued_again_after_its_last_lease(
    churn_v1, owner, monkeypatch
):
    """A real process computes the hour, renews its lease while the read waits, and is killed
    with SIGKILL: its renewing thread dies with it, and the sweep queues the window once the
    last lease it wrote expired."""
    lease = 1.5
    monkeypatch.setattr(tasks.monitoring_sweep_dirty_windows, "delay", lambda *a, **k: None)
    body = as_json(prediction_records(50))
    predictions_ingest(version=churn_v1, body=body, content_type="application/json", actor=owner, context=CLI)
    env = {**os.environ, "DATABASE_URL": worker_database_url(), "DJANGO_SETTINGS_MODULE": "mlops_portal.settings"}
    args = [sys.executable, "-c", COMPUTE_IN_A_PROCESS, str(churn_v1.pk), str(lease), T0.isoformat()]
    locker = other_connection(autocommit=False)
    try:
        locker.execute(f"LOCK TABLE {Prediction._meta.db_table} IN ACCESS EXCLUSIVE MODE")
        computing = subprocess.Popen(args, env=env)
        try:
            _wait_for(lambda: _blocked_by(locker), timeout=60, what="the process to read the hour")
            first_lease = _mark(churn_v1).lease_until
            renewed = _wait_for(
                lambda: (mark := _mark(churn_v1)).lease_until > first_lease and mark, timeout=10, what="a renewal"
            )
            assert renewed.claimed_at is not None
        finally:
            computing.send_signal(signal.SIGKILL)
            computing.wait(timeout=30)
        time.sleep(0.5)  # a renewal sent just before the kill has landed
        last_lease = _mark(churn_v1).lease_until
        time.sleep(2 * lease)
        assert _mark(churn_v1).lease_until == last_lease, "no renewal after the process died"
        assert (churn_v1.pk, *HOUR) in dirty_windows_sweep(now=timezone.now()), "queued again after the lease"
    finally:
        locker.rollback()
        locker.close()
    assert window_compute(version_id=churn_v1.pk, window_start=T0, granularity=Granularity.HOURLY) > 0
    assert not DirtyWindow.objects.filter(version=churn_v1, granularity=Granularity.HOURLY).exists()
