"""The window computation's label join with labels partitioned by day (``python -m bench label_join``).

Labels are partitioned by the day they are received (PostgreSQL), so the join of a window's
predictions to their labels reads every label day it cannot rule out. It rules out the days
before ``window start - INGEST_MAX_FUTURE`` (``monitoring.selectors.labels``): no label of a
prediction can have been received before the prediction was made. The join is one statement,
so PostgreSQL chooses between a hash join over the label days since then and an index probe
per prediction and day.

One hour of 10,000 predictions, 8,000 of them labelled, with ``LABEL_DAYS`` days of labels
kept (1,000 other labels a day), timed with ``labelled_predictions`` (the window computation's
one label read; median of 5) for:
- a **recent** window (yesterday): its labels arrived today; every older label day is pruned;
- a **late-labelled** window (``LATE_DAYS`` ago): its labels arrived over the days since, the
  usual case when labels come one to two weeks late;
- the same late window with **dense** labels: ``DENSE_PER_DAY`` more labels a day over the
  days since it (as many as the model predicts at 10,000 an hour: every prediction labelled);
- each with the labels table **unpartitioned** (migrated back to before
  ``0025_partitioned_labels``), the peer. Target: within 2x of the plain table.

Prediction ids are md5 hex strings, as random as the UUIDs pipelines send: labels of other
predictions sort among the window's ids, so no join can stop early in id order (with ids like
``late1`` and ``o1`` a merge join read only the window's own labels).
"""

from __future__ import annotations

import os
import statistics
import time
from datetime import UTC, datetime, timedelta

from bench.common import QUICK, Figure, log

LABEL_DAYS = int(os.environ.get("BENCH_LABEL_DAYS", "60" if QUICK else "400"))
LATE_DAYS = 14
PREDICTIONS, LABELLED, OTHER_PER_DAY = 10_000, 8_000, 1_000
DENSE_PER_DAY = 24_000 if QUICK else 240_000
BEFORE_LABEL_PARTITIONS = ("monitoring", "0016_squashed_0024_plan_created_at_from_the_clock")
TARGET_RATIO = 2.0


def _version():
    from django.contrib.auth import get_user_model
    from django.db import connection

    from registry.models import ModelVersion, RegisteredModel, Team

    owner, _ = get_user_model().objects.get_or_create(username="bench-label-join")
    team, _ = Team.objects.get_or_create(name="bench-label-join")
    earlier = RegisteredModel.objects.filter(name__startswith="bench-label-join-")
    ids = list(earlier.values_list("pk", flat=True))
    with connection.cursor() as c:  # an earlier run's rows (the bench database is shared with other benches)
        c.execute("DELETE FROM monitoring_groundtruth WHERE model_id = ANY(%s)", [ids])
        c.execute(
            "DELETE FROM monitoring_prediction WHERE version_id IN"
            " (SELECT id FROM registry_modelversion WHERE model_id = ANY(%s))",
            [ids],
        )
    name = f"bench-label-join-{int(time.time())}"
    model = RegisteredModel.objects.create(name=name, owner=owner, team=team, intended_use="bench")
    return ModelVersion.objects.create(model=model, version=1, created_by=owner)


