"""Retention of raw prediction data and erasure by data subject (GDPR Art. 5(1)(e), 17, 30;
EU AI Act Art. 19 and 26(6)).

Imported at the end of ``monitoring/models.py``. Changed only through
``monitoring.services.retention`` and ``monitoring.services.erasure``, which audit each change.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import (
    MaxLengthValidator,
    MaxValueValidator,
    MinValueValidator,
    ProhibitNullCharactersValidator,
)
from django.db import models

from mlops_portal import clock
from registry.choices import HIGH_RISK_FLOOR_DAYS, RiskTier
from registry.models import RegisteredModel

MAX_RAW_DAYS = 3650
MAX_ART30_LENGTH = 2000
# GDPR Art. 30(1)(c), (d), (e): free text the privacy officer records per model; empty is "not recorded"
ART30_FIELDS = ["data_subject_categories", "recipients", "third_country_transfers"]


def _art30_text(help_text: str) -> models.TextField:
    return models.TextField(
        blank=True,
        max_length=MAX_ART30_LENGTH,
        validators=[MaxLengthValidator(MAX_ART30_LENGTH), ProhibitNullCharactersValidator()],
        help_text=help_text,
    )


class RetentionPolicy(models.Model):
    """How long a model's raw predictions and labels are kept, and whether a legal hold keeps
    them (and blocks erasure) regardless. Aggregates (bin counts, metric values) are not raw
    data and stay as long as the model is in the inventory. It also holds what the records of
    processing need from the privacy officer beside the retention (GDPR Art. 30(1)(c)-(e)): the
    categories of data subjects, the recipients and the transfers to third countries; "none" is
    an answer, empty is "not recorded". ``raw_days`` NULL follows the risk tier's default (as it
    stands: a later change of the tier or of ``RETENTION_DEFAULT_DAYS`` moves it); a number is
    what a privacy officer or an admin chose."""

    model = models.OneToOneField(RegisteredModel, on_delete=models.CASCADE, related_name="retention_policy")
    raw_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_RAW_DAYS)],
        help_text="Days raw predictions and labels are kept; empty: the risk tier's default (RETENTION_DEFAULT_DAYS).",
    )
    legal_hold = models.BooleanField(default=False, help_text="Blocks purge and erasure while set.")
    legal_hold_reason = models.TextField(blank=True, max_length=2000)
    legal_hold_article = models.CharField(
        max_length=200, blank=True, help_text='The legal basis cited, e.g. "GDPR Art. 17(3)(e)".'
    )
    data_subject_categories = _art30_text('Whose data the model processes, e.g. "customers", "loan applicants".')
    recipients = _art30_text("Who the data or the model's outputs are disclosed to (teams, processors, authorities).")
    third_country_transfers = _art30_text(
        'Transfers outside the EEA or to international organisations, with their safeguards; "none" if none.'
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    updated_at = clock.UpdatedAtField()

    class Meta:
        ordering = ["model__name"]
        verbose_name_plural = "retention policies"

    def __str__(self) -> str:
        hold = ", legal hold" if self.legal_hold else ""
        days = "the risk tier's default" if self.raw_days is None else f"{self.raw_days} days"
        return f"Retention of {self.model}: {days}{hold}"

    def clean(self) -> None:
        errors = {}
        if self.model.risk_tier == RiskTier.HIGH and self.raw_days is not None and self.raw_days < HIGH_RISK_FLOOR_DAYS:
            errors["raw_days"] = (
                f"High-risk models keep raw data at least {HIGH_RISK_FLOOR_DAYS} days "
                "(the floor of EU AI Act Art. 19(1) and 26(6))."
            )
        if self.legal_hold and not self.legal_hold_reason.strip():
            errors["legal_hold_reason"] = "A legal hold needs a reason."
        if self.legal_hold and not self.legal_hold_article.strip():
            errors["legal_hold_article"] = "A legal hold cites the article it rests on."
        if errors:
            raise ValidationError(errors)


class ErasureStatus(models.TextChoices):
    COMPLETED = "completed", "Completed"
    HELD = "held", "Partly held"


class ErasureRequest(models.Model):
    """A data subject's erasure request (GDPR Art. 17). Only the subject id's HMAC is stored;
    its ``outcomes`` give per model the rows removed, or "held" with the hold's reason and article."""

    subject_hash = models.CharField(max_length=64, db_index=True, help_text="HMAC-SHA256 under SUBJECT_KEY.")
    status = models.CharField(max_length=10, choices=ErasureStatus.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    requested_at = models.DateTimeField()
    due_at = models.DateTimeField(help_text="The deadline to answer (ERASURE_DEADLINE_DAYS).")
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]

    def __str__(self) -> str:
        return f"Erasure request #{self.pk} ({self.status})"


class ErasureOutcomeStatus(models.TextChoices):
    ERASED = "erased", "Erased"
    HELD = "held", "Held"


class ErasureOutcome(models.Model):
    """What an erasure request did in one model that held the subject's rows: the predictions
    and labels found, and whether they were erased or kept under the model's legal hold (with the
    hold's reason and article as they stood). A row per model, so a model's compliance report
    lists the erasures that reached it."""

    request = models.ForeignKey(ErasureRequest, on_delete=models.CASCADE, related_name="outcomes")
    model = models.ForeignKey(RegisteredModel, on_delete=models.PROTECT, related_name="erasure_outcomes")
    predictions = models.PositiveBigIntegerField()
    labels = models.PositiveBigIntegerField()
    status = models.CharField(max_length=10, choices=ErasureOutcomeStatus.choices)
    hold_reason = models.TextField(blank=True, max_length=2000)
    hold_article = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["request", "model__name"]
        constraints = [models.UniqueConstraint(fields=["request", "model"], name="unique_erasure_outcome_per_model")]

    def __str__(self) -> str:
        return f"Erasure request #{self.request_id} in {self.model_id}: {self.status}"


class RawDigest(models.Model):
    """Per (version, UTC day) of raw predictions: the rows stored and the additive digest of
    their prediction ids (``monitoring.services.raw_digests``), kept up to date by ingestion,
    erasure and purge, so a purge receipt for a whole day costs one row read, not a scan."""

    version = models.ForeignKey("registry.ModelVersion", on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    rows = models.BigIntegerField(default=0)
    digest = models.CharField(max_length=64, help_text="Sum mod 2^256 of SHA-256 of each id (hex).")

    class Meta:
        ordering = ["version", "day"]
        constraints = [models.UniqueConstraint(fields=["version", "day"], name="unique_raw_digest_per_day")]

    def __str__(self) -> str:
        return f"{self.version_id} {self.day}: {self.rows} rows"


class PredictionKeySweep(models.Model):
    """A UTC day of predictions whose partition the purge dropped while the day's keys (the
    PostgreSQL table ``monitoring_predictionkey`` that keeps a prediction id once per version)
    are still to be deleted: written in the purge's transaction, removed by the keys sweep
    (``monitoring.services.prediction_keys``) once the day has no key left. Until then the
    day's ids stay refused, as they were while their rows were stored."""

    day = models.DateField(unique=True)
    dropped_at = models.DateTimeField()

    class Meta:
        ordering = ["day"]

    def __str__(self) -> str:
        return f"Prediction keys of {self.day} to delete"
