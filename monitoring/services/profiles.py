"""Reference data: building the profile of a validated reference frame.

Pure functions on DataFrames; uploads are read and validated by ``monitoring.services.
reference_data.reference_read``; the database side is in ``monitoring.services.ingestion``
(``reference_upload``) and ``monitoring.services.reference_profiles`` (``reference_profile_compute``).

Profile layout (JSON, stored in ``ReferenceProfile.profile``)::

    {"format": 1, "n_rows": N, "n_bins": 10, "task_type": "binary",
     "features": {
        "<numeric>": {"type": "numeric", "edges": [...fine interior edges...],
                      "coarse_edges": [...], "coarse_map": [...], "mids": [...],
                      "counts": [...fine counts...], "n", "missing", "min", "max", "mean",
                      "std", "quantiles": {"p01": …}, "sample": [≤ SAMPLE_SIZE values]},
        "<categorical>": {"type": "categorical", "categories": [top K], "counts": [K + 1],
                          "known_other": [...], "known_complete": bool, "n", "missing"},
        "__prediction__": …, "__score__": …},
     "per_class": {"<class>": {"share": …, "score": {"mean", "std", "quantiles"}}},
     "classes": [the classes of the prediction and label columns (classification)]}
"""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from monitoring.binning import fine_bins
from monitoring.choices import PREDICTION_FEATURE, SCORE_FEATURE
from monitoring.estimation import LABEL_FEATURE

if TYPE_CHECKING:  # pandas is imported on use: see registry/llm_stats.py
    import pandas as pd

FINE_FACTOR = 5
TOP_CATEGORIES = 50
KNOWN_CATEGORIES_CAP = 1000
SAMPLE_SIZE = 1000
PREDICTION_COLUMN = "prediction"
SCORE_COLUMN = "score"


def dataframe_from_parquet(data: bytes) -> pd.DataFrame:
    import pandas as pd

    return pd.read_parquet(io.BytesIO(bytes(data)))


def _category_column(col: pd.Series) -> np.ndarray:
    import pandas as pd

    values = col.to_numpy(dtype=object)
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
            out[i] = None
        elif isinstance(v, bool | np.bool_):
            out[i] = "1" if v else "0"
        elif isinstance(v, float) and v.is_integer():
            out[i] = str(int(v))
        else:
            out[i] = str(v)
    return out


def _quantile_edges(x: np.ndarray, n: int) -> np.ndarray:
    levels = np.arange(1, n) / n
    return np.unique(np.quantile(x, levels)) if x.size else np.array([], dtype=np.float64)


def bin_representatives(x: np.ndarray, edges: np.ndarray, counts: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """The representative point of each fine bin: the mean of the reference values in it
    (``idx``: each value's fine bin, as ``numeric_profile`` computed it for ``counts``).

    The Wasserstein distance on counts places each bin's mass at this point. The midpoint of
    the bin bounds is wrong where the mass is not spread evenly: a count feature's values sit
    on the bin's lower edge, and the open tail bins (bounded by the reference min/max) hold a
    few far values, so the midpoint of the upper tail lay far above where its mass is (19% too
    high on a Poisson feature, several times too high on a Pareto one). The mean is exact for
    the reference's own mass, lies inside the bin (so the points stay sorted) and falls back
    to the midpoint for a bin the reference leaves empty.
    """
    sums = np.bincount(idx, weights=x, minlength=len(edges) + 1)
    bounds = np.concatenate([[x.min()], edges, [x.max()]])
    midpoints = (bounds[:-1] + bounds[1:]) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0, sums / np.where(counts > 0, counts, 1), midpoints)
    # float rounding of a sum must not move a mean outside its bin (the points stay sorted)
    return np.clip(means, bounds[:-1], bounds[1:])


def numeric_profile(
    values: np.ndarray, n_bins: int, rng: np.random.Generator, extra_edge: float | None = None
) -> dict[str, Any]:
    """``extra_edge``: one more fine edge (the score's decision threshold, so that no score
    bin holds both predicted classes); the coarse bins are unchanged."""
    values = np.asarray(values, dtype=np.float64)
    missing_mask = np.isnan(values)
    x = values[~missing_mask]
    fine = FINE_FACTOR * n_bins
    if x.size:
        levels = np.arange(1, fine) / fine
        q = np.quantile(x, levels)
        edges = np.unique(q if extra_edge is None else np.append(q, extra_edge))
        # coarse levels k/n_bins are fine levels j = FINE_FACTOR*k: identical floats, so a subset.
        coarse = np.unique(q[FINE_FACTOR - 1 :: FINE_FACTOR])
        lo, hi = float(x.min()), float(x.max())
    else:
        edges = coarse = np.array([], dtype=np.float64)
        lo = hi = None
    idx = fine_bins(edges, x)  # each value's fine bin, for the counts and the representatives
    counts = np.bincount(idx, minlength=len(edges) + 1)
    coarse_map = np.concatenate([[0], np.searchsorted(coarse, edges, side="right")]).astype(int)
    mids = bin_representatives(x, edges, counts, idx) if x.size else np.zeros(1)
    sample = rng.choice(x, size=min(SAMPLE_SIZE, x.size), replace=False) if x.size else np.array([])
    pct = (1, 5, 25, 50, 75, 95, 99)
    return {
        "type": "numeric",
        "edges": edges.tolist(),
        "coarse_edges": coarse.tolist(),
        "coarse_map": coarse_map.tolist(),
        "mids": mids.tolist(),
        "counts": counts.tolist(),
        "n": int(x.size),
        "missing": int(missing_mask.sum()),
        "min": lo,
        "max": hi,
        "mean": float(x.mean()) if x.size else None,
        "std": float(x.std()) if x.size else None,
        "quantiles": {f"p{p:02d}": float(np.percentile(x, p)) for p in pct} if x.size else {},
        "sample": sorted(sample.tolist()),
    }


