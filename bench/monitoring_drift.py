"""Benchmark (b): drift of one window of 1,000,000 rows × 20 numeric features against a
100,000-row reference, three ways on the same Parquet files in ``bench/data/``, each in its
own process so its peak RSS (``ru_maxrss`` via ``wait4``) is its own:

- ours: ``monitoring.stats.compute_window_drift`` (binning + every drift and
  data-quality statistic) on the reference profile from ``profile_build`` (built once per
  version at upload, timed apart);
- Evidently 0.7.23 ``DataDriftPreset`` in ``bench/.venv-evidently`` (``bench/evidently_peer.py``);
- the limit: a bare numpy searchsorted + bincount pass (``bench/numpy_limit.py``).

Targets: ≥ 50× faster than Evidently, within 3× of the numpy pass, peak RSS < 500 MB.

Benchmark (c), in the same module: the daily drift of a version with 1,000 numeric features
from its 24 stored hourly windows (PostgreSQL ``mlops_bench``; one ``PackedBinCounts`` row
per hour, next to the 24 × 1,000 per-feature ``WindowBinCounts`` rows the dashboards read):
``monitoring.services.windows.stored_counts`` (read + sum) and ``drift_from_counts``, the
path the daily window takes. Target < 50 ms.

    python -m bench.monitoring_drift            # full size
    BENCH_QUICK=1 python -m bench.monitoring_drift   # 100,000 × 20 vs 10,000 (smoke test)
    python -m bench.monitoring_drift child ours REF CUR OUT   # (internal) our child process
    python -m bench.monitoring_drift daily      # only (c)
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

from bench.common import (
    DATA_DIR,
    MB,
    QUICK,
    ROOT,
    Figure,
    cached_pair,
    log,
    measure_child,
    measure_our_child,
    measure_peer,
    peak_rss_figure,
    speedup_figure,
)

FEATURES = 20
ROWS = 100_000 if QUICK else 1_000_000
REFERENCE_ROWS = 10_000 if QUICK else 100_000
DRIFTED = 5  # features f00..f04 are shifted in the window
REPEATS = 3
SEED = 20261123


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

    def write(ref_tmp: Path, cur_tmp: Path) -> None:
        import numpy as np
        import pyarrow as pa
        import pyarrow.parquet as pq

        rng = np.random.default_rng(SEED)
        for path, n, window in ((ref_tmp, reference_rows, False), (cur_tmp, rows, True)):
            columns = {}
            for i, name in enumerate(feature_names()):
                shift = 0.3 if window and i < DRIFTED else 0.0
                values = _sample(rng, i % 5, n, shift).astype(np.float64)
                if i in (5, 6):
                    values[rng.random(n) < 0.005] = np.nan
                columns[name] = values
            pq.write_table(pa.table(columns), path)

    suffix = f"{FEATURES}-{SEED}.parquet"
    return cached_pair("monitoring", f"reference-{reference_rows}x{suffix}", f"window-{rows}x{suffix}", write)


# --------------------------------------------------------------------------- our child process


def child_ours(reference_path: str, current_path: str, out_path: str) -> None:
    """Runs in its own process: load the files, build the profile, time the window."""
    import resource

    import pandas as pd

    from bench.numpy_limit import load_columns
    from monitoring.services.profiles import profile_build
    from monitoring.stats import DriftSettings, compute_window_drift

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
        "tool": "monitoring.stats.compute_window_drift",
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


def run() -> list[Figure]:
    return run_window() + run_daily()


def run_window() -> list[Figure]:
    ref_path, cur_path = write_data()
    out_dir = DATA_DIR / "monitoring"
    size = f"{ROWS:,} × {FEATURES} vs {REFERENCE_ROWS:,}"

    log(f"drift window {size}: ours")
    ours = measure_our_child("monitoring_drift", "ours", ref_path, cur_path, out=out_dir / "ours.json")
    log(
        f"  ours {ours['compute_seconds']:.3f} s, {ours['peak_rss_bytes'] / MB:.0f} MB, "
        f"drifted {ours['drifted_features']}"
    )

    log("numpy searchsorted+bincount limit")
    limit = measure_child(
        [sys.executable, str(ROOT / "bench" / "numpy_limit.py"), str(ref_path), str(cur_path),
         str(out_dir / "numpy.json"), str(REPEATS)],
        out_dir / "numpy.json",
    )  # fmt: skip
    log(f"  numpy {limit['compute_seconds']:.3f} s, {limit['peak_rss_bytes'] / MB:.0f} MB")

    log("Evidently DataDriftPreset (takes about a minute at full size)")
    evidently = measure_peer("evidently", ref_path, cur_path, out=out_dir / "evidently.json", DO_NOT_TRACK="1")
    log(f"  evidently {evidently['compute_seconds']:.1f} s, {evidently['peak_rss_bytes'] / MB:.0f} MB")

    vs_limit = ours["compute_seconds"] / limit["compute_seconds"]
    return [
        speedup_figure(
            f"drift window {size}: time",
            ours,
            evidently,
            peer_name=evidently["tool"] + " DataDriftPreset",
            at_least=50,
            note=(
                f"ratio = Evidently time / ours (x faster). Ours: median of {REPEATS} runs of compute_window_drift "
                f"(binning + PSI, JS, KS, Wasserstein, quality) on the stored profile; building that profile "
                f"once per version took {ours['profile_seconds']:.2f} s. Drifted features: ours "
                f"{ours['drifted_features']} (share {ours['drift_share']}), Evidently {evidently['drifted_columns']}. "
                f"Machine 1-min load average during the runs: ours {ours['load']:.1f}, Evidently "
                f"{evidently['load']:.1f}, numpy {limit['load']:.1f} on {os.cpu_count()} CPUs."
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
        peak_rss_figure(
            "drift window: peak RSS",
            ours,
            evidently,
            peer_name="Evidently",
            note=f"whole child process incl. the {ROWS:,}-row window in memory; ratio = Evidently / ours; "
            f"numpy limit process: {limit['peak_rss_bytes'] / MB:.0f} MB.",
        ),
    ]


# --------------------------------------------------------------------------- (c) daily drift from hourly counts

DAILY_FEATURES = 1000
DAILY_MODEL = "bench-daily-drift"
DAILY_ROWS_PER_HOUR = 500  # the fixture is built once and reused, also by BENCH_QUICK runs
DAILY_DAY = "2026-01-05T00:00:00+00:00"


def _daily_version():
    """The bench version with 1,000 numeric features, a ready reference profile and 24 hourly
    bin counts per feature (built once, reused by later runs)."""
    from datetime import datetime, timedelta

    import numpy as np
    import pandas as pd
    from django.db import transaction
    from django.utils import timezone

    from bench.monitoring_ingest import bench_version
    from monitoring import stats as metrics
    from monitoring.choices import Granularity, ProfileStatus
    from monitoring.models import PackedBinCounts, ReferenceProfile, WindowBinCounts
    from monitoring.services.profiles import profile_build
    from monitoring.services.windows import _store_counts
    from registry.models import ModelVersion

    day = datetime.fromisoformat(DAILY_DAY)
    names = [f"x{i:04d}" for i in range(DAILY_FEATURES)]
    expected = 24 * DAILY_FEATURES
    for version in ModelVersion.objects.filter(model__name=DAILY_MODEL).order_by("-version"):
        ready = ReferenceProfile.objects.filter(version=version, status=ProfileStatus.READY).exists()
        hours = dict(
            version=version, granularity=Granularity.HOURLY, window_start__gte=day, window_start__lt=day + timedelta(1)
        )
        stored = WindowBinCounts.objects.filter(**hours).count()
        packed = PackedBinCounts.objects.filter(**hours).count()
        if ready and stored == expected and packed == 24:
            return version, day
    log(f"building the daily-drift fixture: {DAILY_FEATURES} features × 24 hourly windows")
    _, _, version = bench_version(name=DAILY_MODEL, features=names)
    rng = np.random.default_rng(SEED)
    reference = pd.DataFrame(rng.normal(size=(2000, DAILY_FEATURES)), columns=names)
    schema = [{"name": n, "type": "numeric"} for n in names]
    profile = profile_build(reference, schema, "binary", n_bins=10)
    now = timezone.now()
    with transaction.atomic():
        ReferenceProfile.objects.create(
            version=version,
            status=ProfileStatus.READY,
            source_format="parquet",
            n_rows=len(reference),
            n_bins=10,
            data=b"",
            data_sha256="0" * 64,
            profile=profile,
            computed_at=now,
        )
        for hour in range(24):
            shift = np.zeros(DAILY_FEATURES)
            shift[:50] = 1.0 if hour >= 12 else 0.0  # 5 % of the features drift in the afternoon
            data = rng.normal(size=(DAILY_ROWS_PER_HOUR, DAILY_FEATURES)) + shift
            window = metrics.bin_window(profile, {n: data[:, i] for i, n in enumerate(names)})
            # what an hourly window computation stores: per-feature rows + the packed row
            _store_counts(version.pk, day + timedelta(hours=hour), Granularity.HOURLY, window)
    return version, day


def run_daily() -> list[Figure]:
    from datetime import timedelta

    from monitoring import stats as metrics
    from monitoring.services.windows import ready_profile, stored_counts

    version, day = _daily_version()
    end = day + timedelta(days=1)
    start = time.perf_counter()
    profile = ready_profile(version.pk)
    profile_seconds = time.perf_counter() - start
    settings = metrics.DriftSettings()
    n_rows = 24 * DAILY_ROWS_PER_HOUR
    total, compute, cpu = [], [], []
    rows: list = []
    for _ in range(7):
        c0 = time.process_time()
        t0 = time.perf_counter()
        window = stored_counts(version.pk, day, end)
        t1 = time.perf_counter()
        rows = metrics.drift_from_counts(profile, window, settings, n_rows=n_rows)
        t2 = time.perf_counter()
        cpu.append(time.process_time() - c0)
        total.append(t2 - t0)
        compute.append(t2 - t1)
    # the same sum + drift without the database: the hourly counts already in memory
    hourly = [dict(list(window.items())) for _ in range(24)]
    in_memory = []
    for _ in range(7):
        t0 = time.perf_counter()
        metrics.drift_from_counts(profile, metrics.sum_counts(hourly), settings, n_rows=n_rows)
        in_memory.append(time.perf_counter() - t0)
    drift_share = next(r["value"] for r in rows if r["metric"] == "drift_share")
    ms_total = statistics.median(total) * 1000
    ms_memory = statistics.median(in_memory) * 1000
    log(f"  daily drift {DAILY_FEATURES} features: {ms_total:.1f} ms from PostgreSQL, {ms_memory:.1f} ms in memory")
    return [
        Figure(
            f"daily drift, {DAILY_FEATURES} features from stored hourly counts",
            ms_total,
            "ms",
            peer="same, counts already in memory",
            peer_value=ms_memory,
            ratio=ms_total / ms_memory,
            target="< 50 ms",
            passed=ms_total < 50,
            note=(
                f"median of 7: windows.stored_counts (read the 24 hourly PackedBinCounts rows of "
                f"{DAILY_FEATURES:,} features from PostgreSQL and sum them; "
                f"{statistics.median(total) * 1000 - statistics.median(compute) * 1000:.1f} "
                f"ms) + metrics.drift_from_counts ({statistics.median(compute) * 1000:.1f} ms; PSI, JS, KS, "
                f"Wasserstein, quality for every feature); this process's CPU time "
                f"{statistics.median(cpu) * 1000:.1f} ms; drift share {drift_share:.3f}. Loading the "
                f"{DAILY_FEATURES}-feature reference profile (once per window task) took "
                f"{profile_seconds * 1000:.0f} ms more."
            ),
        )
    ]


def main(argv: list[str]) -> int:
    if argv[:2] == ["child", "ours"]:
        child_ours(*argv[2:5])
        return 0
    figures = []
    if argv[:1] != ["daily"]:
        figures += run_window()
    from bench.__main__ import setup_django

    setup_django()
    figures += run_daily()
    for figure in figures:
        print(
            f"{figure.name}: {figure.value:.4g} {figure.unit} | {figure.peer}: {figure.peer_value:.4g} | "
            f"ratio {figure.ratio:.3g}x | target {figure.target} | {figure.verdict()}\n    {figure.note}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
