"""Monitoring reads, already restricted to what the user may see (``model_visible_q``)."""

from __future__ import annotations

import dataclasses

import numpy as np
import orjson
from django.contrib.postgres.aggregates import ArrayAgg, StringAgg
from django.db import connection
from django.db.models import F, FloatField, Func, QuerySet, TextField
from django.db.models.functions import Cast
from django.http import Http404

from registry.models import RegisteredModel
from registry.selectors import model_visible_q

from .choices import Granularity
from .models import Alert, HealthStatus, MetricValue, RetrainTrigger, WindowBinCounts


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


@dataclasses.dataclass(frozen=True)
class WindowCounts:
    """One feature's stored fine bin counts over a range: one row per window, oldest first."""

    granularity: str  # of the rows read
    starts: np.ndarray  # window starts, epoch seconds (float64)
    counts: np.ndarray  # float64 (windows, bins)


def window_bin_counts(*, version, features: dict[str, int], start, end, granularity: str) -> dict[str, WindowCounts]:
    """The stored fine bin counts (``WindowBinCounts``) of ``version``'s windows in [start, end).

    ``features`` maps each wanted feature to its number of fine bins in the current reference
    profile: rows of another length were counted on other bins and are left out (0: none
    returned). Rows of ``granularity`` are read when any of these features has them, else the
    hourly rows (a daily view sums them). A feature without rows is missing from the result.

    One query. On PostgreSQL each feature's rows arrive as one string (``string_agg`` of the
    JSON arrays, in window order) parsed at once, instead of thousands of JSON rows decoded
    one by one (a 90-day page reads 2 x 2,160 hourly rows)."""
    wanted = sorted({Granularity.HOURLY, granularity})
    qs = WindowBinCounts.objects.filter(
        version=version,
        window_start__gte=start,
        window_start__lt=end,
        feature__in=list(features),
        granularity__in=wanted,
    ).order_by()
    groups: dict[tuple[str, str], tuple[list, list]] = {}
    if connection.vendor == "postgresql":
        epoch = Func(
            F("window_start"), template="EXTRACT(EPOCH FROM %(expressions)s)::float8", output_field=FloatField()
        )
        rows = (
            qs.values("feature", "granularity")
            .annotate(
                ts=ArrayAgg(epoch, order_by="window_start"),
                js=StringAgg(Cast("counts", TextField()), delimiter=",", order_by="window_start"),
            )
            .values_list("feature", "granularity", "ts", "js")
        )
        for feature, gran, ts, text in rows:
            groups[(feature, gran)] = (ts, orjson.loads(f"[{text}]"))
    else:
        for feature, gran, when, counts in qs.order_by("window_start").values_list(
            "feature", "granularity", "window_start", "counts"
        ):
            ts, lists = groups.setdefault((feature, gran), ([], []))
            ts.append(when.timestamp())
            lists.append(counts)
    use = granularity if any(g == granularity for _f, g in groups) else Granularity.HOURLY
    out = {}
    for (feature, gran), (ts, lists) in groups.items():
        width = features.get(feature) or 0
        if gran != use or not width:
            continue
        keep = [i for i, c in enumerate(lists) if isinstance(c, list) and len(c) == width]
        if len(keep) < len(lists):
            ts, lists = [ts[i] for i in keep], [lists[i] for i in keep]
        if not lists:
            continue
        out[feature] = WindowCounts(
            granularity=gran,
            starts=np.asarray(ts, dtype="float64"),
            counts=np.asarray(lists, dtype="float64").reshape(len(lists), width),
        )
    return out
