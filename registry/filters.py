"""FilterSets shared by the HTML pages and the API (one definition per list)."""

from __future__ import annotations

import django_filters
from django.db.models import Exists, OuterRef, Q

from registry.choices import RiskTier, Stage
from registry.models import ModelVersion, RegisteredModel

_ModelTags = RegisteredModel.tags.through

# Health is computed by the monitoring app into its ``HealthStatus`` rows (reverse accessor
# ``health``); a model without one has no data yet. Named here so registry never imports monitoring.
HEALTH_CHOICES = [("ok", "OK"), ("warning", "Warning"), ("critical", "Critical"), ("no_data", "No data")]


class ModelFilterSet(django_filters.FilterSet):
    """Inventory filters: free text, team, owner, stage, risk tier, tag; ordering by name/updated/risk."""

    q = django_filters.CharFilter(method="filter_q", label="Search", max_length=200)
    team = django_filters.CharFilter(field_name="team__slug", label="Team", max_length=100)
    owner = django_filters.CharFilter(field_name="owner__username", label="Owner", max_length=150)
    stage = django_filters.ChoiceFilter(choices=Stage.choices, method="filter_stage", label="Has a version in stage")
    risk_tier = django_filters.ChoiceFilter(choices=RiskTier.choices, label="Risk tier")
    tag = django_filters.CharFilter(method="filter_tag", label="Tag", max_length=50)
    health = django_filters.ChoiceFilter(choices=HEALTH_CHOICES, method="filter_health", label="Health")
    ordering = django_filters.OrderingFilter(
        fields=(("name", "name"), ("updated_at", "updated"), ("risk_rank", "risk")),
        label="Order by",
    )

    class Meta:
        model = RegisteredModel
        fields = ["q", "team", "owner", "stage", "risk_tier", "tag"]

    def filter_q(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        tagged = _ModelTags.objects.filter(tag__name__icontains=value).values("registeredmodel_id")
        return queryset.filter(
            Q(name__icontains=value)
            | Q(description__icontains=value)
            | Q(owner__username__icontains=value)
            | Q(pk__in=tagged)
        )

    def filter_stage(self, queryset, name, value):
        return queryset.filter(Exists(ModelVersion.objects.filter(model=OuterRef("pk"), stage=value)))

    def filter_health(self, queryset, name, value):
        if value == "no_data":
            return queryset.filter(Q(health__isnull=True) | Q(health__status="no_data"))
        return queryset.filter(health__status=value)

    def filter_tag(self, queryset, name, value):
        tagged = _ModelTags.objects.filter(tag__name=value.strip()).values("registeredmodel_id")
        return queryset.filter(pk__in=tagged)


class VersionFilterSet(django_filters.FilterSet):
    """Versions of one model, by stage and task type."""

    stage = django_filters.ChoiceFilter(choices=Stage.choices)

    class Meta:
        model = ModelVersion
        fields = ["stage", "task_type"]
