"""Every Celery task of both apps can be queued with the project's settings.

Celery checks a task's time limits when it is queued (``Task.apply_async``): a task whose own
``time_limit`` is below the global ``CELERY_TASK_SOFT_TIME_LIMIT`` and that sets no
``soft_time_limit`` of its own inherits the global soft limit, and ``apply_async`` raises
``ValueError: soft_time_limit must be less than or equal to time_limit``. Services queue
tasks after their commit and a broker error there is only logged, so such a task is never
queued and nothing fails loudly. Here each task is published for real, on Kombu's in-memory
transport (no worker, no eager mode), and read back from the queue.
"""

from __future__ import annotations

import inspect

import pytest
from kombu import Connection

from mlops_portal.celery import app

OUR_APPS = ("monitoring", "registry")


def our_tasks() -> dict:
    app.loader.import_default_modules()  # the tasks modules of every installed app
    return {name: task for name, task in sorted(app.tasks.items()) if name.split(".")[0] in OUR_APPS}


def placeholder_args(task) -> list:
    """One integer per required positional parameter (every task of ours takes ids)."""
    parameters = inspect.signature(task.run).parameters.values()
    return [1 for p in parameters if p.default is inspect.Parameter.empty and p.kind == p.POSITIONAL_OR_KEYWORD]


def test_both_apps_register_their_tasks():
    names = set(our_tasks())
    assert {"monitoring.tasks.window_compute", "monitoring.tasks.profiles_sweep_pending"} <= names
    assert {"registry.tasks.webhook_deliver", "registry.tasks.mlflow_writeback_model"} <= names


@pytest.mark.parametrize("name", sorted(our_tasks()))
def test_every_registered_task_can_be_queued_with_the_project_settings(name):
    task = app.tasks[name]
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False  # publish for real; the unit tests' fixture runs tasks inline
    try:
        with Connection("memory://") as connection:
            queue = connection.SimpleQueue(app.amqp.router.route({}, name)["queue"].name)  # its routed queue
            with app.amqp.Producer(connection) as producer:
                task.apply_async(args=placeholder_args(task), producer=producer)
            message = queue.get(timeout=5)
            assert message.headers["task"] == name
            hard, soft = message.headers["timelimit"]
            assert hard is None or soft is None or soft <= hard
            message.ack()
            queue.close()
    finally:
        app.conf.task_always_eager = eager


def test_time_limits_leave_room_for_the_soft_limit():
    for name, task in our_tasks().items():
        if task.time_limit and task.soft_time_limit:
            assert task.soft_time_limit < task.time_limit, name


ALERT_PATH = ("monitoring.tasks.monitoring_sweep_dirty_windows", "monitoring.tasks.health_evaluate")


@pytest.mark.parametrize("name", sorted(our_tasks()))
def test_the_short_tasks_between_a_batch_and_its_alert_have_a_queue_of_their_own(name):
    """The dirty-window sweep and the health evaluation go to "alerts", every other task to the
    default queue, so an alert never waits behind a queue of window recomputations
    (docs/performance.md, "Freshness under load")."""
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    try:
        with Connection("memory://") as connection:
            with app.amqp.Producer(connection) as producer:
                app.tasks[name].apply_async(args=placeholder_args(app.tasks[name]), producer=producer)
            queues = {q: connection.SimpleQueue(q) for q in ("alerts", app.conf.task_default_queue)}
            holding = [q for q, simple in queues.items() if simple.clear()]  # clear(): how many it removed
            for simple in queues.values():
                simple.close()
    finally:
        app.conf.task_always_eager = eager
    assert holding == (["alerts"] if name in ALERT_PATH else [app.conf.task_default_queue])


def test_a_worker_consumes_the_alerts_queue_first():
    """A worker started without -Q (the Procfile's, the README's) consumes every queue, "alerts"
    first; on Redis its BRPOP keeps that order (the priority strategy, not round robin)."""
    assert list(app.amqp.queues.consume_from) == ["alerts", "celery"]
    from django.conf import settings

    assert app.conf.task_acks_late and app.conf.worker_prefetch_multiplier == 1
    if settings.CELERY_BROKER_URL.startswith("redis"):
        assert app.conf.broker_transport_options["queue_order_strategy"] == "priority"
