"""Estimated performance of a window (``estimated.*`` metric rows), computed with the window.

The statistics are in ``monitoring.estimation``; this module feeds them from what the window
computation already holds: the window's fine score counts (CBPE, binary; hourly counts or a
day's summed counts) and, for regression, the hour's loaded columns (DLE, whose error models
are fitted on the labelled reference and kept per process, keyed by the reference's digest).
A day's regression estimate combines its hours' stored estimates weighted by their rows.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime
from typing import Any

from monitoring import estimation
from monitoring.choices import PREDICTION_FEATURE, SCORE_FEATURE
from monitoring.models import ReferenceProfile
from monitoring.selectors.metrics import hours_metrics
from registry.models import ModelVersion

ROWS_METRIC = estimation.estimated_name("rows")
_MODELS: OrderedDict[tuple[int, str], Any] = OrderedDict()
_MODELS_LOCK = threading.Lock()
_MODELS_SIZE = 4


def _dle_models(version: ModelVersion) -> dict | None:
    """The DLE error models of the version's labelled reference (fitted once per process)."""
    from monitoring.services.profiles import dataframe_from_parquet

    ref = ReferenceProfile.objects.filter(version=version).only("pk", "data_sha256").first()
    if ref is None:
        return None
    key = (ref.pk, ref.data_sha256)
    with _MODELS_LOCK:
        if key in _MODELS:
            _MODELS.move_to_end(key)
            return _MODELS[key]
    df = dataframe_from_parquet(ReferenceProfile.objects.filter(pk=ref.pk).values_list("data", flat=True)[0])
    models = None
    if estimation.LABEL_FEATURE in df.columns and PREDICTION_FEATURE in df.columns:
        columns = {c: df[c].to_numpy() for c in df.columns}
        models = estimation.dle_fit(columns, df[estimation.LABEL_FEATURE].to_numpy(), version.feature_schema)
    with _MODELS_LOCK:
        _MODELS[key] = models
        while len(_MODELS) > _MODELS_SIZE:
            _MODELS.popitem(last=False)
    return models


def _cbpe_rows(profile: dict, window: dict | None) -> list[dict]:
    calibration = profile.get("calibration")
    if not calibration or not window or SCORE_FEATURE not in window:
        return []
    return estimation.estimate_rows(estimation.cbpe_estimate(calibration, window[SCORE_FEATURE].counts))


def _dle_rows(sums: dict | None) -> list[dict]:
    if not sums:
        return []
    rows = estimation.estimate_rows(estimation.dle_estimate(sums))
    return rows + [{"feature": "", "metric": ROWS_METRIC, "value": sums["n"]}]


def dle_sums(
    version: ModelVersion, profile: dict | None, columns: dict, group, n_groups: int
) -> list[dict[str, float] | None]:
    """DLE's mergeable sums (n, abs_sum, sq_sum) of each group of rows (``group``: each row's
    group; the slices of a read, ``monitoring.services.window_slices``), from one prediction;
    None for a group without rows DLE can score, or everywhere DLE does not apply."""
    if not profile or version.task_type != "regression" or not profile.get("labelled_rows") or not columns:
        return [None] * n_groups
    models = _dle_models(version)
    return estimation.dle_groups(models, columns, group, n_groups) if models else [None] * n_groups


def hourly_estimate_rows(
    version: ModelVersion, profile: dict | None, window: dict | None, dle: dict | None
) -> list[dict]:
    """The hour's ``estimated.*`` rows: CBPE from its score counts, DLE from its summed sums."""
    if not profile:
        return []
    if version.task_type == "binary":
        return _cbpe_rows(profile, window)
    if version.task_type == "regression":
        return _dle_rows(dle)
    return []


def daily_estimate_rows(
    version: ModelVersion, profile: dict | None, window: dict | None, start: datetime, end: datetime
) -> list[dict]:
    """The day's ``estimated.*`` rows: CBPE from the summed counts; DLE from its hours."""
    if not profile:
        return []
    if version.task_type == "binary":
        return _cbpe_rows(profile, window)
    if version.task_type != "regression":
        return []
    names = [ROWS_METRIC, estimation.estimated_name("mae"), estimation.estimated_name("rmse")]
    hourly = hours_metrics(version.pk, start, end, names).values_list("window_start", "metric", "value")
    per_hour: dict[datetime, dict[str, float]] = {}
    for ts, metric, value in hourly:
        if value is not None:
            per_hour.setdefault(ts, {})[metric] = value
    sums = {"n": 0.0, "abs_sum": 0.0, "sq_sum": 0.0}
    for values in per_hour.values():
        n = values.get(ROWS_METRIC)
        mae, rmse = values.get(estimation.estimated_name("mae")), values.get(estimation.estimated_name("rmse"))
        if n and mae is not None and rmse is not None:
            sums["n"] += n
            sums["abs_sum"] += mae * n
            sums["sq_sum"] += rmse * rmse * n
    return _dle_rows(sums) if sums["n"] else []


def clear_model_cache() -> None:
    with _MODELS_LOCK:
        _MODELS.clear()


__all__ = ["clear_model_cache", "daily_estimate_rows", "dle_sums", "hourly_estimate_rows"]
