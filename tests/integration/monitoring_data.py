"""Data for the monitoring integration tests: a reference table and prediction batches for
the factory schema (age, income numeric; plan categorical), drifted on demand."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

PLANS = ["basic", "plus", "premium"]


def reference_csv(n: int = 2000, seed: int = 1) -> bytes:
    rng = np.random.default_rng(seed)
    score = rng.random(n)
    df = pd.DataFrame(
        {
            "age": rng.normal(40, 10, n).round(2),
            "income": rng.normal(50_000, 10_000, n).round(2),
            "plan": rng.choice(PLANS, n, p=[0.5, 0.3, 0.2]),
            "prediction": (score >= 0.5).astype(int),
            "score": score.round(4),
        }
    )
    buffer = io.StringIO()
    df.to_csv(buffer, index=False)
    return buffer.getvalue().encode()


def prediction_records(
    n: int, hour: datetime, *, seed: int, drifted: bool = False, prefix: str = "p"
) -> list[dict[str, object]]:
    """``n`` predictions inside the hour starting at ``hour``; ``drifted`` shifts age and income."""
    rng = np.random.default_rng(seed)
    age = rng.normal(40 + (30 if drifted else 0), 10, n).round(2)
    income = rng.normal(50_000 * (2 if drifted else 1), 10_000, n).round(2)
    plan = rng.choice(PLANS, n, p=[0.5, 0.3, 0.2])
    score = rng.random(n).round(4)
    step = 3600 / n
    return [
        {
            "prediction_id": f"{prefix}{i:06d}",
            "timestamp": (hour + timedelta(seconds=i * step)).isoformat(),
            "features": {"age": float(age[i]), "income": float(income[i]), "plan": str(plan[i])},
            "prediction": int(score[i] >= 0.5),
            "score": float(score[i]),
        }
        for i in range(n)
    ]


def as_json(records: list[dict]) -> str:
    return json.dumps(records)


def window_columns(records: list[dict]) -> dict[str, np.ndarray]:
    """The columns the worker should see for these records (for an independent recomputation)."""
    return {
        "age": np.array([r["features"]["age"] for r in records], dtype=np.float64),
        "income": np.array([r["features"]["income"] for r in records], dtype=np.float64),
        "plan": np.array([r["features"]["plan"] for r in records], dtype=object),
        "__prediction__": np.array([str(r["prediction"]) for r in records], dtype=object),
        "__score__": np.array([r["score"] for r in records], dtype=np.float64),
    }


def labels_for(records: list[dict], *, seed: int, accuracy: float = 0.8) -> list[dict[str, object]]:
    """Labels agreeing with the prediction with probability ``accuracy``."""
    rng = np.random.default_rng(seed)
    out = []
    for r in records:
        agree = rng.random() < accuracy
        out.append({"prediction_id": r["prediction_id"], "label": r["prediction"] if agree else 1 - r["prediction"]})
    return out


def stored_results(model) -> dict[str, dict]:
    """Every stored result of the model's windows, keyed by its unique key (``computed_at`` left
    out): metric values, per-feature bin counts and packed counts."""
    from monitoring.models import MetricValue, PackedBinCounts, WindowBinCounts

    metric_rows = MetricValue.objects.filter(model=model).values_list(
        "version_id", "granularity", "window_start", "window_end", "feature", "metric", "value", "provisional"
    )
    count_rows = WindowBinCounts.objects.filter(version__model=model).values_list(
        "version_id", "granularity", "window_start", "feature", "counts", "n", "missing", "out_of_range", "unseen"
    )
    packed_rows = PackedBinCounts.objects.filter(version__model=model).values_list(
        "version_id", "granularity", "window_start", "layout", "dtype", "counts", "quality"
    )
    return {
        "metrics": {row[:6]: row[6:] for row in metric_rows},
        "counts": {row[:4]: row[4:] for row in count_rows},
        "packed": {row[:3]: (row[3], row[4], bytes(row[5]), bytes(row[6])) for row in packed_rows},
    }


def assert_equals_fresh_recompute(model) -> dict[str, dict]:
    """What the workers stored equals a fresh recompute of the same windows in this process
    (``manage.py monitoring_compute --model``): nothing lost, nothing doubled, nothing stale.
    The unique keys make doubling impossible in the tables; this compares every value."""
    from django.core.management import call_command

    from monitoring.models import DirtyWindow

    stored = stored_results(model)
    assert stored["metrics"], "nothing was computed"
    assert not DirtyWindow.objects.filter(version__model=model).exists(), "windows are still dirty"
    call_command("monitoring_compute", "--model", model.name, stdout=io.StringIO())
    fresh = stored_results(model)
    for table in ("metrics", "counts", "packed"):
        assert set(stored[table]) == set(fresh[table]), f"{table}: windows lost or extra"
        for key, value in fresh[table].items():
            assert _same(stored[table][key], value), (table, key, stored[table][key], value)
    return stored


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (np.isnan(a) and np.isnan(b))
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b
