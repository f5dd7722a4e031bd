"""Champion vs challenger on the same requests: mergeable paired counts and paired tests
(pure numpy / scipy, no database).

A *pair* is one prediction id scored by both the candidate (a non-production version, fed
as shadow traffic through the ordinary predictions upload) and the production version.
One window's pairs are reduced to a JSON *payload* of counts that add up exactly across
windows (``payload_merge``), like the drift bin counts:

``pairs``        pairs in the window (both versions scored the id);
``agree``        binary: the 2 × 2 agreement matrix, candidate class (rows) × production
                 class (columns), 0 = negative, 1 = positive;
``moments``      ``[n, Σx, Σy, Σx², Σy², Σxy]`` of the two scores (regression: the two
                 predictions), for the score correlation;
``labelled``     pairs whose id has a label;
``cells``        the labelled pairs as counted cells. Binary: ``[y, ŷ_cand, ŷ_prod,
                 score bin cand, score bin prod, count]`` with scores in 1,000 equal bins
                 of [0, 1] (bin ``-1`` for a missing score); per-label confusion counts of
                 both versions are sums of these cells. Regression: ``[error cand, error prod,
                 count]`` with errors rounded to 4 significant digits (the paired error sums
                 are sums over the cells; MAE/RMSE move by < 0.01% from the rounding).

A window's payload is recomputed from its rows whenever the window is (new pairs, a late
label), and replaces the stored one, so a late label is counted once.

Figures (``evidence``) on the summed payload: agreement rate, score correlation; per metric
the candidate's and production's value on the same labelled pairs and their difference
(candidate − production). The 95% interval of the difference is a **seeded, vectorised paired
bootstrap**: each replicate resamples the labelled pairs with replacement — a multinomial draw
over the cells, which is the same as resampling the pairs because a cell holds identical
pairs — and recomputes both versions' metrics on the same resample (2,000 replicates in blocks).
The p-value of accuracy is **McNemar's exact test** (binomial on the discordant pairs);
the other metrics' p-value is the two-sided bootstrap one, ``2 · min(P(Δ* ≤ 0), P(Δ* ≥ 0))``.
ROC AUC on 1,000 score bins counts pairs inside one bin as ties (one half): it differs from
the AUC on raw scores by at most the share of positive–negative pairs that fall within 0.001 of
each other, about 0.001 for ordinary score distributions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

SCORE_BINS = 1000
REPLICATES = 2000
BLOCK = 100
SEED = 20_260_516
CLASSIFICATION = ("accuracy", "precision", "recall", "f1", "roc_auc")
REGRESSION = ("mae", "rmse")
LOWER_IS_BETTER = {"mae", "rmse"}


def _score_bins(scores: np.ndarray) -> np.ndarray:
    out = np.floor(np.clip(scores, 0.0, 1.0) * SCORE_BINS).astype(np.int64)
    out = np.minimum(out, SCORE_BINS - 1)
    return np.where(np.isfinite(scores), out, -1)


def _moments(x: np.ndarray, y: np.ndarray) -> list[float]:
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    return [
        float(ok.sum()),
        float(x.sum()),
        float(y.sum()),
        float((x * x).sum()),
        float((y * y).sum()),
        float((x * y).sum()),
    ]


def _count_cells(columns: list[np.ndarray]) -> list[list]:
    if not columns[0].size:
        return []
    table = np.column_stack(columns)
    uniq, counts = np.unique(table, axis=0, return_counts=True)
    return [[*(v.item() for v in row), int(c)] for row, c in zip(uniq, counts, strict=True)]


def binary_payload(
    cand_pos: np.ndarray,
    prod_pos: np.ndarray,
    cand_score: np.ndarray,
    prod_score: np.ndarray,
    label_pos: np.ndarray,
) -> dict[str, Any]:
    """A window's binary payload from its raw pairs. ``*_pos``: 1.0 positive, 0.0 negative,
    NaN missing (an unlabelled pair has a NaN label)."""
    cand_pos, prod_pos, label_pos = (np.asarray(a, dtype=np.float64) for a in (cand_pos, prod_pos, label_pos))
    cand_score, prod_score = (np.asarray(a, dtype=np.float64) for a in (cand_score, prod_score))
    both = np.isfinite(cand_pos) & np.isfinite(prod_pos)
    agree = np.zeros((2, 2), dtype=np.int64)
    np.add.at(agree, (cand_pos[both].astype(int), prod_pos[both].astype(int)), 1)
    lab = both & np.isfinite(label_pos)
    cells = _count_cells(
        [
            label_pos[lab].astype(np.int64),
            cand_pos[lab].astype(np.int64),
            prod_pos[lab].astype(np.int64),
            _score_bins(cand_score[lab]),
            _score_bins(prod_score[lab]),
        ]
    )
    return {
        "kind": "binary",
        "pairs": int(cand_pos.size),
        "agree": agree.tolist(),
        "moments": _moments(cand_score, prod_score),
        "labelled": int(lab.sum()),
        "cells": cells,
    }


def _round_sig(x: np.ndarray, digits: int = 4) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        mag = np.where(x != 0, np.floor(np.log10(np.abs(x))), 0)
    scale = 10.0 ** (digits - 1 - mag)
    return np.round(x * scale) / scale


def regression_payload(cand: np.ndarray, prod: np.ndarray, label: np.ndarray) -> dict[str, Any]:
    """A window's regression payload from its raw pairs (NaN: missing)."""
    cand, prod, label = (np.asarray(a, dtype=np.float64) for a in (cand, prod, label))
    lab = np.isfinite(cand) & np.isfinite(prod) & np.isfinite(label)
    cells = _count_cells([_round_sig(label[lab] - cand[lab]), _round_sig(label[lab] - prod[lab])])
    return {
        "kind": "regression",
        "pairs": int(cand.size),
        "moments": _moments(cand, prod),
        "labelled": int(lab.sum()),
        "cells": cells,
    }


