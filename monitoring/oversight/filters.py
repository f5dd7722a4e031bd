"""The one FilterSet of the incidents list, shared by the page and the API."""

from __future__ import annotations

import django_filters
from django.db.models import Q

from mlops_portal import clock
from mlops_portal.filters import StrictBooleanFilter, UtcIsoDateTimeFilter
from monitoring.choices import IncidentSeverity, IncidentStatus

from .models import Incident


class IncidentFilterSet(django_filters.FilterSet):
    """Incidents: by model name, severity, status, open or overdue, and when the owner became aware."""

    model = django_filters.CharFilter(field_name="model__name", max_length=100)
    severity = django_filters.ChoiceFilter(choices=IncidentSeverity.choices)
    status = django_filters.ChoiceFilter(choices=IncidentStatus.choices)
    active = StrictBooleanFilter(method="filter_active", label="Not closed")
    overdue = StrictBooleanFilter(method="filter_overdue", label="Deadline passed without a report")
    aware_after = UtcIsoDateTimeFilter(field_name="aware_at", lookup_expr="gte")
    aware_before = UtcIsoDateTimeFilter(field_name="aware_at", lookup_expr="lt")

    class Meta:
        model = Incident
        fields = ["model", "severity", "status", "active", "overdue", "aware_after", "aware_before"]

    def filter_active(self, queryset, name, value):
        if value is None:
            return queryset
        closed = Q(status=IncidentStatus.CLOSED)
        return queryset.exclude(closed) if value else queryset.filter(closed)

    def filter_overdue(self, queryset, name, value):
        if value is None:
            return queryset
        late = Q(deadline__lt=clock.now(), initial_report_at__isnull=True, final_report_at__isnull=True) & ~Q(
            status=IncidentStatus.CLOSED
        )
        return queryset.filter(late) if value else queryset.exclude(late)
