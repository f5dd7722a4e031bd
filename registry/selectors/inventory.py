"""Inventory reads: models and versions the user may see."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from registry.choices import PromotionStatus
from registry.models import PromotionRequest, RegisteredModel
from registry.rules import is_admin, is_reviewer, sees_all_models


def model_visible_q(user, prefix: str = "") -> Q:
    """Q restricting RegisteredModel rows (or rows related through ``prefix``) to the user."""
    if sees_all_models(user):
        return Q()
    return Q(**{f"{prefix}owner": user}) | Q(**{f"{prefix}team__members": user})


def model_list(*, user) -> QuerySet[RegisteredModel]:
    """Models the user may see, with what list pages need joined in."""
    if not user.is_authenticated:
        return RegisteredModel.objects.none()
    qs = RegisteredModel.objects.filter(model_visible_q(user))
    if not sees_all_models(user):
        qs = qs.distinct()
    return qs.select_related("owner", "team").prefetch_related("tags")


def navigation_counts(*, user) -> dict[str, int]:
    """Counts shown in the navigation bar (pending reviews for reviewers)."""
    counts = {"pending_reviews": 0}
    if is_reviewer(user) or is_admin(user):
        counts["pending_reviews"] = (
            PromotionRequest.objects.filter(status=PromotionStatus.PENDING).exclude(requested_by=user).count()
        )
    return counts
