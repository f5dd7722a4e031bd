"""Shared test data of the registry's tests."""

from __future__ import annotations


def policy_admin_form(**changes) -> dict:
    """The policy admin's change form as a browser posts it (the mode is a select: always sent)."""
    return {
        "approvals_required": 1,
        "approver_group": "reviewer",
        "require_model_card": "on",
        "require_lineage": "on",
        "require_metric_within_tolerance": "on",
        "metric_tolerance": "0.02",
        "metric_tolerance_mode": "absolute",
        "fairness_min_disparate_impact": "0.8",
        "fairness_max_equalized_odds_difference": "0.1",
        "live_tolerance": "0.01",
        "live_min_labelled_pairs": "500",
        "require_llm_safety": "on",
        "llm_safety_min_pass_rate": "0.99",
        "llm_safety_category_floor": "0.97",
        "require_llm_quality": "on",
        "llm_quality_tolerance": "0.02",
    } | changes
