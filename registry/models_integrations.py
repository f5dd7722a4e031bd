"""Integrations: outgoing webhooks and their deliveries, and the MLflow servers whose
registries the portal governs (model and version links, alias violations). Imported by
``registry.models``."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from mlops_portal import clock

from .choices import DeliveryStatus


class Webhook(models.Model):
    """An outgoing webhook, global (no model) or per model, signed with HMAC-SHA256."""

    name = models.CharField(max_length=100)
    url = models.URLField(max_length=500)
    secret = models.CharField(max_length=128)
    model = models.ForeignKey(
        "registry.RegisteredModel", on_delete=models.CASCADE, related_name="webhooks", null=True, blank=True
    )
    events = models.JSONField(default=list, help_text="WebhookEvent values; empty means all.")
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    created_at = models.DateTimeField(default=clock.now, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class WebhookDelivery(models.Model):
    """One webhook payload and its delivery attempts."""

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=40)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error_class = models.CharField(
        max_length=40, blank=True, help_text="Short error class (e.g. http_500, timeout); never the answer's body."
    )
    attempt_log = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=clock.now, editable=False)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.event} → {self.webhook} ({self.status})"


class MlflowServer(models.Model):
    """An MLflow tracking server whose registry the portal imports and governs."""

    class Status(models.TextChoices):
        NEVER = "never", "Never synced"
        OK = "ok", "OK"
        ERROR = "error", "Error"

    name = models.CharField(max_length=100, unique=True)
    tracking_url = models.URLField(max_length=300)
    token = models.CharField(max_length=300, blank=True, help_text="Bearer token, if the server needs one.")
    team = models.ForeignKey(
        "registry.Team", on_delete=models.PROTECT, related_name="mlflow_servers", help_text="Team of imported models."
    )
    default_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", help_text="Owner of imported models."
    )
    alias = models.CharField(max_length=100, default="champion", help_text="Alias that follows production.")
    search_filter = models.CharField(
        max_length=300, blank=True, help_text="MLflow search filter for the models to govern, e.g. name LIKE 'churn%'."
    )
    enabled = models.BooleanField(default=True)
    last_sync_at = models.DateTimeField(null=True, blank=True)
    last_status = models.CharField(max_length=10, choices=Status.choices, default=Status.NEVER)
    last_error = models.TextField(blank=True)
    last_summary = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class MlflowModelLink(models.Model):
    """Which MLflow registered model a portal model was imported from."""

    model = models.OneToOneField("registry.RegisteredModel", on_delete=models.CASCADE, related_name="mlflow_link")
    server = models.ForeignKey(MlflowServer, on_delete=models.CASCADE, related_name="model_links")
    mlflow_name = models.CharField(max_length=300)
    synced_description = models.TextField(blank=True)
    synced_tags = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["server", "mlflow_name"], name="unique_mlflow_model_per_server")]

    def __str__(self) -> str:
        return f"{self.server}:{self.mlflow_name}"


class MlflowVersionLink(models.Model):
    """An imported MLflow model version, and the state of the alias write-back for it."""

    class WriteBack(models.TextChoices):
        NONE = "none", "Nothing to write"
        PENDING = "pending", "Pending"
        DONE = "done", "Written"
        FAILED = "failed", "Failed (retrying)"

    version = models.OneToOneField("registry.ModelVersion", on_delete=models.CASCADE, related_name="mlflow_link")
    model_link = models.ForeignKey(MlflowModelLink, on_delete=models.CASCADE, related_name="versions")
    mlflow_version = models.CharField(max_length=20)
    writeback = models.CharField(max_length=10, choices=WriteBack.choices, default=WriteBack.NONE)
    writeback_attempts = models.PositiveIntegerField(default=0)
    writeback_error = models.TextField(blank=True)
    writeback_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["model_link", "mlflow_version"], name="unique_mlflow_version_per_model")
        ]

    def __str__(self) -> str:
        return f"{self.model_link} v{self.mlflow_version}"


class MlflowAliasViolation(models.Model):
    """The production alias was found on a version the portal did not approve."""

    model_link = models.ForeignKey(MlflowModelLink, on_delete=models.CASCADE, related_name="violations")
    alias = models.CharField(max_length=100)
    found_version = models.CharField(max_length=20, blank=True)
    expected_version = models.CharField(max_length=20, blank=True)
    detected_at = models.DateTimeField(default=clock.now, editable=False)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-detected_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["model_link"], condition=Q(resolved_at__isnull=True), name="one_open_violation_per_model"
            )
        ]

    def __str__(self) -> str:
        return f"{self.model_link}: @{self.alias} on v{self.found_version or '-'} (expected v{self.expected_version})"
