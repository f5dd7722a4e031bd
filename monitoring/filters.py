"""FilterSets shared by the monitoring pages and the monitoring API (one definition per list)."""

from __future__ import annotations

import django_filters
from django.db.models import Q

from .choices import AlertKind, AlertSeverity, AlertStatus, Granularity
from .models import Alert, MetricValue


class MetricFilterSet(django_filters.FilterSet):
    """Metric series: by metric, feature ('' = dataset-level), granularity, version and window range."""

    metric = django_filters.CharFilter(field_name="metric", max_length=40)
    feature = django_filters.CharFilter(field_name="feature", max_length=200)
    granularity = django_filters.ChoiceFilter(choices=Granularity.choices)
    version = django_filters.NumberFilter(field_name="version__version", min_value=1)
    start = django_filters.IsoDateTimeFilter(field_name="window_start", lookup_expr="gte", label="Windows from")
    end = django_filters.IsoDateTimeFilter(field_name="window_end", lookup_expr="lte", label="Windows until")
    provisional = django_filters.BooleanFilter()
    attribute = django_filters.CharFilter(method="filter_attribute", max_length=200, label="Sensitive attribute")

    class Meta:
        model = MetricValue
        fields = ["metric", "feature", "granularity", "version", "start", "end", "provisional", "attribute"]

    def filter_attribute(self, queryset, name, value):
        """``fairness.*`` rows of one attribute: its summaries (feature ``sex``) and groups (``sex=F``)."""
        return queryset.filter(Q(feature=value) | Q(feature__startswith=f"{value}="))


class AlertFilterSet(django_filters.FilterSet):
    """Alerts: by model name, status, severity, kind and opening time."""

    model = django_filters.CharFilter(field_name="model__name", max_length=100)
    status = django_filters.ChoiceFilter(choices=AlertStatus.choices)
    severity = django_filters.ChoiceFilter(choices=AlertSeverity.choices)
    kind = django_filters.ChoiceFilter(choices=AlertKind.choices)
    opened_after = django_filters.IsoDateTimeFilter(field_name="opened_at", lookup_expr="gte")
    opened_before = django_filters.IsoDateTimeFilter(field_name="opened_at", lookup_expr="lt")

    class Meta:
        model = Alert
        fields = ["model", "status", "severity", "kind", "opened_after", "opened_before"]
