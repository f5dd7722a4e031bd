"""An hour's raw rows read a slice at a time: the live hour's recomputation reads only the
slices of prediction time whose rows changed.

Under steady ingestion the live hour is marked dirty by every batch and recomputed back to
back; reading all its rows each time cost minutes per computation at 35,000 rows/s and grew
with the hour (docs/performance.md, "Freshness"). So what an hour computes from its raw rows
and can add up is kept per slice (``WindowSlice``): its row count, every feature's bin counts,
the fairness group counts and DLE's error sums. Ingestion marks the slices of each batch
(``DirtySlice``, in the data's transaction, beside the hour's ``DirtyWindow``); the hour's
computation re-reads its dirty slices only and sums its slices.

* Ingestion marks ``WINDOW_SLICE_SECONDS`` spans (10 s). A read stores slices, each a run of
  consecutive spans holding at least ``WINDOW_SLICE_MIN_ROWS`` rows (5,000): at 35,000 rows/s
  a slice is one span; a sparse model's hour is one slice or a few, as each slice costs a few
  ms to bin, store and sum however few its rows. A mark re-reads the slice holding it, or its
  span alone where no slice holds it (``_spans``, ``_merged``).

* An hour with no slice, or whose slices were computed on another basis (reference profile,
  feature schema, task, slice width), is read in full (one statement for the whole hour, split
  by slice): hours from before slices existed, after a new reference profile, after the purge
  of old slices, or marked without slices (``windows_mark_dirty(slices=None)`` forgets them).
* A slice's mark goes only if nobody marked it again meanwhile (compared on ``marked_at``),
  in the transaction that stores it: a batch committed during the read keeps it dirty.
* What is not additive stays per hour: performance metrics (labelled rows) and shadow pairs.
* Slices are kept ``WINDOW_SLICES_KEPT_HOURS`` (nightly, ``slices_prune``): counts of a slice
  can be few rows, and only the live hours need them; older hours are read whole.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import reduce
from operator import or_
from typing import Any

import numpy as np
import orjson
from django.conf import settings
from django.db import transaction
from django.db.models import Q

from mlops_portal import clock
from mlops_portal.db import datetime_param, fetch_one, is_postgresql
from monitoring import stats
from monitoring.choices import PREDICTION_FEATURE, SCORE_FEATURE
from monitoring.fairness_monitoring import add_group_counts, slice_group_counts, zero_group_counts
from monitoring.models import Prediction
from monitoring.models_slices import DirtySlice, WindowSlice
from registry.models import ModelVersion
from registry.sensitive import ordinary_features

from . import estimates
from .packed_counts import pack_counts, sum_packed


def slice_width() -> int:
    """Seconds of prediction time a slice holds (divides an hour: slices align to hours)."""
    return settings.WINDOW_SLICE_SECONDS


def slice_floor(ts: datetime) -> datetime:
    width = slice_width()
    into_hour = ts.minute * 60 + ts.second
    return ts.replace(minute=0, second=0, microsecond=0) + timedelta(seconds=into_hour - into_hour % width)


# --------------------------------------------------------------------------- marks


def slices_mark_dirty(*, version_id: int, slices) -> int:
    """Mark slices (their starts) dirty inside the ingesting transaction, in order, so that
    concurrent batches lock the same marks in the same order. Slices of hours past those kept
    are not marked: such an hour is read whole (a backfill of weeks would mark 360 an hour)."""
    now = clock.now()
    kept = _kept_since(now)
    marks = [DirtySlice(version_id=version_id, slice_start=s, marked_at=now) for s in sorted(set(slices)) if s >= kept]
    if marks:
        DirtySlice.objects.bulk_create(
            marks, update_conflicts=True, unique_fields=["version", "slice_start"], update_fields=["marked_at"]
        )
    return len(marks)


def slices_forget(*, version_id: int, hours) -> None:
    """The hours' next computation reads them in full (their inputs changed in ways a slice
    mark does not say: a new profile, a recomputation asked for, an erasure)."""
    hours = sorted(set(hours))
    if hours:
        WindowSlice.objects.filter(reduce(or_, [_within_hour(h) for h in hours]), version_id=version_id).delete()


def _within_hour(hour: datetime) -> Q:
    if hour >= datetime.max.replace(tzinfo=hour.tzinfo) - timedelta(hours=1):  # the calendar's last hour
        return Q(slice_start__gte=hour)
    return Q(slice_start__gte=hour, slice_start__lt=hour + timedelta(hours=1))


def slices_prune(*, now: datetime | None = None) -> int:
    """Remove the slices and marks of hours older than ``WINDOW_SLICES_KEPT_HOURS`` (nightly)."""
    cutoff = _kept_since(now)
    DirtySlice.objects.filter(slice_start__lt=cutoff).delete()
    return WindowSlice.objects.filter(slice_start__lt=cutoff).delete()[0]


# --------------------------------------------------------------------------- reading rows


def load_window_columns(version: ModelVersion, start: datetime, end: datetime, profile: dict | None):
    """Feature columns of [start, end) as numpy arrays, with each row's slice in its hour
    (``slices``: seconds into the hour // ``slice_width()``), in one aggregate query: the
    database extracts each JSON key and returns one array per column (PostgreSQL
    ``array_agg``, SQLite ``json_group_array``), which is far cheaper than one Python tuple
    per row. → (columns, slices, rows)."""
    kinds = {f["name"]: f.get("type", "numeric") for f in ordinary_features(version.feature_schema)}
    postgres = is_postgresql()
    selects: list[str] = []
    params: list[Any] = []
    for name, kind in kinds.items():
        if postgres:
            expr = "(features ->> %s)::float8" if kind == "numeric" else "(features ->> %s)"
            selects.append(f"array_agg({expr})")
            params.append(name)
        else:
            # ``json(x -> path)`` keeps the stored number text; json_extract would print reals
            # with 15 digits and move values sitting exactly on a reference bin edge.
            selects.append("json_group_array(json(features -> %s))")
            params.append('$."' + name.replace('"', '\\"') + '"')
    if postgres:
        selects += [
            "array_agg(prediction #>> '{}')",
            "array_agg(score)",
            f"array_agg((floor(date_part('epoch', timestamp))::bigint %% 3600) / {slice_width():d})",
            "count(*)",
        ]
    else:
        selects += [
            "json_group_array(json(prediction -> '$'))",
            "json_group_array(CASE WHEN score IS NULL THEN json('null') ELSE json(printf('%%!.17g', score)) END)",
            # stored as UTC text: 'YYYY-MM-DD HH:MM:SS[.ffffff]'
            "json_group_array((CAST(substr(timestamp, 15, 2) AS INTEGER) * 60"
            f" + CAST(substr(timestamp, 18, 2) AS INTEGER)) / {slice_width():d})",
            "count(*)",
        ]
    table = Prediction._meta.db_table
    sql = f"SELECT {', '.join(selects)} FROM {table} WHERE version_id = %s AND timestamp >= %s AND timestamp < %s"
    row = fetch_one(sql, [*params, version.pk, datetime_param(start), datetime_param(end)])
    n = int(row[-1] or 0)
    if not n:
        return {}, np.zeros(0, dtype=np.int64), 0
    values = [v if postgres else orjson.loads(v) for v in row[:-1]]
    columns: dict[str, np.ndarray] = {}
    for i, (name, kind) in enumerate(kinds.items()):
        if kind == "numeric":
            columns[name] = np.array(values[i], dtype=np.float64)  # None → NaN
        else:
            columns[name] = np.array([None if v is None else str(v) for v in values[i]], dtype=object)
    preds, scores, slices = values[len(kinds)], values[len(kinds) + 1], values[len(kinds) + 2]
    if profile and PREDICTION_FEATURE in profile["features"]:
        if profile["features"][PREDICTION_FEATURE]["type"] == "numeric":
            columns[PREDICTION_FEATURE] = np.array([np.nan if v is None else float(v) for v in preds], dtype=np.float64)
        else:
            columns[PREDICTION_FEATURE] = np.array([None if v is None else str(v) for v in preds], dtype=object)
    columns[SCORE_FEATURE] = np.array(scores, dtype=np.float64)
    return columns, np.asarray(slices, dtype=np.int64), n


# --------------------------------------------------------------------------- one hour


@dataclass
class HourSums:
    """An hour's additive results, summed from its slices."""

    rows: int
    window: dict[str, stats.FeatureCounts] | None  # None without a profile or rows
    groups: dict[str, dict[str, np.ndarray]]  # fairness: attribute → group → counts
    dle: dict[str, float] | None


def _basis(version: ModelVersion, profile: dict | None) -> str:
    """What a slice's results depend on besides its rows and labels."""
    stamp = version.reference_profile_at.isoformat() if version.reference_profile_at else ""
    facts = [stamp, bool(profile), version.task_type, version.feature_schema, slice_width()]
    text = orjson.dumps(facts, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(text).hexdigest()


def _kept_since(now: datetime | None = None) -> datetime:
    """The oldest hour whose slices are kept (older hours are read whole)."""
    now = now or clock.now()
    return now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=settings.WINDOW_SLICES_KEPT_HOURS)


def _spans(marks, stored: list[tuple[datetime, int]]) -> list[tuple[datetime, datetime]]:
    """The [start, end) spans to read again: each marked span's stored slice whole (a slice
    may hold many marked spans), or the marked span alone where no slice holds it; adjacent
    spans joined, one read each. ``stored``: (start, seconds) of the hour's slices, sorted."""
    starts = [s for s, _ in stored]
    width = timedelta(seconds=slice_width())
    wanted = set()
    for mark in marks:
        i = bisect_right(starts, mark) - 1
        if i >= 0 and mark < starts[i] + timedelta(seconds=stored[i][1]):
            wanted.add((starts[i], starts[i] + timedelta(seconds=stored[i][1])))
        else:
            wanted.add((mark, mark + width))
    spans: list[list[datetime]] = []
    for a, b in sorted(wanted):
        if spans and spans[-1][1] >= a:
            spans[-1][1] = max(spans[-1][1], b)
        else:
            spans.append([a, b])
    return [(a, b) for a, b in spans]


def _merged(slices: np.ndarray, first: int, last: int) -> tuple[np.ndarray, dict[int, int]]:
    """The slices a read of the ``WINDOW_SLICE_SECONDS`` spans [first, last) (indexes in the
    hour) stores: each span's slice (by the index it starts at), and each slice's end. From
    ``first``, a slice takes consecutive spans until it holds ``WINDOW_SLICE_MIN_ROWS`` rows;
    the next starts at the next span with rows. A full slice ends after its last span with
    rows (a mark past it reads that span alone, not the full slice again: the live edge under
    steady ingestion); the last slice, if not full, runs to ``last``, so that a sparse model's
    later marks fall in it (one slice of a few rows rather than one per span)."""
    counts = np.bincount(slices - first, minlength=last - first).tolist()
    least = settings.WINDOW_SLICE_MIN_ROWS
    into = np.empty(last - first, dtype=np.int64)
    ends: dict[int, int] = {}
    begin, held = first, 0
    for i, c in enumerate(counts):
        if c and held >= least:
            begin, held = first + i, 0
        into[i] = begin
        if c:
            held += c
            ends[begin] = first + i + 1
    if held < least:
        ends[begin] = last
    return into, ends


def _read(version, start: datetime, end: datetime, profile, labels: dict, basis: str, *, sliced: bool):
    """The results of [start, end)'s rows from one read of them: ``WindowSlice`` objects
    (``sliced``; see ``_merged``) or one for all of them (not stored: an hour read whole)."""
    columns, spans, n = load_window_columns(version, start, end, profile)
    if not n:
        return []
    hour, width = start.replace(minute=0, second=0, microsecond=0), slice_width()
    first = int((start - hour).total_seconds()) // width
    last = min(-(-int((end - hour).total_seconds()) // width), 3600 // width)
    into, ends = _merged(spans, first, last) if sliced else (np.full(last - first, first), {first: last})
    present, group = np.unique(into[spans - first], return_inverse=True)
    by_start = {hour + timedelta(seconds=int(i) * width): k for k, i in enumerate(present.tolist())}
    groups = [zero_group_counts() for _ in by_start]
    for span_start, counts in slice_group_counts(version, start, end, labels, slice_floor).items():
        index = int((span_start - hour).total_seconds()) // width
        add_group_counts(groups[by_start[hour + timedelta(seconds=int(into[index - first]) * width)]], counts)
    dle = estimates.dle_sums(version, profile, columns, group, len(present))
    order = np.argsort(group, kind="stable")
    bounds = np.searchsorted(group[order], np.arange(len(present) + 1)).tolist()
    now = clock.now()
    out = []
    for k, (slice_start, index) in enumerate(zip(by_start, present.tolist(), strict=True)):
        idx = order[bounds[k] : bounds[k + 1]]
        part = {name: values[idx] for name, values in columns.items()}
        layout, dtype, counts, quality = pack_counts(stats.bin_window(profile, part) if profile else {})
        out.append(
            WindowSlice(
                version_id=version.pk,
                slice_start=slice_start,
                seconds=(ends[index] - index) * width,
                rows=len(idx),
                basis=basis,
                layout=layout,
                dtype=dtype,
                counts=counts,
                quality=quality,
                groups={a: {g: [float(v) for v in c] for g, c in gs.items()} for a, gs in groups[k].items()},
                dle=dle[k],
                computed_at=now,
            )
        )
    return out


def _store(version, start: datetime, end: datetime, read: list, slices: list, marks: dict, *, full: bool) -> None:
    """The read spans' slices replace what was stored for them; their marks go unless marked
    again meanwhile."""
    with transaction.atomic():
        hour = WindowSlice.objects.filter(version=version, slice_start__gte=start, slice_start__lt=end)
        if full:
            hour.delete()
        else:  # the spans read: a slice that lost its rows goes
            spans = reduce(or_, [Q(slice_start__gte=a, slice_start__lt=b) for a, b in read])
            hour.filter(spans).exclude(slice_start__in=[s.slice_start for s in slices]).delete()
        WindowSlice.objects.bulk_create(
            slices,
            update_conflicts=True,
            unique_fields=["version", "slice_start"],
            update_fields=[
                "seconds",
                "rows",
                "basis",
                "layout",
                "dtype",
                "counts",
                "quality",
                "groups",
                "dle",
                "computed_at",
            ],
            batch_size=100,
        )
        if marks:
            unchanged = reduce(or_, [Q(slice_start=m, marked_at=at) for m, at in marks.items()])
            DirtySlice.objects.filter(unchanged, version=version).delete()


def _sum(parts, profile) -> HourSums:
    """An hour's results as the sum of its parts (``WindowSlice`` rows or objects)."""
    rows = sum(p.rows for p in parts)
    window = None
    if profile and rows:
        packed = (
            (orjson.dumps(p.layout, option=orjson.OPT_SORT_KEYS), p.dtype, bytes(p.counts), bytes(p.quality))
            for p in parts
        )
        window = sum_packed(packed)
    groups = zero_group_counts()
    dle: dict[str, float] | None = None
    for p in parts:
        add_group_counts(groups, p.groups or {})
        if p.dle:
            dle = {k: (dle or {}).get(k, 0.0) + float(v) for k, v in p.dle.items()}
    return HourSums(rows=rows, window=window, groups=groups, dle=dle)


def hour_sums(version: ModelVersion, start: datetime, end: datetime, profile, labels: dict) -> HourSums:
    """The hour's additive results: its dirty slices read again (the whole hour when it has no
    slice on the current basis), stored, and all its slices summed; an hour older than the
    slices kept is read whole. ``labels``: the hour's labelled predictions by id."""
    basis = _basis(version, profile)
    dirty = DirtySlice.objects.filter(version=version, slice_start__gte=start, slice_start__lt=end)
    if start < _kept_since():  # read whole, whatever its marks say: they go
        dirty.delete()
        return _sum(_read(version, start, end, profile, labels, basis, sliced=False), profile)
    marks = dict(dirty.values_list("slice_start", "marked_at"))
    stored = list(WindowSlice.objects.filter(version=version, slice_start__gte=start, slice_start__lt=end))
    full = {p.basis for p in stored} != {basis}
    read = [(start, end)] if full else _spans(marks, [(p.slice_start, p.seconds) for p in stored])
    if not read:
        return _sum(stored, profile)
    slices = [s for a, b in read for s in _read(version, a, b, profile, labels, basis, sliced=True)]
    _store(version, start, end, read, slices, marks, full=full)
    kept = [p for p in stored if not any(a <= p.slice_start < b for a, b in read)]  # a slice is read whole or not
    return _sum(kept + slices, profile)


__all__ = [
    "HourSums",
    "hour_sums",
    "load_window_columns",
    "slice_floor",
    "slice_width",
    "slices_forget",
    "slices_mark_dirty",
    "slices_prune",
]
