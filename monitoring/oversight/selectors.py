"""Reads of incidents, plans, reviews and findings, restricted to the models the user may see
(``RegisteredModel.objects.visible_to``); a hidden or missing object is a 404."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from django.db.models import Max, OuterRef, QuerySet, Subquery
from django.http import Http404
from django.urls import reverse
from django.utils.http import urlencode

from mlops_portal import clock
from monitoring.choices import (
    AlertStatus,
    FindingStatus,
    Granularity,
    IncidentStatus,
    ReviewStatus,
    ReviewTriggerKind,
)
from monitoring.forms import CUSTOM_MAX_SPAN, custom_range
from monitoring.models import Alert, MetricValue
from registry.models import RegisteredModel

from .models import MAX_WINDOWS, Finding, Incident, PeriodicReview, ReviewTrigger
from .months import MonthTable, metric_months


def _visible(user) -> QuerySet[RegisteredModel]:
    return RegisteredModel.objects.visible_to(user)


def incident_list(*, user) -> QuerySet[Incident]:
    """Incidents on visible models, newest first (filter with ``IncidentFilterSet``)."""
    return Incident.objects.filter(model__in=_visible(user)).select_related("model", "version", "opened_by")


def incident_get(*, user, pk: int) -> Incident:
    incident = incident_list(user=user).filter(pk=pk).first()
    if incident is None:
        raise Http404(f"No incident #{pk}.")
    return incident


def open_incident_of(alert: Alert) -> Incident | None:
    """The newest incident not yet closed that ``alert`` is part of, if any."""
    return alert.incidents.exclude(status=IncidentStatus.CLOSED).order_by("-pk").first()


def with_open_incident(alerts: QuerySet[Alert]) -> QuerySet[Alert]:
    """``alerts`` annotated with ``open_incident_id``: ``open_incident_of`` each, in the same query."""
    newest = Incident.objects.filter(alerts=OuterRef("pk")).exclude(status=IncidentStatus.CLOSED).order_by("-pk")
    return alerts.annotate(open_incident_id=Subquery(newest.values("pk")[:1]))


def incident_events(incident: Incident):
    return incident.events.select_related("actor").order_by("created_at", "id")


WINDOW_CONTEXT = dt.timedelta(days=1)  # the period starts a day before the incident began


@dataclasses.dataclass(frozen=True)
class IncidentWindows:
    """The metric windows of an incident's period, in one granularity: hourly when the period has
    hourly windows, else daily (the daily windows of the same hours hold the same traffic, so
    they are never counted with them; ``also_stored`` names the granularity not counted). A
    window is one per version: a shadow version's window is other traffic. ``windows`` are the
    first ``MAX_WINDOWS``, oldest first; ``dashboard_url`` opens the dashboard range that holds
    all ``total`` of them (at most the dashboard's longest custom range, ending at the last)."""

    granularity: str  # "" when the period has no windows
    total: int
    windows: list[dict[str, Any]]
    start: dt.datetime | None  # of the first window
    end: dt.datetime | None  # of the last window
    dashboard_url: str
    also_stored: str = ""

    @property
    def shown(self) -> int:
        return len(self.windows)

    @property
    def left_out(self) -> int:
        return self.total - self.shown

    def rows(self) -> list[dict[str, Any]]:
        """The listed windows with their times in ISO 8601 (the API's ``windows``)."""
        return [
            w | {"window_start": w["window_start"].isoformat(), "window_end": w["window_end"].isoformat()}
            for w in self.windows
        ]

    def as_dict(self) -> dict[str, Any]:
        """What the API answers and a filed report keeps (times in ISO 8601)."""
        return {
            "granularity": self.granularity,
            "total": self.total,
            "shown": self.shown,
            "left_out": self.left_out,
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
            "dashboard_url": self.dashboard_url,
        }


def period_windows(*, model: RegisteredModel, began_at: dt.datetime, aware_at: dt.datetime) -> IncidentWindows:
    """The windows of ``model`` from a day before ``began_at`` to ``aware_at`` (``IncidentWindows``).
    Four queries, whatever the number of windows and metric rows."""
    rows = MetricValue.objects.filter(
        model=model, window_end__gt=began_at - WINDOW_CONTEXT, window_start__lte=aware_at
    ).order_by()
    stored = set(rows.values_list("granularity", flat=True).distinct())
    granularity = Granularity.HOURLY if Granularity.HOURLY in stored else Granularity.DAILY
    if granularity not in stored:
        return IncidentWindows(granularity="", total=0, windows=[], start=None, end=None, dashboard_url="")
    rows = rows.filter(granularity=granularity)
    keys = rows.values("version__version", "window_start", "window_end").distinct()
    first = list(keys.order_by("window_start", "version__version")[:MAX_WINDOWS])
    start, end = first[0]["window_start"], rows.aggregate(end=Max("window_end"))["end"]
    params = {**custom_range(max(start, end - CUSTOM_MAX_SPAN), end), "granularity": granularity}
    return IncidentWindows(
        granularity=granularity,
        total=keys.count(),
        windows=[
            {
                "version": r["version__version"],
                "granularity": granularity,
                "window_start": r["window_start"],
                "window_end": r["window_end"],
            }
            for r in first
        ],
        start=start,
        end=end,
        dashboard_url=f"{reverse('monitoring:model_dashboard', args=[model.name])}?{urlencode(params)}",
        also_stored=next((g for g in sorted(stored) if g != granularity), ""),
    )


def incident_windows(incident: Incident) -> IncidentWindows:
    """The metric windows of the incident's period, as its page, its API answer and its reports
    say them (``period_windows``)."""
    return period_windows(model=incident.model, began_at=incident.began_at, aware_at=incident.aware_at)


def review_list(*, user, model: RegisteredModel | None = None) -> QuerySet[PeriodicReview]:
    reviews = PeriodicReview.objects.filter(model__in=_visible(user))
    if model is not None:
        reviews = reviews.filter(model=model)
    return reviews.select_related("model", "owner", "attested_by", "validated_by").prefetch_related("triggers")


def review_get(*, user, pk: int) -> PeriodicReview:
    review = review_list(user=user).filter(pk=pk).first()
    if review is None:
        raise Http404(f"No review #{pk}.")
    return review


def review_later_triggers(review: PeriodicReview) -> list[ReviewTrigger]:
    """The triggers that came after the one that opened the review, oldest first: the review's
    ``trigger`` names what opened it, so a review opened by a trigger (not manual nor scheduled)
    does not list its first trigger row again. The review page ("…; then …") and the API
    (``triggers``) both show these (``review_list`` prefetches the rows)."""
    triggers = list(review.triggers.all())
    opened_by_trigger = review.trigger not in (ReviewTriggerKind.MANUAL, ReviewTriggerKind.SCHEDULED)
    if opened_by_trigger and triggers and triggers[0].kind == review.trigger:
        return triggers[1:]
    return triggers


def finding_list(*, user, model: RegisteredModel | None = None) -> QuerySet[Finding]:
    findings = Finding.objects.filter(model__in=_visible(user))
    if model is not None:
        findings = findings.filter(model=model)
    return findings.select_related("model", "owner", "created_by", "remediated_by", "closed_by")


def finding_get(*, user, pk: int) -> Finding:
    finding = finding_list(user=user).filter(pk=pk).first()
    if finding is None:
        raise Http404(f"No finding #{pk}.")
    return finding


def overdue_reviews(*, user, now: dt.datetime | None = None) -> QuerySet[PeriodicReview]:
    now = now or clock.now()
    return review_list(user=user).exclude(status=ReviewStatus.COMPLETED).filter(due_at__lt=now)


def overdue_findings(*, user, now: dt.datetime | None = None) -> QuerySet[Finding]:
    now = now or clock.now()
    return finding_list(user=user).exclude(status=FindingStatus.CLOSED).filter(due_at__lt=now)


def overdue_incidents(*, user, now: dt.datetime | None = None) -> QuerySet[Incident]:
    """Incidents whose reporting deadline passed without a report."""
    now = now or clock.now()
    return (
        incident_list(user=user)
        .filter(deadline__lt=now, initial_report_at__isnull=True, final_report_at__isnull=True)
        .exclude(status=IncidentStatus.CLOSED)
    )


def oversight_counts(*, user) -> dict[str, int]:
    """The navigation badges: open incidents, overdue incidents, overdue reviews and findings."""
    if not getattr(user, "is_authenticated", False):
        return {}
    now = clock.now()
    return {
        "open_incidents": incident_list(user=user).exclude(status=IncidentStatus.CLOSED).count(),
        "overdue_incidents": overdue_incidents(user=user, now=now).count(),
        "overdue_reviews": overdue_reviews(user=user, now=now).count(),
        "overdue_findings": overdue_findings(user=user, now=now).count(),
    }


# --------------------------------------------------------------------------- the compliance report


@dataclasses.dataclass
class PostMarketReport:
    """Art. 72 / Art. 73 / SR 26-2 content of one model's compliance report."""

    model: RegisteredModel
    plan: dict[str, Any]
    months: MonthTable
    alerts: list[dict[str, Any]]
    incidents: list[Incident]
    reviews: list[PeriodicReview]
    findings: list[Finding]
    validator: str | None
    last_validation: dt.datetime | None
    last_completed: dt.datetime | None
    open_findings: int


def _alert_times(model: RegisteredModel) -> list[dict[str, Any]]:
    out = []
    for alert in Alert.objects.filter(model=model).select_related("acknowledged_by").order_by("opened_at")[:200]:
        ack = alert.acknowledged_at - alert.opened_at if alert.acknowledged_at else None
        res = (
            alert.resolved_at - alert.opened_at if alert.status == AlertStatus.RESOLVED and alert.resolved_at else None
        )
        out.append({"alert": alert, "to_acknowledge": ack, "to_resolve": res})
    return out


def post_market_report(model: RegisteredModel, user) -> PostMarketReport | None:
    """What the compliance report's post-market section shows; None if ``user`` may not see it."""
    from .plan import plan_current

    if not _visible(user).filter(pk=model.pk).exists():
        return None
    reviews = list(review_list(user=user, model=model).order_by("-opened_at"))
    findings = list(finding_list(user=user, model=model).order_by("status", "due_at"))
    # a validation is one a validator signed; a review completed without one is not a validation
    last = max((r for r in reviews if r.validated_at), key=lambda r: r.validated_at, default=None)
    completed = max((r.completed_at for r in reviews if r.completed_at), default=None)
    return PostMarketReport(
        model=model,
        plan=plan_current(model),
        months=metric_months(model),
        alerts=_alert_times(model),
        incidents=list(incident_list(user=user).filter(model=model).order_by("aware_at")),
        reviews=reviews,
        findings=findings,
        validator=last.validated_by.get_username() if last and last.validated_by else None,
        last_validation=last.validated_at if last else None,
        last_completed=completed,
        open_findings=sum(1 for f in findings if f.status != FindingStatus.CLOSED),
    )


def deadline_outcome(incident: Incident, now: dt.datetime | None = None) -> str:
    """met / missed / pending / none: was the first report filed by the deadline?"""
    if incident.deadline is None:
        return "none"
    reported = incident.reported_at
    if reported is not None:
        return "met" if reported <= incident.deadline else "missed"
    return "missed" if (now or clock.now()) > incident.deadline else "pending"
