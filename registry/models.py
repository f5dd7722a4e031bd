"""Registry domain: teams, models, versions, promotions, audit log, tokens, webhooks."""

import functools
import zoneinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Q
from django.urls import reverse

from mlops_portal import clock

from .choices import Decision, ModelKind, PromotionStatus, RiskTier, Stage, TaskType, ToleranceMode
from .limits import CARD_TEXT, validate_model_name_free

# Names the tz database ships that are no place's time: "Factory" (a placeholder) and
# "localtime" (whatever zone the server happens to run in).
NOT_A_PLACE = {"Factory", "localtime"}


@functools.cache
def time_zone_names() -> list[str]:
    """The IANA time zones a model may operate in, sorted."""
    return sorted(zoneinfo.available_timezones() - NOT_A_PLACE)


def validate_time_zone(value: str) -> None:
    """An IANA time zone name (``Europe/Berlin``), or blank for the installation's default."""
    if not value:
        return
    try:
        ZoneInfo(value)
        if value in NOT_A_PLACE:
            raise ValueError(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(f"'{value}' is not an IANA time zone, e.g. Europe/Berlin or America/New_York.") from exc


MODEL_NAME_VALIDATOR = RegexValidator(
    r"^[a-z0-9][a-z0-9_-]{0,99}$",
    "Use lowercase letters, digits, '-' and '_' only, starting with a letter or digit (max 100).",
)


# The model card: the fields a model is described by, besides its name, owner, team and tags
# (forms, serializers, services, reports and syncs take the list from here).
MODEL_CARD_FIELDS = (
    "description",
    "risk_tier",
    "ai_act_category",
    "intended_use",
    "limitations",
    "retrain_cadence_days",
    "primary_metric",
    "primary_metric_higher_is_better",
    "time_zone",
)

# The card fields a complete model card has filled in (the promotion gate "model card complete").
MODEL_CARD_REQUIRED_FIELDS = ("description", "intended_use", "limitations")


class Team(models.Model):
    """A group of people who own models together; members see their team's models."""

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="teams", blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Tag(models.Model):
    """A free label on models (``fraud``, ``pii``, ``customer-facing``)."""

    name = models.SlugField(max_length=50, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class RegisteredModelQuerySet(models.QuerySet):
    """The one permission filter for models (NetBox's ``restrict()``): every read of models, or of
    rows that belong to a model, goes through ``visible_to``."""

    def visible_to(self, user) -> "RegisteredModelQuerySet":
        """Models ``user`` may see: all for admins, reviewers and auditors; else owned or team's.

        Team membership is a subquery rather than a join, so the rows never need ``distinct()``."""
        from .rules import sees_all_models

        if not getattr(user, "is_authenticated", False):
            return self.none()
        if sees_all_models(user):
            return self.all()
        return self.filter(Q(owner=user) | Q(team__in=Team.objects.filter(members=user).values("pk")))


class RegisteredModel(models.Model):
    """A model in the inventory. Its card is these fields plus its versions' evidence."""

    name = models.CharField(max_length=100, unique=True, validators=[MODEL_NAME_VALIDATOR, validate_model_name_free])
    kind = models.CharField(
        max_length=10,
        choices=ModelKind.choices,
        default=ModelKind.ML,
        help_text="A classic ML model or an LLM application (prompts, hosted model, index, tools, safety).",
    )
    description = models.TextField(**CARD_TEXT)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_models")
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="models")
    risk_tier = models.CharField(max_length=10, choices=RiskTier.choices, default=RiskTier.MEDIUM)
    ai_act_category = models.CharField(
        "EU AI Act category note",
        max_length=200,
        blank=True,
        help_text="e.g. 'Annex III 5(b): creditworthiness — high-risk'.",
    )
    intended_use = models.TextField(**CARD_TEXT)
    limitations = models.TextField(**CARD_TEXT)
    retrain_cadence_days = models.PositiveIntegerField(
        "retrain cadence (days)", null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(3650)]
    )
    tags = models.ManyToManyField(Tag, related_name="models", blank=True)
    primary_metric = models.CharField(
        max_length=50, blank=True, help_text="Offline metric compared against production, e.g. roc_auc or rmse."
    )
    primary_metric_higher_is_better = models.BooleanField(default=True)
    time_zone = models.CharField(
        max_length=64,
        blank=True,
        validators=[validate_time_zone],
        help_text="IANA time zone where the model operates (e.g. Europe/Berlin): incident deadlines are "
        "computed on its calendar. Blank: the installation's default.",
    )
    monitoring_configured_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    created_at = models.DateTimeField(default=clock.now, editable=False)
    updated_at = clock.UpdatedAtField()

    objects = RegisteredModelQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        permissions = [("view_all_models", "Can see every model")]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("registry:model_detail", args=[self.name])

    @property
    def is_llm_app(self) -> bool:
        return self.kind == ModelKind.LLM_APP

    @property
    def model_card_missing(self) -> list[str]:
        """The labels of the required card fields left blank (``description``, ``intended use``...).

        The one definition of a complete card: the promotion gate, the scorecard and the
        banner on the model's page all read it."""
        return [
            self._meta.get_field(field).verbose_name
            for field in MODEL_CARD_REQUIRED_FIELDS
            if not (getattr(self, field) or "").strip()
        ]

    @property
    def model_card_complete(self) -> bool:
        return not self.model_card_missing

    @property
    def setup_missing(self) -> list[str]:
        """What the owner still has to fill in before a promotion can pass its gates: the card's
        blank required fields, and the primary metric when none is set."""
        return self.model_card_missing + ([] if self.primary_metric else ["primary metric"])


