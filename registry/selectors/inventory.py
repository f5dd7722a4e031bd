"""Inventory reads: models and versions the user may see."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Case, Count, IntegerField, OuterRef, Prefetch, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.http import Http404

from mlops_portal.api.errors import form_error_details
from registry.auth import role_names
from registry.cache import cached_render
from registry.choices import PromotionStatus, RiskTier, Stage
from registry.models import ApiToken, ModelVersion, PromotionRequest, RegisteredModel, Tag, Team
from registry.rules import (
    can_change_model,
    can_view_audit,
    can_view_privacy,
    is_admin,
    is_reviewer,
    sees_all_models,
)

# Risk tiers in order (high ranks highest), for sorting; the fleet page sorts by it too.
RISK_RANK = Case(
    When(risk_tier=RiskTier.LOW, then=Value(1)),
    When(risk_tier=RiskTier.MEDIUM, then=Value(2)),
    When(risk_tier=RiskTier.HIGH, then=Value(3)),
    default=Value(0),
    output_field=IntegerField(),
)


def _with_summary(qs: QuerySet[RegisteredModel]) -> QuerySet[RegisteredModel]:
    """Production version, latest version, version count and a risk rank, as subqueries (one SQL)."""
    versions = ModelVersion.objects.filter(model=OuterRef("pk"))
    count = versions.order_by().values("model").annotate(c=Count("pk")).values("c")
    return qs.annotate(
        # At most one production version (constraint): no ordering, so no join and sort per row.
        production_version=Subquery(versions.filter(stage=Stage.PRODUCTION).order_by().values("version")[:1]),
        latest_version=Subquery(versions.order_by("-version").values("version")[:1]),
        version_count=Coalesce(Subquery(count, output_field=IntegerField()), Value(0)),
        risk_rank=RISK_RANK,
    )


def model_list(*, user, filters: dict[str, Any] | None = None) -> QuerySet[RegisteredModel]:
    """Models the user may see, with owner, team, tags and the version summary joined in.

    ``filters`` (a dict or QueryDict) goes through ``ModelFilterSet``; invalid filters raise
    ``ValidationError``. Views that render the filter form use the FilterSet themselves.
    """
    qs = (
        _with_summary(RegisteredModel.objects.visible_to(user))
        .select_related("owner", "team", "health")
        .prefetch_related("tags")
    )
    if filters is not None:
        from registry.filters import ModelFilterSet

        filterset = ModelFilterSet(filters, queryset=qs)
        if not filterset.is_valid():
            raise ValidationError(form_error_details(filterset.errors))
        qs = filterset.qs
    return qs


def model_get(*, user, name: str) -> RegisteredModel:
    """The one "visible model by name" read: the model with its owner, team, tags, health and
    versions (newest first; they give its version summary); 404 if missing or hidden from ``user``."""
    versions = ModelVersion.objects.order_by("-version").select_related("created_by", "llm")
    models = (
        RegisteredModel.objects.visible_to(user)
        .select_related("owner", "team", "health", "created_by")
        .prefetch_related("tags", Prefetch("versions", queryset=versions))
    )
    try:
        return models.get(name=name)
    except RegisteredModel.DoesNotExist:
        raise Http404(f"No model named '{name}'.") from None


def model_get_changeable(*, user, name: str, denied: str, may=can_change_model) -> RegisteredModel:
    """``model_get``, then the rule ``may`` (``can_change_model`` unless given, e.g.
    ``can_rollback``): 404 if hidden from ``user``, 403 (``denied``) if visible but the rule refuses."""
    model = model_get(user=user, name=name)
    if not may(user, model):
        raise PermissionDenied(denied)
    return model


def version_list(*, user, model: RegisteredModel) -> QuerySet[ModelVersion]:
    """Versions of a model the user may see (the caller got ``model`` from ``model_get``)."""
    return (
        ModelVersion.objects.filter(model=model, model__in=RegisteredModel.objects.visible_to(user))
        .select_related("model", "created_by", "llm")
        .order_by("-version")
    )


def version_get(*, user, name: str, version: int) -> ModelVersion:
    """One version of a visible model; 404 if missing or hidden."""
    found = (
        ModelVersion.objects.filter(
            model__name=name, version=version, model__in=RegisteredModel.objects.visible_to(user)
        )
        .select_related("model", "model__owner", "model__team", "created_by", "llm")
        .first()
    )
    if found is None:
        raise Http404(f"No version {version} of model '{name}'.")
    return found


def team_choices(*, user) -> QuerySet[Team]:
    """Teams the user may register models in (admins: all teams)."""
    if is_admin(user):
        return Team.objects.all()
    return Team.objects.filter(members=user)


def team_list(*, user) -> QuerySet[Team]:
    """Teams offered as an inventory filter: all for those who see every model, else the user's own."""
    if sees_all_models(user):
        return Team.objects.all()
    return Team.objects.filter(members=user)


def tag_names(*, user) -> QuerySet:
    """Names of the tags on models the user may see, for the inventory's tag filter."""
    tags = Tag.objects.order_by("name")
    if not sees_all_models(user):
        visible = RegisteredModel.objects.visible_to(user).values("pk")
        tags = tags.filter(
            pk__in=RegisteredModel.tags.through.objects.filter(registeredmodel__in=visible).values("tag")
        )
    return tags.values_list("name", flat=True)


def token_list(*, user) -> QuerySet[ApiToken]:
    """The user's own API tokens, newest first."""
    return ApiToken.objects.filter(user=user).order_by("-created_at")


def models_to_complete(*, user) -> list[RegisteredModel]:
    """The models ``user`` may change whose card or primary metric is still missing (each with
    ``setup_missing``), by name: the banner of the owner's fleet view."""
    qs = RegisteredModel.objects.visible_to(user).order_by("name")
    return [m for m in qs if m.setup_missing and can_change_model(user, m)]


def navigation_counts(*, user) -> dict[str, Any]:
    """What the navigation bar shows: pending reviews for reviewers, the audit and privacy links,
    role badges."""
    counts: dict[str, Any] = {"pending_reviews": 0}
    if is_reviewer(user) or is_admin(user):
        # On every page: kept in the inventory cache, whose revision every request change bumps.
        counts["pending_reviews"] = cached_render(
            user,
            ("nav_pending_reviews", user.pk),
            lambda: (
                PromotionRequest.objects.filter(status=PromotionStatus.PENDING)
                .exclude(requested_by=user)
                .exclude(version__model__owner=user)  # nor on their own models (rules.can_review_promotion)
                .exclude(reviews__reviewer=user)  # reviewed once is done: one review per reviewer
                .count()
            ),
        )
    counts["can_view_audit"] = can_view_audit(user)
    counts["can_view_privacy"] = can_view_privacy(user)
    counts["groups"] = sorted(role_names(user))
    return counts
