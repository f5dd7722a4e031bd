"""Which windows get computed, and when: dirty marks and their lease, the sweep's order, a day
waiting for its hours, data arriving mid-computation, transient and data errors (recorded
failed once, never retried in a loop). The computation itself: test_windows.py."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring import tasks
from monitoring.choices import Granularity, Metric
from monitoring.models import (
    DirtyWindow,
    MetricValue,
    WindowBinCounts,
    WindowFailure,
)
from monitoring.selectors.windows import window_failures
from monitoring.services.window_marks import WINDOW_LEASE, dirty_windows_sweep
from monitoring.services.windows import window_compute
from tests.monitoring.helpers import T0, prediction_records
from tests.monitoring.test_windows import ingest, metric

pytestmark = pytest.mark.django_db


class WorkerKilled(BaseException):
    """Stands for SIGKILL: nothing in the worker catches it, no cleanup code runs."""


def _hourly_mark(version):
    return DirtyWindow.objects.filter(version=version, window_start=T0, granularity=Granularity.HOURLY)


def test_a_worker_killed_mid_window_leaves_the_window_dirty_until_its_results_are_stored(
    profiled, owner, django_capture_on_commit_callbacks, monkeypatch
):
    from monitoring.services import windows

    monkeypatch.setattr(tasks.monitoring_sweep_dirty_windows, "delay", lambda *a, **k: None)
    ingest(profiled, owner, prediction_records(50), django_capture_on_commit_callbacks)
    assert _hourly_mark(profiled).exists()

    def killed(*args, **kwargs):
        raise WorkerKilled

    monkeypatch.setattr(windows, "_store_metrics", killed)
    with pytest.raises(WorkerKilled):
        window_compute(version_id=profiled.pk, window_start=T0, granularity=Granularity.HOURLY)
    mark = _hourly_mark(profiled).get()
    assert mark.lease_until is not None, "the claim holds a lease"
    assert not MetricValue.objects.filter(version=profiled, granularity=Granularity.HOURLY).exists()
    assert not WindowBinCounts.objects.filter(version=profiled).exists(), "counts and metrics commit together"

    # The sweep leaves a live lease alone and queues the window again once the lease expired.
    assert (profiled.pk, T0, Granularity.HOURLY) not in dirty_windows_sweep(now=timezone.now())
    later = timezone.now() + WINDOW_LEASE + timedelta(seconds=1)
    assert (profiled.pk, T0, Granularity.HOURLY) in dirty_windows_sweep(now=later)
    monkeypatch.undo()
    assert window_compute(version_id=profiled.pk, window_start=T0, granularity=Granularity.HOURLY) > 0
    assert not _hourly_mark(profiled).exists()


def test_a_batch_for_a_window_already_queued_does_not_queue_it_again(
    profiled, owner, django_capture_on_commit_callbacks, monkeypatch
):
    """Under steady ingestion every batch re-queued the live hour while a computation of it
    waited in the queue: hundreds of copies ahead of the health evaluation (docs/performance.md,
    "Freshness"). The queued computation reads the later batch's rows."""
    monkeypatch.setattr(tasks.monitoring_sweep_dirty_windows, "delay", lambda *a, **k: None)
    ingest(profiled, owner, prediction_records(50), django_capture_on_commit_callbacks)
    assert (profiled.pk, T0, Granularity.HOURLY) in dirty_windows_sweep(now=timezone.now())  # queued once
    ingest(profiled, owner, prediction_records(10, prefix="late"), django_capture_on_commit_callbacks)
    assert (profiled.pk, T0, Granularity.HOURLY) not in dirty_windows_sweep(now=timezone.now())
    window_compute(version_id=profiled.pk, window_start=T0, granularity=Granularity.HOURLY)  # the queued one
    assert metric(profiled, Granularity.HOURLY, T0, "", Metric.VOLUME) == 60
    assert not _hourly_mark(profiled).exists()


