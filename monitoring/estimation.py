"""Performance estimated before the labels arrive (pure numpy / scikit-learn, no database).

Binary classification: confidence-based performance estimation (CBPE)
    *Calibration.* A reference upload may carry a ``label`` column. When it has labels and
    scores, ``calibration_build`` fits an **isotonic** regression of the label on the score
    (``sklearn.isotonic.IsotonicRegression``, clipped outside the reference range). Isotonic
    rather than Platt: it assumes only that a higher score means a higher probability, where
    Platt assumes a logistic shape that tree ensembles and re-weighted models do not follow; the
    reference is large (thousands of rows), which is where isotonic is the better fit.
    The calibration is stored in the profile as one calibrated probability per *fine score
    bin* (``bin_prob``: the mean calibrated probability of the reference rows in the bin), the
    reference rows per bin (``bin_n``) and the reference share of positive predictions per
    bin (``bin_pred``, 0 or 1 when the decision threshold is a bin edge, which the profile
    builder arranges).
    *Estimation.* A window stores its score counts on the same fine bins (``__score__``), so
    its expected confusion matrix is ``TP = Σ n_b p_b d_b``, ``FP = Σ n_b (1 − p_b) d_b``,
    ``FN = Σ n_b p_b (1 − d_b)``, ``TN = Σ n_b (1 − p_b)(1 − d_b)`` (``n_b`` window rows,
    ``p_b`` calibrated probability, ``d_b`` predicted-positive share of bin ``b``), giving
    accuracy, precision, recall and F1; ROC AUC is the AUC of the expected positive and
    negative masses over the ordered bins (ties inside a bin count one half). Windows are
    summed counts, so a day's estimate is its hours' counts summed: no raw rows are read.
    *Uncertainty* (``estimated.<metric>.lower`` / ``.upper``): a seeded parametric bootstrap
    of 400 replicates, vectorised over bins: each replicate draws each bin's probability from
    its calibration error (normal, ``√(p(1−p)/m_b)`` with ``m_b`` reference rows) and then the
    window's positives per bin as ``Binomial(n_b, p_b*)``; the band is the 2.5–97.5%
    percentiles of the replicate metrics. It is the range the realized metric of this window
    would fall in if the calibration holds.
    *When CBPE is wrong.* It assumes that ``P(y | score)`` is the one seen on the reference:
    it follows covariate shift (the score distribution moves) but cannot see **concept
    drift** (the same inputs now mean another outcome), nor a label definition change, nor a
    reference that was not representative. Under concept drift the estimate stays flat while
    the realized metric falls; the dashboard therefore shows it as an estimate, dashed, and the
    realized value replaces it once labels cover the window.

Regression: direct loss estimation (DLE)
    ``dle_fit`` fits two ``HistGradientBoostingRegressor`` on the labelled reference, from the
    features and the prediction to the absolute and the squared error; a window's estimated
    MAE is the mean of the predicted absolute errors of its rows and its RMSE the root of the
    mean predicted squared error. Hourly windows run the models on their rows; a day is the
    volume-weighted combination of its hours (exact: the estimates are means of per-row
    values). The band is the normal interval of the window mean, ``± 1.96 √(Var|e| / n)`` with
    ``Var|e| = E[e²] − E[|e|]²`` from the same two models.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from monitoring.binning import fine_bins

ESTIMATED_PREFIX = "estimated."
CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
REGRESSION_METRICS = ("mae", "rmse")
BOOTSTRAP_REPLICATES = 400
BOOTSTRAP_SEED = 20_260_516
LABEL_COLUMN = "label"
LABEL_FEATURE = "__label__"


def estimated_name(metric: str, bound: str = "") -> str:
    return f"{ESTIMATED_PREFIX}{metric}" + (f".{bound}" if bound else "")


#: Every estimated metric name, with the bands (what the dashboards read).
ESTIMATED_METRICS = [
    estimated_name(m, bound) for m in (*CLASSIFICATION_METRICS, *REGRESSION_METRICS) for bound in ("", "lower", "upper")
]


# --------------------------------------------------------------------------- calibration


def calibration_build(
    scores: np.ndarray, y: np.ndarray, predicted_positive: np.ndarray | None, edges: np.ndarray
) -> dict[str, Any] | None:
    """The CBPE calibration of a labelled reference on the score's fine bins (``edges``).

    ``y`` is 0/1, ``predicted_positive`` 0/1 (None: the decision is ``score ≥ 0.5``).
    Returns None when the reference has no rows with both a score and a label of each class."""
    from sklearn.isotonic import IsotonicRegression

    scores = np.asarray(scores, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    ok = np.isfinite(scores) & np.isfinite(y)
    if predicted_positive is None:
        predicted_positive = (scores >= 0.5).astype(np.float64)
    pred = np.asarray(predicted_positive, dtype=np.float64)
    ok &= np.isfinite(pred)
    scores, y, pred = scores[ok], y[ok], pred[ok]
    if scores.size < 2 or y.min() == y.max():
        return None
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(scores, y)
    calibrated = iso.predict(scores)
    edges = np.asarray(edges, dtype=np.float64)
    idx = fine_bins(edges, scores)
    width = len(edges) + 1
    m = np.bincount(idx, minlength=width).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        prob = np.bincount(idx, weights=calibrated, minlength=width) / m
        share = np.bincount(idx, weights=pred, minlength=width) / m
    # a bin the reference leaves empty takes the calibration at its bounds (the map is monotone)
    empty = m == 0
    if empty.any():
        bounds = np.concatenate([[scores.min()], edges, [scores.max()]])
        mid = (bounds[:-1] + bounds[1:]) / 2
        prob[empty] = iso.predict(mid[empty])
        share[empty] = (mid[empty] >= 0.5).astype(np.float64)
    return {
        "method": "isotonic",
        "bin_prob": prob.tolist(),
        "bin_n": m.astype(int).tolist(),
        "bin_pred": share.tolist(),
        "reference_rows": int(scores.size),
        "reference_positive_rate": float(y.mean()),
    }


def decision_threshold(scores: np.ndarray, predicted_positive: np.ndarray | None) -> float | None:
    """The score threshold of the reference predictions, when they are one (every positive
    prediction scores above every negative one); 0.5 without predictions; else None."""
    if predicted_positive is None:
        return 0.5
    s = np.asarray(scores, dtype=np.float64)
    p = np.asarray(predicted_positive, dtype=np.float64)
    ok = np.isfinite(s) & np.isfinite(p)
    s, p = s[ok], p[ok]
    pos, neg = s[p == 1], s[p == 0]
    if not pos.size:
        return None
    threshold = float(pos.min())
    return threshold if not neg.size or neg.max() < threshold else None


# --------------------------------------------------------------------------- CBPE


def _metrics_from_masses(pos: np.ndarray, neg: np.ndarray, share: np.ndarray) -> dict[str, np.ndarray]:
    """Metrics of (replicates ×) bins of positive / negative masses with predicted-positive
    shares; row-wise for 2-D input. Undefined values are NaN."""
    tp = (pos * share).sum(axis=-1)
    fp = (neg * share).sum(axis=-1)
    fn = (pos * (1 - share)).sum(axis=-1)
    tn = (neg * (1 - share)).sum(axis=-1)
    n_pos = pos.sum(axis=-1)
    n_neg = neg.sum(axis=-1)
    total = n_pos + n_neg
    below_neg = np.cumsum(neg, axis=-1) - neg  # negatives in lower bins
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (pos * (below_neg + 0.5 * neg)).sum(axis=-1) / (n_pos * n_neg)
        return {
            "accuracy": (tp + tn) / total,
            "precision": tp / (tp + fp),
            "recall": tp / (tp + fn),
            "f1": 2 * tp / (2 * tp + fp + fn),
            "roc_auc": auc,
        }


def _clean(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def cbpe_estimate(
    calibration: Mapping[str, Any], counts, *, replicates: int = BOOTSTRAP_REPLICATES, seed: int = BOOTSTRAP_SEED
) -> dict[str, tuple[float | None, float | None, float | None]]:
    """Estimated metric → (value, lower, upper) of a window from its fine score-bin counts."""
    prob = np.asarray(calibration["bin_prob"], dtype=np.float64)
    share = np.asarray(calibration["bin_pred"], dtype=np.float64)
    ref_n = np.asarray(calibration["bin_n"], dtype=np.float64)
    n = np.zeros_like(prob)
    c = np.asarray(counts, dtype=np.float64)[: prob.size]
    n[: c.size] = c
    if n.sum() <= 0:
        return {}
    point = _metrics_from_masses(n * prob, n * (1 - prob), share)
    rng = np.random.default_rng(seed)
    se = np.sqrt(prob * (1 - prob) / np.maximum(ref_n, 1))
    drawn = np.clip(prob + se * rng.standard_normal((replicates, prob.size)), 0.0, 1.0)
    counts_int = np.rint(n).astype(np.int64)
    pos = rng.binomial(np.broadcast_to(counts_int, drawn.shape), drawn).astype(np.float64)
    sim = _metrics_from_masses(pos, counts_int - pos, share)
    out = {}
    for name in CLASSIFICATION_METRICS:
        values = sim[name][np.isfinite(sim[name])]
        lo, hi = np.percentile(values, [2.5, 97.5]) if values.size else (np.nan, np.nan)
        out[name] = (_clean(point[name]), _clean(lo), _clean(hi))
    return out


# --------------------------------------------------------------------------- DLE


def _design(columns: Mapping[str, np.ndarray], schema: list[dict], categories: Mapping[str, list]) -> np.ndarray:
    """Features (categorical as reference category codes, unseen as NaN) + the prediction."""
    parts = []
    for feature in schema:
        name = feature["name"]
        values = columns[name]
        if feature.get("type", "numeric") == "numeric":
            parts.append(np.asarray(values, dtype=np.float64))
        else:
            codes = {c: float(i) for i, c in enumerate(categories.get(name, []))}
            parts.append(np.array([codes.get(None if v is None else str(v), np.nan) for v in values]))
    parts.append(np.asarray(columns["__prediction__"], dtype=np.float64))
    return np.column_stack(parts)


def dle_fit(columns: Mapping[str, np.ndarray], y_true: np.ndarray, schema: list[dict]) -> dict[str, Any] | None:
    """The two error models of a labelled regression reference (None without labelled rows)."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    categories = {
        f["name"]: sorted({str(v) for v in columns[f["name"]] if v is not None})[:255]
        for f in schema
        if f.get("type", "numeric") != "numeric"
    }
    x = _design(columns, schema, categories)
    y_true = np.asarray(y_true, dtype=np.float64)
    pred = np.asarray(columns["__prediction__"], dtype=np.float64)
    ok = np.isfinite(y_true) & np.isfinite(pred)
    if ok.sum() < 20:
        return None
    err = y_true[ok] - pred[ok]
    cat_mask = [f.get("type", "numeric") != "numeric" for f in schema] + [False]
    kwargs = {"random_state": 0, "categorical_features": cat_mask if any(cat_mask) else None}
    abs_model = HistGradientBoostingRegressor(**kwargs).fit(x[ok], np.abs(err))
    sq_model = HistGradientBoostingRegressor(**kwargs).fit(x[ok], err**2)
    return {"abs": abs_model, "sq": sq_model, "categories": categories, "schema": schema}


