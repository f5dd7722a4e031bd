"""What a recomputation of the live hour costs (``python -m bench live_window``).

Under ingestion the live hour is marked dirty by every batch and recomputed back to back. It is
read a slice of prediction time at a time (``WINDOW_SLICE_SECONDS``, 10 s;
``monitoring.services.window_slices``): a recomputation re-reads only the slices whose rows
changed and sums the others' stored counts. Before slices, every recomputation read the whole
hour, so its cost grew with the hour (at 35,000 rows/s an hour holds 126 M rows).

One version of 20 numeric features with a reference profile; its live hour holds
``ROWS`` rows over its first 50 minutes plus a live slice of ``LIVE`` rows (10 s at 35,000
rows/s), loaded with one ``INSERT … generate_series``. Timed with ``window_compute`` of the
hour (what the worker runs), median of 3 where nothing is added:
- the hour read whole (its slices forgotten): what every recomputation cost before slices,
  the peer of the figures below;
- a recomputation with nothing changed (sums of the stored slices);
- after a 10,000-row batch (``predictions_ingest``) into an empty slice;
- after a 10,000-row batch into the live slice (re-read with its ``LIVE`` rows).
Limit: 60 s, the freshness target of issue 21 (d): a recomputation longer than that leaves the
live hour's drift older than the target however many workers there are.
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime, timedelta

from bench.common import QUICK, Figure, log

ROWS = 200_000 if QUICK else 2_000_000
LIVE = 35_000 if QUICK else 350_000
FEATURES = 20
NAMES = [f"f{i:02d}" for i in range(FEATURES)]
LIMIT = 60.0


def _version():
    from bench.freshness import _frame
    from bench.monitoring_ingest import bench_version
    from monitoring.services.ingestion import reference_upload
    from monitoring.services.reference_profiles import reference_profile_compute
    from registry.services.audit import CLI

    user, _, version = bench_version(name="bench-live-window", features=NAMES)
    body = _frame(50_000, 1).to_csv(index=False).encode()
    profile = reference_upload(version=version, body=body, content_type="text/csv", actor=user, context=CLI)
    reference_profile_compute(profile_id=profile.pk)
    version.refresh_from_db()
    return user, version


def _fill(version, hour: datetime) -> None:
    from django.db import connection

    from monitoring.services import partitions

    partitions.partitions_ensure(table="monitoring_prediction", days=[hour.date()])
    features = ", ".join(f"'{n}', round((random() * 2 - 1)::numeric, 4)" for n in NAMES)
    sql = (
        "INSERT INTO monitoring_prediction (version_id, prediction_id, timestamp, features, prediction, score,"
        f" received_at) SELECT %s, %s || g, %s + ((g %% %s)::bigint * %s) * interval '1 microsecond',"
        f" jsonb_build_object({features}), to_jsonb((g %% 2)::int), random(), now()"
        " FROM generate_series(1, %s) g"
    )
    with connection.cursor() as c:
        c.execute(sql, [version.pk, "hour-", hour, ROWS, 50 * 60 * 1_000_000 // ROWS, ROWS])
        c.execute(sql, [version.pk, "live-", hour + timedelta(minutes=50), LIVE, 10 * 1_000_000 // LIVE, LIVE])
        c.execute("ANALYZE monitoring_prediction")


def _compute(version, hour: datetime) -> float:
    from monitoring.choices import Granularity
    from monitoring.services.windows import window_compute

    began = time.perf_counter()
    window_compute(version_id=version.pk, window_start=hour, granularity=Granularity.HOURLY)
    return time.perf_counter() - began


def _batch(user, version, at: datetime, tag: str) -> None:
    from bench.freshness import _frame
    from monitoring.services.ingestion import predictions_ingest
    from registry.services.audit import CLI

    frame = _frame(10_000, 7)
    frame.insert(0, "timestamp", at.isoformat())
    frame.insert(0, "prediction_id", [f"{tag}{i}" for i in range(10_000)])
    body = frame.to_csv(index=False).encode()
    predictions_ingest(version=version, body=body, content_type="text/csv", actor=user, context=CLI)


def run() -> list[Figure]:
    from django.conf import settings
    from django.db import connection, transaction

    from monitoring.models import WindowSlice
    from monitoring.services.windows import windows_mark_dirty

    if connection.vendor != "postgresql":
        raise SystemExit("the live window benchmark needs PostgreSQL")
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)  # slices kept: 6 h
    user, version = _version()
    _fill(version, hour)
    whole = []
    for _ in range(3):
        with transaction.atomic():
            windows_mark_dirty(version_id=version.pk, hours=[hour], slices=None)
        whole.append(_compute(version, hour))
    unchanged = statistics.median(_compute(version, hour) for _ in range(3))
    slices = WindowSlice.objects.filter(version=version).count()
    _batch(user, version, hour + timedelta(minutes=55), "empty-")
    empty = _compute(version, hour)
    _batch(user, version, hour + timedelta(minutes=50, seconds=5), "live-batch-")
    live = _compute(version, hour)
    total, width, peer = ROWS + LIVE + 20_000, settings.WINDOW_SLICE_SECONDS, statistics.median(whole)
    log(f"live window: {total:,} rows in the hour, {slices} slices of {width} s, whole read {peer:.2f} s")
    name = f"live hour of {ROWS + LIVE:,} rows, recomputation"
    note = (
        f"slices of {width} s; peer: the same hour read whole (median of 3: {', '.join(f'{w:.2f}' for w in whole)} s)"
    )
    return [
        Figure(f"{name}: nothing changed", unchanged, "s", "hour read whole", peer, unchanged / peer,
               f"< {LIMIT:g} s", unchanged < LIMIT, note),
        Figure(f"{name}: after 10,000 rows in an empty slice", empty, "s", "hour read whole", peer, empty / peer,
               f"< {LIMIT:g} s", empty < LIMIT, note),
        Figure(f"{name}: after 10,000 rows in the live slice of {LIVE:,}", live, "s", "hour read whole", peer,
               live / peer, f"< {LIMIT:g} s", live < LIMIT, note),
    ]  # fmt: skip
