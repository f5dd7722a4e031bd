"""FilterSets shared by the monitoring pages and the monitoring API (one definition per list).

The pages validate with these FilterSets and answer a 400 JSON error on bad values; the API
uses them through the stock ``DjangoFilterBackend`` (the same 400, from DRF).
"""

from __future__ import annotations

from datetime import timedelta

import django_filters
from django import forms
from django.db.models import F, Q
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from mlops_portal.filters import StrictBooleanFilter, UtcIsoDateTimeFilter
from registry.choices import RiskTier
from registry.models import RegisteredModel

from .choices import AlertKind, AlertSeverity, AlertStatus, Granularity, HealthState
from .models import Alert, MetricValue


@extend_schema_field(OpenApiTypes.INT)
class DaysFilter(django_filters.NumberFilter):
    """A whole number of days (``NumberFilter`` reads decimals)."""

    field_class = forms.IntegerField


class SlugFilter(django_filters.CharFilter):
    field_class = forms.SlugField


class MetricFilterSet(django_filters.FilterSet):
    """Metric series: by metric, feature ('' = dataset-level), granularity, version and window range."""

    metric = django_filters.CharFilter(field_name="metric", max_length=40)
    feature = django_filters.CharFilter(field_name="feature", max_length=200)
    granularity = django_filters.ChoiceFilter(choices=Granularity.choices)
    version = django_filters.NumberFilter(field_name="version__version", min_value=1)
    start = UtcIsoDateTimeFilter(field_name="window_start", lookup_expr="gte", label="Windows from")
    end = UtcIsoDateTimeFilter(field_name="window_end", lookup_expr="lte", label="Windows until")
    provisional = StrictBooleanFilter()
    attribute = django_filters.CharFilter(method="filter_attribute", max_length=200, label="Sensitive attribute")

    class Meta:
        model = MetricValue
        fields = ["metric", "feature", "granularity", "version", "start", "end", "provisional", "attribute"]

    def filter_attribute(self, queryset, name, value):
        """``fairness.*`` rows of one attribute: its summaries (feature ``sex``) and groups (``sex=F``)."""
        return queryset.filter(Q(feature=value) | Q(feature__startswith=f"{value}="))


class AlertFilterSet(django_filters.FilterSet):
    """Alerts: by model name, status, activity (open or acknowledged), severity, kind and
    opening time (a range, or the last ``days`` days)."""

    model = django_filters.CharFilter(field_name="model__name", max_length=100)
    status = django_filters.ChoiceFilter(choices=AlertStatus.choices)
    active = StrictBooleanFilter(method="filter_active", label="Open or acknowledged")
    severity = django_filters.ChoiceFilter(choices=AlertSeverity.choices)
    kind = django_filters.ChoiceFilter(choices=AlertKind.choices)
    opened_after = UtcIsoDateTimeFilter(field_name="opened_at", lookup_expr="gte")
    opened_before = UtcIsoDateTimeFilter(field_name="opened_at", lookup_expr="lt")
    days = DaysFilter(method="filter_days", min_value=1, max_value=365, label="Opened in the last N days")

    class Meta:
        model = Alert
        fields = ["model", "status", "active", "severity", "kind", "opened_after", "opened_before", "days"]

    def filter_active(self, queryset, name, value):
        if value:
            return queryset.exclude(status=AlertStatus.RESOLVED)
        return queryset.filter(status=AlertStatus.RESOLVED)

    def filter_days(self, queryset, name, value):
        return queryset.filter(opened_at__gte=timezone.now() - timedelta(days=value))


class NullsLastOrderingFilter(django_filters.OrderingFilter):
    """Ordering with empty values last either way, then by name (a stable order)."""

    def filter(self, qs, value):
        fields = [self.get_ordering_value(param) for param in value or () if param]
        if not fields:
            return qs
        order = [F(f[1:]).desc(nulls_last=True) if f.startswith("-") else F(f).asc(nulls_last=True) for f in fields]
        return qs.order_by(*order, "name")


class FleetFilterSet(django_filters.FilterSet):
    """The fleet overview: by name, health, risk tier, team and owner, with ordering.

    Works on ``monitoring.selectors.fleet_models`` (which annotates the ranks and counts that
    the ordering names). ``risk`` ranks as the inventory does (high risk highest: ``-risk``
    puts high-risk models first); ``health`` ranks critical first."""

    q = django_filters.CharFilter(field_name="name", lookup_expr="icontains", max_length=100, label="Search")
    health = django_filters.ChoiceFilter(choices=HealthState.choices, method="filter_health")
    risk_tier = django_filters.ChoiceFilter(choices=RiskTier.choices)
    team = SlugFilter(field_name="team__slug", max_length=100)
    owner = django_filters.CharFilter(field_name="owner__username", max_length=150)
    ordering = NullsLastOrderingFilter(
        fields=(
            ("health_rank", "health"),
            ("name", "name"),
            ("risk_rank", "risk"),
            ("open_alerts", "alerts"),
            ("last_window", "last_window"),
            ("owner__username", "owner"),
        ),
        label="Order by",
    )

    class Meta:
        model = RegisteredModel
        fields = ["q", "health", "risk_tier", "team", "owner"]

    def filter_health(self, queryset, name, value):
        if value == HealthState.NO_DATA:
            return queryset.filter(Q(health__isnull=True) | Q(health__status=HealthState.NO_DATA))
        return queryset.filter(health__status=value)
