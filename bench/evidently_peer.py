"""The Evidently peer of the drift benchmark. Runs INSIDE ``bench/.venv-evidently``
(``make bench-evidently-venv``: evidently==0.7.23 with pandas < 3), never in the project's
environment, and imports nothing from the project.

    bench/.venv-evidently/bin/python bench/evidently_peer.py REFERENCE.parquet CURRENT.parquet OUT.json

Reads the two Parquet files, runs ``Report([DataDriftPreset()])`` on them (Evidently picks
each column's test itself: Wasserstein / KS for numeric columns), materialises the result
and writes timings, the drifted-column share and this process's peak RSS to OUT.json.
"""

from __future__ import annotations

import time

import peer_script  # bench/peer_script.py: bench/ is this script's folder, first on sys.path


def main(reference_path: str, current_path: str, out_path: str) -> None:
    started = time.perf_counter()
    import pandas as pd
    from evidently import Report
    from evidently import __version__ as evidently_version
    from evidently.presets import DataDriftPreset

    imported = time.perf_counter()
    reference = pd.read_parquet(reference_path)
    current = pd.read_parquet(current_path)
    loaded = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(current_data=current, reference_data=reference)
    result = snapshot.dict()
    computed = time.perf_counter()
    drifted = None
    for metric in result["metrics"]:
        if metric["metric_name"].startswith("DriftedColumnsCount"):
            drifted = {"count": float(metric["value"]["count"]), "share": float(metric["value"]["share"])}
    out = {
        "tool": f"evidently {evidently_version} (pandas {pd.__version__})",
        "rows": len(current),
        "reference_rows": len(reference),
        "features": current.shape[1],
        "import_seconds": imported - started,
        "load_seconds": loaded - imported,
        "compute_seconds": computed - loaded,
        "drifted_columns": drifted,
    }
    peer_script.write_result(out_path, out)


if __name__ == "__main__":
    peer_script.run(main, __doc__)
