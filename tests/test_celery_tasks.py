"""Every Celery task of the project can be queued with the project's settings.

Celery refuses to queue a task (``ValueError`` in ``apply_async``) whose hard time limit is
below the project's soft limit (``CELERY_TASK_SOFT_TIME_LIMIT``) unless the task sets its own
soft limit; ``mlflow_writeback_model`` once did, and the alias write-back after an approval
was never queued. Each task is published here for real, on an in-memory broker, the way a
view or a service queues it (not called directly, and not run eagerly)."""

from __future__ import annotations

import inspect

from kombu import Connection

from mlops_portal.celery import app


def _project_tasks() -> dict:
    app.loader.import_default_modules()  # what a worker does at start: every app's tasks module
    return {name: task for name, task in app.tasks.items() if name.split(".", 1)[0] in ("registry", "monitoring")}


def test_the_project_tasks_are_found():
    names = set(_project_tasks())
    assert {"registry.tasks.mlflow_writeback_model", "registry.tasks.webhook_deliver"} <= names
    assert "monitoring.tasks.health_evaluate" in names


def test_every_registered_task_can_be_queued_with_the_projects_settings(db):
    queued = []
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False  # publish for real, as production does
    try:
        with Connection("memory://") as connection:
            producer = connection.Producer()
            for name, task in sorted(_project_tasks().items()):
                params = [
                    p
                    for p in inspect.signature(task.run).parameters.values()
                    if p.default is inspect.Parameter.empty and p.kind is p.POSITIONAL_OR_KEYWORD
                ]
                task.apply_async(args=[1] * len(params), producer=producer)  # ValueError on bad limits
                queued.append(name)
            queue = connection.SimpleQueue("celery")
            assert queue.qsize() == len(queued)
            queue.close()
    finally:
        app.conf.task_always_eager = eager


def test_time_limits_leave_room_for_the_soft_limit():
    for name, task in _project_tasks().items():
        if task.time_limit and task.soft_time_limit:
            assert task.soft_time_limit < task.time_limit, name
