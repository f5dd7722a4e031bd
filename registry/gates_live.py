"""Promotion gate "challenger not worse than champion on live traffic".

Reads the live evidence the monitoring worker stores on the request
(``PromotionRequest.live_evidence``: the candidate's and production's metrics on the same
labelled prediction ids, see ``monitoring.pairing``); registry never imports monitoring.
The policy option is ``require_live_not_worse`` with ``live_tolerance`` (how much worse the
candidate's primary metric may be, absolute) and ``live_min_labelled_pairs``.

Green: enough labelled pairs and the candidate's primary metric is not worse than
production's by more than the tolerance. Red: worse by more. "Not enough pairs yet (n of N)":
fewer labelled pairs than required (the gate fails, so the request waits), or evidence paired with
a version that is no longer in production (a rollback or another promotion since). Not applicable when
the model has no production version besides the candidate: a first version has no champion to
be paired with (as the offline metric gate, nothing to compare).
"""

from __future__ import annotations

from typing import Any

from registry.choices import Stage
from registry.models import ModelVersion

KEY = "live"
LABEL = "Challenger not worse than champion on live traffic"
LOWER_IS_BETTER = ("mae", "rmse", "log_loss")


def live_policy_snapshot(policy) -> dict[str, Any]:
    """The policy's live-traffic rule, frozen onto a request with the rest of the policy."""
    return {
        "require_live_not_worse": policy.require_live_not_worse,
        "live_tolerance": policy.live_tolerance,
        "live_min_labelled_pairs": policy.live_min_labelled_pairs,
    }


def _gate(status: str, detail: str, required: bool, **extra) -> dict[str, Any]:
    return {"key": KEY, "label": LABEL, "status": status, "detail": detail, "required": required, **extra}


def live_gate(request, snapshot: dict) -> dict[str, Any]:
    """The gate, in the dict shape of ``promotion_gates``."""
    if not snapshot.get("require_live_not_worse", False):
        return _gate("na", "Not required by the policy.", False)
    if request.target_stage != Stage.PRODUCTION:
        return _gate("na", f"Only checked for promotions to production (target: {request.target_stage}).", False)
    champion = (
        ModelVersion.objects.filter(model_id=request.version.model_id, stage=Stage.PRODUCTION)
        .exclude(pk=request.version_id)
        .values_list("version", flat=True)
        .first()
    )
    if champion is None:
        return _gate("na", "Not applicable: no production version to compare.", False)
    evidence = request.live_evidence or {}
    paired_with = evidence.get("production_version")
    if paired_with is not None and paired_with != champion:  # a rollback or promotion since it was computed
        return _gate(
            "fail",
            f"The live evidence was paired with v{paired_with}, which is no longer in production (v{champion} is): "
            f"it is recomputed once the candidate's shadow traffic is paired with v{champion}.",
            True,
            waiting=True,
        )
    need = int(snapshot.get("live_min_labelled_pairs", 500))
    have = int(evidence.get("labelled_pairs") or 0)
    if have < need:
        pairs = int(evidence.get("pairs") or 0)
        return _gate(
            "fail", f"Not enough pairs yet ({have} of {need} labelled pairs; {pairs} pairs).", True, waiting=True
        )
    model = request.version.model
    metric = model.primary_metric
    row = (evidence.get("metrics") or {}).get(metric)
    if not row or row.get("candidate") is None or row.get("production") is None:
        return _gate("fail", f"The live evidence has no paired '{metric}' value.", True)
    higher = model.primary_metric_higher_is_better and metric not in LOWER_IS_BETTER
    worse_by = (row["production"] - row["candidate"]) if higher else (row["candidate"] - row["production"])
    tolerance = float(snapshot.get("live_tolerance", 0.0))
    text = (
        f"{metric} on {have} labelled pairs: candidate {row['candidate']:.4f}, production {row['production']:.4f} "
        f"(difference {row['difference']:+.4f}, 95% interval {row.get('ci_low') or 0:+.4f} to "
        f"{row.get('ci_high') or 0:+.4f}; tolerance {tolerance:g})"
    )
    if worse_by > tolerance + 1e-12:
        return _gate("fail", f"{text}: worse by {worse_by:.4f}.", True)
    return _gate("pass", text + ".", True)
