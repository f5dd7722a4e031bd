"""Metric series, stored health and retrain triggers of one model (read by the API)."""

from __future__ import annotations

from django.db.models import QuerySet

from registry.models import RegisteredModel

from ..models import HealthStatus, MetricValue, RetrainTrigger


def metric_series(*, user, model: RegisteredModel) -> QuerySet[MetricValue]:
    """A visible model's metric values, oldest window first (filter with ``MetricFilterSet``).
    The caller has already checked that the user may see ``model`` (e.g. ``model_get``)."""
    return (
        MetricValue.objects.filter(model=model, model__in=RegisteredModel.objects.visible_to(user))
        .select_related("version")
        .order_by("window_start", "window_end", "feature", "metric")
    )


def health_get(*, user, model: RegisteredModel) -> HealthStatus | None:
    """The model's stored health (None when never evaluated)."""
    return HealthStatus.objects.filter(model=model, model__in=RegisteredModel.objects.visible_to(user)).first()


def retrain_trigger_list(*, user, model: RegisteredModel) -> QuerySet[RetrainTrigger]:
    return RetrainTrigger.objects.filter(
        model=model, model__in=RegisteredModel.objects.visible_to(user)
    ).select_related("version")
