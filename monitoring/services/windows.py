"""Window computation: per-window bin counts and metrics, from stored predictions and labels.

* Hourly windows are binned from raw prediction rows; their fine counts are stored in
  ``WindowBinCounts`` (one row per feature, for the dashboards) and ``PackedBinCounts`` (one
  row per window, for the rollups), both upserted, and their metrics in ``MetricValue`` (upsert).
* Daily windows are the sum of their 24 hourly counts (never re-binned from raw rows);
  the day's dirty hours not queued elsewhere are recomputed first. Performance metrics (not additive) are
  computed from the labelled rows of the window.
* Idempotent: every result row has a unique key and is upserted, so running a window twice
  (or a redelivered task) leaves the same rows.
* A window's dirty mark goes only in the transaction that stores its results, and only if no
  data marked it again meanwhile; a killed computation is reclaimed after its lease; a window
  whose data makes the computation fail is recorded as failed, not retried in a loop
  (``monitoring.services.window_marks``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Sum

from mlops_portal import clock
from mlops_portal.celery import TRANSIENT_ERRORS
from mlops_portal.db import datetime_param, fetch_all, is_postgresql
from mlops_portal.queue import enqueue_on_commit
from monitoring import performance, stats, tasks
from monitoring.choices import Granularity, Metric, ProfileStatus
from monitoring.fairness_monitoring import window_fairness_rows
from monitoring.models import (
    DirtyWindow,
    MetricValue,
    MonitoringConfig,
    PackedBinCounts,
    ReferenceProfile,
    WindowBinCounts,
)
from monitoring.selectors.labels import labelled_predictions
from monitoring.selectors.metrics import hours_metrics
from registry.models import ModelVersion

from . import estimates, live_evidence, llm_windows, window_slices
from .packed_counts import pack_counts, sum_packed
from .window_marks import (
    Claim,
    window_claim,
    window_done,
    window_failure_record,
    window_lease_kept,
    window_release,
    windows_mark_dirty_one,
)

# --------------------------------------------------------------------------- window times and dirty marks


def hour_floor(ts: datetime) -> datetime:
    return ts.replace(minute=0, second=0, microsecond=0)


def day_floor(ts: datetime) -> datetime:
    return ts.replace(hour=0, minute=0, second=0, microsecond=0)


def window_bounds(window_start: datetime, granularity: str) -> tuple[datetime, datetime]:
    start = hour_floor(window_start) if granularity == Granularity.HOURLY else day_floor(window_start)
    return start, start + (timedelta(hours=1) if granularity == Granularity.HOURLY else timedelta(days=1))


def windows_mark_dirty(*, version_id: int, hours: Iterable[datetime], slices: Iterable[datetime] | None) -> int:
    """Mark the hourly windows and their days dirty (call inside the ingesting transaction),
    and ``slices`` (their starts), the slices of those hours whose rows changed (their next
    computation re-reads these only, ``window_slices``); ``slices=None``: the hours are read
    whole again.

    A window already queued stays queued once (``enqueued_at`` is kept): the queued computation
    reads this batch's rows, and one that has already begun finds its mark changed when it ends
    and frees it for the sweep (``window_marks._mark_remove``). Re-queueing on every batch
    filled the queue with copies of the live hour under steady ingestion (docs/performance.md,
    "Freshness")."""
    now = clock.now()
    hours = set(hours)
    if slices is None:
        window_slices.slices_forget(version_id=version_id, hours=hours)
    else:
        window_slices.slices_mark_dirty(version_id=version_id, slices=slices)
    days = {day_floor(h) for h in hours}
    marks = [
        DirtyWindow(version_id=version_id, window_start=h, granularity=Granularity.HOURLY, marked_at=now)
        for h in sorted(hours)
    ] + [DirtyWindow(version_id=version_id, window_start=d, granularity=Granularity.DAILY, marked_at=now) for d in days]
    if marks:
        DirtyWindow.objects.bulk_create(
            marks,
            update_conflicts=True,
            unique_fields=["version", "window_start", "granularity"],
            update_fields=["marked_at"],
            batch_size=1000,
        )
    return len(marks)


logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- reading


def ready_profile(version_id: int) -> dict[str, Any] | None:
    ref = ReferenceProfile.objects.filter(version_id=version_id, status=ProfileStatus.READY).only("profile").first()
    return ref.profile if ref else None


def _performance_rows(
    version: ModelVersion, labelled: list, config: MonitoringConfig | None, *, total: int
) -> list[dict]:
    """The window's label coverage and performance metrics from its labelled predictions
    (``labelled_predictions``); ``total`` is its row count, which the caller has already (the
    hour's column read counts its rows; a day sums its hours)."""
    y_true, y_pred, score = [r[1] for r in labelled], [r[2] for r in labelled], [r[3] for r in labelled]
    threshold = config.label_coverage_threshold if config else 0.8
    coverage = len(y_true) / total if total else 0.0
    provisional = coverage < threshold
    out = [
        {"feature": "", "metric": Metric.LABELLED, "value": float(len(y_true)), "provisional": False},
        {"feature": "", "metric": Metric.LABEL_COVERAGE, "value": coverage, "provisional": False},
    ]
    if y_true:
        pairs = [(t, p, s) for t, p, s in zip(y_true, y_pred, score, strict=True) if p is not None]
        if pairs:
            t, p, s = zip(*pairs, strict=True)
            has_score = any(v is not None for v in s)
            values = performance.performance_metrics(
                version.task_type, list(t), list(p), list(s) if has_score else None, version.positive_class
            )
            for name, value in values.items():
                out.append({"feature": "", "metric": name, "value": value, "provisional": provisional})
    return out


# --------------------------------------------------------------------------- storing


def _store_counts(version_id: int, window_start: datetime, granularity: str, window: dict) -> None:
    """The window's per-feature rows (the dashboards read them) and its packed row (the
    rollups read it), upserted together: the caller holds the transaction. Their ``computed_at``
    is stamped by the field (``clock.UpdatedAtField``)."""
    WindowBinCounts.objects.bulk_create(
        [
            WindowBinCounts(
                version_id=version_id,
                window_start=window_start,
                granularity=granularity,
                feature=name,
                counts=[int(c) for c in fc.counts],
                n=fc.n,
                missing=fc.missing,
                out_of_range=fc.out_of_range,
                unseen=fc.unseen,
            )
            for name, fc in window.items()
        ],
        update_conflicts=True,
        unique_fields=["version", "window_start", "granularity", "feature"],
        update_fields=["counts", "n", "missing", "out_of_range", "unseen", "computed_at"],
    )
    layout, dtype, counts, quality = pack_counts(window)
    PackedBinCounts.objects.bulk_create(
        [
            PackedBinCounts(
                version_id=version_id,
                window_start=window_start,
                granularity=granularity,
                layout=layout,
                dtype=dtype,
                counts=counts,
                quality=quality,
            )
        ],
        update_conflicts=True,
        unique_fields=["version", "granularity", "window_start"],
        update_fields=["layout", "dtype", "counts", "quality", "computed_at"],
    )


def _delete_counts(version_id: int, window_start: datetime, granularity: str) -> None:
    WindowBinCounts.objects.filter(version_id=version_id, window_start=window_start, granularity=granularity).delete()
    PackedBinCounts.objects.filter(version_id=version_id, window_start=window_start, granularity=granularity).delete()


def _store_metrics(version: ModelVersion, start, end, granularity: str, rows: list[dict]) -> int:
    now = clock.now()
    objs = [
        MetricValue(
            model_id=version.model_id,
            version_id=version.pk,
            granularity=granularity,
            window_start=start,
            window_end=end,
            feature=r["feature"],
            metric=r["metric"],
            value=r["value"],
            provisional=r.get("provisional", False),
            computed_at=now,
        )
        for r in rows
    ]
    MetricValue.objects.bulk_create(
        objs,
        update_conflicts=True,
        unique_fields=["version", "window_start", "window_end", "feature", "metric"],
        update_fields=["value", "provisional", "computed_at", "granularity", "model"],
        batch_size=1000,
    )
    # A metric that is no longer produced for this window (e.g. the feature left the schema) goes:
    # every row produced now was just stamped ``now``, so the others are the stale ones.
    MetricValue.objects.filter(version=version, window_start=start, window_end=end).exclude(computed_at=now).delete()
    return len(objs)


def stored_counts(version_id: int, start: datetime, end: datetime, granularity: str = Granularity.HOURLY):
    """Summed stored counts of the windows of ``granularity`` in [start, end): a longer window
    as the sum of shorter ones, from their ``PackedBinCounts`` rows (one query; a day is 24 rows)."""
    table = PackedBinCounts._meta.db_table
    layout_sql = "layout::text" if is_postgresql() else "layout"
    sql = (
        f"SELECT {layout_sql}, dtype, counts, quality FROM {table} "
        "WHERE version_id = %s AND granularity = %s AND window_start >= %s AND window_start < %s"
    )
    return sum_packed(fetch_all(sql, [version_id, granularity, datetime_param(start), datetime_param(end)]))


# --------------------------------------------------------------------------- windows


def _config(version: ModelVersion) -> MonitoringConfig:
    """The saved config (read with the version: ``window_compute``), or the defaults (the same
    ones health uses)."""
    try:
        return version.model.monitoring_config
    except MonitoringConfig.DoesNotExist:
        return MonitoringConfig(model_id=version.model_id)


def _hourly_results(
    version: ModelVersion, start: datetime, end: datetime, config, labelled: list, labels: dict[str, Any]
) -> tuple[dict | None, list]:
    """The hour's counts (None without a profile or rows) and metric rows. Its additive parts
    are summed from its slices (``window_slices.hour_sums``, which re-reads the dirty ones).
    ``labelled``: its labelled predictions; ``labels``: the same as prediction id → label."""
    profile = ready_profile(version.pk)
    hour = window_slices.hour_sums(version, start, end, profile, labels)
    window = hour.window if profile and hour.rows else None
    if window is not None:
        rows = stats.drift_from_counts(profile, window, stats.DriftSettings.from_config(config), n_rows=hour.rows)
    else:
        rows = [{"feature": "", "metric": Metric.VOLUME, "value": float(hour.rows)}]
    threshold = config.label_coverage_threshold
    rows += window_fairness_rows(version, start, end, Granularity.HOURLY, threshold, hour_counts=hour.groups)
    rows += estimates.hourly_estimate_rows(version, profile, window, hour.dle)  # estimated.*
    return window, rows + _performance_rows(version, labelled, config, total=hour.rows)


def _hours_volume(version: ModelVersion, start: datetime, end: datetime) -> int:
    """The rows of the day's computed hours, from their stored volume metrics: the same hours
    its bins are summed from. Counting the day's raw rows instead read every row of the live
    day again at each of its recomputations (back to back under ingestion: seconds each at
    10 M rows, on a worker process the alerts' windows wait for)."""
    volume = hours_metrics(version.pk, start, end, [Metric.VOLUME]).aggregate(rows=Sum("value"))["rows"]
    return int(volume or 0)


def _daily_results(version: ModelVersion, start: datetime, end: datetime, config, labelled: list) -> list[dict]:
    """The day's metric rows from its stored hourly counts, after its dirty hours that no other
    computation holds. An hour queued or claimed (``enqueued_at``/``lease_until``) is left to
    that computation, which marks this day dirty again when it ends (``mark_day``): computing it
    here too ran the live hour twice at once under ingestion (docs/performance.md, "Freshness")."""
    hours = DirtyWindow.objects.filter(version=version, granularity=Granularity.HOURLY)
    for mark in hours.filter(window_start__gte=start, window_start__lt=end, enqueued_at=None, lease_until=None):
        window_compute(
            version_id=version.pk,
            window_start=mark.window_start,
            granularity=Granularity.HOURLY,
            mark_day=False,
            free_only=True,
        )
    profile = ready_profile(version.pk)
    n_rows = _hours_volume(version, start, end)
    window = None
    if profile and n_rows:
        window = stored_counts(version.pk, start, end)
        rows = stats.drift_from_counts(profile, window, stats.DriftSettings.from_config(config), n_rows=n_rows)
    else:
        rows = [{"feature": "", "metric": Metric.VOLUME, "value": float(n_rows)}]
    rows += window_fairness_rows(
        version, start, end, Granularity.DAILY, config.label_coverage_threshold, hour_counts=None
    )
    rows += estimates.daily_estimate_rows(version, profile, window, start, end)  # estimated.*
    return rows + _performance_rows(version, labelled, config, total=n_rows)


def _window_compute(version: ModelVersion, claim: Claim, *, mark_day: bool) -> int:
    start, end = window_bounds(claim.window_start, claim.granularity)
    config = _config(version)
    hourly = claim.granularity == Granularity.HOURLY
    llm = version.model.is_llm_app  # request records, not predictions (monitoring/services/llm_windows.py)
    # the window's labelled predictions, read once for its performance, fairness and shadow pairs
    labelled = [] if llm else labelled_predictions(version, start, end)
    labels = {pid: label for pid, label, _, _ in labelled} if hourly else None  # the hour's, by id
    if llm:
        window, (rows, cost) = None, llm_windows.llm_window_rows(version, start, end)
    elif hourly:
        window, rows = _hourly_results(version, start, end, config, labelled, labels)
    else:
        rows = _daily_results(version, start, end, config, labelled)
    # shadow pairs: predictions of a candidate paired with production's (an LLM app has none)
    paired = None if llm else live_evidence.window_reads(version, claim.granularity, start, end, labels)
    with transaction.atomic():  # the results and the end of the mark, together
        if not llm:
            live_evidence.window_store(version, claim.granularity, start, paired)
        if hourly and window is not None:
            _store_counts(version.pk, start, Granularity.HOURLY, window)
        elif hourly and not llm:  # the hour lost its rows (an LLM app's windows have no bins)
            _delete_counts(version.pk, start, Granularity.HOURLY)
        stored = _store_metrics(version, start, end, claim.granularity, rows)
        if llm:
            llm_windows.llm_window_store(version, claim.granularity, start, cost)  # the day's inference cost
        window_done(claim)
        if hourly and mark_day:
            windows_mark_dirty_one(version.pk, day_floor(start), Granularity.DAILY)
        enqueue_on_commit(tasks.health_evaluate, version.model_id)
    return stored


def window_compute(
    *, version_id: int, window_start: datetime, granularity: str, mark_day: bool = True, free_only: bool = False
) -> int:
    """(Re)compute one window's counts and metrics; returns the number of metric rows.

    A transient error (database or broker unreachable) is raised for the task to retry; any
    other error is the window's data failing the computation: it is recorded as a
    ``WindowFailure`` with its reason (0 returned), not retried until new data arrives.

    A finished hour marks its day dirty again (``mark_day``): with several workers a day can be
    summed while one of its hours is still being computed, and this re-mark makes the sweep
    sum it once more afterwards instead of leaving a stale day. ``free_only``: nothing is
    computed if the window's mark was queued or claimed meanwhile (``window_claim``)."""
    version = ModelVersion.objects.select_related("model__monitoring_config", "llm").filter(pk=version_id).first()
    if version is None:
        return 0
    start = hour_floor(window_start) if granularity == Granularity.HOURLY else day_floor(window_start)
    claim = window_claim(version_id=version_id, window_start=start, granularity=granularity, free_only=free_only)
    if free_only and claim.claimed_at is None:
        return 0  # queued or claimed since it was found free: left to that computation
    try:
        with window_lease_kept(claim):  # renewed while this runs; a dead process's lease expires
            return _window_compute(version, claim, mark_day=mark_day)
    except TRANSIENT_ERRORS:
        try:
            window_release(claim)
        except TRANSIENT_ERRORS:  # the database is gone: the lease expires on its own
            pass
        raise
    except Exception as exc:  # noqa: BLE001 - the window's data: recorded, never retried in a loop
        logger.exception("Window %s %s of version %s failed", granularity, start, version_id)
        # the error as an operator needs it; the dashboard says what it means and folds it away
        window_failure_record(claim=claim, reason=f"{type(exc).__name__}: {exc}")
        return 0


__all__ = [
    "day_floor",
    "hour_floor",
    "ready_profile",
    "stored_counts",
    "window_bounds",
    "window_compute",
    "windows_mark_dirty",
]
