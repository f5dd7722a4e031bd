"""Distributions: stored fine bin counts of windows, and reference-profile columns shown on
display bins (layout of a profile column: ``monitoring.services.profiles``)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import orjson
from django.contrib.postgres.aggregates import ArrayAgg, StringAgg
from django.db.models import TextField
from django.db.models.functions import Cast

from mlops_portal.db import epoch_seconds, is_postgresql

from ..choices import Granularity
from ..models import WindowBinCounts


@dataclasses.dataclass(frozen=True)
class WindowCounts:
    """One feature's stored fine bin counts over a range: one row per window, oldest first."""

    granularity: str  # of the rows read
    starts: np.ndarray  # window starts, epoch seconds (float64)
    counts: np.ndarray  # float64 (windows, bins)


def window_bin_counts(*, version, features: dict[str, int], start, end, granularity: str) -> dict[str, WindowCounts]:
    """The stored fine bin counts (``WindowBinCounts``) of ``version``'s windows in [start, end).

    ``features`` maps each wanted feature to its number of fine bins in the current reference
    profile: rows of another length were counted on other bins and are left out (0: none
    returned). Rows of ``granularity`` are read when any of these features has them, else the
    hourly rows (a daily view sums them). A feature without rows is missing from the result.

    One query. On PostgreSQL each feature's rows arrive as one string (``string_agg`` of the
    JSON arrays, in window order) parsed at once, instead of thousands of JSON rows decoded
    one by one (a 90-day page reads 2 x 2,160 hourly rows)."""
    qs = WindowBinCounts.objects.filter(
        version=version,
        window_start__gte=start,
        window_start__lt=end,
        feature__in=list(features),
        granularity__in=sorted({Granularity.HOURLY, granularity}),
    ).order_by()
    groups = _grouped_rows_postgresql(qs) if is_postgresql() else _grouped_rows(qs)
    use = granularity if any(g == granularity for _f, g in groups) else Granularity.HOURLY
    out = {}
    for (feature, gran), (ts, lists) in groups.items():
        width = features.get(feature) or 0
        if gran != use or not width:
            continue
        keep = [i for i, c in enumerate(lists) if isinstance(c, list) and len(c) == width]
        if not keep:
            continue
        out[feature] = WindowCounts(
            granularity=gran,
            starts=np.asarray([ts[i] for i in keep], dtype="float64"),
            counts=np.asarray([lists[i] for i in keep], dtype="float64").reshape(len(keep), width),
        )
    return out


def _grouped_rows_postgresql(qs) -> dict[tuple[str, str], tuple[list, list]]:
    """(feature, granularity) -> (window starts, count lists), aggregated in the database."""
    epoch = epoch_seconds("window_start")
    rows = (
        qs.values("feature", "granularity")
        .annotate(
            ts=ArrayAgg(epoch, order_by="window_start"),
            js=StringAgg(Cast("counts", TextField()), delimiter=",", order_by="window_start"),
        )
        .values_list("feature", "granularity", "ts", "js")
    )
    return {(feature, gran): (ts, orjson.loads(f"[{text}]")) for feature, gran, ts, text in rows}


def _grouped_rows(qs) -> dict[tuple[str, str], tuple[list, list]]:
    """The same as ``_grouped_rows_postgresql``, one row at a time (the ORM path)."""
    groups: dict[tuple[str, str], tuple[list, list]] = {}
    rows = qs.order_by("window_start").values_list("feature", "granularity", "window_start", "counts")
    for feature, gran, when, counts in rows:
        ts, lists = groups.setdefault((feature, gran), ([], []))
        ts.append(when.timestamp())
        lists.append(counts)
    return groups


@dataclasses.dataclass(frozen=True)
class DisplayBins:
    """A profile column on its display bins: labels, reference counts, and the map from the
    fine bins (what windows store) to the display bins (None: they are the same)."""

    labels: list[str]
    reference: np.ndarray
    fine_map: np.ndarray | None

    @property
    def fine_width(self) -> int:
        """How many fine bins a window's stored counts have for this column."""
        return len(self.fine_map) if self.fine_map is not None else len(self.labels)

    def display_rows(self, fine: np.ndarray) -> np.ndarray:
        """Fine bin counts (rows, fine bins) summed onto the display bins (rows, labels)."""
        if self.fine_map is None:
            return fine
        out = np.zeros((fine.shape[0], len(self.labels)))
        np.add.at(out.T, self.fine_map, fine.T)  # column fine_map[j] += fine column j
        return out


NO_BINS = DisplayBins([], np.zeros(0), None)


def column_bins(column) -> DisplayBins:
    """Display bins of one reference-profile column (a dict, or its JSON text).

    Numeric columns are shown on the coarse bins (``coarse_edges``, open tails), categorical
    ones as the top categories plus ``other``."""
    column = _json(column)
    if not isinstance(column, dict) or not column.get("counts"):
        return NO_BINS
    fine = np.asarray(column["counts"], dtype="float64")
    if column.get("type") == "numeric":
        coarse_edges = column.get("coarse_edges") or []
        cmap = np.asarray(column.get("coarse_map") or np.arange(len(fine)), dtype=np.intp)
        width = int(cmap.max()) + 1 if cmap.size else 0
        bounds = [None, *coarse_edges, None]
        labels = [_interval(bounds[i], bounds[i + 1]) for i in range(width)]
        return DisplayBins(labels, np.bincount(cmap, weights=fine, minlength=width), cmap)
    labels = [str(c) for c in column.get("categories") or []] + ["other"]
    if len(labels) != len(fine):
        labels = [f"bin {i + 1}" for i in range(len(fine))]
    return DisplayBins(labels, fine, None)


def _json(value):
    """KeyTransform values arrive decoded on PostgreSQL and as JSON text on some backends."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _interval(lo, hi) -> str:
    if lo is None and hi is None:
        return "all"
    if lo is None:
        return f"< {_fmt(hi)}"
    if hi is None:
        return f"≥ {_fmt(lo)}"
    return f"{_fmt(lo)} – {_fmt(hi)}"


def _fmt(value) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if number in (float("inf"), float("-inf")):
        return "∞" if number > 0 else "−∞"
    return f"{number:.3g}"
