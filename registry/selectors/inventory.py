"""Inventory reads: models and versions the user may see."""

from __future__ import annotations

from functools import cache
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Case, Count, IntegerField, OuterRef, Prefetch, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.http import Http404

from registry.auth import role_names
from registry.choices import PromotionStatus, RiskTier, Stage
from registry.models import ApiToken, ModelVersion, PromotionRequest, RegisteredModel, Tag, Team
from registry.rules import can_view_audit, is_admin, is_reviewer, sees_all_models


def model_visible_q(user, prefix: str = "") -> Q:
    """Q restricting RegisteredModel rows (or rows related through ``prefix``) to the user.

    Team membership is a subquery rather than a join, so the rows never need ``distinct()``.
    """
    if sees_all_models(user):
        return Q()
    my_teams = Team.objects.filter(members=user).values("pk")
    return Q(**{f"{prefix}owner": user}) | Q(**{f"{prefix}team__in": my_teams})


def _with_summary(qs: QuerySet[RegisteredModel]) -> QuerySet[RegisteredModel]:
    """Production version, latest version, version count and a risk rank, as subqueries (one SQL)."""
    versions = ModelVersion.objects.filter(model=OuterRef("pk"))
    count = versions.order_by().values("model").annotate(c=Count("pk")).values("c")
    return qs.annotate(
        # At most one production version (constraint): no ordering, so no join and sort per row.
        production_version=Subquery(versions.filter(stage=Stage.PRODUCTION).order_by().values("version")[:1]),
        latest_version=Subquery(versions.order_by("-version").values("version")[:1]),
        version_count=Coalesce(Subquery(count, output_field=IntegerField()), Value(0)),
        risk_rank=Case(
            When(risk_tier=RiskTier.LOW, then=Value(1)),
            When(risk_tier=RiskTier.MEDIUM, then=Value(2)),
            When(risk_tier=RiskTier.HIGH, then=Value(3)),
            default=Value(0),
            output_field=IntegerField(),
        ),
    )


def model_list(*, user, filters: dict[str, Any] | None = None) -> QuerySet[RegisteredModel]:
    """Models the user may see, with owner, team, tags and the version summary joined in.

    ``filters`` (a dict or QueryDict) goes through ``ModelFilterSet``; invalid filters raise
    ``ValidationError``. Views that render the filter form use the FilterSet themselves.
    """
    if not user.is_authenticated:
        return RegisteredModel.objects.none()
    qs = RegisteredModel.objects.filter(model_visible_q(user))
    qs = _with_summary(qs).select_related("owner", "team", "health").prefetch_related("tags")
    if filters is not None:
        from registry.filters import ModelFilterSet

        filterset = ModelFilterSet(filters, queryset=qs)
        if not filterset.is_valid():
            raise ValidationError(filterset.errors.get_json_data())
        qs = filterset.qs
    return qs


def with_tag_names(qs: QuerySet[RegisteredModel]) -> QuerySet[RegisteredModel]:
    """On PostgreSQL, each model's tag names (sorted) as ``tag_names``, an array read with the model
    row instead of a second statement and a ``Tag`` instance per tag; elsewhere ``qs`` unchanged
    (tags stay prefetched)."""
    if connection.vendor != "postgresql":
        return qs
    from django.contrib.postgres.expressions import ArraySubquery

    names = Tag.objects.filter(models=OuterRef("pk")).order_by("name").values("name")
    return qs.prefetch_related(None).annotate(tag_names=ArraySubquery(names))


def model_get(*, user, name: str) -> RegisteredModel:
    """One visible model with its versions (newest first) prefetched; 404 if missing or hidden."""
    versions = ModelVersion.objects.order_by("-version").select_related("created_by")
    model = (
        model_list(user=user)
        .select_related("created_by")
        .prefetch_related(Prefetch("versions", queryset=versions))
        .filter(name=name)
        .first()
    )
    if model is None:
        raise Http404(f"No model named '{name}'.")
    return model


@cache
def _detail_sql() -> tuple[str, str]:
    """The one statement behind ``model_detail_row`` (PostgreSQL), from the models' metadata.

    Returns (statement for users who see every model, extra condition for everyone else)."""
    health = RegisteredModel._meta.get_field("health").related_model  # monitoring's table, not imported
    tags = RegisteredModel.tags.through
    members = Team.members.through
    sql = f"""
        SELECT m.name, m.description, u.username, t.slug, m.risk_tier,
               ARRAY(SELECT g.name FROM {tags._meta.db_table} mt JOIN {Tag._meta.db_table} g ON g.id = mt.tag_id
                     WHERE mt.registeredmodel_id = m.id ORDER BY g.name),
               v.production_version, v.latest_version, v.version_count,
               m.created_at, m.updated_at, m.ai_act_category, m.intended_use, m.limitations,
               m.retrain_cadence_days, m.primary_metric, m.primary_metric_higher_is_better,
               v.versions, v.stages, v.task_types, v.created,
               h.status, h.reasons, h.computed_at
        FROM {RegisteredModel._meta.db_table} m
        JOIN {RegisteredModel._meta.get_field("owner").related_model._meta.db_table} u ON u.id = m.owner_id
        JOIN {Team._meta.db_table} t ON t.id = m.team_id
        LEFT JOIN {health._meta.db_table} h ON h.model_id = m.id
        CROSS JOIN LATERAL (
            SELECT max(mv.version) FILTER (WHERE mv.stage = %(production)s) AS production_version,
                   max(mv.version) AS latest_version,
                   count(*) AS version_count,
                   array_agg(mv.version ORDER BY mv.version DESC) AS versions,
                   array_agg(mv.stage ORDER BY mv.version DESC) AS stages,
                   array_agg(mv.task_type ORDER BY mv.version DESC) AS task_types,
                   array_agg(mv.created_at ORDER BY mv.version DESC) AS created
            FROM {ModelVersion._meta.db_table} mv WHERE mv.model_id = m.id
        ) v
        WHERE m.name = %(name)s"""
    visible = (
        f" AND (m.owner_id = %(user)s OR m.team_id IN"
        f" (SELECT tm.team_id FROM {members._meta.db_table} tm WHERE tm.user_id = %(user)s))"
    )
    return sql, visible


