"""Monitoring reads, already restricted to what the user may see (``model_visible_q``)."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from registry.models import RegisteredModel
from registry.selectors import model_visible_q

from .models import Alert, HealthStatus, MetricValue, RetrainTrigger


def metric_series(*, user, model: RegisteredModel) -> QuerySet[MetricValue]:
    """A visible model's metric values, oldest window first (filter with ``MetricFilterSet``).
    The caller has already checked that the user may see ``model`` (e.g. ``model_get``)."""
    return (
        MetricValue.objects.filter(model=model)
        .filter(model_visible_q(user, prefix="model__"))
        .select_related("version")
        .order_by("window_start", "window_end", "feature", "metric")
        .distinct()
    )


def health_get(*, user, model: RegisteredModel) -> HealthStatus | None:
    """The model's stored health (None when never evaluated)."""
    return HealthStatus.objects.filter(model=model).filter(model_visible_q(user, prefix="model__")).distinct().first()


def alert_list(*, user) -> QuerySet[Alert]:
    """Alerts on models the user may see, newest first (filter with ``AlertFilterSet``)."""
    if not user.is_authenticated:
        return Alert.objects.none()
    return (
        Alert.objects.filter(pk__in=Alert.objects.filter(model_visible_q(user, prefix="model__")).values("pk"))
        .select_related("model", "acknowledged_by")
        .order_by("-opened_at", "-id")
    )


def alert_get(*, user, pk: int) -> Alert:
    """One visible alert; 404 if missing or hidden."""
    alert = alert_list(user=user).filter(pk=pk).first()
    if alert is None:
        raise Http404(f"No alert #{pk}.")
    return alert


def retrain_trigger_list(*, user, model: RegisteredModel) -> QuerySet[RetrainTrigger]:
    return (
        RetrainTrigger.objects.filter(model=model)
        .filter(model_visible_q(user, prefix="model__"))
        .select_related("version")
        .distinct()
    )


# ---------------------------------------------------------------------------------------------
# Dashboard-specific selectors (appended by the dashboards work) go below this line.
# ---------------------------------------------------------------------------------------------
