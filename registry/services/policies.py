"""Promotion policies per risk tier: the one writer (admins only, audited)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from registry import rules
from registry.models import PromotionPolicy

from .audit import AuditContext, audit_record, diff, model_snapshot

POLICY_FIELDS = [
    "approvals_required",
    "approver_group",
    "require_model_card",
    "require_lineage",
    "require_metric_within_tolerance",
    "metric_tolerance",
    "metric_tolerance_mode",
    "require_reference_data",
    "require_monitoring",
    "require_fairness",
    "fairness_min_disparate_impact",
    "fairness_max_equalized_odds_difference",
    "require_live_not_worse",
    "live_tolerance",
    "live_min_labelled_pairs",
    "require_llm_safety",
    "llm_safety_min_pass_rate",
    "llm_safety_category_floor",
    "require_llm_quality",
    "llm_quality_tolerance",
]


@transaction.atomic
def policy_update(*, policy: PromotionPolicy, actor, changes: dict[str, Any], context: AuditContext) -> PromotionPolicy:
    """Change a tier's policy (admins only). Requests already open keep their snapshot."""
    if not rules.can_manage_policies(actor):
        raise PermissionDenied("Only admins may change promotion policies.")
    unknown = sorted(set(changes) - set(POLICY_FIELDS))
    if unknown:
        raise ValidationError({"__all__": f"Unknown policy field(s): {', '.join(unknown)}."})
    # A tier whose row is missing (``policy_for_tier`` then answers with the defaults) gets it now.
    defaults = {field: getattr(policy, field) for field in POLICY_FIELDS}
    policy, _ = PromotionPolicy.objects.select_for_update().get_or_create(risk_tier=policy.risk_tier, defaults=defaults)
    before = model_snapshot(policy, POLICY_FIELDS)
    for field, value in changes.items():
        setattr(policy, field, value)
    policy.updated_by = actor
    policy.full_clean()
    if not Group.objects.filter(name=policy.approver_group).exists():
        raise ValidationError({"approver_group": f"There is no group named '{policy.approver_group}'."})
    policy.save()
    after = model_snapshot(policy, POLICY_FIELDS)
    changed_before, changed_after = diff(before, after)
    if changed_after:
        audit_record(
            actor=actor,
            action="policy.updated",
            obj=policy,
            context=context,
            before=changed_before,
            after={**changed_after, "risk_tier": policy.risk_tier},
        )
    return policy
