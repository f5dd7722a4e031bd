"""Every feature's bin counts of one window in one row (``PackedBinCounts``, ``WindowSlice``):
packing, and the sum of many such rows."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import orjson

from monitoring import stats

_PACK_DTYPES = (np.dtype("<u1"), np.dtype("<u2"), np.dtype("<u4"), np.dtype("<i8"))


def pack_counts(window: dict[str, stats.FeatureCounts]) -> tuple[dict, str, bytes, bytes]:
    """One window's counts of every feature as (layout, dtype, counts bytes, quality bytes).
    Counts are concatenated in ``layout["features"]`` order in the narrowest unsigned type that
    holds the largest count; quality is int64 (features, 3): missing, out_of_range, unseen."""
    names = list(window)
    widths = [len(window[n].counts) for n in names]
    flat = (
        np.concatenate([np.asarray(window[n].counts, dtype=np.int64) for n in names])
        if names
        else np.zeros(0, dtype=np.int64)
    )
    if flat.size and flat.min() < 0:
        raise ValueError("bin counts are never negative")
    top = int(flat.max()) if flat.size else 0
    dtype = next(d for d in _PACK_DTYPES if top <= np.iinfo(d).max)
    quality = np.array(
        [[window[n].missing, window[n].out_of_range, window[n].unseen] for n in names], dtype="<i8"
    ).reshape(len(names), 3)
    return {"features": names, "widths": widths}, dtype.str, flat.astype(dtype).tobytes(), quality.tobytes()


def sum_packed(rows: Iterable[tuple[str, str, bytes, bytes]]) -> dict[str, stats.FeatureCounts]:
    """The summed counts of packed rows given as (layout JSON text, dtype, counts, quality).
    Rows with the same layout (the usual case: one profile for the whole range) are summed as
    flat integer arrays; a feature whose bins changed inside the range is summed zero-padded to
    its widest histogram (bins then no longer align; rare)."""
    groups: dict[str, list] = {}  # one flat sum per distinct layout text
    for layout, dtype, counts, quality in rows:
        group = groups.get(layout)
        if group is None:
            parsed = orjson.loads(layout)
            size = int(sum(parsed["widths"]))
            groups[layout] = group = [
                parsed,
                np.zeros(size, dtype=np.int64),
                np.zeros((len(parsed["features"]), 3), dtype=np.int64),
            ]
        group[1] += np.frombuffer(counts, dtype=np.dtype(dtype))
        group[2] += np.frombuffer(quality, dtype="<i8").reshape(-1, 3)
    out: dict[str, stats.FeatureCounts] = {}
    for parsed, total, quality in groups.values():
        names = parsed["features"]
        parts = np.split(total, np.cumsum(parsed["widths"])[:-1]) if names else []
        for name, counts, (missing, out_of_range, unseen) in zip(names, parts, quality.tolist(), strict=True):
            have = out.get(name)
            if have is None:
                out[name] = stats.FeatureCounts(counts, missing, out_of_range, unseen)
                continue
            if len(have.counts) == len(counts):
                summed = have.counts + counts
            else:
                summed = np.zeros(max(len(have.counts), len(counts)), dtype=np.int64)
                summed[: len(have.counts)] += have.counts
                summed[: len(counts)] += counts
            out[name] = stats.FeatureCounts(
                summed, have.missing + missing, have.out_of_range + out_of_range, have.unseen + unseen
            )
    return out


__all__ = ["pack_counts", "sum_packed"]
