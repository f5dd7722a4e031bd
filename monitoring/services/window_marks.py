"""Dirty-window marks: the claim and lease of a computation, its end, its failure, the sweep.

A window's ``DirtyWindow`` mark is the only record that its inputs changed, so it goes away
only in the transaction that stores the window's results (``window_done``) or its failure
(``window_failure_record``), and only if nobody marked it again meanwhile (``marked_at``
unchanged since the claim). A worker killed mid-window therefore leaves the mark in place:

* ``window_claim`` stamps the mark with a lease (``WINDOW_LEASE``) when a computation starts;
* ``window_lease_kept`` renews that lease while the computation runs (below);
* ``dirty_windows_sweep`` (beat, every minute) queues marks never queued, marks queued long ago
  whose message may be lost (``REQUEUE_AFTER``), and claimed marks whose lease expired;
* a computation whose lease expired anyway (renewals failing) may run twice; results are
  upserts on unique keys and the mark goes only if unchanged, so a second run costs time,
  never correctness.

Lease renewal. Under ingestion the live hour's computation outgrew the 2-minute lease and the
sweep queued it again while it ran: one more whole-hour read at once (docs/performance.md,
"Freshness under load"). A lease as long as ``window_compute``'s time limit would stop that but
leave a killed computation's window stale for 15 minutes. So the lease stays short and a
running computation renews it: a daemon thread of the computing process, with its own database
connection, calls ``window_lease_renew`` every ``WINDOW_LEASE / RENEWALS_PER_LEASE`` (20 s)
until the computation ends, then stops and closes its connection. Not renewals at the
computation's checkpoints: an hour's computation is a few steps that each read or bin the whole
hour, and one step can outlast a renewal interval alone (an hour of 1 M rows, on PostgreSQL at a load of
9-11 on two CPUs: ``load_window_columns``'s one aggregate statement 5-28 s, the labelled rows'
count and join 11.5 s, for a whole computation of 15-17 s; the live hour under ingestion took
182 s at 8 min, and at 50,000 rows/s holds 180 M rows). The thread dies with its process
(SIGKILL, the time limit's kill), so a dead computation's window is queued again within about
``WINDOW_LEASE``; since renewal, the lease is 1 minute (it was 2 before, with no renewal), so a
killed computation's window is recomputed sooner; one caveat: a renewal already waiting for the mark's row lock when
the process dies may still land, once, which delays that by one more lease at most. A renewal
updates only a mark still held by this claim (``claimed_at`` unchanged and a lease in place),
so it never revives a claim finished, freed, released, re-queued by the sweep or taken over.

A failure that retrying will not cure (the window's data) is stored as a ``WindowFailure`` and
the mark goes, so the window is not retried in a loop; new data marks it dirty again.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import DatabaseError, connections, transaction
from django.db.models import F, Q

from mlops_portal import clock
from monitoring.models import DirtyWindow, WindowFailure
from registry.models import ModelVersion
from registry.services.audit import WORKER, AuditContext, audit_record

logger = logging.getLogger(__name__)

SWEEP_BATCH = 500
REQUEUE_AFTER = timedelta(minutes=10)
WINDOW_LEASE = timedelta(minutes=1)  # renewed every 20 s while the computation runs
RENEWALS_PER_LEASE = 3
REASON_MAX = 2000


@dataclass(frozen=True)
class Claim:
    """A computation's hold on one window: ``marked_at`` as it was when the computation began
    (None: the window was not marked) and ``claimed_at``, the claim's stamp on the mark (None:
    no mark was claimed)."""

    version_id: int
    window_start: datetime
    granularity: str
    marked_at: datetime | None
    claimed_at: datetime | None = None

    def marks(self):
        return DirtyWindow.objects.filter(
            version_id=self.version_id, window_start=self.window_start, granularity=self.granularity
        )


def window_claim(*, version_id: int, window_start: datetime, granularity: str, free_only=False, now=None) -> Claim:
    """Note that a computation of the window starts now; its lease ends ``WINDOW_LEASE`` later.
    ``free_only``: only if the mark is neither queued nor claimed, decided by the update itself
    (a day computing its dirty hours inline; the sweep may queue one meanwhile)."""
    now = now or clock.now()
    claim_qs = DirtyWindow.objects.filter(version_id=version_id, window_start=window_start, granularity=granularity)
    marked_at = claim_qs.values_list("marked_at", flat=True).first()
    if free_only:
        claim_qs = claim_qs.filter(enqueued_at__isnull=True, lease_until__isnull=True)
    claimed = marked_at is not None and claim_qs.update(claimed_at=now, lease_until=now + WINDOW_LEASE)
    return Claim(version_id, window_start, granularity, marked_at, now if claimed else None)


def window_lease_renew(claim: Claim, *, now=None) -> bool:
    """Extend the claim's lease to ``WINDOW_LEASE`` from now if the mark is still this claim's:
    stamped with its ``claimed_at`` and still leased. A mark since removed, freed or released
    (lease cleared), re-queued by the sweep (lease cleared) or claimed by another computation
    (``claimed_at`` changed) is left as it is. Returns whether the claim is still held."""
    if claim.claimed_at is None:
        return False
    now = now or clock.now()
    held = claim.marks().filter(claimed_at=claim.claimed_at, lease_until__isnull=False)
    return bool(held.update(lease_until=now + WINDOW_LEASE))


class _LeaseKeeper(threading.Thread):
    """Renews one claim's lease every ``WINDOW_LEASE / RENEWALS_PER_LEASE`` until stopped or
    the claim is lost, on this thread's own database connection (closed when it ends)."""

    def __init__(self, claim: Claim):
        super().__init__(name=f"window-lease {claim.version_id} {claim.granularity} {claim.window_start}", daemon=True)
        self.claim = claim
        self.interval = WINDOW_LEASE.total_seconds() / RENEWALS_PER_LEASE
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.wait(self.interval):
                try:
                    if not window_lease_renew(self.claim):
                        logger.info("%s: claim no longer held, lease no longer renewed", self.name)
                        return
                except DatabaseError:  # the next renewal may succeed before the lease ends
                    logger.warning("%s: lease renewal failed", self.name, exc_info=True)
        finally:
            connections.close_all()  # this thread's connections only


