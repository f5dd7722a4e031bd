"""The plain-numpy pass of the drift benchmark: one bare numpy ``searchsorted`` + ``bincount``
pass per feature over the window, on bin edges computed beforehand from the reference
(the same 50 fine quantile bins the monitoring profile uses). No statistics, no checks.
It was the limit while ours binned by ``searchsorted`` too; ours now places values by a table
lookup (``monitoring.binning``) and runs in about a third of this pass's time.

    python bench/numpy_limit.py REFERENCE.parquet CURRENT.parquet OUT.json [REPEATS]

Imports nothing from the project (so its peak RSS is data + numpy + pyarrow only).
"""

from __future__ import annotations

import json
import resource
import statistics
import sys
import time

FINE_BINS = 50


def load_columns(path: str) -> dict:
    """Parquet → {column: float64 numpy array}, read one column at a time into numpy and
    the Arrow buffers freed, so the process holds the data once (not Arrow + numpy)."""
    import numpy as np
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    columns = {}
    for name in parquet.schema_arrow.names:
        chunked = parquet.read(columns=[name], use_threads=False).column(0)
        columns[name] = np.array(chunked.to_numpy(), dtype=np.float64, copy=True)
        del chunked
    return columns


def main(reference_path: str, current_path: str, out_path: str, repeats: str = "3") -> None:
    import numpy as np

    reference = load_columns(reference_path)
    current = load_columns(current_path)
    levels = np.arange(1, FINE_BINS) / FINE_BINS
    edges = {name: np.unique(np.nanquantile(values, levels)) for name, values in reference.items()}
    timings = []
    for _ in range(int(repeats)):
        start = time.perf_counter()
        counts = {
            name: np.bincount(np.searchsorted(edges[name], values, side="right"), minlength=len(edges[name]) + 1)
            for name, values in current.items()
        }
        timings.append(time.perf_counter() - start)
    out = {
        "tool": f"numpy {np.__version__} searchsorted+bincount",
        "rows": len(next(iter(current.values()))),
        "features": len(current),
        "compute_seconds": statistics.median(timings),
        "timings": timings,
        "binned": int(sum(int(c.sum()) for c in counts.values())),
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }
    with open(out_path, "w") as fh:
        json.dump(out, fh)


if __name__ == "__main__":
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    main(*sys.argv[1:])
