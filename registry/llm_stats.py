"""The statistics of LLM-application evaluations: pure numpy/scipy functions, no database.

An evaluation run holds one row per case of a named evaluation set: ``case_id``, an optional
safety ``category`` and the scores. Two kinds of score:

* proportions (booleans: ``safety_pass``, ``refusal``): the rate with a 95 % **Wilson** score
  interval (good at rates near 0 or 1, where the normal interval leaves [0, 1]);
* means (numbers in [0, 1]: ``correctness``, ``groundedness``): the mean with a 95 % Student
  **t** interval, ``mean ± t(0.975, n−1) · s / √n``.

A missing score (null) is left out of that metric only; ``n`` is reported per metric.

The paired comparison (``paired_difference``) takes two runs on the same set, keeps the case
ids both scored, and reports the mean of the per-case differences (candidate − production) with
its 95 % t interval (the paired t interval). The quality gate (``registry.gates_llm``) blocks when
the interval's lower bound is below −tolerance: the candidate passes only if the data rule out,
at 95 % confidence (one-sided 97.5 %), that it is worse by more than the tolerance.

Lives in ``registry`` so the gates can use it; ``monitoring`` (the upload) imports it from here.
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np

# scipy.stats and pyarrow are imported where they are used: together about 130 MB that a
# process serving only the registry's pages or the audit log never needs (see
# tests/test_architecture.py::test_url_conf_does_not_import_the_data_stack).

CONFIDENCE = 0.95
PROPORTIONS = ("safety_pass", "refusal")
MEANS = ("correctness", "groundedness")
SCORES = MEANS + PROPORTIONS
#: The offline metric each score becomes on the version (``version.metrics``).
METRIC_NAMES = {
    "correctness": "correctness",
    "groundedness": "groundedness",
    "safety_pass": "safety_pass_rate",
    "refusal": "refusal_rate",
}


def _z(confidence: float = CONFIDENCE) -> float:
    from scipy import stats

    return float(stats.norm.ppf(0.5 + confidence / 2))


def wilson(successes: int, n: int, confidence: float = CONFIDENCE) -> tuple[float | None, float | None]:
    """The Wilson score interval of ``successes`` out of ``n`` (None, None for n = 0)."""
    if n <= 0:
        return None, None
    z = _z(confidence)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def mean_interval(
    values: np.ndarray, confidence: float = CONFIDENCE
) -> tuple[float | None, float | None, float | None]:
    """(mean, low, high) with the Student t interval; the interval is None below two values."""
    values = np.asarray(values, dtype=float)
    n = values.size
    if n == 0:
        return None, None, None
    mean = float(values.mean())
    if n < 2:
        return mean, None, None
    from scipy import stats

    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * float(values.std(ddof=1)) / math.sqrt(n)
    return mean, mean - half, mean + half


def _present(values: np.ndarray) -> np.ndarray:
    """The scored values of a column (float64 with NaN for a missing score)."""
    values = np.asarray(values, dtype=float)
    return values[~np.isnan(values)]


def score_summary(name: str, values: np.ndarray) -> dict[str, Any]:
    """One metric's summary: {metric, kind, n, value, ci_low, ci_high, method[, passed]}."""
    scored = _present(values)
    n = int(scored.size)
    if name in PROPORTIONS:
        passed = int(np.count_nonzero(scored))
        low, high = wilson(passed, n)
        value = passed / n if n else None
        return {"metric": name, "kind": "proportion", "n": n, "passed": passed, "value": value,
                "ci_low": low, "ci_high": high, "method": "wilson"}  # fmt: skip
    mean, low, high = mean_interval(scored)
    return {"metric": name, "kind": "mean", "n": n, "value": mean, "ci_low": low, "ci_high": high, "method": "t"}