def categorical_profile(values: np.ndarray) -> dict[str, Any]:
    present = [v for v in values if v is not None]
    missing = len(values) - len(present)
    uniq, counts = np.unique(np.asarray(present, dtype=str), return_counts=True) if present else ([], [])
    order = sorted(zip(uniq.tolist() if len(uniq) else [], list(counts), strict=True), key=lambda t: (-t[1], t[0]))
    top = order[:TOP_CATEGORIES]
    rest = order[TOP_CATEGORIES:]
    return {
        "type": "categorical",
        "categories": [c for c, _ in top],
        "counts": [int(n) for _, n in top] + [int(sum(n for _, n in rest))],
        "known_other": [c for c, _ in rest[:KNOWN_CATEGORIES_CAP]],
        "known_complete": len(rest) <= KNOWN_CATEGORIES_CAP,
        "n": len(present),
        "missing": int(missing),
    }


def profile_build(
    df: pd.DataFrame, schema: list[dict], task_type: str, n_bins: int = 10, positive: str = ""
) -> dict[str, Any]:
    """The reference profile of a validated table (see the module docstring for the layout)."""
    rng = np.random.default_rng(0)
    types = {f["name"]: f.get("type", "numeric") for f in schema}
    if PREDICTION_FEATURE in df.columns:
        types[PREDICTION_FEATURE] = "numeric" if task_type == "regression" else "categorical"
    if SCORE_FEATURE in df.columns:
        types[SCORE_FEATURE] = "numeric"
    features: dict[str, Any] = {}
    for name, ftype in types.items():
        if name not in df.columns:
            continue
        values = df[name].to_numpy()
        if ftype == "numeric":
            extra = _score_threshold(df, task_type, positive) if name == SCORE_FEATURE else None
            features[name] = numeric_profile(values.astype(np.float64), n_bins, rng, extra)
        else:
            features[name] = categorical_profile(_category_column(df[name]))
    per_class: dict[str, Any] = {}
    if task_type != "regression" and PREDICTION_FEATURE in df.columns:
        preds = _category_column(df[PREDICTION_FEATURE])
        scores = df[SCORE_FEATURE].to_numpy(dtype=np.float64) if SCORE_FEATURE in df.columns else None
        present = [p for p in preds if p is not None]
        for cls in sorted(set(present)):
            mask = np.array([p == cls for p in preds])
            entry: dict[str, Any] = {"share": float(mask.sum() / len(preds))}
            if scores is not None:
                s = scores[mask]
                s = s[~np.isnan(s)]
                if s.size:
                    entry["score"] = {
                        "mean": float(s.mean()),
                        "std": float(s.std()),
                        "quantiles": {f"p{p:02d}": float(np.percentile(s, p)) for p in (5, 25, 50, 75, 95)},
                    }
            per_class[str(cls)] = entry
    built = {
        "format": 1,
        "n_rows": len(df),
        "n_bins": n_bins,
        "task_type": task_type,
        "features": features,
        "per_class": per_class,
    }
    if task_type != "regression":  # the classes the version declares (monitoring.services.ingest_classes)
        seen = (_category_column(df[c]) for c in (PREDICTION_FEATURE, LABEL_FEATURE) if c in df.columns)
        built["classes"] = sorted({v for column in seen for v in column if v is not None})
    calibration = _calibration(df, task_type, features, positive)
    if calibration:
        built["calibration"] = calibration
    if task_type == "regression" and LABEL_FEATURE in df.columns and PREDICTION_FEATURE in df.columns:
        built["labelled_rows"] = int(np.isfinite(df[LABEL_FEATURE].to_numpy(dtype=np.float64)).sum())
    return built


def _binary_columns(df: pd.DataFrame, positive: str) -> tuple[np.ndarray, np.ndarray | None, str] | None:
    """A binary labelled reference's 0/1 labels, 0/1 predictions (or None) and positive class
    (``positive``, the version's declared one, else inferred)."""
    from monitoring.performance import positive_label

    if LABEL_FEATURE not in df.columns or SCORE_FEATURE not in df.columns:
        return None
    labels = _category_column(df[LABEL_FEATURE])
    preds = _category_column(df[PREDICTION_FEATURE]) if PREDICTION_FEATURE in df.columns else None
    seen = [v for v in labels if v is not None] + ([v for v in preds if v is not None] if preds is not None else [])
    if not seen:
        return None
    pos = positive or positive_label(seen)
    y = np.array([np.nan if v is None else float(v == pos) for v in labels])
    p = None if preds is None else np.array([np.nan if v is None else float(v == pos) for v in preds])
    return y, p, pos


def _score_threshold(df: pd.DataFrame, task_type: str, positive: str) -> float | None:
    from monitoring.estimation import decision_threshold

    if task_type != "binary":
        return None
    cols = _binary_columns(df, positive)
    if cols is None:
        return None
    return decision_threshold(df[SCORE_FEATURE].to_numpy(dtype=np.float64), cols[1])


def _calibration(df: pd.DataFrame, task_type: str, features: dict, positive: str) -> dict | None:
    """The CBPE calibration of a labelled binary reference (``monitoring.estimation``)."""
    from monitoring.estimation import calibration_build

    if task_type != "binary" or SCORE_FEATURE not in features:
        return None
    cols = _binary_columns(df, positive)
    if cols is None:
        return None
    y, pred, pos = cols
    scores = df[SCORE_FEATURE].to_numpy(dtype=np.float64)
    built = calibration_build(scores, y, pred, np.asarray(features[SCORE_FEATURE]["edges"]))
    if built:
        built["positive_label"] = pos
    return built
