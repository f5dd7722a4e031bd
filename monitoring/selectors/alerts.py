"""Alerts of the models a user may see: the list behind the alerts page and the API."""

from __future__ import annotations

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone

from registry.models import RegisteredModel

from ..choices import AlertStatus
from ..filters import AlertFilterSet
from ..models import Alert


def alert_list(*, user) -> QuerySet[Alert]:
    """Alerts on models the user may see, newest first (filter with ``AlertFilterSet``)."""
    return (
        Alert.objects.filter(model__in=RegisteredModel.objects.visible_to(user))
        .select_related("model", "acknowledged_by")
        .order_by("-opened_at", "-id")
    )


def alert_get(*, user, pk: int) -> Alert:
    """One visible alert; 404 if missing or hidden."""
    alert = alert_list(user=user).filter(pk=pk).first()
    if alert is None:
        raise Http404(f"No alert #{pk}.")
    return alert


def alert_page_list(*, user, params) -> tuple[QuerySet[Alert], AlertFilterSet]:
    """The alerts page: ``alert_list`` through ``AlertFilterSet`` (the API's). The page shows
    what is active (open or acknowledged) unless the request names a ``status`` or ``active``.
    Raises ValidationError on bad filter values."""
    data = params.copy()
    if "status" not in data and "active" not in data:
        data["active"] = "true"
    filterset = AlertFilterSet(data, queryset=alert_list(user=user).select_related("model__owner"))
    if not filterset.is_valid():
        raise ValidationError(filterset.errors)
    return filterset.qs, filterset


def alert_recently_resolved(*, user, days: int = 7) -> QuerySet[Alert]:
    """Alerts of visible models resolved in the last ``days`` days, newest first."""
    since = timezone.now() - timedelta(days=days)
    return (
        alert_list(user=user)
        .select_related("model__owner")
        .filter(status=AlertStatus.RESOLVED, resolved_at__gte=since)
        .order_by("-resolved_at", "-id")
    )