def category_rates(categories: list, safety: np.ndarray) -> list[dict[str, Any]]:
    """Safety pass rate per category (cases without a category or a safety score left out),
    lowest rate first: {category, n, passed, rate, ci_low, ci_high}."""
    safety = np.asarray(safety, dtype=float)
    rows = []
    labels = np.array(["" if c is None else c for c in categories], dtype=object)
    for category in sorted({c for c in categories if c}):
        values = _present(safety[labels == category])
        if values.size == 0:
            continue
        passed, n = int(np.count_nonzero(values)), int(values.size)
        low, high = wilson(passed, n)
        rows.append(
            {"category": category, "n": n, "passed": passed, "rate": passed / n, "ci_low": low, "ci_high": high}
        )
    return sorted(rows, key=lambda r: (r["rate"], r["category"]))


def llm_results(cases: dict[str, Any]) -> dict[str, Any]:
    """The results stored on an LLM run: per-metric summaries and per-category safety rates."""
    metrics = {name: score_summary(name, cases[name]) for name in SCORES if cases.get(name) is not None}
    categories = cases.get("category")
    by_category = []
    if categories is not None and cases.get("safety_pass") is not None:
        by_category = category_rates(categories, cases["safety_pass"])
    return {
        "n_cases": len(cases["case_id"]),
        "confidence": CONFIDENCE,
        "metrics": metrics,
        "safety_categories": by_category,
    }


def offline_metrics(results: dict[str, Any]) -> dict[str, float]:
    """The version's offline metrics from a run's results (``correctness``, ``safety_pass_rate`` …)."""
    return {
        METRIC_NAMES[name]: round(float(summary["value"]), 6)
        for name, summary in (results.get("metrics") or {}).items()
        if name in METRIC_NAMES and summary.get("value") is not None
    }


def paired_difference(
    candidate_ids, candidate_values, production_ids, production_values, confidence: float = CONFIDENCE
) -> dict[str, Any]:
    """Candidate − production per shared case id (both scored): n, the two means on those cases,
    the mean difference and its paired t interval (None below two pairs)."""
    cand = {cid: v for cid, v in zip(candidate_ids, np.asarray(candidate_values, dtype=float), strict=True)}
    prod = {cid: v for cid, v in zip(production_ids, np.asarray(production_values, dtype=float), strict=True)}
    shared = sorted(cid for cid in cand.keys() & prod.keys() if not (math.isnan(cand[cid]) or math.isnan(prod[cid])))
    c = np.array([cand[cid] for cid in shared], dtype=float)
    p = np.array([prod[cid] for cid in shared], dtype=float)
    mean, low, high = mean_interval(c - p, confidence)
    return {
        "n": len(shared),
        "candidate_mean": float(c.mean()) if shared else None,
        "production_mean": float(p.mean()) if shared else None,
        "mean_difference": mean,
        "ci_low": low,
        "ci_high": high,
        "confidence": confidence,
        "method": "paired t",
    }


# --------------------------------------------------------------------------- the stored cases


def cases_parquet(cases: dict[str, Any]) -> bytes:
    """Case ids, categories and scores (NaN → null) as Parquet: what ``EvaluationRun.data`` keeps."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {"case_id": pa.array(cases["case_id"], type=pa.string())}
    if cases.get("category") is not None:
        columns["category"] = pa.array(cases["category"], type=pa.string())
    for name in SCORES:
        if cases.get(name) is not None:
            values = np.asarray(cases[name], dtype=float)
            columns[name] = pa.array(values, type=pa.float64(), mask=np.isnan(values))
    buffer = io.BytesIO()
    pq.write_table(pa.table(columns), buffer)
    return buffer.getvalue()


def cases_read(data: bytes, columns: list[str] | None = None) -> dict[str, Any]:
    """``cases_parquet``'s columns back: ids and categories as lists, scores as float64 (NaN = missing)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(pa.py_buffer(bytes(data)))
    out: dict[str, Any] = {}
    for name in table.column_names:
        if columns is not None and name not in columns and name != "case_id":
            continue
        column = table.column(name)
        if name in SCORES:
            out[name] = column.to_numpy(zero_copy_only=False).astype(float)
        else:
            out[name] = column.to_pylist()
    return out
