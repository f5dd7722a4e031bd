"""Promotion gate "Offline primary metric not worse than production".

The policy option is ``require_metric_within_tolerance`` with ``metric_tolerance`` and how that
number reads, ``metric_tolerance_mode``:

- ``absolute`` (the default, and the reading of snapshots frozen before the mode existed): the
  candidate may be worse than production by at most the tolerance, in the metric's own units
  (0.01 of ROC AUC);
- ``relative``: by at most that fraction of production's value, in magnitude (0.02 of an RMSE of
  57 allows 1.14). A production value of 0 allows no worsening at all: 2 % of nothing is nothing
  (the allowance is a product, never a quotient).

"Worse" follows the model's primary-metric direction (higher or lower is better). Green when the
candidate is worse by no more than the allowance; red otherwise. The gate's ``tolerance`` says
which number, reading and allowance applied, for the page and the API.
"""

from __future__ import annotations

import math
from typing import Any

from registry.choices import Stage, ToleranceMode

KEY = "metric"
LABEL = "Offline primary metric not worse than production"
EPSILON = 1e-12


def number(value) -> float | None:
    """A finite float, or None for anything else (booleans, strings, NaN, infinities)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def metric_policy_snapshot(policy) -> dict[str, Any]:
    """The policy's offline-metric rule, frozen onto a request with the rest of the policy."""
    return {
        "require_metric_within_tolerance": policy.require_metric_within_tolerance,
        "metric_tolerance": policy.metric_tolerance,
        "metric_tolerance_mode": policy.metric_tolerance_mode,
    }


def snapshot_tolerance(snapshot: dict) -> tuple[float, str]:
    """The tolerance of a (possibly older) snapshot and how it reads."""
    mode = snapshot.get("metric_tolerance_mode") or ToleranceMode.ABSOLUTE
    return float(snapshot.get("metric_tolerance", 0.0)), str(mode)


def allowed_worse(tolerance: float, mode: str, production: float | None) -> float | None:
    """How much worse than production the candidate may be; None when a relative tolerance has
    no production value to be a fraction of."""
    if mode != ToleranceMode.RELATIVE:
        return tolerance
    return None if production is None else tolerance * abs(production)


def tolerance_words(tolerance: float, mode: str, production: float | None) -> str:
    """The tolerance as the page and the gate say it: "0.01", or "2 % of production's 57 = 1.14"."""
    if mode != ToleranceMode.RELATIVE:
        return f"{tolerance:g}"
    share = f"{tolerance * 100:g} % of production's"
    if production is None:
        return f"{share} value"
    return f"{share} {production:.4g} = {allowed_worse(tolerance, mode, production):.4g}"


def _gate(status: str, detail: str, required: bool, **extra) -> dict[str, Any]:
    return {"key": KEY, "label": LABEL, "status": status, "detail": detail, "required": required, **extra}


def metric_gate(candidate, metrics: dict, production, snapshot: dict, target: str) -> dict[str, Any]:
    """The gate, in the dict shape of ``promotion_gates``: the candidate's offline ``metrics``
    against the ``production`` version's under the request's policy ``snapshot``."""
    if not snapshot.get("require_metric_within_tolerance", True):
        return _gate("na", "Not required by the policy.", False)
    model = candidate.model
    metric = model.primary_metric
    if target != Stage.PRODUCTION:
        return _gate("na", f"Only checked for promotions to production (target: {target}).", False)
    if not metric:
        return _gate("fail", "The model has no primary metric set.", True)
    cand = number(metrics.get(metric))
    if cand is None:
        return _gate("fail", f"The candidate has no numeric '{metric}' value.", True)
    if production is None or production.pk == candidate.pk:
        return _gate("pass", f"{metric} = {cand:.4g}; no production version to compare.", True)
    prod = number((production.metrics or {}).get(metric)) if isinstance(production.metrics, dict) else None
    if prod is None:
        return _gate("pass", f"{metric} = {cand:.4g}; production v{production.version} has no value.", True)
    tolerance, mode = snapshot_tolerance(snapshot)
    allowed = allowed_worse(tolerance, mode, prod)
    higher = model.primary_metric_higher_is_better
    worse_by = (prod - cand) if higher else (cand - prod)
    text = (
        f"{metric}: {cand:.4g} vs production v{production.version} {prod:.4g} "
        f"({'higher' if higher else 'lower'} is better, tolerance {tolerance_words(tolerance, mode, prod)})"
    )
    applied = {"value": tolerance, "mode": mode, "allowed": allowed}
    if worse_by > allowed + EPSILON:
        relative = mode == ToleranceMode.RELATIVE and prod != 0
        share = f" ({worse_by / abs(prod) * 100:.3g} % of production's)" if relative else ""
        return _gate("fail", f"{text}: worse by {worse_by:.4g}{share}.", True, tolerance=applied)
    return _gate("pass", text + ".", True, tolerance=applied)
