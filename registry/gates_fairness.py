"""The promotion gate "fairness within thresholds", on the candidate's latest fairness evaluation
(a decided request's: the one it was decided on, ``registry.evidence_runs``).

Policy fields (``PromotionPolicy``): ``require_fairness`` (on for high risk by default),
``fairness_min_disparate_impact`` (0.80, the four-fifths rule) and
``fairness_max_equalized_odds_difference`` (0.10). The evidence is the ``EvaluationRun`` the
monitoring worker computed (``monitoring.services.evaluations``); every sensitive attribute with at
least two groups of ``FAIRNESS_MIN_GROUP_SIZE`` rows is checked. Pairwise intersections are shown
beside it but not gated: with many small groups, max − min of noisy estimates is biased upwards.
A version whose feature schema declares no sensitive attribute has nothing to examine: the gate
is "not applicable" there (and the scorecard's "bias examined before production" stays red for
high risk). The gate returns the same dict as the other gates of ``registry.selectors.promotions``.
"""

from __future__ import annotations

from typing import Any

from registry.choices import EvaluationStatus, Stage
from registry.evidence_runs import request_run
from registry.sensitive import sensitive_attributes

KEY, LABEL = "fairness", "Fairness within thresholds"
INTERSECTION = "&"
FAIL, PASS, NA = "fail", "pass", "na"


def fairness_snapshot(policy) -> dict[str, Any]:
    """The policy's fairness rules, frozen onto a request with the rest of its snapshot."""
    return {
        "require_fairness": policy.require_fairness,
        "fairness_min_disparate_impact": policy.fairness_min_disparate_impact,
        "fairness_max_equalized_odds_difference": policy.fairness_max_equalized_odds_difference,
    }


def _gate(status: str, detail: str, required: bool) -> dict[str, Any]:
    return {"key": KEY, "label": LABEL, "status": status, "detail": detail, "required": required}


def fairness_violations(results: dict, min_di: float, max_eod: float) -> tuple[list[str], list[str]]:
    """(violations, attributes that could not be examined) of a computed fairness report."""
    violations, unexamined = [], []
    for name, attribute in (results.get("attributes") or {}).items():
        if INTERSECTION in name:
            continue  # intersections are shown, not gated: their small groups' noise inflates max − min
        summary = attribute.get("summary") or {}
        if summary.get("groups_compared", 0) < 2:
            unexamined.append(name)
            continue
        di = summary.get("disparate_impact")
        if di is not None and di < min_di:
            low, high = (
                group_label(name, summary.get("lowest_group")),
                group_label(name, summary.get("highest_group")),
            )
            violations.append(f"disparate impact for {low} vs {high} is {di:.2f} (four-fifths rule: ≥ {min_di:.2f})")
        eod = summary.get("equalized_odds_difference")
        if eod is not None and eod > max_eod:
            violations.append(f"equalized odds difference for {name} is {eod:.2f} (≤ {max_eod:.2f})")
    return violations, unexamined


def group_label(attribute: str, group: str | None) -> str:
    """``sex`` + ``F`` → ``sex=F``; ``age_band&sex`` + ``18-25|F`` → ``age_band=18-25, sex=F``."""
    if group is None:
        return attribute
    names, values = attribute.split("&"), group.split("|")
    if len(names) != len(values):
        return f"{attribute}={group}"
    return ", ".join(f"{n}={v}" for n, v in zip(names, values, strict=True))


def fairness_gate(request, snapshot: dict[str, Any]) -> dict[str, Any]:
    """The gate for one promotion request under its policy snapshot."""
    if request.target_stage == Stage.ARCHIVED:
        return _gate(NA, "Retirement needs no evidence.", False)
    if not snapshot.get("require_fairness", False):
        return _gate(NA, "Not required by the policy.", False)
    version = request.version
    if not sensitive_attributes(version.feature_schema):
        # nothing to examine; the scorecard's "bias examined before production" stays red for high risk
        return _gate(NA, f"v{version.version}'s feature schema declares no sensitive attribute.", False)
    run = request_run(request)  # the latest while pending, the one it was decided on after
    if run is None:
        return _gate(FAIL, f"No evaluation set uploaded for v{version.version} (POST …/evaluations/).", True)
    if run.status == EvaluationStatus.PENDING:
        return _gate(FAIL, f"Evaluation #{run.pk} is still being computed.", True)
    if run.status == EvaluationStatus.FAILED:
        return _gate(FAIL, f"Evaluation #{run.pk} failed: {run.error[:200]}", True)
    if run.results.get("task") not in (None, "binary"):
        return _gate(NA, "Parity thresholds apply to binary classification only.", False)
    min_di = float(snapshot.get("fairness_min_disparate_impact", 0.8))
    max_eod = float(snapshot.get("fairness_max_equalized_odds_difference", 0.1))
    violations, unexamined = fairness_violations(run.results, min_di, max_eod)
    if violations:
        return _gate(FAIL, "; ".join(violations)[:1000] + ".", True)
    gated = [name for name in run.results.get("attributes") or {} if INTERSECTION not in name]
    if not gated or set(gated) <= set(unexamined):
        return _gate(FAIL, "No sensitive attribute has two groups large enough to compare.", True)
    examined = len(gated) - len(unexamined)
    detail = (
        f"Evaluation #{run.pk}: {examined} sensitive attribute(s) within thresholds "
        f"(disparate impact ≥ {min_di:.2f}, equalized odds difference ≤ {max_eod:.2f})."
    )
    if unexamined:
        detail += f" Too small to compare: {', '.join(unexamined)}."
    return _gate(PASS, detail, True)
