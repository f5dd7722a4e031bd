"""Forms of the promotion workflow, and the FilterSet shared by the review queue and the API."""

from __future__ import annotations

import django_filters
from django import forms

from registry.choices import PromotionStatus, RiskTier, Stage
from registry.models import PromotionRequest

TARGET_CHOICES = [(s.value, s.label) for s in (Stage.STAGING, Stage.PRODUCTION, Stage.ARCHIVED)]


class PromotionRequestFilterSet(django_filters.FilterSet):
    """Filters of the review queue page and of ``GET /api/v1/promotions/`` (one definition)."""

    status = django_filters.ChoiceFilter(choices=PromotionStatus.choices, empty_label="any status")
    model = django_filters.CharFilter(field_name="version__model__name", label="Model")
    tier = django_filters.ChoiceFilter(
        field_name="version__model__risk_tier", choices=RiskTier.choices, label="Risk tier", empty_label="any tier"
    )
    target_stage = django_filters.ChoiceFilter(choices=TARGET_CHOICES, label="Target", empty_label="any target")

    class Meta:
        model = PromotionRequest
        fields = ["status", "model", "tier", "target_stage"]


class PromotionRequestForm(forms.Form):
    target_stage = forms.ChoiceField(choices=TARGET_CHOICES, initial=Stage.PRODUCTION)
    justification = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        max_length=10_000,
        help_text="Why this version should move: evidence, expected impact, risks.",
    )


class ReviewForm(forms.Form):
    comment = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=10_000)
    override_reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        max_length=10_000,
        help_text="Admins only: approve despite red gates. Recorded in the audit log.",
    )
    # The production version the page compared the candidate with (0: none), sent back with the
    # approval so that it is refused if production has changed since (promotion_approve).
    production_seen = forms.IntegerField(required=False, min_value=0, max_value=2**31 - 1, widget=forms.HiddenInput)


class CancelForm(forms.Form):
    comment = forms.CharField(required=False, max_length=10_000)


class RollbackForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        max_length=10_000,
        help_text="Mandatory. The rollback is flagged for follow-up review.",
    )
