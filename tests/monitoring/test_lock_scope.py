"""Row locks on the ingestion and alerting paths lock their own row only (PostgreSQL).

A ``select_for_update()`` on a model whose default ordering follows a foreign key joins the
parent tables, and PostgreSQL's ``FOR UPDATE`` then locks the joined rows too: the model's and
the version's rows. Every transaction inserting a row that refers to them (a window's metrics, an
alert, the next batch) checks its foreign key with ``FOR KEY SHARE`` at commit and waited for
it; under ingestion load a batch and a window computation deadlocked that way (one batch
answered 500; docs/performance.md, "Freshness under load"). Here a second connection takes
that ``FOR KEY SHARE`` with ``NOWAIT`` while the lock is held.
"""

from __future__ import annotations

import numpy as np
import pytest
from django.db import transaction

from monitoring.services.config import monitoring_config_update
from monitoring.services.health import health_evaluate
from monitoring.services.raw_digests import digests_add
from registry.services.audit import CLI
from tests.monitoring.helpers import T0, other_connection

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def key_share_nowait(table: str, pk: int) -> None:
    """What a foreign key check does, without waiting: raises LockNotAvailable if the row is
    locked FOR UPDATE."""
    with other_connection() as conn:
        row = conn.execute(f"SELECT id FROM {table} WHERE id = %s FOR KEY SHARE NOWAIT", [pk]).fetchone()
    assert row == (pk,), "the row must be committed for this check to mean anything"


def test_a_batch_updating_its_day_digest_does_not_lock_the_model_or_version_row(churn, churn_v1):
    with transaction.atomic():  # the day's row, committed
        digests_add(version_id=churn_v1.pk, ids=["a"], ts_us=np.array([int(T0.timestamp() * 1e6)]))
    with transaction.atomic():
        digests_add(version_id=churn_v1.pk, ids=["b"], ts_us=np.array([int(T0.timestamp() * 1e6)]))
        key_share_nowait("registry_registeredmodel", churn.pk)
        key_share_nowait("registry_modelversion", churn_v1.pk)


def test_a_health_evaluation_does_not_lock_the_model_row(churn, owner):
    monitoring_config_update(model=churn, actor=owner, context=CLI, changes={"drift_share_critical": 0.3})
    with transaction.atomic():
        health_evaluate(model=churn)  # holds the config row's lock until this block ends
        key_share_nowait("registry_registeredmodel", churn.pk)


def test_side_by_side_sweeps_never_queue_the_same_window_twice(churn_v1):
    """A sweep runs after every batch, several at once: one that finds a mark another sweep
    holds leaves it to that sweep (two used to read it unclaimed and both queue it: two
    processes then recomputed the live hour at once). Here a second connection holds the
    first hour's mark as a sweep does; this sweep takes the other hour only, without waiting."""
    from datetime import timedelta

    from django.db import connection

    from monitoring.choices import Granularity
    from monitoring.models import DirtyWindow
    from monitoring.services.window_marks import dirty_windows_sweep

    first, second = T0, T0 + timedelta(hours=1)
    for hour in (first, second):
        DirtyWindow.objects.create(version=churn_v1, window_start=hour, granularity=Granularity.HOURLY, marked_at=T0)
    held = DirtyWindow.objects.get(window_start=first).pk
    with other_connection(autocommit=False) as conn:
        conn.execute("SELECT id FROM monitoring_dirtywindow WHERE id = %s FOR UPDATE", [held])
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '2s'")
        try:
            assert dirty_windows_sweep() == [(churn_v1.pk, second, Granularity.HOURLY)]
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET lock_timeout")
        conn.rollback()
    assert dirty_windows_sweep() == [(churn_v1.pk, first, Granularity.HOURLY)]