def payload_merge(payloads: Iterable[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The sum of window payloads of one kind: counts and moments add, cells add by key."""
    total: dict[str, Any] | None = None
    cells: dict[tuple, int] = {}
    for p in payloads:
        if total is None:
            total = {"kind": p["kind"], "pairs": 0, "moments": [0.0] * 6, "labelled": 0}
            if p["kind"] == "binary":
                total["agree"] = [[0, 0], [0, 0]]
        if p["kind"] != total["kind"]:
            continue
        total["pairs"] += p["pairs"]
        total["labelled"] += p["labelled"]
        total["moments"] = [a + b for a, b in zip(total["moments"], p["moments"], strict=True)]
        if "agree" in total:
            total["agree"] = [[total["agree"][i][j] + p["agree"][i][j] for j in range(2)] for i in range(2)]
        for cell in p["cells"]:
            key = tuple(cell[:-1])
            cells[key] = cells.get(key, 0) + int(cell[-1])
    if total is not None:
        total["cells"] = [[*k, c] for k, c in sorted(cells.items())]
    return total


# --------------------------------------------------------------------------- figures


def _correlation(m: list[float]) -> float | None:
    n, sx, sy, sxx, syy, sxy = m
    if n < 2:
        return None
    vx, vy = sxx - sx * sx / n, syy - sy * sy / n
    if vx <= 0 or vy <= 0:
        return None
    return float((sxy - sx * sy / n) / math.sqrt(vx * vy))


def _auc(y: np.ndarray, bins: np.ndarray, w: np.ndarray) -> np.ndarray:
    """ROC AUC of replicate weights ``w`` (R × K) over cells (label ``y``, score bin)."""
    r, k = w.shape
    ok = bins >= 0
    idx = (y * SCORE_BINS + np.where(ok, bins, 0))[None, :] + (np.arange(r) * 2 * SCORE_BINS)[:, None]
    hist = np.bincount(idx.ravel(), weights=(w * ok).ravel(), minlength=r * 2 * SCORE_BINS).reshape(r, 2, SCORE_BINS)
    neg, pos = hist[:, 0, :], hist[:, 1, :]
    below = np.cumsum(neg, axis=1) - neg
    with np.errstate(invalid="ignore", divide="ignore"):
        return (pos * (below + 0.5 * neg)).sum(axis=1) / (pos.sum(axis=1) * neg.sum(axis=1))


def _binary_metrics(c: np.ndarray, w: np.ndarray, version: int) -> dict[str, np.ndarray]:
    y, pred, bins = c[:, 0], c[:, 1 + version], c[:, 3 + version]
    tp = (w * ((y == 1) & (pred == 1))).sum(axis=1)
    fp = (w * ((y == 0) & (pred == 1))).sum(axis=1)
    fn = (w * ((y == 1) & (pred == 0))).sum(axis=1)
    n = w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "accuracy": (w * (y == pred)).sum(axis=1) / n,
            "precision": tp / (tp + fp),
            "recall": tp / (tp + fn),
            "f1": 2 * tp / (2 * tp + fp + fn),
            "roc_auc": _auc(y, bins, w),
        }


def _regression_metrics(c: np.ndarray, w: np.ndarray, version: int) -> dict[str, np.ndarray]:
    e = c[:, version]
    n = w.sum(axis=1)
    return {"mae": (w * np.abs(e)).sum(axis=1) / n, "rmse": np.sqrt((w * e * e).sum(axis=1) / n)}


def _clean(v) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def _mcnemar(c: np.ndarray) -> float | None:
    y, cp, pp, n = c[:, 0], c[:, 1], c[:, 2], c[:, -1]
    b = int(n[(cp == y) & (pp != y)].sum())  # candidate right, production wrong
    d = int(n[(cp != y) & (pp == y)].sum())
    if b + d == 0:
        return 1.0
    from scipy import stats  # imported on use: see registry/llm_stats.py

    return float(stats.binomtest(b, b + d, 0.5).pvalue)


def paired_tests(payload: Mapping[str, Any], *, replicates: int = REPLICATES, seed: int = SEED) -> dict[str, dict]:
    """Per metric: candidate, production, difference, its 95% bootstrap interval, p-value."""
    cells = np.asarray(payload["cells"], dtype=np.float64)
    if not cells.size:
        return {}
    binary = payload["kind"] == "binary"
    compute = _binary_metrics if binary else _regression_metrics
    names = CLASSIFICATION if binary else REGRESSION
    if binary:
        cells = cells.astype(np.int64)
    counts = cells[:, -1].astype(np.int64)
    n = int(counts.sum())
    base = counts[None, :].astype(np.float64)
    cand, prod = compute(cells, base, 0), compute(cells, base, 1)
    rng = np.random.default_rng(seed)
    diffs: dict[str, list[np.ndarray]] = {m: [] for m in names}
    p = counts / n
    for start in range(0, replicates, BLOCK):
        w = rng.multinomial(n, p, size=min(BLOCK, replicates - start)).astype(np.float64)
        c_rep, p_rep = compute(cells, w, 0), compute(cells, w, 1)
        for m in names:
            diffs[m].append(c_rep[m] - p_rep[m])
    out = {}
    for m in names:
        d = np.concatenate(diffs[m])
        d = d[np.isfinite(d)]
        lo, hi = np.percentile(d, [2.5, 97.5]) if d.size else (np.nan, np.nan)
        boot_p = min(1.0, 2 * min((d <= 0).mean(), (d >= 0).mean())) if d.size else np.nan
        c0, p0 = cand[m][0], prod[m][0]
        out[m] = {
            "candidate": _clean(c0),
            "production": _clean(p0),
            "difference": _clean(c0 - p0),
            "ci_low": _clean(lo),
            "ci_high": _clean(hi),
            "p_value": _clean(boot_p),
            "test": "paired bootstrap",
            "lower_is_better": m in LOWER_IS_BETTER,
        }
    if binary:
        out["accuracy"]["p_value"] = _mcnemar(cells)
        out["accuracy"]["test"] = "McNemar (exact)"
    return out


def evidence(payload: Mapping[str, Any] | None, **kwargs) -> dict[str, Any]:
    """The live evidence of a summed payload (see the module docstring)."""
    if not payload:
        return {"pairs": 0, "labelled_pairs": 0, "agreement": None, "score_correlation": None, "metrics": {}}
    agreement = None
    if payload["kind"] == "binary":
        agree = np.asarray(payload["agree"], dtype=np.float64)
        agreement = float(np.trace(agree) / agree.sum()) if agree.sum() else None
    return {
        "kind": payload["kind"],
        "pairs": int(payload["pairs"]),
        "labelled_pairs": int(payload["labelled"]),
        "agreement": agreement,
        "agreement_matrix": payload.get("agree"),
        "score_correlation": _correlation(payload["moments"]),
        "metrics": paired_tests(payload, **kwargs) if payload["labelled"] else {},
    }