@contextlib.contextmanager
def window_lease_kept(claim: Claim):
    """Keep the claim's lease renewed for the duration of the block (see the module docstring);
    nothing to keep if no mark was claimed."""
    if claim.claimed_at is None:
        yield
        return
    keeper = _LeaseKeeper(claim)
    keeper.start()
    try:
        yield
    finally:
        keeper.stopped.set()
        keeper.join(timeout=keeper.interval)  # a renewal waiting for a lock cannot revive the claim
        if keeper.is_alive():
            logger.warning("%s: still renewing after the computation ended", keeper.name)


def _mark_remove(claim: Claim) -> bool:
    """Remove the mark if nobody marked the window again since the claim; else free it for the
    sweep to queue once more (rows may have arrived after this computation read them). Call
    inside the storing transaction."""
    removed = 0
    if claim.marked_at is not None:
        removed, _ = claim.marks().filter(marked_at=claim.marked_at).delete()
    if not removed:
        claim.marks().update(claimed_at=None, lease_until=None, enqueued_at=None)
    return bool(removed)


def window_done(claim: Claim) -> bool:
    """The window's results are stored (call inside that transaction): its mark and any
    earlier failure go. Returns whether the mark went (False: marked again meanwhile)."""
    WindowFailure.objects.filter(
        version_id=claim.version_id, window_start=claim.window_start, granularity=claim.granularity
    ).delete()
    return _mark_remove(claim)


def window_release(claim: Claim) -> None:
    """Give the window back without results (a transient error: the task retries)."""
    claim.marks().update(lease_until=None)


@transaction.atomic
def window_failure_record(*, claim: Claim, reason: str, context: AuditContext = WORKER, now=None) -> WindowFailure:
    """Store why the window cannot be computed and remove its mark (unless marked again since
    the claim), with an audit event ``window.failed``."""
    now = now or clock.now()
    key = {"version_id": claim.version_id, "window_start": claim.window_start, "granularity": claim.granularity}
    reason = reason.replace("\x00", "\\x00")[:REASON_MAX]  # text columns refuse NUL
    updated = WindowFailure.objects.filter(**key).update(reason=reason, failed_at=now, attempts=F("attempts") + 1)
    if not updated:
        failure = WindowFailure(**key, reason=reason, failed_at=now)
        failure.full_clean(validate_unique=False, validate_constraints=False)
        failure.save()
    failure = WindowFailure.objects.get(**key)
    _mark_remove(claim)
    version = ModelVersion.objects.select_related("model").get(pk=claim.version_id)
    audit_record(
        actor=None,
        action="window.failed",
        context=context,
        obj=version,
        after={
            "window_start": claim.window_start.isoformat(),
            "granularity": claim.granularity,
            "reason": reason[:500],
            "attempts": failure.attempts,
        },
    )
    return failure


def windows_mark_dirty_one(version_id: int, start: datetime, granularity: str) -> None:
    """Mark one window dirty; queued already, it stays queued once (see ``windows_mark_dirty``).
    One upsert (every finished hour marks its day: a select, an update and a savepoint's two
    statements before)."""
    DirtyWindow.objects.bulk_create(
        [DirtyWindow(version_id=version_id, window_start=start, granularity=granularity, marked_at=clock.now())],
        update_conflicts=True,
        unique_fields=["version", "window_start", "granularity"],
        update_fields=["marked_at"],
    )


def dirty_windows_sweep(*, limit: int = SWEEP_BATCH, now=None) -> list[tuple[int, datetime, str]]:
    """Claim dirty windows for queueing (hourly before daily, newest first: the latest window is
    the one health reads, so fresh data reaches the alerts before older windows re-labelled or
    backfilled are recomputed; docs/performance.md, "Freshness"): never queued,
    queued more than ``REQUEUE_AFTER`` ago and not being computed, or whose computation's
    lease expired (its worker died). Marks stay until their computation removes them.

    Sweeps run side by side (one is queued after every batch): on PostgreSQL each locks the
    marks it takes and skips those another sweep (or a batch marking them) holds, so no window
    is queued twice by two sweeps; both read it unclaimed before either stamped it, and two
    processes then recomputed the live hour at once (docs/performance.md, "Freshness")."""
    now = now or clock.now()
    unclaimed = Q(lease_until__isnull=True) & (Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=now - REQUEUE_AFTER))
    expired = Q(lease_until__lt=now)
    with transaction.atomic():
        due = DirtyWindow.objects.filter(unclaimed | expired).select_for_update(skip_locked=True, of=("self",))
        marks = list(due.order_by("-granularity", "-window_start", "pk")[:limit])
        for mark in marks:
            if mark.lease_until is not None:
                logger.warning(
                    "%s was claimed at %s and not finished by its lease: queued again", mark, mark.claimed_at
                )
        DirtyWindow.objects.filter(pk__in=[m.pk for m in marks]).update(enqueued_at=now, lease_until=None)
    return [(m.version_id, m.window_start, m.granularity) for m in marks]
