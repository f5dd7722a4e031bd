"""mlops_portal.queue: a bulk loader holds the tasks its writes queue and sends each distinct one
once (the demo: one sweep of a day's windows, one health evaluation per model)."""

from __future__ import annotations

import pytest
from celery import shared_task
from django.db import transaction

from mlops_portal import queue
from mlops_portal.celery import app

pytestmark = pytest.mark.django_db

SENT: list[tuple] = []


@shared_task(name="tests.test_queue_hold.record")
def record(value, *, then=None) -> None:
    SENT.append((value, then))
    if then is not None:  # a task that queues another after its own write, as window_compute does
        queue.enqueue_on_commit(record, then)


@pytest.fixture
def eager():
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    SENT.clear()
    yield SENT
    app.conf.task_always_eager = previous


def test_without_hold_each_commit_sends_its_tasks(eager, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        queue.enqueue_on_commit(record, 1)
        queue.enqueue_on_commit(record, 1)
    assert eager == [(1, None), (1, None)]


@pytest.mark.django_db(transaction=True)  # real commits: the held tasks' own writes commit as they run
def test_hold_sends_each_distinct_task_once_at_release_then_what_they_queue(eager):
    with queue.hold():
        with transaction.atomic():
            queue.enqueue_on_commit(record, 1, then=9)
            queue.enqueue_on_commit(record, 2, then=9)
            queue.enqueue_on_commit(record, 1, then=9)
        assert eager == []  # committed, held
        assert queue.release() == 3  # 1 and 2, then the 9 both queued, once
        assert eager == [(1, 9), (2, 9), (9, None)]
        assert queue.release() == 0
    assert eager == [(1, 9), (2, 9), (9, None)]


def test_the_end_of_the_hold_sends_what_is_still_held(eager, django_capture_on_commit_callbacks):
    with queue.hold():
        with django_capture_on_commit_callbacks(execute=True):
            queue.enqueue_on_commit(record, 5)
        assert eager == []
    assert eager == [(5, None)]
    with django_capture_on_commit_callbacks(execute=True):  # not held any more
        queue.enqueue_on_commit(record, 5)
    assert eager == [(5, None), (5, None)]
