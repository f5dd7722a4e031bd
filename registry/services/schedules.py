"""The beat schedule as an admin changes it in the admin site (django-celery-beat's periodic
tasks). Every change is audited, in the transaction that makes it: a disabled retention purge or
audit checkpoint is a control switched off, and the chain says who switched it, and when. So is
a task an admin runs at once from the list (``schedules_run``): a purge started by hand."""

from __future__ import annotations

import json
import uuid

from django.core.exceptions import ValidationError
from django.db import transaction
from django_celery_beat.models import PeriodicTask

from mlops_portal.queue import apply_on_commit

from .audit import AuditContext, audit_record, diff

SCHEDULE_FIELDS = (
    "name",
    "task",
    "enabled",
    "description",
    "interval",
    "crontab",
    "solar",
    "clocked",
    "start_time",
    "one_off",
    "args",
    "kwargs",
    "expires",
    "expire_seconds",
    "queue",
    "exchange",
    "routing_key",
    "priority",
    "headers",
)


def _state(task: PeriodicTask) -> dict:
    """The task's settings as JSON values (a schedule or a time as its text)."""
    state = {}
    for name in SCHEDULE_FIELDS:
        value = getattr(task, name)
        state[name] = value if value is None or isinstance(value, bool | int | str) else str(value)
    return state


@transaction.atomic
def schedule_save(*, task: PeriodicTask, actor, context: AuditContext) -> PeriodicTask:
    """Create or change a scheduled task: ``schedule.created`` with its settings, or
    ``schedule.changed`` with the settings that changed before and after (none: no event)."""
    before = _state(PeriodicTask.objects.get(pk=task.pk)) if task.pk else None
    task.save()
    after = _state(task)
    if before is None:
        name = task.name
        audit_record(actor=actor, action="schedule.created", obj=task, object_repr=name, context=context, after=after)
        return task
    was, now = diff(before, after)
    if now:
        name = task.name
        audit_record(
            actor=actor, action="schedule.changed", obj=task, object_repr=name, context=context, before=was, after=now
        )
    return task


@transaction.atomic
def schedules_enable(*, tasks, enabled: bool | None, actor, context: AuditContext) -> int:
    """Switch tasks on (``True``), off (``False``, forgetting their last run as the admin's own
    action does) or each the other way (``None``): one audited change per task."""
    rows = list(PeriodicTask.objects.select_for_update().filter(pk__in=[task.pk for task in tasks]).order_by("pk"))
    for task in rows:
        task.enabled = (not task.enabled) if enabled is None else enabled
        if enabled is False:
            task.last_run_at = None
        schedule_save(task=task, actor=actor, context=context)
    return len(rows)


def _run_arguments(task: PeriodicTask) -> tuple[list, dict]:
    try:
        args, kwargs = json.loads(task.args or "[]"), json.loads(task.kwargs or "{}")
    except ValueError:
        raise ValidationError(f"{task.name}: its arguments are not JSON; nothing was run.") from None
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        raise ValidationError(f"{task.name}: its arguments are not a list and an object; nothing was run.")
    return args, kwargs


@transaction.atomic
def schedules_run(*, tasks, actor, context: AuditContext) -> int:
    """Run scheduled tasks now (the admin's "Run selected tasks"): one ``schedule.run`` event
    per task, with the task it calls, its arguments and the Celery task id its run carries; each
    is sent to the broker once the events have committed, never if they roll back. A task whose
    code this installation does not know, or with unreadable arguments, refuses the lot
    (``ValidationError``) before anything is recorded or sent."""
    from mlops_portal.celery import app

    app.loader.import_default_modules()
    rows = list(PeriodicTask.objects.filter(pk__in=[task.pk for task in tasks]).order_by("pk"))
    unknown = sorted({row.task for row in rows if row.task not in app.tasks})
    if unknown:
        raise ValidationError(f"Unknown task: {', '.join(unknown)}; nothing was run.")
    arguments = [_run_arguments(row) for row in rows]
    for row, (args, kwargs) in zip(rows, arguments, strict=True):
        task_id = str(uuid.uuid4())
        after = {"task": row.task, "args": args, "kwargs": kwargs, "queue": row.queue or "", "task_id": task_id}
        audit_record(actor=actor, action="schedule.run", obj=row, object_repr=row.name, context=context, after=after)
        options = {"task_id": task_id, "headers": {"periodic_task_name": row.name}}
        if row.queue:
            options["queue"] = row.queue
        apply_on_commit(app.tasks[row.task], args=args, kwargs=kwargs, **options)
    return len(rows)


@transaction.atomic
def schedule_delete(*, task: PeriodicTask, actor, context: AuditContext) -> None:
    before, name = _state(task), task.name
    audit_record(actor=actor, action="schedule.deleted", obj=task, object_repr=name, context=context, before=before)
    task.delete()


def _tasks_on(timing) -> list[PeriodicTask]:
    """The tasks that run on ``timing`` (a crontab, interval, solar or clocked schedule)."""
    if timing.pk is None:
        return []
    field = {"crontabschedule": "crontab", "intervalschedule": "interval", "solarschedule": "solar"}.get(
        timing._meta.model_name, "clocked"
    )
    return list(PeriodicTask.objects.select_for_update().filter(**{field: timing}).order_by("pk"))


@transaction.atomic
def schedule_timing_save(*, timing, actor, context: AuditContext):
    """Create or change a crontab, interval, solar or clocked schedule: every task that runs on
    it is audited ``schedule.changed`` with its schedule before and after (editing the nightly
    crontab in place moves the retention purge as surely as editing the task). A new one runs
    nothing until a task is set to it, which is audited then."""
    tasks = _tasks_on(timing)
    before = {task.pk: _state(task) for task in tasks}
    timing.save()
    for task in tasks:
        task.refresh_from_db()
        was, now = diff(before[task.pk], _state(task))
        if now:
            audit_record(
                actor=actor,
                action="schedule.changed",
                obj=task,
                object_repr=task.name,
                context=context,
                before=was,
                after=now,
            )
    return timing


@transaction.atomic
def schedule_timing_delete(*, timing, actor, context: AuditContext) -> None:
    """Delete a schedule; the tasks that run on it go with it (the database cascades), each
    audited ``schedule.deleted`` first."""
    for task in _tasks_on(timing):
        schedule_delete(task=task, actor=actor, context=context)
    timing.delete()