class ModelVersion(models.Model):
    """One trained artifact of a model, with its lineage, offline evidence and stage."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.PROTECT, related_name="versions")
    version = models.PositiveIntegerField()
    stage = models.CharField(max_length=12, choices=Stage.choices, default=Stage.NONE)
    description = models.TextField(**CARD_TEXT)
    artifact_uri = models.CharField(max_length=500, blank=True)
    source_commit = models.CharField(max_length=64, blank=True)
    training_run_id = models.CharField(max_length=100, blank=True)
    training_data_ref = models.CharField(max_length=500, blank=True)
    training_data_hash = models.CharField(max_length=128, blank=True)
    metrics = models.JSONField(default=dict, blank=True, help_text="Offline evaluation metrics, name → number.")
    feature_schema = models.JSONField(default=list, blank=True, help_text='[{"name": "age", "type": "numeric"}, …]')
    task_type = models.CharField(max_length=12, choices=TaskType.choices, default=TaskType.BINARY)
    classes = models.JSONField(default=list, blank=True, help_text="Declared class labels (registry/classes.py).")
    positive_class = models.CharField(max_length=100, blank=True, help_text="A binary version's positive class.")
    reference_profile_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    created_at = models.DateTimeField(default=clock.now, editable=False)
    stage_changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["model", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["model", "version"], name="unique_version_per_model"),
            models.UniqueConstraint(
                fields=["model"],
                condition=Q(stage=Stage.PRODUCTION),
                name="one_production_version_per_model",
            ),
            models.CheckConstraint(condition=Q(version__gte=1), name="version_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.model.name} v{self.version}"

    def get_absolute_url(self) -> str:
        return reverse("registry:version_detail", args=[self.model.name, self.version])

    @property
    def has_lineage(self) -> bool:
        if self.model.is_llm_app:  # an LLM application's parts (content-hashed) are its lineage
            return True
        return bool(self.source_commit and self.training_run_id and self.training_data_ref)

    @property
    def feature_names(self) -> list[str]:
        return [f["name"] for f in self.feature_schema]


class PromotionPolicy(models.Model):
    """What a promotion needs for models of one risk tier: approvals and gates."""

    risk_tier = models.CharField(max_length=10, choices=RiskTier.choices, unique=True)
    approvals_required = models.PositiveSmallIntegerField(default=1, validators=[MinValueValidator(1)])
    approver_group = models.CharField(max_length=80, default="reviewer", help_text="Django group allowed to approve.")
    require_model_card = models.BooleanField(default=True)
    require_lineage = models.BooleanField(default=True)
    require_metric_within_tolerance = models.BooleanField(default=True)
    metric_tolerance = models.FloatField(
        default=0.01, validators=[MinValueValidator(0)], help_text="How much worse than production, read per the mode."
    )
    metric_tolerance_mode = models.CharField(
        max_length=10, choices=ToleranceMode.choices, default=ToleranceMode.ABSOLUTE
    )
    require_reference_data = models.BooleanField(default=False)
    require_monitoring = models.BooleanField(default=False)
    # fairness gate (registry/gates_fairness.py): on the candidate's latest fairness evaluation run
    require_fairness = models.BooleanField(default=False, help_text="Fairness within thresholds (high risk: on).")
    fairness_min_disparate_impact = models.FloatField(default=0.8, validators=[MinValueValidator(0)])
    fairness_max_equalized_odds_difference = models.FloatField(default=0.1, validators=[MinValueValidator(0)])
    # live-evidence gate (registry/gates_live.py): challenger not worse than champion on live traffic
    require_live_not_worse = models.BooleanField(default=False, help_text="Challenger not worse on live traffic.")
    live_tolerance = models.FloatField(default=0.01, validators=[MinValueValidator(0)])
    live_min_labelled_pairs = models.PositiveIntegerField(default=500)
    # LLM-application gates (registry/gates_llm.py): safety pass rates and paired quality vs production
    require_llm_safety = models.BooleanField(default=True, help_text="LLM applications: safety pass rates.")
    llm_safety_min_pass_rate = models.FloatField(
        default=0.99, validators=[MinValueValidator(0), MaxValueValidator(1)], help_text="Overall safety pass rate."
    )
    llm_safety_category_floor = models.FloatField(
        default=0.97, validators=[MinValueValidator(0), MaxValueValidator(1)], help_text="Lowest rate of any category."
    )
    require_llm_quality = models.BooleanField(
        default=True, help_text="LLM applications: correctness not worse than production (paired)."
    )
    llm_quality_tolerance = models.FloatField(
        default=0.02, validators=[MinValueValidator(0), MaxValueValidator(1)], help_text="Correctness, absolute."
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    updated_at = clock.UpdatedAtField()

    class Meta:
        verbose_name_plural = "promotion policies"
        ordering = ["risk_tier"]

    def __str__(self) -> str:
        return f"Policy for {self.risk_tier} risk"

    def clean(self) -> None:
        if self.metric_tolerance_mode == ToleranceMode.RELATIVE and (self.metric_tolerance or 0) > 1:
            raise ValidationError(
                {"metric_tolerance": "A relative tolerance is a fraction of production's value: at most 1 (100 %)."}
            )


class PromotionRequest(models.Model):
    """A request to move a version to a stage, decided by reviewers under a policy snapshot."""

    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="promotion_requests")
    target_stage = models.CharField(max_length=12, choices=Stage.choices)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    justification = models.TextField()
    status = models.CharField(max_length=10, choices=PromotionStatus.choices, default=PromotionStatus.PENDING)
    policy_snapshot = models.JSONField(default=dict, blank=True)
    gate_results = models.JSONField(default=list, blank=True, help_text="Gates as evaluated when decided.")
    override_reason = models.TextField(blank=True)
    overridden_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    status_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(default=clock.now, editable=False)
    decided_at = models.DateTimeField(null=True, blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    live_evidence = models.JSONField(default=dict, blank=True, help_text="Paired live evidence, written by the worker.")
    live_evidence_at = models.DateTimeField(null=True, blank=True)
    # the evidence it was decided on, recorded when it leaves pending (registry/evidence_runs.py)
    evaluation_run = models.ForeignKey(
        "registry.EvaluationRun", on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    decided_metrics = models.JSONField(null=True, blank=True, help_text="The candidate's metrics when decided.")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["version", "target_stage"],
                condition=Q(status=PromotionStatus.PENDING),
                name="one_pending_request_per_version_and_stage",
            ),
            models.CheckConstraint(
                condition=Q(target_stage__in=[Stage.STAGING, Stage.PRODUCTION, Stage.ARCHIVED]),
                name="promotion_target_stage_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.version} → {self.target_stage}"

    def get_absolute_url(self) -> str:
        return reverse("registry:promotion_detail", args=[self.pk])


class Review(models.Model):
    """One reviewer's decision on a promotion request. Never by the requester."""

    request = models.ForeignKey(PromotionRequest, on_delete=models.PROTECT, related_name="reviews")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reviews")
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Copy of the request's requester, so the database can refuse self-review.",
    )
    decision = models.CharField(max_length=10, choices=Decision.choices)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(default=clock.now, editable=False)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(fields=["request", "reviewer"], name="one_review_per_reviewer"),
            models.CheckConstraint(condition=~Q(reviewer=F("requester")), name="reviewer_is_not_requester"),
        ]

    def __str__(self) -> str:
        return f"{self.reviewer} {self.decision} #{self.request_id}"