def dle_groups(
    models: Mapping[str, Any], columns: Mapping[str, np.ndarray], group: np.ndarray, n_groups: int
) -> list[dict[str, float] | None]:
    """Mergeable sums (n, abs_sum, sq_sum) of the predicted absolute and squared errors of each
    group of rows (``group``: each row's group, 0 … n_groups - 1), from one prediction over all
    the rows (a window read a slice at a time); None for a group without rows to score."""
    if "__prediction__" not in columns:
        return [None] * n_groups
    x = _design(columns, models["schema"], models["categories"])
    ok = np.isfinite(x[:, -1])
    if not ok.any():
        return [None] * n_groups
    abs_err = np.clip(models["abs"].predict(x[ok]), 0, None)
    sq_err = np.clip(models["sq"].predict(x[ok]), 0, None)
    n = np.bincount(group[ok], minlength=n_groups)
    abs_sum = np.bincount(group[ok], weights=abs_err, minlength=n_groups)
    sq_sum = np.bincount(group[ok], weights=sq_err, minlength=n_groups)
    return [
        {"n": float(n[g]), "abs_sum": float(abs_sum[g]), "sq_sum": float(sq_sum[g])} if n[g] else None
        for g in range(n_groups)
    ]


def dle_estimate(sums: Mapping[str, float]) -> dict[str, tuple[float | None, float | None, float | None]]:
    """Estimated MAE / RMSE with their normal bands from the summed per-row predictions."""
    n = sums.get("n") or 0.0
    if n <= 0:
        return {}
    mae = sums["abs_sum"] / n
    mse = sums["sq_sum"] / n
    se = math.sqrt(max(mse - mae**2, 0.0) / n)
    rmse = math.sqrt(mse)
    # delta method for the root: se(√m) ≈ se(m) / (2√m); se(m) from the same per-row spread
    se_rmse = (se * 2 * mae) / (2 * rmse) if rmse > 0 else 0.0
    return {
        "mae": (mae, max(mae - 1.96 * se, 0.0), mae + 1.96 * se),
        "rmse": (rmse, max(rmse - 1.96 * se_rmse, 0.0), rmse + 1.96 * se_rmse),
    }


def estimate_rows(estimates: Mapping[str, tuple]) -> list[dict[str, Any]]:
    """``MetricValue`` rows (dataset level) of the estimates and their bands."""
    rows = []
    for metric, (value, lower, upper) in estimates.items():
        rows.append({"feature": "", "metric": estimated_name(metric), "value": value})
        rows.append({"feature": "", "metric": estimated_name(metric, "lower"), "value": lower})
        rows.append({"feature": "", "metric": estimated_name(metric, "upper"), "value": upper})
    return rows
