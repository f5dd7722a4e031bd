"""Fairness report benchmark: 1,000,000 labelled predictions, 3 sensitive attributes
(2 × 4 × 3 = 24 intersectional groups).

* ours: ``monitoring.fairness.fairness_report``: per attribute and pairwise intersection (6
  groupings) the per-group size, selection rate, TPR, FPR, precision, accuracy, the parity
  summaries, and 95 % bootstrap intervals (1,000 replicates);
* peer: fairlearn ``MetricFrame`` with the same per-group metrics over the same 6 groupings
  (point estimates only, no intervals: less work than ours), plus ``demographic_parity_*`` and
  ``equalized_odds_*`` summaries from the frames;
* limit: a bare numpy ``bincount`` of the confusion cells per grouping (pre-encoded codes).

Each runs in its own process (peak RSS of that process). Targets: ≥ 10× faster than fairlearn,
within 3× of numpy, under 500 MB.

    python -m bench fairness                       # in the table of make bench
    python -m bench.fairness child ours|fairlearn|numpy DATA.npz OUT.json
"""

from __future__ import annotations

import json
import resource
import statistics
import sys
import time

from bench.common import DATA_DIR, QUICK, Figure, log, measure_our_child

ROWS = 100_000 if QUICK else 1_000_000
REPEATS = 3
MB = 1024 * 1024
ATTRIBUTES = ("sex", "age_band", "region")


def write_data():
    import numpy as np

    path = DATA_DIR / "fairness" / f"predictions-{ROWS}.npz"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2026)
    sex, age, region = rng.integers(0, 2, ROWS), rng.integers(0, 4, ROWS), rng.integers(0, 3, ROWS)
    y = (rng.random(ROWS) < 0.3 + 0.1 * sex).astype(np.int64)
    p = np.where(rng.random(ROWS) < 0.15 + 0.03 * age, 1 - y, y).astype(np.int64)
    np.savez(path, y=y, p=p, sex=sex, age_band=age, region=region)
    return path


def _load(path):
    import numpy as np

    data = np.load(path)
    return data["y"], data["p"], {name: data[name] for name in ATTRIBUTES}


def child_ours(path) -> dict:
    from monitoring.fairness import fairness_report

    y, p, attrs = _load(path)
    timings = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        report = fairness_report(task="binary", y_true=y, y_pred=p, attributes=attrs, n_boot=1000, seed=1)
        timings.append(time.perf_counter() - start)
    groups = sum(len(a["groups"]) for a in report["attributes"].values())
    return {
        "compute_seconds": statistics.median(timings),
        "timings": timings,
        "groupings": len(report["attributes"]),
        "groups": groups,
    }


def _groupings(attrs):
    import itertools

    import pandas as pd

    out = [attrs[name] for name in ATTRIBUTES]
    out += [pd.DataFrame({a: attrs[a], b: attrs[b]}) for a, b in itertools.combinations(ATTRIBUTES, 2)]
    return out


def child_fairlearn(path) -> dict:
    import fairlearn
    from fairlearn.metrics import MetricFrame, count, false_positive_rate, selection_rate, true_positive_rate
    from sklearn.metrics import accuracy_score, precision_score

    y, p, attrs = _load(path)
    metrics = {
        "n": count,
        "selection_rate": selection_rate,
        "tpr": true_positive_rate,
        "fpr": false_positive_rate,
        "precision": lambda t, q: precision_score(t, q, zero_division=0),
        "accuracy": accuracy_score,
    }
    start = time.perf_counter()
    groups = 0
    for sf in _groupings(attrs):
        frame = MetricFrame(metrics=metrics, y_true=y, y_pred=p, sensitive_features=sf)
        groups += len(frame.by_group)
        frame.difference()
        frame.ratio()
    return {
        "compute_seconds": time.perf_counter() - start,
        "tool": f"fairlearn {fairlearn.__version__}",
        "groups": groups,
    }


def child_numpy(path) -> dict:
    import itertools

    import numpy as np

    y, p, attrs = _load(path)
    timings = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        cell = 2 * y + p
        codes = [attrs[name] for name in ATTRIBUTES]
        codes += [attrs[a] * 4 + attrs[b] for a, b in itertools.combinations(ATTRIBUTES, 2)]
        counts = [np.bincount(c * 4 + cell) for c in codes]
        timings.append(time.perf_counter() - start)
    return {
        "compute_seconds": statistics.median(timings),
        "timings": timings,
        "cells": int(sum(c.sum() for c in counts)),
    }


def child(mode: str, path: str, out: str) -> None:
    result = {"ours": child_ours, "fairlearn": child_fairlearn, "numpy": child_numpy}[mode](path)
    result["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    with open(out, "w") as fh:
        json.dump(result, fh)


def _measure(mode: str, path) -> dict:
    """The contender in its own process: its peak RSS through ``measure_our_child``'s small
    launcher (a child started straight from this process would report this process's peak)."""
    return measure_our_child("fairness", mode, path, out=DATA_DIR / "fairness" / f"{mode}.json")


def run() -> list[Figure]:
    path = write_data()
    size = f"{ROWS:,} rows, 3 attributes (24 groups)"
    results = {}
    for mode in ("ours", "numpy", "fairlearn"):
        log(f"fairness report {size}: {mode}")
        results[mode] = _measure(mode, path)
        log(f"  {mode} {results[mode]['compute_seconds']:.3f} s, {results[mode]['peak_rss_bytes'] / MB:.0f} MB")
    ours, limit, peer = results["ours"], results["numpy"], results["fairlearn"]
    speedup = peer["compute_seconds"] / ours["compute_seconds"]
    vs_limit = ours["compute_seconds"] / limit["compute_seconds"]
    ours_mb = ours["peak_rss_bytes"] / MB
    return [
        Figure(f"fairness report, {size}, 1,000 bootstrap intervals", ours["compute_seconds"], "s",
               peer="fairlearn MetricFrame (no intervals)", peer_value=peer["compute_seconds"], ratio=speedup,
               target="≥ 10x faster", passed=speedup >= 10,
               note=f"ratio = fairlearn / ours; {ours['groups']} groups in {ours['groupings']} groupings"),
        Figure("fairness report vs bare numpy bincount", ours["compute_seconds"], "s",
               peer="numpy bincount limit", peer_value=limit["compute_seconds"], ratio=vs_limit,
               target="within 3x", passed=vs_limit <= 3),
        Figure("fairness report peak memory", ours_mb, "MB", peer="fairlearn MetricFrame",
               peer_value=peer["peak_rss_bytes"] / MB, ratio=ours_mb / (peer["peak_rss_bytes"] / MB),
               target="< 500 MB", passed=ours_mb < 500),
    ]  # fmt: skip


if __name__ == "__main__":
    if len(sys.argv) >= 5 and sys.argv[1] == "child":
        child(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit("usage: python -m bench.fairness child ours|fairlearn|numpy DATA.npz OUT.json")