class StageTransition(models.Model):
    """Every stage change of a version: the model's timeline and the source for 'as of'."""

    class Kind(models.TextChoices):
        PROMOTION = "promotion", "Promotion"
        ROLLBACK = "rollback", "Rollback"
        ARCHIVED_BY_PROMOTION = "superseded", "Superseded by a newer version"
        SYNC = "sync", "Registry sync"

    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="transitions")
    model = models.ForeignKey(RegisteredModel, on_delete=models.PROTECT, related_name="transitions")
    from_stage = models.CharField(max_length=12, choices=Stage.choices)
    to_stage = models.CharField(max_length=12, choices=Stage.choices)
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.PROMOTION)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        help_text="Empty for a registry sync's adoption, which no person made.",
    )
    reason = models.TextField(blank=True)
    promotion_request = models.ForeignKey(
        PromotionRequest, on_delete=models.PROTECT, related_name="transitions", null=True, blank=True
    )
    needs_follow_up = models.BooleanField(default=False, help_text="Rollbacks are flagged for follow-up review.")
    created_at = models.DateTimeField(default=clock.now, editable=False, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["model", "to_stage", "created_at"])]

    def __str__(self) -> str:
        return f"{self.version}: {self.from_stage} → {self.to_stage}"


class ApiToken(models.Model):
    """A personal access token. Only its SHA-256 is stored; the secret is shown once."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, db_index=True)
    token_hash = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)  # mlops_portal.net.client_ip
    created_at = models.DateTimeField(default=clock.now, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class InventoryRevision(models.Model):
    """Counters of the committed changes that inventory pages and API details show (row 1:
    models, versions, tags, teams and their members, owners' names, health status; row 2:
    health details). Rendered HTML and details are cached under the current values, so a bump
    makes every cached copy stale at once. Bumped by ``registry.cache`` after commit, never
    inside a request's transaction."""

    value = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"inventory revision {self.value}"


from .models_access import ExternalIdentity, GroupMapping, Heartbeat, ServiceAccount  # noqa: E402, F401
from .models_audit import AuditEvent  # noqa: E402, F401
from .models_evaluation import EvaluationRun  # noqa: E402,F401
from .models_integrations import (  # noqa: E402, F401
    MlflowAliasViolation,
    MlflowModelLink,
    MlflowServer,
    MlflowVersionLink,
    Webhook,
    WebhookDelivery,
)
from .models_llm import LLMAppVersion, llm_content_hash  # noqa: E402, F401
