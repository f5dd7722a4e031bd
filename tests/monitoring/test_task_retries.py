"""Monitoring tasks retry transient errors (database or broker unreachable) and nothing else:
a programming error or bad data fails the same way on every attempt."""

from __future__ import annotations

import pytest
from django.db import OperationalError, ProgrammingError

from mlops_portal.celery import TRANSIENT_ERRORS
from monitoring import tasks
from monitoring.services import health

pytestmark = pytest.mark.django_db

MONITORING_TASKS = [t for name, t in sorted(tasks.__dict__.items()) if hasattr(t, "apply_async") and t.name]


@pytest.mark.parametrize("task", MONITORING_TASKS, ids=lambda t: t.name)
def test_monitoring_tasks_retry_only_transient_errors(task):
    assert tuple(task.autoretry_for) == TRANSIENT_ERRORS
    assert not any(issubclass(Exception, error) for error in task.autoretry_for)


def _calls_until_given_up(monkeypatch, error: Exception) -> int:
    calls = []

    def failing(**kwargs):
        calls.append(kwargs)
        raise error

    monkeypatch.setattr(health, "health_evaluate_by_id", failing)
    result = tasks.health_evaluate.apply(args=[1])
    assert result.failed()
    return len(calls)


def test_a_programming_error_in_a_task_is_not_retried(monkeypatch):
    assert _calls_until_given_up(monkeypatch, ProgrammingError('relation "x" does not exist')) == 1
    assert _calls_until_given_up(monkeypatch, TypeError("unexpected keyword")) == 1


def test_a_lost_database_connection_is_retried(monkeypatch):
    calls = _calls_until_given_up(monkeypatch, OperationalError("server closed the connection unexpectedly"))
    assert calls == tasks.COMMON["max_retries"] + 1
