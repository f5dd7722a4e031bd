"""The keys of dropped days' predictions, deleted after the purge instead of inside it.

On PostgreSQL a prediction id is kept once per version by the plain table
``monitoring_predictionkey`` (migration 0026), kept in step with the partitioned predictions by
statement-level triggers. Dropping a day's partition fires no trigger, and deleting the day's
keys (a million at the issue's scale) in the purge took half its time (docs/performance.md).
So the purge, in the transaction that drops the partition and writes its receipts, only
records the day (``prediction_keys_schedule``: a ``PredictionKeySweep`` row); once every day
is dropped, the purge queues one sweep (``prediction_keys_sweep_queue``). The sweep
(``prediction_keys_sweep``: task ``monitoring.tasks.prediction_keys_sweep``, queued by the purge
and run by beat after the nightly purge, which also covers a purge stopped before it queued)
deletes the recorded days' keys ``KEYS_SWEEP_BATCH`` at a time, one transaction per batch, and
removes a day's record when no key of it is left.

* Crash-safe: the record commits with the DROP, so no dropped day is forgotten; a sweep stopped
  half-way leaves the record and the next run goes on where it stopped. Running it twice, or
  two workers at once, is harmless (a record is locked per batch; the other worker skips it).
* While a day's keys remain, its ids are still refused for the version (a batch reusing one is
  a 400, as while their rows were stored): ids stay unique, and become free once swept.
* A key whose row is stored again (a back-fill into a day that was dropped) is kept.

SQLite has no keys table (its predictions table keeps the unique constraint): the purge records
nothing there and the sweep does nothing.
"""

from __future__ import annotations

import logging
from datetime import date

from django.db import transaction

from mlops_portal import clock
from mlops_portal.queue import enqueue_on_commit
from monitoring.models import PredictionKeySweep

from . import partitions

logger = logging.getLogger(__name__)
KEYS_SWEEP_BATCH = 1_000_000  # keys deleted per transaction: a day here in one statement
PREDICTIONS = "monitoring_prediction"


def prediction_keys_schedule(*, day: date) -> None:
    """Record that ``day``'s keys are to be deleted, in the caller's transaction (the one that
    drops the day's partition): the record commits with the DROP or not at all."""
    PredictionKeySweep.objects.get_or_create(day=day, defaults={"dropped_at": clock.now()})


def prediction_keys_sweep_queue() -> bool:
    """Queue one sweep (after the current transaction commits) if any dropped day's keys are
    owed → whether one was queued. The purge calls it once, after its last day."""
    from monitoring import tasks

    if not PredictionKeySweep.objects.exists():
        return False
    enqueue_on_commit(tasks.prediction_keys_sweep)
    return True


def _sweep_batch(day: date, batch: int) -> tuple[int, bool]:
    """One transaction: up to ``batch`` keys of ``day`` deleted → (how many, whether the day is
    done). A day another sweep is working on (its record locked) counts as done here."""
    with transaction.atomic():
        owed = PredictionKeySweep.objects.select_for_update(skip_locked=True).filter(day=day).first()
        if owed is None:
            return 0, True
        removed = partitions.prediction_keys_forget(day=day, batch=batch)
        if removed < batch:
            owed.delete()
            return removed, True
        return removed, False


def prediction_keys_sweep(*, batch: int = KEYS_SWEEP_BATCH) -> int:
    """Delete the keys of every recorded dropped day, oldest day first, ``batch`` keys per
    transaction, removing each day's record once none is left → the keys deleted. Nothing to
    do on SQLite (no keys table, so no day is ever recorded there)."""
    if not partitions.is_partitioned(PREDICTIONS):
        return 0
    total = 0
    for day in PredictionKeySweep.objects.order_by("day").values_list("day", flat=True):
        removed, done = 0, False
        while not done:
            count, done = _sweep_batch(day, batch)
            removed += count
        logger.info("prediction keys of %s: %d deleted", day, removed)
        total += removed
    return total


__all__ = ["KEYS_SWEEP_BATCH", "prediction_keys_schedule", "prediction_keys_sweep", "prediction_keys_sweep_queue"]
