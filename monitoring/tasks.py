"""Celery tasks: thin wrappers over monitoring services. They take ids, import their service
inside the body (services queue tasks; no import circle), are idempotent (results are upserted
on unique keys), acknowledge late, and retry transient errors only (``TRANSIENT_ERRORS``:
database or broker unreachable). A window or profile whose data fails is recorded as failed by
its service, never retried in a loop. Periodic schedules live in django-celery-beat
(the monitoring migrations' ``create_schedules``)."""

from __future__ import annotations

from datetime import datetime

from celery import shared_task

from mlops_portal.celery import TRANSIENT_ERRORS

COMMON = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": TRANSIENT_ERRORS,
    "retry_backoff": True,
    "retry_backoff_max": 600,
    "retry_jitter": True,
    "max_retries": 5,
}


def _queue_each(task, ids: list[int]) -> int:
    """Queue ``task`` once per id; returns how many (what a fan-out task returns)."""
    for pk in ids:
        task.delay(pk)
    return len(ids)


@shared_task(name="monitoring.tasks.profile_compute", time_limit=900, soft_time_limit=840, **COMMON)
def profile_compute(profile_id: int) -> None:
    from monitoring.services.reference_profiles import reference_profile_compute

    reference_profile_compute(profile_id=profile_id)


@shared_task(name="monitoring.tasks.profiles_sweep_pending", time_limit=120, soft_time_limit=100, **COMMON)
def profiles_sweep_pending() -> int:
    """Queue the profiles left pending (uploaded while the broker was down; beat, every minute)."""
    from monitoring.services.reference_profiles import profiles_sweep_pending as sweep

    return _queue_each(profile_compute, sweep())


@shared_task(name="monitoring.tasks.window_compute", time_limit=900, soft_time_limit=840, **COMMON)
def window_compute(version_id: int, window_start: str, granularity: str) -> int:
    from monitoring.services.windows import window_compute as compute

    return compute(version_id=version_id, window_start=datetime.fromisoformat(window_start), granularity=granularity)


@shared_task(name="monitoring.tasks.monitoring_sweep_dirty_windows", time_limit=120, soft_time_limit=100, **COMMON)
def monitoring_sweep_dirty_windows() -> int:
    """Queue a computation for every dirty window not queued recently or whose lease expired
    (beat, every minute)."""
    from monitoring.services.window_marks import dirty_windows_sweep

    claimed = dirty_windows_sweep()
    for version_id, start, granularity in claimed:
        window_compute.delay(version_id, start.isoformat(), granularity)
    return len(claimed)


@shared_task(name="monitoring.tasks.health_evaluate", time_limit=120, soft_time_limit=100, **COMMON)
def health_evaluate(model_id: int) -> None:
    from monitoring.services.health import health_evaluate_by_id

    health_evaluate_by_id(model_id=model_id)


@shared_task(name="monitoring.tasks.health_evaluate_all", time_limit=600, soft_time_limit=540, **COMMON)
def health_evaluate_all() -> int:
    """Every model's health (beat): catches overdue cadences even without new data."""
    from monitoring.services.health import health_model_ids

    return _queue_each(health_evaluate, health_model_ids())


@shared_task(name="monitoring.tasks.retrain_trigger_send", time_limit=60, soft_time_limit=45, **COMMON)
def retrain_trigger_send(trigger_id: int) -> None:
    from monitoring.services.alerts import retrain_trigger_send as send

    send(trigger_id=trigger_id)


@shared_task(name="monitoring.tasks.evaluation_compute", time_limit=900, soft_time_limit=840, **COMMON)
def evaluation_compute(run_id: int) -> None:
    """The fairness report of an uploaded evaluation set (monitoring.services.evaluations)."""
    from monitoring.services.evaluations import evaluation_compute as compute

    compute(run_id=run_id)


@shared_task(name="monitoring.tasks.evaluations_sweep_pending", time_limit=120, soft_time_limit=100, **COMMON)
def evaluations_sweep_pending() -> int:
    """Queue the evaluation sets left pending (uploaded while the broker was down; beat, every minute)."""
    from monitoring.services.evaluations import evaluations_pending

    return _queue_each(evaluation_compute, evaluations_pending())


@shared_task(name="monitoring.tasks.partitions_create_ahead", time_limit=300, soft_time_limit=240, **COMMON)
def partitions_create_ahead() -> int:
    """Create the coming days' partitions of the raw tables (PostgreSQL; beat, hourly)."""
    from monitoring.services.retention import partitions_create_ahead as create

    return len(create())


@shared_task(name="monitoring.tasks.retention_purge", time_limit=3600, soft_time_limit=3300, **COMMON)
def retention_purge() -> int:
    """Remove expired raw rows with a receipt each in the audit chain, and the window slices of
    hours no longer live (beat, nightly)."""
    from monitoring.services.retention import retention_purge as purge
    from monitoring.services.window_slices import slices_prune

    receipts = purge()
    slices_prune()
    return len(receipts)


@shared_task(name="monitoring.tasks.prediction_keys_sweep", time_limit=3600, soft_time_limit=3300, **COMMON)
def prediction_keys_sweep() -> int:
    """Delete the prediction keys of the days the purge dropped, in batches (queued by the
    purge on commit; beat, nightly after the purge); resumes where a stopped run left off."""
    from monitoring.services.prediction_keys import prediction_keys_sweep as sweep

    return sweep()


@shared_task(name="monitoring.tasks.budget_evaluate", time_limit=120, soft_time_limit=100, **COMMON)
def budget_evaluate(model_id: int) -> None:
    """A model's month-to-date cost against its budget (after cost records commit)."""
    from monitoring.services.budgets import budget_evaluate_by_id

    budget_evaluate_by_id(model_id=model_id)


@shared_task(name="monitoring.tasks.budgets_evaluate_all", time_limit=600, soft_time_limit=540, **COMMON)
def budgets_evaluate_all() -> int:
    """Every budget, daily (beat; migration 0016_squashed_0024): a new month resolves last month's alert."""
    from monitoring.services.budgets import budget_model_ids

    return _queue_each(budget_evaluate, budget_model_ids())


from monitoring.oversight import tasks as oversight_tasks  # noqa: E402,F401 - registers the oversight beat tasks
