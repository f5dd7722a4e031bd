"""The one way both apps queue a Celery task from a write: after the transaction commits.

A broker outage is logged, never raised: the write has committed and the beat sweeps pick the
work up from the database (dirty windows, pending profiles, undelivered webhooks).
"""

from __future__ import annotations

import logging

from django.db import transaction

logger = logging.getLogger(__name__)


def enqueue_on_commit(task, *args, **kwargs) -> None:
    """Queue ``task.delay(*args, **kwargs)`` after the current transaction commits."""

    from mlops_portal.celery import TRANSIENT_ERRORS

    def send():
        try:
            task.delay(*args, **kwargs)
        except (*TRANSIENT_ERRORS, OSError):  # the broker being down must not fail the write; anything else is a bug
            logger.warning("Broker unavailable: %s not queued now; the beat sweep will pick it up", task.name)

    transaction.on_commit(send)
