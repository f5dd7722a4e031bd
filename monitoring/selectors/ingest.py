"""Reads of what ingestion stored: the prediction batches a model received since a moment
(the "Connect a pipeline" page's check)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Sum

from monitoring.models import IngestBatch
from registry.models import RegisteredModel


@dataclass(frozen=True)
class BatchesSince:
    """The first batch received since a moment (None while waiting) and the totals since then."""

    first: IngestBatch | None
    batches: int
    rows: int


def batches_since(*, user, model: RegisteredModel, since: datetime) -> BatchesSince:
    """Prediction batches of ``model`` (any version) received at or after ``since``; nothing
    when ``user`` may not see the model."""
    batches = IngestBatch.objects.filter(
        version__model=model, version__model__in=RegisteredModel.objects.visible_to(user), received_at__gte=since
    )
    totals = batches.aggregate(n=Count("pk"), rows=Sum("rows"))
    first = None
    if totals["n"]:
        first = batches.select_related("version").order_by("received_at", "pk").first()
    return BatchesSince(first=first, batches=totals["n"], rows=totals["rows"] or 0)
