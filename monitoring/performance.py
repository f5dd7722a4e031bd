"""Performance of labelled predictions: scikit-learn metrics for one window (pure, no database).

Classification labels are compared as strings (``1``, ``1.0`` and ``True`` are the same class);
binary tasks find their positive class with ``positive_label``; ROC AUC and log loss need the
positive-class score. Regression gives MAE, RMSE and R². A metric that is undefined for the
window (one class only, one row) is None.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from monitoring.choices import Metric


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _label_strings(values) -> list[str]:
    out = []
    for v in values:
        if isinstance(v, bool):
            out.append("1" if v else "0")
        elif isinstance(v, float) and v.is_integer():
            out.append(str(int(v)))
        else:
            out.append(str(v))
    return out


def positive_label(labels: Iterable[str]) -> str:
    """The positive class of a binary task: '1' / 'true' / 'yes' when present, else the last sorted label."""
    labels = sorted(set(labels))
    for candidate in ("1", "true", "True", "yes", "positive"):
        if candidate in labels:
            return candidate
    return labels[-1] if labels else "1"


def performance_metrics(task_type: str, y_true, y_pred, score=None, positive: str = "") -> dict[str, float | None]:
    """scikit-learn metrics for one window's labelled predictions (None when undefined);
    ``positive``: a binary version's declared positive class (else inferred, ``positive_label``)."""
    from sklearn import metrics as skm

    if len(y_true) == 0:
        return {}
    if task_type == "regression":
        t = np.asarray(y_true, dtype=np.float64)
        p = np.asarray(y_pred, dtype=np.float64)
        ok = np.isfinite(t) & np.isfinite(p)
        t, p = t[ok], p[ok]
        if t.size == 0:
            return {}
        return {
            Metric.MAE: float(skm.mean_absolute_error(t, p)),
            Metric.RMSE: float(math.sqrt(skm.mean_squared_error(t, p))),
            Metric.R2: _finite(float(skm.r2_score(t, p))) if t.size > 1 else None,
        }
    t = _label_strings(y_true)
    p = _label_strings(y_pred)
    out: dict[str, float | None] = {Metric.ACCURACY: float(skm.accuracy_score(t, p))}
    if task_type == "binary":
        pos = positive or positive_label(t + p)
        kwargs = {"pos_label": pos, "average": "binary", "zero_division": 0}
    else:
        kwargs = {"average": "macro", "zero_division": 0}
    out[Metric.PRECISION] = float(skm.precision_score(t, p, **kwargs))
    out[Metric.RECALL] = float(skm.recall_score(t, p, **kwargs))
    out[Metric.F1] = float(skm.f1_score(t, p, **kwargs))
    out[Metric.ROC_AUC] = None
    out[Metric.LOG_LOSS] = None
    if task_type == "binary" and score is not None:
        s = np.asarray([np.nan if v is None else v for v in score], dtype=np.float64)
        ok = np.isfinite(s)
        y = np.asarray([1 if v == pos else 0 for v in t])[ok]
        s = s[ok]
        if s.size and len(set(y.tolist())) == 2:
            out[Metric.ROC_AUC] = float(skm.roc_auc_score(y, s))
        if s.size:
            out[Metric.LOG_LOSS] = float(skm.log_loss(y, np.clip(s, 1e-15, 1 - 1e-15), labels=[0, 1]))
    return out
