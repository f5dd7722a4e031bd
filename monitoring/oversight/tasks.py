"""Beat tasks of oversight: thin wrappers over the services, idempotent (sent-markers,
``escalated_at``, one open review per model). Schedules: migration ``oversight_beat_schedules``."""

from __future__ import annotations

from celery import shared_task

COMMON = {"acks_late": True, "reject_on_worker_lost": True, "ignore_result": True}


@shared_task(name="monitoring.oversight.tasks.incident_reminders_send", time_limit=120, soft_time_limit=100, **COMMON)
def incident_reminders_send() -> int:
    """Deadline reminders at 50% and 80% (beat, every minute); each is sent once."""
    from .incidents import incident_reminders_send as send

    return send()


@shared_task(name="monitoring.oversight.tasks.reviews_sweep", time_limit=300, soft_time_limit=270, **COMMON)
def reviews_sweep() -> int:
    """Open due scheduled reviews and the reviews that critical alerts trigger (beat)."""
    from .reviews import reviews_sweep as sweep

    return sweep()


@shared_task(name="monitoring.oversight.tasks.findings_escalate", time_limit=120, soft_time_limit=100, **COMMON)
def findings_escalate() -> int:
    """Escalate overdue findings once (beat)."""
    from .findings import findings_escalate as escalate

    return escalate()
