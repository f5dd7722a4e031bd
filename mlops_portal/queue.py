"""The one way both apps queue a Celery task from a write: after the transaction commits.

A broker outage is logged, never raised: the write has committed and the beat sweeps pick the
work up from the database (dirty windows, pending profiles, undelivered webhooks).

A bulk loader may ``hold`` the tasks queued in a block and send each distinct one (task and
arguments) once when it ``release``s them: one sweep of the dirty windows after a day's batches
instead of one per batch, one health evaluation of a model after all its windows.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator

from django.db import transaction

logger = logging.getLogger(__name__)

_held: contextvars.ContextVar[dict | None] = contextvars.ContextVar("held_tasks", default=None)


def _send(task, args, kwargs, options=None) -> None:
    from mlops_portal.celery import TRANSIENT_ERRORS

    try:
        if options:
            task.apply_async(args=list(args), kwargs=kwargs, **options)
        else:
            task.delay(*args, **kwargs)
    except (*TRANSIENT_ERRORS, OSError):  # the broker being down must not fail the write; anything else is a bug
        logger.warning("Broker unavailable: %s not queued now; the beat sweep will pick it up", task.name)


def enqueue_on_commit(task, *args, **kwargs) -> None:
    """Queue ``task.delay(*args, **kwargs)`` after the current transaction commits (held, once
    per task and arguments, inside ``hold``)."""

    def send():
        held = _held.get()
        if held is None:
            _send(task, args, kwargs)
        else:
            held.setdefault((task.name, args, tuple(sorted(kwargs.items()))), (task, args, kwargs))

    transaction.on_commit(send)


def apply_on_commit(task, *, args=(), kwargs=None, **options) -> None:
    """Queue ``task.apply_async(args=…, kwargs=…, **options)`` (a queue, headers, a task id)
    after the current transaction commits; never held."""
    transaction.on_commit(lambda: _send(task, args, kwargs or {}, options))


@contextlib.contextmanager
def hold() -> Iterator[None]:
    """Hold the tasks queued after the commits of this block; ``release`` sends them (and what
    they queue in turn), and the end of the block sends what is still held."""
    token = _held.set({})
    try:
        yield
        release()
    finally:
        _held.reset(token)


def release() -> int:
    """Send the held tasks, each distinct one once, in the order first queued; then, round by
    round, those they queued in turn (held again) until none is left. Returns how many were sent."""
    held, sent = _held.get(), 0
    while held:
        batch = list(held.values())
        held.clear()
        for task, args, kwargs in batch:
            _send(task, args, kwargs)
        sent += len(batch)
    return sent
