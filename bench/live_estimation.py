"""Benchmark: performance estimated without labels for one window of 1,000,000 scored
predictions against a 100,000-row labelled reference, ours vs NannyML 0.13's CBPE on the same
Parquet files (``bench/data/live/``), each in its own process so its peak RSS is its own:

- ours: the reference profile's isotonic calibration on the score bins (``profile_build``, once
  per version at upload, timed apart), then per window the score binning and
  ``monitoring.estimation.cbpe_estimate`` (expected confusion matrix, ROC AUC and the
  400-replicate bootstrap band), the path the window computation takes;
- NannyML 0.13.1 ``CBPE`` in ``bench/.venv-nannyml`` (``bench/nannyml_peer.py``), fit on the
  reference and estimate of the window as one chunk (fit timed apart).

The data: a binary model whose true probability is a logistic of two inputs and whose score is
a monotone distortion of it (so both tools calibrate); the window's inputs are shifted
(covariate shift). Targets: every estimate within 0.01 of NannyML's, ≥ 20× faster (estimate
step against estimate step), peak RSS < 500 MB.

    python -m bench.live_estimation              # full size
    BENCH_QUICK=1 python -m bench.live_estimation     # 100,000 vs 10,000 (smoke test)
    python -m bench.live_estimation child REF WINDOW OUT   # (internal) our child process
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

from bench.common import (
    DATA_DIR,
    MB,
    QUICK,
    Figure,
    cached_pair,
    log,
    measure_our_child,
    measure_peer,
    peak_rss_figure,
    speedup_figure,
)

ROWS = 100_000 if QUICK else 1_000_000
REFERENCE_ROWS = 10_000 if QUICK else 100_000
REPEATS = 3
SEED = 20261205
METRICS = ["roc_auc", "accuracy", "precision", "recall", "f1"]


def _simulate(rng, n: int, shift: float, spread: float):
    import numpy as np
    import pandas as pd

    x1 = rng.normal(shift, spread, n)
    x2 = rng.normal(0, 1, n)
    p = 1 / (1 + np.exp(-(1.5 * x1 - 1.0 * x2 - 0.5)))
    score = p**1.3
    return pd.DataFrame(
        {"x1": x1, "x2": x2, "score": score, "prediction": (score >= 0.4).astype(int), "label": (rng.random(n) < p) * 1}
    )


def write_data(rows: int = ROWS, reference_rows: int = REFERENCE_ROWS) -> tuple[Path, Path]:
    def write(ref_tmp: Path, cur_tmp: Path) -> None:
        import numpy as np

        rng = np.random.default_rng(SEED)
        reference = _simulate(rng, reference_rows, 0.0, 1.0)
        window = _simulate(rng, rows, -0.4, 0.7)
        reference.to_parquet(ref_tmp, index=False)
        window.to_parquet(cur_tmp, index=False)

    return cached_pair("live", f"reference-{reference_rows}-{SEED}.parquet", f"window-{rows}-{SEED}.parquet", write)


def child_ours(reference_path: str, window_path: str, out_path: str) -> None:
    """Runs in its own process: build the calibrated profile, time the window's estimate."""
    import resource

    import django
    import pandas as pd
    from sklearn import metrics as skm

    django.setup()
    from monitoring import estimation, stats
    from monitoring.services.profiles import profile_build
    from monitoring.services.reference_data import reference_read

    schema = [{"name": "x1", "type": "numeric"}, {"name": "x2", "type": "numeric"}]
    reference_body = Path(reference_path).read_bytes()
    version = SimpleNamespace(feature_schema=schema, task_type="binary", classes=[])
    window = pd.read_parquet(window_path, columns=["score", "prediction", "label"])
    start = time.perf_counter()
    reference, _ = reference_read(body=reference_body, content_type="application/vnd.apache.parquet", version=version)
    profile = profile_build(reference, schema, "binary", n_bins=10)
    profile_seconds = time.perf_counter() - start
    scores = window["score"].to_numpy()
    timings = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        counts = stats.bin_numeric(profile["features"]["__score__"], scores).counts
        estimate = estimation.cbpe_estimate(profile["calibration"], counts)
        timings.append(time.perf_counter() - start)
    y, pred = window["label"].to_numpy(), window["prediction"].to_numpy()
    realized = {
        "roc_auc": skm.roc_auc_score(y, scores),
        "accuracy": skm.accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred),
        "recall": skm.recall_score(y, pred),
        "f1": skm.f1_score(y, pred),
    }
    out = {
        "tool": "monitoring.estimation.cbpe_estimate",
        "rows": len(window),
        "profile_seconds": profile_seconds,
        "compute_seconds": statistics.median(timings),
        "timings": timings,
        "estimates": {m: v[0] for m, v in estimate.items()},
        "lower": {m: v[1] for m, v in estimate.items()},
        "upper": {m: v[2] for m, v in estimate.items()},
        "realized": realized,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }
    Path(out_path).write_text(json.dumps(out))


