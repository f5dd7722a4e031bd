"""Enumerations of the registry domain."""

from django.db import models


class RiskTier(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"


# A high-risk model keeps raw data at least this long (EU AI Act Art. 19(1), 26(6)): monitoring's
# retention policy and ``model_update`` (a model becoming high risk) enforce it.
HIGH_RISK_FLOOR_DAYS = 183


class ModelKind(models.TextChoices):
    ML = "ml", "ML model"
    LLM_APP = "llm_app", "LLM application"


class Stage(models.TextChoices):
    NONE = "none", "Registered"  # registered, not yet staged
    STAGING = "staging", "Staging"
    PRODUCTION = "production", "Production"
    ARCHIVED = "archived", "Archived"


class TaskType(models.TextChoices):
    BINARY = "binary", "Binary classification"
    MULTICLASS = "multiclass", "Multiclass classification"
    REGRESSION = "regression", "Regression"


class ToleranceMode(models.TextChoices):
    """How a promotion policy's metric tolerance reads (``registry.gates_metric``): in the metric's
    units (0.01 of ROC AUC), or as a fraction of production's value (0.02 = up to 2 % of |production|
    worse; a production value of 0 then allows no worsening)."""

    ABSOLUTE = "absolute", "Absolute (in the metric's units)"
    RELATIVE = "relative", "Relative (a fraction of production's value)"


class FeatureType(models.TextChoices):
    NUMERIC = "numeric", "Numeric"
    CATEGORICAL = "categorical", "Categorical"


RESERVED_COLUMNS = ("prediction_id", "timestamp", "prediction", "score", "features", "subject_id")
"""The columns of an ingested prediction row itself (CSV headers, JSON keys): never a feature's name."""


class PromotionStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    CANCELLED = "cancelled", "Cancelled"
    APPLIED = "applied", "Applied"


class Decision(models.TextChoices):
    APPROVE = "approve", "Approve"
    REJECT = "reject", "Reject"


class AuditSource(models.TextChoices):
    UI = "ui", "UI"
    API = "api", "API"
    WORKER = "worker", "Worker"
    CLI = "cli", "CLI"


class TokenScope(models.TextChoices):
    MODELS_READ = "models:read", "Read models and versions"
    MODELS_WRITE = "models:write", "Register and edit models and versions"
    PROMOTIONS_REQUEST = "promotions:request", "Request promotions and roll back"
    PROMOTIONS_REVIEW = "promotions:review", "Approve and reject promotions"
    MONITORING_READ = "monitoring:read", "Read metrics, health and alerts"
    MONITORING_WRITE = "monitoring:write", "Send reference data, predictions and labels"
    AUDIT_READ = "audit:read", "Read and export the audit log"
    STEP_UP = "step-up:sensitive", "Sensitive actions: approve high-risk promotions, override gates, change policies"
    INCIDENTS_WRITE = "incidents:write", "Open incidents and record their response"
    REVIEWS_WRITE = "reviews:write", "Open, attest and validate reviews; record and answer findings"
    PRIVACY_WRITE = "privacy:write", "File erasure requests and change retention"


class WebhookEvent(models.TextChoices):
    PROMOTION = "promotion", "Promotion requested or decided"
    STAGE = "stage", "Stage changed (including rollback)"
    ALERT = "alert", "Alert opened, acknowledged or resolved"
    RETRAIN = "retrain", "Retrain trigger"
    INCIDENT = "incident", "Incident opened, reported, resolved, closed or reminded"
    REVIEW = "review", "Periodic review opened, attested or validated"
    FINDING = "finding", "Finding recorded, remediated, closed or escalated"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


class EvaluationKind(models.TextChoices):
    FAIRNESS = "fairness", "Fairness (groups of sensitive attributes)"
    LLM = "llm", "LLM application (cases of an evaluation set)"


class EvaluationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
