"""Group fairness figures: pure, vectorised numpy (no database, no pandas).

Everything derives from *counts per group*, which is what makes the figures cheap, exact and
mergeable (an hourly window's counts plus the next one's are the two hours' counts):

Classification (binary; the positive class is ``performance.positive_label`` of the labels)
    per group ``g`` the confusion counts ``[tn, fp, fn, tp]`` (``classification_counts``):
    one ``np.bincount`` of ``4·group + 2·y + ŷ``.
Regression
    per group ``[n, Σ|ŷ − y|, Σ(ŷ − y)]`` (``regression_sums``): three weighted bincounts.

Per-group metrics (fairlearn ``MetricFrame.by_group`` with the named fairlearn / scikit-learn
metric; each formula is written again where ``group_rates`` computes it):
    ``n`` = tn + fp + fn + tp;  ``selection_rate`` = (tp + fp) / n  (fairlearn ``selection_rate``);
    ``tpr`` = tp / (tp + fn)  (fairlearn ``true_positive_rate``);  ``fpr`` = fp / (fp + tn)
    (fairlearn ``false_positive_rate``);  ``precision`` = tp / (tp + fp) (scikit-learn
    ``precision_score``);  ``accuracy`` = (tp + tn) / n (scikit-learn ``accuracy_score``);
    ``mae`` = Σ|ŷ − y| / n (``mean_absolute_error``);  ``mean_signed_error`` = Σ(ŷ − y) / n.
    A rate whose denominator is 0 is undefined: ``None`` here (fairlearn / scikit-learn
    report 0 there); undefined rates take no part in the summaries.

Summaries per attribute (fairlearn ``method="between_groups"``, ``agg="worst_case"``), over the
groups with at least ``min_group_size`` rows (smaller groups are reported "too small", without
any rate, and are left out of every summary):
    ``demographic_parity_difference`` = max_g sel − min_g sel;
    ``demographic_parity_ratio`` = min_g sel / max_g sel;
    ``disparate_impact`` = the same ratio (lowest group's selection rate over the highest's; the
    four-fifths rule asks ≥ 0.80), with the two groups named;
    ``equalized_odds_difference`` = max(max_g tpr − min_g tpr, max_g fpr − min_g fpr);
    ``equalized_odds_ratio`` = min(min_g tpr / max_g tpr, min_g fpr / max_g fpr);
    regression: ``mae_ratio`` = max_g mae / min_g mae (the largest ratio of group MAEs) and
    ``mae_difference`` = max_g mae − min_g mae.
    A ratio with a zero denominator is ``None``.

Attributes: each sensitive attribute on its own and each pairwise intersection (``a&b``, its
groups named ``va|vb``).

Intervals: a seeded percentile bootstrap (95 %) of every summary. For classification the row
bootstrap is drawn exactly and without touching the rows: resampling n rows with replacement
gives cell counts that are multinomial(n, observed cell shares) over the cells of the finest
cross-classification (all attributes jointly × 4 confusion cells), so each replicate is one
multinomial draw, then summed into each attribute's / intersection's groups with a one-hot
matrix product. Regression resamples row indices (chunked) and uses weighted bincounts.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

DEFAULT_MIN_GROUP_SIZE = 30
DEFAULT_BOOTSTRAP = 1000
DEFAULT_BOOTSTRAP_REGRESSION = 200
CONFIDENCE = 0.95
CLASSIFICATION_SUMMARIES = (
    "disparate_impact",
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
    "equalized_odds_ratio",
)
REGRESSION_SUMMARIES = ("mae_ratio", "mae_difference")
INTERSECTION_SEP = "&"
GROUP_SEP = "|"


# ---------------------------------------------------------------- encoding


def _small_int_unique(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(sorted levels, codes) of non-negative integers below 2**20 in O(n) (a bincount, no sort); else None."""
    if arr.dtype.kind not in "iu" or arr.size == 0:
        return None
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0 or hi >= 1 << 20:
        return None
    present = np.bincount(arr, minlength=hi + 1) > 0
    if present.all():  # already 0..k-1: the values are their own codes
        return np.arange(hi + 1), arr
    remap = np.cumsum(present) - 1
    return np.flatnonzero(present), remap[arr]


def encode(values) -> tuple[np.ndarray, list[str]]:
    """Integer codes (0..k-1) and the sorted level names of one attribute column (missing → "missing")."""
    arr = np.asarray(values)
    fast = _small_int_unique(arr)
    if fast is not None:
        return fast[1].astype(np.int64, copy=False), [str(v) for v in fast[0]]
    if arr.dtype.kind == "O":
        arr = np.array(["missing" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v) for v in arr])
    levels, codes = np.unique(arr, return_inverse=True)
    return codes.astype(np.int64).ravel(), [str(v) for v in levels]


