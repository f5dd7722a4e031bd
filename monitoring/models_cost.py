"""Cost: what running a model costs, for every kind of model.

A ``CostRecord`` is an amount of money over a period of days, in one currency, in one category.
Records arrive through the API (``GET/POST /api/v1/models/{name}/costs/``), from a CSV export of
the cloud bill, or are computed from an LLM application's request records (tokens × the price of
its provider model in force that day, source ``requests``). Amounts are ``Decimal``: no float
drift, and the currency is kept, never converted.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from monitoring.choices import CostCategory, CostSource
from registry.models import ModelVersion, RegisteredModel


class CostRecord(models.Model):
    """An amount spent on a model over ``period_start``..``period_end`` (both days included).

    ``external_id`` makes re-sending idempotent: a bill line id, or for computed inference
    cost ``requests:<version pk>:<day>``; unique per model and source when set."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="cost_records")
    version = models.ForeignKey(
        ModelVersion, on_delete=models.SET_NULL, null=True, blank=True, related_name="cost_records"
    )
    period_start = models.DateField()
    period_end = models.DateField()
    amount = models.DecimalField(max_digits=18, decimal_places=6)
    currency = models.CharField(max_length=3, help_text="ISO 4217 code, e.g. EUR or USD.")
    category = models.CharField(max_length=12, choices=CostCategory.choices)
    source = models.CharField(max_length=10, choices=CostSource.choices, default=CostSource.API)
    external_id = models.CharField(max_length=200, blank=True)
    details = models.JSONField(default=dict, blank=True, help_text="e.g. tokens and the price used.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["model", "-period_start", "pk"]
        indexes = [models.Index(fields=["model", "period_start"], name="cost_model_period")]
        constraints = [
            models.UniqueConstraint(
                fields=["model", "source", "external_id"],
                condition=~Q(external_id=""),
                name="cost_external_id_unique",
            ),
            models.CheckConstraint(condition=Q(period_end__gte=F("period_start")), name="cost_period_ordered"),
        ]

    def __str__(self) -> str:
        return f"{self.model_id} {self.category} {self.amount} {self.currency} {self.period_start}"


class Budget(models.Model):
    """A model's monthly cost budget in one currency (one per model). Month-to-date spend in that
    currency against ``monthly_amount`` alerts at ``warning_share`` and ``critical_share``, each
    level at most once per calendar month (UTC): ``alerted_month``/``alerted_level`` remember the
    highest level already alerted this month."""

    model = models.OneToOneField(RegisteredModel, on_delete=models.CASCADE, related_name="budget")
    monthly_amount = models.DecimalField(max_digits=18, decimal_places=2)
    currency = models.CharField(max_length=3, help_text="ISO 4217 code, e.g. EUR or USD.")
    warning_share = models.DecimalField(max_digits=5, decimal_places=3, default=Decimal("0.800"))
    critical_share = models.DecimalField(max_digits=5, decimal_places=3, default=Decimal("1.000"))
    alerted_month = models.DateField(null=True, blank=True, help_text="First day of the month last alerted.")
    alerted_level = models.CharField(max_length=10, blank=True, help_text="warning or critical (that month).")
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(monthly_amount__gt=0), name="budget_amount_positive"),
            models.CheckConstraint(
                condition=Q(warning_share__gt=0) & Q(critical_share__gte=F("warning_share")),
                name="budget_shares_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model_id} {self.monthly_amount} {self.currency}/month"
