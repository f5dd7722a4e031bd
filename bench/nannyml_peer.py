"""The NannyML peer of the performance-estimation benchmark. Runs INSIDE ``bench/.venv-nannyml``
(``make bench-nannyml-venv``: nannyml==0.13.1 with pandas < 3), never in the project's
environment, and imports nothing from the project.

    bench/.venv-nannyml/bin/python bench/nannyml_peer.py REFERENCE.parquet WINDOW.parquet OUT.json

Fits ``nannyml.CBPE`` (binary classification; ROC AUC, accuracy, precision, recall, F1) on the
labelled reference and estimates the whole window as one chunk; writes the estimates, the
timings (fit and estimate apart) and this process's peak RSS to OUT.json.
"""

from __future__ import annotations

import time

import peer_script  # bench/peer_script.py: bench/ is this script's folder, first on sys.path

METRICS = ["roc_auc", "accuracy", "precision", "recall", "f1"]


def main(reference_path: str, window_path: str, out_path: str) -> None:
    started = time.perf_counter()
    import nannyml as nml
    import pandas as pd

    imported = time.perf_counter()
    reference = pd.read_parquet(reference_path, columns=["score", "prediction", "label"])
    window = pd.read_parquet(window_path, columns=["score", "prediction"])
    loaded = time.perf_counter()
    estimator = nml.CBPE(
        y_pred_proba="score",
        y_pred="prediction",
        y_true="label",
        problem_type="classification_binary",
        metrics=METRICS,
        chunk_number=1,
    )
    estimator.fit(reference)
    fitted = time.perf_counter()
    result = estimator.estimate(window).filter(period="analysis").to_df()
    estimated = time.perf_counter()
    values = {m: float(result[(m, "value")].iloc[0]) for m in METRICS}
    lower = {m: float(result[(m, "lower_confidence_boundary")].iloc[0]) for m in METRICS}
    upper = {m: float(result[(m, "upper_confidence_boundary")].iloc[0]) for m in METRICS}
    out = {
        "tool": f"nannyml {nml.__version__} CBPE (pandas {pd.__version__})",
        "rows": len(window),
        "reference_rows": len(reference),
        "import_seconds": imported - started,
        "load_seconds": loaded - imported,
        "fit_seconds": fitted - loaded,
        "compute_seconds": estimated - fitted,
        "estimates": values,
        "lower": lower,
        "upper": upper,
    }
    peer_script.write_result(out_path, out)


if __name__ == "__main__":
    peer_script.run(main, __doc__)