DETAIL_FIELDS = [
    "name",
    "description",
    "owner",
    "team",
    "risk_tier",
    "tags",
    "production_version",
    "latest_version",
    "version_count",
    "created_at",
    "updated_at",
    "ai_act_category",
    "intended_use",
    "limitations",
    "retrain_cadence_days",
    "primary_metric",
    "primary_metric_higher_is_better",
]


def model_detail_row(*, user, name: str) -> dict[str, Any] | None:
    """One visible model's card, version summary, versions and health in ONE statement, as plain values.

    PostgreSQL only (``None`` elsewhere: callers then use ``model_get``, which gives the same data
    through the ORM in five statements). Raises Http404 if the model is missing or hidden.
    ``versions`` is a list of (version, stage, task_type, created_at), newest first; ``health`` is
    None until the monitoring app has computed one."""
    if connection.vendor != "postgresql" or not user.is_authenticated:
        return None
    sql, visible = _detail_sql()
    params = {"name": name, "production": Stage.PRODUCTION, "user": user.pk}
    with connection.cursor() as cursor:
        cursor.execute(sql if sees_all_models(user) else sql + visible, params)
        row = cursor.fetchone()
    if row is None:
        raise Http404(f"No model named '{name}'.")
    data = dict(zip(DETAIL_FIELDS, row[:17], strict=True))
    data["tags"] = list(data["tags"])
    versions, stages, task_types, created, status, reasons, computed_at = row[17:]
    data["versions"] = list(zip(versions, stages, task_types, created, strict=True)) if versions else []
    reasons_field = RegisteredModel._meta.get_field("health").related_model._meta.get_field("reasons")
    data["health"] = (
        None
        if status is None
        else {
            "status": status,
            "reasons": reasons_field.from_db_value(reasons, None, connection),
            "computed_at": computed_at,
        }
    )
    return data


def version_list(*, user, model: RegisteredModel) -> QuerySet[ModelVersion]:
    """Versions of a model the user may see (the caller got ``model`` from ``model_get``)."""
    return (
        ModelVersion.objects.filter(model=model)
        .filter(model_visible_q(user, prefix="model__"))
        .select_related("model", "created_by")
        .order_by("-version")
    )


def version_get(*, user, name: str, version: int) -> ModelVersion:
    """One version of a visible model; 404 if missing or hidden."""
    found = (
        ModelVersion.objects.filter(model__name=name, version=version)
        .filter(model_visible_q(user, prefix="model__"))
        .select_related("model", "model__owner", "model__team", "created_by")
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
        visible = RegisteredModel.objects.filter(model_visible_q(user)).values("pk")
        tags = tags.filter(
            pk__in=RegisteredModel.tags.through.objects.filter(registeredmodel__in=visible).values("tag")
        )
    return tags.values_list("name", flat=True)


def token_list(*, user) -> QuerySet[ApiToken]:
    """The user's own API tokens, newest first."""
    return ApiToken.objects.filter(user=user).order_by("-created_at")


def navigation_counts(*, user) -> dict[str, Any]:
    """What the navigation bar shows: pending reviews for reviewers, the audit link, role badges.

    Group names are read once (django-rules caches them on the user), so every page pays one
    query for roles whatever the template asks."""
    counts: dict[str, Any] = {"pending_reviews": 0}
    if is_reviewer(user) or is_admin(user):
        counts["pending_reviews"] = _pending_reviews(user)
    counts["can_view_audit"] = can_view_audit(user)
    counts["groups"] = sorted(role_names(user))
    return counts


@cache
def _pending_reviews_sql() -> str:
    meta = PromotionRequest._meta
    return (
        f"SELECT count(*) FROM {meta.db_table} WHERE {meta.get_field('status').column} = %s"
        f" AND {meta.get_field('requested_by').column} <> %s"
    )


def _pending_reviews(user) -> int:
    """``PromotionRequest.objects.filter(status=PENDING).exclude(requested_by=user).count()``
    (``requested_by`` is never null), as plain SQL: it runs on every page a reviewer opens,
    and building the ORM's aggregate query cost several times what the count itself does."""
    with connection.cursor() as cursor:
        cursor.execute(_pending_reviews_sql(), [PromotionStatus.PENDING, user.pk])
        return cursor.fetchone()[0]