def binary_indicator(values, positive: str) -> np.ndarray:
    """1 where ``values`` is the positive class, compared as performance.py compares labels."""
    arr = np.asarray(values)
    if arr.dtype.kind == "b":
        return arr.astype(np.int64) if positive in ("1", "true", "True") else (~arr).astype(np.int64)
    if arr.dtype.kind in "iuf":
        try:
            return (arr == float(positive)).astype(np.int64)
        except ValueError:
            return np.zeros(arr.shape, dtype=np.int64)
    from monitoring.performance import _label_strings

    return (np.asarray(_label_strings(arr.tolist())) == positive).astype(np.int64)


def positive_class(y_true, y_pred) -> str:
    """The positive label of a binary task (performance.positive_label over labels and predictions)."""
    from monitoring.performance import _label_strings, positive_label

    uniques = []
    for values in (np.asarray(y_true), np.asarray(y_pred)):
        fast = _small_int_unique(values)
        uniques.append(fast[0] if fast is not None else np.unique(values))
    levels = np.unique(np.concatenate(uniques))
    return positive_label(_label_strings(levels.tolist()))


# ---------------------------------------------------------------- mergeable counts


def classification_counts(y_true01: np.ndarray, y_pred01: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """(n_groups, 4) int64 confusion counts ``[tn, fp, fn, tp]``: one bincount of 4·g + 2·y + ŷ."""
    cell = codes * 4 + 2 * y_true01 + y_pred01
    return np.bincount(cell, minlength=n_groups * 4).reshape(n_groups, 4)


def selection_counts(y_pred01: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """(n_groups, 2) int64 ``[n, predicted positive]`` from predictions alone (no labels needed)."""
    return np.bincount(codes * 2 + y_pred01, minlength=n_groups * 2).reshape(n_groups, 2) @ np.array(
        [[1, 0], [1, 1]], dtype=np.int64
    )


def regression_sums(y_true: np.ndarray, y_pred: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """(n_groups, 3) float ``[n, Σ|ŷ − y|, Σ(ŷ − y)]`` per group."""
    err = np.asarray(y_pred, dtype=np.float64) - np.asarray(y_true, dtype=np.float64)
    return np.stack(
        [
            np.bincount(codes, minlength=n_groups).astype(np.float64),
            np.bincount(codes, weights=np.abs(err), minlength=n_groups),
            np.bincount(codes, weights=err, minlength=n_groups),
        ],
        axis=-1,
    )


# ---------------------------------------------------------------- rates and summaries


def safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den elementwise, NaN where den == 0 (an undefined rate)."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


def group_rates(counts: np.ndarray) -> dict[str, np.ndarray]:
    """Per-group rates from ``[..., G, 4]`` confusion counts (leading axes: bootstrap replicates)."""
    tn, fp, fn, tp = (counts[..., i].astype(np.float64) for i in range(4))
    n = tn + fp + fn + tp
    return {
        "n": n,
        "selection_rate": safe_div(tp + fp, n),  # fairlearn selection_rate: P(ŷ = 1 | A = g)
        "tpr": safe_div(tp, tp + fn),  # fairlearn true_positive_rate: P(ŷ = 1 | Y = 1, A = g)
        "fpr": safe_div(fp, fp + tn),  # fairlearn false_positive_rate: P(ŷ = 1 | Y = 0, A = g)
        "precision": safe_div(tp, tp + fp),  # scikit-learn precision_score: P(Y = 1 | ŷ = 1, A = g)
        "accuracy": safe_div(tp + tn, n),  # scikit-learn accuracy_score: P(ŷ = Y | A = g)
    }


def regression_rates(sums: np.ndarray) -> dict[str, np.ndarray]:
    """Per-group MAE and mean signed error from ``[..., G, 3]`` sums."""
    n = sums[..., 0]
    return {
        "n": n,
        "mae": safe_div(sums[..., 1], n),  # scikit-learn mean_absolute_error: mean |ŷ − y| in the group
        "mean_signed_error": safe_div(sums[..., 2], n),  # mean (ŷ − y): > 0 over-predicts the group
    }


def spread(rate: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(max, min) over the kept groups along the last axis, ignoring undefined (NaN) rates."""
    masked = np.where(keep, rate, np.nan)
    with np.errstate(all="ignore"), _quiet():
        return np.nanmax(masked, axis=-1), np.nanmin(masked, axis=-1)


class _quiet:
    """Silence numpy's 'All-NaN slice' RuntimeWarning (an all-undefined slice is a legitimate NaN)."""

    def __enter__(self):
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc)


def classification_summaries(counts: np.ndarray, keep: np.ndarray) -> dict[str, np.ndarray]:
    """The parity figures from ``[..., G, 4]`` counts over the groups where ``keep`` is true."""
    rates = group_rates(counts)
    sel_max, sel_min = spread(rates["selection_rate"], keep)
    tpr_max, tpr_min = spread(rates["tpr"], keep)
    fpr_max, fpr_min = spread(rates["fpr"], keep)
    dp_ratio = safe_div(sel_min, sel_max)
    return {
        # fairlearn demographic_parity_difference(method="between_groups"): max_g sel − min_g sel
        "demographic_parity_difference": sel_max - sel_min,
        # fairlearn demographic_parity_ratio(method="between_groups"): min_g sel / max_g sel
        "demographic_parity_ratio": dp_ratio,
        # disparate impact (four-fifths rule): lowest selection rate over the highest = the DP ratio
        "disparate_impact": dp_ratio,
        # fairlearn equalized_odds_difference(agg="worst_case"): max(TPR spread, FPR spread)
        "equalized_odds_difference": np.fmax(tpr_max - tpr_min, fpr_max - fpr_min),
        # fairlearn equalized_odds_ratio(agg="worst_case"): min(TPR min/max, FPR min/max)
        "equalized_odds_ratio": np.fmin(safe_div(tpr_min, tpr_max), safe_div(fpr_min, fpr_max)),
    }


def regression_summaries(sums: np.ndarray, keep: np.ndarray) -> dict[str, np.ndarray]:
    """The largest ratio and the spread of group MAEs from ``[..., G, 3]`` sums."""
    mae_max, mae_min = spread(regression_rates(sums)["mae"], keep)
    return {
        "mae_ratio": safe_div(mae_max, mae_min),  # 1 / fairlearn MetricFrame(mean_absolute_error).ratio()
        "mae_difference": mae_max - mae_min,  # fairlearn MetricFrame(mean_absolute_error).difference()
    }


def _num(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


# ---------------------------------------------------------------- groupings


def _groupings(
    attributes: Mapping[str, np.ndarray], intersections: bool
) -> tuple[np.ndarray, list[tuple[str, list[str], np.ndarray]]]:
    """The finest joint code per row, and per attribute/intersection: (name, group names, joint→group map)."""
    encoded = {name: encode(values) for name, values in attributes.items()}
    names = list(encoded)
    joint = np.zeros(len(next(iter(encoded.values()))[0]) if encoded else 0, dtype=np.int64)
    for name in names:
        joint = joint * len(encoded[name][1]) + encoded[name][0]
    fast = _small_int_unique(joint)
    combos, joint_codes = fast if fast is not None else np.unique(joint, return_inverse=True)
    # decode each observed joint combination back into one level index per attribute
    per_attr: dict[str, np.ndarray] = {}
    rest = combos.copy()
    for name in reversed(names):
        k = len(encoded[name][1])
        per_attr[name] = rest % k
        rest //= k
    out = [(name, encoded[name][1], per_attr[name]) for name in names]
    if intersections:
        for a, b in itertools.combinations(names, 2):
            la, lb = encoded[a][1], encoded[b][1]
            mapping = per_attr[a] * len(lb) + per_attr[b]
            out.append((f"{a}{INTERSECTION_SEP}{b}", [f"{x}{GROUP_SEP}{y}" for x in la for y in lb], mapping))
    return joint_codes.astype(np.int64).ravel(), out


def _one_hot(mapping: np.ndarray, n_groups: int) -> np.ndarray:
    m = np.zeros((mapping.size, n_groups))
    m[np.arange(mapping.size), mapping] = 1.0
    return m


# ---------------------------------------------------------------- the report


def fairness_report(
    *,
    task: str,
    y_true,
    y_pred,
    attributes: Mapping[str, Sequence[Any] | np.ndarray],
    min_group_size: int = DEFAULT_MIN_GROUP_SIZE,
    n_boot: int | None = None,
    seed: int = 0,
    intersections: bool = True,
    positive: str = "",
) -> dict[str, Any]:
    """Per-group metrics, parity summaries and bootstrap intervals per attribute and pairwise intersection.

    ``positive``: a binary version's declared positive class (else ``positive_class`` infers it).
    ``task`` is ``binary`` or ``regression`` (``multiclass`` is not supported: its parity
    figures are not defined by fairlearn's binary metrics). JSON-ready output.
    """
    if not attributes:
        raise ValueError("at least one sensitive attribute is needed")
    joint, groupings = _groupings(attributes, intersections)
    n_joint = int(joint.max()) + 1 if joint.size else 0
    if task == "regression":
        base = regression_sums(np.asarray(y_true), np.asarray(y_pred), joint, n_joint)
        positive = None
        boot = _bootstrap_regression(y_true, y_pred, joint, n_joint, n_boot or DEFAULT_BOOTSTRAP_REGRESSION, seed)
    else:
        positive = positive or positive_class(y_true, y_pred)
        yt, yp = binary_indicator(y_true, positive), binary_indicator(y_pred, positive)
        base = classification_counts(yt, yp, joint, n_joint)
        boot = _bootstrap_multinomial(base, n_boot or DEFAULT_BOOTSTRAP, seed)
    report = {
        "task": task,
        "n": int(joint.size),
        "positive_label": positive,
        "min_group_size": int(min_group_size),
        "confidence": CONFIDENCE,
        "bootstrap_samples": int(boot.shape[0]),
        "seed": int(seed),
        "attributes": {},
    }
    for name, levels, mapping in groupings:
        onehot = _one_hot(mapping, len(levels))
        counts = np.einsum("jc,jg->gc", base, onehot)
        boot_counts = np.einsum("bjc,jg->bgc", boot, onehot)
        report["attributes"][name] = attribute_report(task, levels, counts, boot_counts, min_group_size)
    return report


def attribute_report(
    task: str, levels: list[str], counts: np.ndarray, boot_counts: np.ndarray | None, min_group_size: int
) -> dict[str, Any]:
    """Groups and summary (with intervals when ``boot_counts`` is given) of one attribute."""
    regression = task == "regression"
    rates = regression_rates(counts) if regression else group_rates(counts)
    present = rates["n"] > 0
    keep = present & (rates["n"] >= min_group_size)
    summarise = regression_summaries if regression else classification_summaries
    point = summarise(counts, keep)
    summary: dict[str, Any] = {key: _num(value) for key, value in point.items()}
    if not regression:
        sel = np.where(keep, rates["selection_rate"], np.nan)
        if np.isfinite(sel).any():
            summary["lowest_group"] = levels[int(np.nanargmin(sel))]
            summary["highest_group"] = levels[int(np.nanargmax(sel))]
    if boot_counts is not None:
        summary["intervals"] = _intervals(summarise(boot_counts, keep))
    summary["groups_compared"] = int(keep.sum())
    groups = []
    for g in np.flatnonzero(present):
        row: dict[str, Any] = {"group": levels[g], "n": int(rates["n"][g])}
        if keep[g]:
            row.update({k: _num(v[g]) for k, v in rates.items() if k != "n"})
        else:
            row.update({k: None for k in rates if k != "n"})
            row["too_small"] = True
        groups.append(row)
    return {"groups": groups, "summary": summary}


def _intervals(boot: Mapping[str, np.ndarray]) -> dict[str, list[float | None] | None]:
    alpha = (1 - CONFIDENCE) / 2
    out = {}
    with _quiet():
        for key, values in boot.items():
            finite = values[np.isfinite(values)]
            if finite.size < 0.9 * values.size or not finite.size:
                out[key] = None  # undefined in too many replicates for an interval
                continue
            lo, hi = np.quantile(finite, [alpha, 1 - alpha])
            out[key] = [_num(lo), _num(hi)]
    return out


def _bootstrap_multinomial(counts: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, J, 4) resampled counts: a row bootstrap's cell counts are multinomial(n, shares)."""
    flat = counts.ravel().astype(np.float64)
    total = int(flat.sum())
    if n_boot <= 0 or total == 0:
        return np.zeros((0, *counts.shape))
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(total, flat / total, size=n_boot)
    return draws.reshape(n_boot, *counts.shape).astype(np.float64)


def _bootstrap_regression(y_true, y_pred, joint: np.ndarray, n_joint: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, J, 3) sums over resampled rows, in chunks of about 4 million draws."""
    err = np.asarray(y_pred, dtype=np.float64) - np.asarray(y_true, dtype=np.float64)
    n = err.size
    if n_boot <= 0 or n == 0:
        return np.zeros((0, n_joint, 3))
    rng = np.random.default_rng(seed)
    out = np.empty((n_boot, n_joint, 3))
    chunk = max(1, 4_000_000 // n)
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        idx = rng.integers(0, n, size=(b, n))
        cell = (joint[idx] + (np.arange(b) * n_joint)[:, None]).ravel()
        e = err[idx].ravel()
        size = b * n_joint
        out[start : start + b, :, 0] = np.bincount(cell, minlength=size).reshape(b, n_joint)
        out[start : start + b, :, 1] = np.bincount(cell, weights=np.abs(e), minlength=size).reshape(b, n_joint)
        out[start : start + b, :, 2] = np.bincount(cell, weights=e, minlength=size).reshape(b, n_joint)
    return out
