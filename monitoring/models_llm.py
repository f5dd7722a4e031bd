"""LLM applications in production: request records and the versioned prices of provider models.

``LLMRequest`` is one request served by a version of an ``llm_app`` model: token counts,
latency, optional user feedback and the safety flags its guardrails raised. No prompt or
completion text is stored (ingestion refuses such fields). Unique per (version, request id):
a resent batch stores nothing twice.

``Price`` is the price of one provider model from ``effective_from`` on; a changed price is a
new row, so the past keeps the price it was computed with. Amounts are ``Decimal`` per one
million tokens, in the price's currency (never converted).
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from registry.models import ModelVersion

#: Feedback is a number in [-1, 1]: -1 thumbs down, +1 thumbs up, 0 neutral (a [0, 1] rating fits too).
FEEDBACK_MIN, FEEDBACK_MAX = -1.0, 1.0


class LLMRequest(models.Model):
    """One request served by an LLM application's version (never its text)."""

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="llm_requests")
    request_id = models.CharField(max_length=100)
    timestamp = models.DateTimeField()
    tokens_in = models.PositiveIntegerField()
    tokens_out = models.PositiveIntegerField()
    latency_ms = models.FloatField(validators=[MinValueValidator(0)])
    feedback = models.FloatField(null=True, blank=True, help_text="User feedback in [-1, 1]; null when none.")
    safety_flags = models.JSONField(default=list, blank=True, help_text="Short names of the guardrails that fired.")
    received_at = models.DateTimeField()

    class Meta:
        ordering = ["-timestamp"]
        indexes = [models.Index(fields=["version", "timestamp"], name="llm_request_version_ts")]
        constraints = [
            models.UniqueConstraint(fields=["version", "request_id"], name="unique_llm_request_per_version"),
        ]

    def __str__(self) -> str:
        return f"{self.version} {self.request_id}"


class Price(models.Model):
    """The price of a provider model (``provider``/``model`` as in ``LLMAppVersion.provider`` /
    ``model_id``) per one million tokens, in force from ``effective_from`` until the next row."""

    provider = models.CharField(max_length=100)
    model = models.CharField(max_length=200)
    input_per_million = models.DecimalField(max_digits=18, decimal_places=6, validators=[MinValueValidator(0)])
    output_per_million = models.DecimalField(max_digits=18, decimal_places=6, validators=[MinValueValidator(0)])
    currency = models.CharField(max_length=3, help_text="ISO 4217 code, e.g. USD or EUR.")
    effective_from = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["provider", "model", "-effective_from"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "model", "effective_from"], name="unique_price_per_start"),
        ]

    def __str__(self) -> str:
        return (
            f"{self.provider}/{self.model} from {self.effective_from:%Y-%m-%d}: "
            f"{self.input_per_million}/{self.output_per_million} {self.currency} per 1M tokens"
        )


class LLMThresholds(models.Model):
    """The thresholds of LLM applications, fields of ``MonitoringConfig`` (used by
    ``monitoring.services.llm_windows.llm_reasons``; changed with the other thresholds)."""

    llm_latency_p95_warning_ms = models.FloatField(
        default=2000, validators=[MinValueValidator(0)], help_text="LLM apps: p95 latency (ms) that raises a warning."
    )
    llm_latency_p95_critical_ms = models.FloatField(default=5000, validators=[MinValueValidator(0)])
    llm_safety_flag_rate_warning = models.FloatField(
        default=0.02,
        validators=[MinValueValidator(0), MaxValueValidator(1)],
        help_text="LLM apps: share of requests with a safety flag that raises a warning.",
    )
    llm_safety_flag_rate_critical = models.FloatField(
        default=0.05, validators=[MinValueValidator(0), MaxValueValidator(1)]
    )
    llm_feedback_floor = models.FloatField(
        default=0.0,
        validators=[MinValueValidator(-1), MaxValueValidator(1)],
        help_text="LLM apps: mean user feedback (in [-1, 1]) below this raises a warning.",
    )

    class Meta:
        abstract = True

    def llm_threshold_errors(self) -> dict[str, str]:
        errors = {}
        if self.llm_latency_p95_critical_ms < self.llm_latency_p95_warning_ms:
            errors["llm_latency_p95_critical_ms"] = "Must be at least the warning threshold."
        if self.llm_safety_flag_rate_critical < self.llm_safety_flag_rate_warning:
            errors["llm_safety_flag_rate_critical"] = "Must be at least the warning threshold."
        return errors