def _fill(version, today: datetime) -> dict[str, datetime]:
    """Predictions for a recent and a late window, their labels, and LABEL_DAYS of other labels."""
    from django.db import connection

    from monitoring.services import partitions

    windows = {"recent": today - timedelta(days=1), "late": today - timedelta(days=LATE_DAYS)}
    first = today - timedelta(days=LABEL_DAYS)
    partitions.partitions_ensure(table="monitoring_prediction", days=[w.date() for w in windows.values()])
    days = [(first + timedelta(days=d)).date() for d in range(LABEL_DAYS + 1)]
    partitions.partitions_ensure(table="monitoring_groundtruth", days=days)
    with connection.cursor() as c:
        for name, start in windows.items():
            c.execute(
                "INSERT INTO monitoring_prediction (version_id, prediction_id, timestamp, features, prediction,"
                " score, received_at) SELECT %s, md5(%s || g), %s + g * interval '0.3 second', '{}', '\"1\"', 0.5, %s"
                " FROM generate_series(1, %s) g",
                [version.pk, name, start, start, PREDICTIONS],
            )
            spread = max(1, (today - start).days)  # the labels arrive over the days since the window
            c.execute(
                "INSERT INTO monitoring_groundtruth (model_id, prediction_id, label, received_at)"
                " SELECT %s, md5(%s || g), '\"1\"', %s + (g %% %s + 1) * interval '1 day' - interval '1 hour'"
                " FROM generate_series(1, %s) g",
                [version.model_id, name, start, spread, LABELLED],
            )
        c.execute(
            "INSERT INTO monitoring_groundtruth (model_id, prediction_id, label, received_at)"
            " SELECT %s, md5('o' || g), '\"0\"', %s + (g %% %s) * interval '1 day' FROM generate_series(1, %s) g",
            [version.model_id, first, LABEL_DAYS, OTHER_PER_DAY * LABEL_DAYS],
        )
        c.execute("ANALYZE monitoring_groundtruth")
        c.execute("ANALYZE monitoring_prediction")
    return windows


def _time(version, start: datetime) -> float:
    from monitoring.selectors.labels import labelled_predictions

    runs = []
    for _ in range(5):
        began = time.perf_counter()
        y_true = labelled_predictions(version, start, start + timedelta(hours=1))
        runs.append(time.perf_counter() - began)
    assert len(y_true) == LABELLED, len(y_true)
    return statistics.median(runs)


def _densify(version, late: datetime, today: datetime) -> int:
    """DENSE_PER_DAY more labels a day (of other prediction ids) from the late window to today."""
    from django.db import connection

    days = (today - late).days
    with connection.cursor() as c:
        c.execute(
            "INSERT INTO monitoring_groundtruth (model_id, prediction_id, label, received_at)"
            " SELECT %s, md5('x' || g), '\"0\"',"
            " %s + (g %% %s + 1) * interval '1 day' - (g %% 997) * interval '1 minute' FROM generate_series(1, %s) g",
            [version.model_id, late, days, DENSE_PER_DAY * days],
        )
        c.execute("ANALYZE monitoring_groundtruth")
    return DENSE_PER_DAY * days


def _figure(name: str, ours: float, plain: float) -> Figure:
    ratio = ours / plain
    return Figure(name, ours * 1000, "ms", "plain table", plain * 1000, ratio, f"<= {TARGET_RATIO:g}x plain",
                  ratio <= TARGET_RATIO)  # fmt: skip


def run() -> list[Figure]:
    from django.core.management import call_command
    from django.db import connection

    from monitoring.services import partitions

    if connection.vendor != "postgresql":
        raise SystemExit("the label join benchmark needs PostgreSQL")
    today = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    version = _version()
    windows = _fill(version, today)
    kept = len(partitions.partition_days("monitoring_groundtruth"))
    log(f"label join: {LABEL_DAYS} label days kept ({kept} partitions)")
    recent, late = _time(version, windows["recent"]), _time(version, windows["late"])
    call_command("migrate", *BEFORE_LABEL_PARTITIONS, verbosity=0)
    try:
        with connection.cursor() as c:
            c.execute("ANALYZE monitoring_groundtruth")
        plain_recent, plain_late = _time(version, windows["recent"]), _time(version, windows["late"])
        dense = _densify(version, windows["late"], today)
        plain_dense = _time(version, windows["late"])
    finally:
        call_command("migrate", verbosity=0)
    with connection.cursor() as c:
        c.execute("ANALYZE monitoring_groundtruth")
    late_dense = _time(version, windows["late"])
    log(f"  late window: {late * 1000:.0f} ms sparse, {late_dense * 1000:.0f} ms with {dense:,} more labels")
    name = f"label join, 10,000 predictions, {kept} label partitions"
    return [
        _figure(f"{name}: window of yesterday", recent, plain_recent),
        _figure(f"{name}: window {LATE_DAYS} days ago", late, plain_late),
        _figure(f"{name}: window {LATE_DAYS} days ago, {DENSE_PER_DAY:,} labels a day since", late_dense, plain_dense),
    ]