def test_the_sweep_queues_the_newest_hours_first_then_the_days(
    profiled, owner, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr(tasks.monitoring_sweep_dirty_windows, "delay", lambda *a, **k: None)
    ingest(profiled, owner, prediction_records(30, start=T0), django_capture_on_commit_callbacks)
    ingest(
        profiled,
        owner,
        prediction_records(30, start=T0 + timedelta(hours=5), prefix="b"),
        django_capture_on_commit_callbacks,
    )
    queued = [(start, granularity) for _, start, granularity in dirty_windows_sweep(now=timezone.now())]
    hours = [start for start, granularity in queued if granularity == Granularity.HOURLY]
    assert hours == sorted(hours, reverse=True) and hours[0] >= T0 + timedelta(hours=5)
    assert queued[-1][1] == Granularity.DAILY


def test_a_day_leaves_an_hour_queued_elsewhere_to_that_computation_and_is_summed_again_after_it(
    profiled, owner, django_capture_on_commit_callbacks, monkeypatch
):
    """The day used to recompute every dirty hour inline, the live hour too while its own queued
    computation ran in another process: two whole-hour reads at once under ingestion
    (docs/performance.md, "Freshness under load")."""
    monkeypatch.setattr(tasks.monitoring_sweep_dirty_windows, "delay", lambda *a, **k: None)
    ingest(profiled, owner, prediction_records(50, age_shift=3.0), django_capture_on_commit_callbacks)
    assert {g for _, _, g in dirty_windows_sweep(now=timezone.now())} == {Granularity.HOURLY, Granularity.DAILY}

    window_compute(version_id=profiled.pk, window_start=T0, granularity=Granularity.DAILY)  # taken first
    assert _hourly_mark(profiled).get().enqueued_at is not None, "still the queued computation's"
    assert not MetricValue.objects.filter(version=profiled, granularity=Granularity.HOURLY).exists()

    window_compute(version_id=profiled.pk, window_start=T0, granularity=Granularity.HOURLY)  # the queued hour
    assert DirtyWindow.objects.filter(version=profiled, granularity=Granularity.DAILY).exists(), "day marked again"
    window_compute(version_id=profiled.pk, window_start=T0, granularity=Granularity.DAILY)
    assert not DirtyWindow.objects.filter(version=profiled).exists()
    hour_psi = metric(profiled, Granularity.HOURLY, T0, "age", Metric.PSI)
    assert hour_psi > 0.25 and metric(profiled, Granularity.DAILY, T0, "age", Metric.PSI) == pytest.approx(hour_psi)


def test_a_day_leaves_an_hour_the_sweep_queued_after_the_day_found_it_free(
    profiled, owner, django_capture_on_commit_callbacks, monkeypatch
):
    """The day finds its free hours, then claims each by an update that checks it is still
    free: a sweep queueing the hour in between used to leave two computations of it at once."""
    monkeypatch.setattr(tasks.monitoring_sweep_dirty_windows, "delay", lambda *a, **k: None)
    ingest(profiled, owner, prediction_records(50), django_capture_on_commit_callbacks)
    _hourly_mark(profiled).update(enqueued_at=timezone.now())  # queued after the day read it free
    args = {"version_id": profiled.pk, "window_start": T0, "granularity": Granularity.HOURLY}
    assert window_compute(**args, mark_day=False, free_only=True) == 0
    mark = _hourly_mark(profiled).get()
    assert mark.enqueued_at is not None and mark.claimed_at is None
    assert not MetricValue.objects.filter(version=profiled, granularity=Granularity.HOURLY).exists()
    assert window_compute(**args) > 0 and not _hourly_mark(profiled).exists()


def test_data_arriving_during_a_computation_keeps_the_window_dirty(
    profiled, owner, django_capture_on_commit_callbacks, monkeypatch
):
    from monitoring.services import windows

    monkeypatch.setattr(tasks.monitoring_sweep_dirty_windows, "delay", lambda *a, **k: None)
    ingest(profiled, owner, prediction_records(50), django_capture_on_commit_callbacks)
    results = windows._hourly_results

    def with_data_meanwhile(*args, **kwargs):
        out = results(*args, **kwargs)
        ingest(profiled, owner, prediction_records(10, prefix="late"), django_capture_on_commit_callbacks)
        return out

    monkeypatch.setattr(windows, "_hourly_results", with_data_meanwhile)
    window_compute(version_id=profiled.pk, window_start=T0, granularity=Granularity.HOURLY)
    mark = _hourly_mark(profiled).get()
    assert (mark.enqueued_at, mark.lease_until) == (None, None), "free for the next sweep"
    monkeypatch.undo()
    window_compute(version_id=profiled.pk, window_start=T0, granularity=Granularity.HOURLY)
    assert metric(profiled, Granularity.HOURLY, T0, "", Metric.VOLUME) == 60
    assert not _hourly_mark(profiled).exists()


def test_a_transient_error_keeps_the_window_dirty_and_is_raised_for_the_task_to_retry(
    profiled, owner, django_capture_on_commit_callbacks, monkeypatch
):
    from django.db import OperationalError

    from monitoring.services import window_slices

    monkeypatch.setattr(tasks.monitoring_sweep_dirty_windows, "delay", lambda *a, **k: None)
    ingest(profiled, owner, prediction_records(50), django_capture_on_commit_callbacks)

    def connection_lost(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(window_slices, "load_window_columns", connection_lost)
    with pytest.raises(OperationalError):
        window_compute(version_id=profiled.pk, window_start=T0, granularity=Granularity.HOURLY)
    assert _hourly_mark(profiled).get().lease_until is None
    assert not WindowFailure.objects.exists()


def test_a_window_whose_data_fails_the_computation_is_recorded_failed_once_not_retried(
    profiled, owner, django_capture_on_commit_callbacks, monkeypatch, audit_actions
):
    from monitoring.services import windows

    monkeypatch.setattr(tasks.monitoring_sweep_dirty_windows, "delay", lambda *a, **k: None)
    ingest(profiled, owner, prediction_records(50), django_capture_on_commit_callbacks)

    def bad_data(*args, **kwargs):
        raise ValueError("could not convert string to float: 'n/a'")

    monkeypatch.setattr(windows.stats, "bin_window", bad_data)
    assert window_compute(version_id=profiled.pk, window_start=T0, granularity=Granularity.HOURLY) == 0
    failure = WindowFailure.objects.get()
    assert (failure.version, failure.window_start, failure.granularity) == (profiled, T0, Granularity.HOURLY)
    assert failure.reason == "ValueError: could not convert string to float: 'n/a'"
    assert not _hourly_mark(profiled).exists(), "not retried in a loop"
    assert (profiled.pk, T0, Granularity.HOURLY) not in dirty_windows_sweep(now=timezone.now() + timedelta(days=1))
    assert "window.failed" in audit_actions()
    assert [f.reason for f in window_failures(user=owner, model=profiled.model)] == [failure.reason]

    # New data gives the window one more attempt; a success clears the failure.
    monkeypatch.undo()
    ingest(profiled, owner, prediction_records(10, prefix="more"), django_capture_on_commit_callbacks)
    assert not WindowFailure.objects.exists()
    assert metric(profiled, Granularity.HOURLY, T0, "", Metric.VOLUME) == 60


def test_failed_windows_are_listed_only_for_users_who_see_the_model(profiled, outsider):
    WindowFailure.objects.create(
        version=profiled, window_start=T0, granularity=Granularity.HOURLY, reason="x", failed_at=timezone.now()
    )
    assert not window_failures(user=outsider, model=profiled.model).exists()