def run() -> list[Figure]:
    ref_path, cur_path = write_data()
    out_dir = DATA_DIR / "live"
    size = f"{ROWS:,} vs {REFERENCE_ROWS:,}"
    log(f"estimated performance {size}: ours")
    ours = measure_our_child("live_estimation", ref_path, cur_path, out=out_dir / "ours.json")
    log(f"  ours {ours['compute_seconds']:.4f} s, {ours['peak_rss_bytes'] / MB:.0f} MB: {ours['estimates']}")
    log("NannyML CBPE")
    peer = measure_peer(
        "nannyml", ref_path, cur_path, out=out_dir / "nannyml.json", NML_DISABLE_USAGE_LOGGING="1", DO_NOT_TRACK="1"
    )
    log(f"  nannyml {peer['compute_seconds']:.2f} s, {peer['peak_rss_bytes'] / MB:.0f} MB: {peer['estimates']}")
    gaps = {m: abs(ours["estimates"][m] - peer["estimates"][m]) for m in METRICS}
    worst = max(gaps, key=gaps.get)
    loads = f"1-min load average: ours {ours['load']:.1f}, NannyML {peer['load']:.1f} on {os.cpu_count()} CPUs."
    return [
        speedup_figure(
            f"estimated performance {size}: time",
            ours,
            peer,
            peer_name=peer["tool"],
            at_least=20,
            note=(
                f"ratio = NannyML estimate() / ours (x faster), median of {REPEATS} runs of score binning + "
                f"cbpe_estimate with its bootstrap band. Calibration: ours {ours['profile_seconds']:.2f} s "
                f"(the upload's reader and the whole reference profile, once per version), "
                f"NannyML fit {peer['fit_seconds']:.2f} s. {loads}"
            ),
        ),
        Figure(
            "estimated performance: largest gap to NannyML",
            gaps[worst],
            "abs",
            peer="NannyML CBPE",
            peer_value=peer["estimates"][worst],
            target="< 0.01 on every metric",
            passed=max(gaps.values()) < 0.01,
            note=(
                f"worst metric {worst}. Ours {json.dumps({m: round(v, 4) for m, v in ours['estimates'].items()})}; "
                f"NannyML {json.dumps({m: round(v, 4) for m, v in peer['estimates'].items()})}; realized "
                f"{json.dumps({m: round(v, 4) for m, v in ours['realized'].items()})}."
            ),
        ),
        peak_rss_figure(
            "estimated performance: peak RSS",
            ours,
            peer,
            peer_name="NannyML CBPE",
            note=f"whole child process incl. the {ROWS:,}-row window; ratio = NannyML / ours.",
        ),
    ]


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "child":
        child_ours(*sys.argv[2:5])
    else:
        from bench.__main__ import print_table

        print_table(run())
