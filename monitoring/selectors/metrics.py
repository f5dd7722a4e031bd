"""Metric series, stored health and retrain triggers of one model (read by the API), and the
stored hourly metrics a longer window is summed from (read by window computation)."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet

from registry.models import RegisteredModel

from ..choices import Granularity
from ..models import HealthStatus, MetricValue, RetrainTrigger


def hours_metrics(version_id: int, start: datetime, end: datetime, metrics: list[str]) -> QuerySet[MetricValue]:
    """The version's stored whole-window metrics (``feature=""``) of the hours in [start, end)."""
    return MetricValue.objects.filter(
        version_id=version_id,
        granularity=Granularity.HOURLY,
        window_start__gte=start,
        window_start__lt=end,
        feature="",
        metric__in=metrics,
    )


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
