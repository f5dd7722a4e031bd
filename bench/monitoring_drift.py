"""Benchmark (b): drift of one window of 1,000,000 rows × 20 numeric features against a
100,000-row reference, three ways on the same Parquet files in ``bench/data/``, each in its
own process so its peak RSS (``ru_maxrss`` via ``wait4``) is its own:

- ours: ``monitoring.services.metrics.compute_window_drift`` (binning + every drift and
  data-quality statistic) on the reference profile from ``profile_build`` (built once per
  version at upload, timed apart);
- Evidently 0.7.23 ``DataDriftPreset`` in ``bench/.venv-evidently`` (``bench/evidently_peer.py``);
- the limit: a bare numpy searchsorted + bincount pass (``bench/numpy_limit.py``).

Targets: ≥ 50× faster than Evidently, within 3× of the numpy pass, peak RSS < 500 MB.

    python -m bench.monitoring_drift            # full size
    BENCH_QUICK=1 python -m bench.monitoring_drift   # 100,000 × 20 vs 10,000 (smoke test)
    python -m bench.monitoring_drift child ours REF CUR OUT   # (internal) our child process
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.common import DATA_DIR, QUICK, ROOT, Figure, log, run_measured

FEATURES = 20
ROWS = 100_000 if QUICK else 1_000_000
REFERENCE_ROWS = 10_000 if QUICK else 100_000
DRIFTED = 5  # features f00..f04 are shifted in the window
REPEATS = 3
SEED = 20261123
EVIDENTLY_PYTHON = ROOT / "bench" / ".venv-evidently" / "bin" / "python"
MB = 1024 * 1024


def feature_names(n: int = FEATURES) -> list[str]:
    return [f"f{i:02d}" for i in range(n)]


def _sample(rng, kind: int, n: int, shift: float):
    import numpy as np

    if kind == 0:
        return rng.normal(shift, 1.0, n)
    if kind == 1:
        return rng.lognormal(0.0 + shift, 0.5, n)
    if kind == 2:
        return rng.uniform(0.0 + shift, 1.0 + shift, n)
    if kind == 3:
        return rng.exponential(1.0 + shift, n)
    return np.round(rng.gamma(2.0 + 4 * shift, 2.0, n))  # integer-valued: duplicated quantiles


def write_data(rows: int = ROWS, reference_rows: int = REFERENCE_ROWS) -> tuple[Path, Path]:
    """Reference and window Parquet files (cached by size and seed). Features f00..f04 drift
    in the window; f05 and f06 have 0.5 % missing values; the rest keep their distribution."""
    folder = DATA_DIR / "monitoring"
    folder.mkdir(parents=True, exist_ok=True)
    ref_path = folder / f"reference-{reference_rows}x{FEATURES}-{SEED}.parquet"
    cur_path = folder / f"window-{rows}x{FEATURES}-{SEED}.parquet"
    if ref_path.exists() and cur_path.exists():
        return ref_path, cur_path
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(SEED)
    for path, n, window in ((ref_path, reference_rows, False), (cur_path, rows, True)):
        columns = {}
        for i, name in enumerate(feature_names()):
            shift = 0.3 if window and i < DRIFTED else 0.0
            values = _sample(rng, i % 5, n, shift).astype(np.float64)
            if i in (5, 6):
                values[rng.random(n) < 0.005] = np.nan
            columns[name] = values
        tmp = path.with_suffix(".tmp")
        pq.write_table(pa.table(columns), tmp)
        tmp.rename(path)
    log(f"wrote {ref_path.name} and {cur_path.name}")
    return ref_path, cur_path


# --------------------------------------------------------------------------- our child process


def child_ours(reference_path: str, current_path: str, out_path: str) -> None:
    """Runs in its own process: load the files, build the profile, time the window."""
    import resource

    import pandas as pd

    from bench.numpy_limit import load_columns
    from monitoring.services.metrics import DriftSettings, compute_window_drift
    from monitoring.services.profiles import profile_build

    reference = pd.DataFrame(load_columns(reference_path))
    current = load_columns(current_path)
    schema = [{"name": name, "type": "numeric"} for name in reference.columns]
    start = time.perf_counter()
    profile = profile_build(reference, schema, "binary", n_bins=10)
    profile_seconds = time.perf_counter() - start
    timings = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        rows = compute_window_drift(profile, current, DriftSettings())
        timings.append(time.perf_counter() - start)
    by_metric = {(r["feature"], r["metric"]): r["value"] for r in rows}
    drifted = sorted(f for (f, m), v in by_metric.items() if m == "drift_detected" and v)
    out = {
        "tool": "monitoring.services.metrics.compute_window_drift",
        "rows": len(next(iter(current.values()))),
        "features": len(current),
        "profile_seconds": profile_seconds,
        "compute_seconds": statistics.median(timings),
        "timings": timings,
        "metric_rows": len(rows),
        "drifted_features": drifted,
        "drift_share": by_metric.get(("", "drift_share")),
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }
    Path(out_path).write_text(json.dumps(out))


# --------------------------------------------------------------------------- the benchmark


def _measure(cmd: list[str], out: Path, env: dict | None = None) -> dict:
    seconds, rss = run_measured(cmd, env=env, cwd=ROOT)
    result = json.loads(out.read_text())
    result["wall_seconds"] = seconds
    result["peak_rss_bytes"] = rss  # the child's own ru_maxrss from wait4
    return result


def ensure_evidently() -> Path:
    if not EVIDENTLY_PYTHON.exists() or not (EVIDENTLY_PYTHON.parent.parent / ".installed").exists():
        log("creating bench/.venv-evidently (make bench-evidently-venv)")
        subprocess.run(["make", "--no-print-directory", "bench-evidently-venv"], cwd=ROOT, check=True)
    return EVIDENTLY_PYTHON


def run() -> list[Figure]:
    ref_path, cur_path = write_data()
    out_dir = DATA_DIR / "monitoring"
    env = dict(os.environ, PYTHONPATH=str(ROOT), DJANGO_SETTINGS_MODULE="mlops_portal.settings")
    size = f"{ROWS:,} × {FEATURES} vs {REFERENCE_ROWS:,}"

    log(f"drift window {size}: ours")
    ours = _measure(
        [sys.executable, "-m", "bench.monitoring_drift", "child", "ours", str(ref_path), str(cur_path),
         str(out_dir / "ours.json")],
        out_dir / "ours.json",
        env,
    )  # fmt: skip
    log(
        f"  ours {ours['compute_seconds']:.3f} s, {ours['peak_rss_bytes'] / MB:.0f} MB, "
        f"drifted {ours['drifted_features']}"
    )

    log("numpy searchsorted+bincount limit")
    limit = _measure(
        [sys.executable, str(ROOT / "bench" / "numpy_limit.py"), str(ref_path), str(cur_path),
         str(out_dir / "numpy.json"), str(REPEATS)],
        out_dir / "numpy.json",
    )  # fmt: skip
    log(f"  numpy {limit['compute_seconds']:.3f} s, {limit['peak_rss_bytes'] / MB:.0f} MB")

    log("Evidently DataDriftPreset (takes about a minute at full size)")
    evidently = _measure(
        [str(ensure_evidently()), str(ROOT / "bench" / "evidently_peer.py"), str(ref_path), str(cur_path),
         str(out_dir / "evidently.json")],
        out_dir / "evidently.json",
        dict(os.environ, DO_NOT_TRACK="1"),
    )  # fmt: skip
    log(f"  evidently {evidently['compute_seconds']:.1f} s, {evidently['peak_rss_bytes'] / MB:.0f} MB")

    speedup = evidently["compute_seconds"] / ours["compute_seconds"]
    vs_limit = ours["compute_seconds"] / limit["compute_seconds"]
    ours_mb = ours["peak_rss_bytes"] / MB
    ev_mb = evidently["peak_rss_bytes"] / MB
    return [
        Figure(
            f"drift window {size}: time",
            ours["compute_seconds"],
            "s",
            peer=evidently["tool"] + " DataDriftPreset",
            peer_value=evidently["compute_seconds"],
            ratio=speedup,
            target=">= 50x faster",
            passed=speedup >= 50,
            note=(
                f"ratio = Evidently time / ours (x faster). Ours: median of {REPEATS} runs of compute_window_drift "
                f"(binning + PSI, JS, KS, Wasserstein, quality) on the stored profile; building that profile "
                f"once per version took {ours['profile_seconds']:.2f} s. Drifted features: ours "
                f"{ours['drifted_features']} (share {ours['drift_share']}), Evidently {evidently['drifted_columns']}."
            ),
        ),
        Figure(
            "drift window: time vs the numpy limit",
            ours["compute_seconds"],
            "s",
            peer="numpy searchsorted+bincount",
            peer_value=limit["compute_seconds"],
            ratio=vs_limit,
            target="<= 3x the limit",
            passed=vs_limit <= 3,
            note="ratio = ours / numpy pass (lower is better); both median of "
            f"{REPEATS} runs on the same columns and the same 50 fine bins.",
        ),
        Figure(
            "drift window: peak RSS",
            ours_mb,
            "MB",
            peer="Evidently",
            peer_value=ev_mb,
            ratio=ev_mb / ours_mb,
            target="< 500 MB",
            passed=ours_mb < 500,
            note=f"whole child process incl. the {ROWS:,}-row window in memory; ratio = Evidently / ours; "
            f"numpy limit process: {limit['peak_rss_bytes'] / MB:.0f} MB.",
        ),
    ]


def main(argv: list[str]) -> int:
    if argv[:2] == ["child", "ours"]:
        child_ours(*argv[2:5])
        return 0
    for figure in run():
        print(
            f"{figure.name}: {figure.value:.4g} {figure.unit} | {figure.peer}: {figure.peer_value:.4g} | "
            f"ratio {figure.ratio:.3g}x | target {figure.target} | {figure.verdict()}\n    {figure.note}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
