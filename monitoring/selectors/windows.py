"""Reads of window computation state for the dashboards: the windows that failed."""

from __future__ import annotations

from django.db.models import QuerySet

from monitoring.models import WindowFailure
from registry.models import RegisteredModel


def window_failures(*, user, model: RegisteredModel) -> QuerySet[WindowFailure]:
    """The model's failed windows (newest failure first) with their reason, if ``user`` may see
    the model; empty otherwise. Each row has ``version`` loaded (``failure.version.version``)."""
    visible = RegisteredModel.objects.visible_to(user).filter(pk=model.pk)
    return (
        WindowFailure.objects.filter(version__model__in=visible).select_related("version").order_by("-failed_at", "-pk")
    )
