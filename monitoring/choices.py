"""Enumerations of the monitoring domain."""

from django.db import models


class Granularity(models.TextChoices):
    HOURLY = "hourly", "Hourly"
    DAILY = "daily", "Daily"


class DriftRule(models.TextChoices):
    """Which statistic decides that a feature has drifted (see monitoring.stats)."""

    PSI = "psi", "Population stability index ≥ threshold"
    STAT_TEST = "stat_test", "KS (numeric) / chi-square (categorical) p-value < threshold"
    JENSEN_SHANNON = "jensen_shannon", "Jensen–Shannon distance ≥ threshold"
    WASSERSTEIN = "wasserstein", "Normalised Wasserstein distance ≥ threshold"


class ProfileStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class HealthState(models.TextChoices):
    OK = "ok", "OK"
    WARNING = "warning", "Warning"
    CRITICAL = "critical", "Critical"
    NO_DATA = "no_data", "No data"


class AlertKind(models.TextChoices):
    DRIFT = "drift", "Data drift"
    PREDICTION_DRIFT = "prediction_drift", "Prediction drift"
    DATA_QUALITY = "data_quality", "Data quality"
    PERFORMANCE = "performance", "Performance"
    CADENCE = "cadence", "Retrain cadence overdue"
    GOVERNANCE = "governance", "Unapproved production change"
    FAIRNESS = "fairness", "Fairness"
    LLM_LATENCY = "llm_latency", "LLM latency"
    LLM_SAFETY = "llm_safety", "LLM safety flags"
    LLM_FEEDBACK = "llm_feedback", "LLM user feedback"
    BUDGET = "budget", "Monthly cost budget"


class AlertSeverity(models.TextChoices):
    WARNING = "warning", "Warning"
    CRITICAL = "critical", "Critical"


class AlertStatus(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"


class RetrainStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    NO_URL = "no_url", "No pipeline URL configured"


class Metric(models.TextChoices):
    """Names stored in ``MetricValue.metric``. Feature-level unless marked dataset-level ('' feature)."""

    # drift, per feature (and per prediction column, feature PREDICTION_FEATURE)
    PSI = "psi", "PSI"
    JS_DISTANCE = "js_distance", "Jensen–Shannon distance"
    KS_STATISTIC = "ks_statistic", "Kolmogorov–Smirnov statistic"
    KS_P_VALUE = "ks_p_value", "Kolmogorov–Smirnov p-value"
    CHI2_P_VALUE = "chi2_p_value", "Chi-square p-value"
    WASSERSTEIN = "wasserstein", "Wasserstein distance / reference std"
    DRIFT_DETECTED = "drift_detected", "Drift detected (0/1)"
    # data quality, per feature
    MISSING_SHARE = "missing_share", "Missing share"
    OUT_OF_RANGE_SHARE = "out_of_range_share", "Out-of-range share"
    UNSEEN_SHARE = "unseen_share", "Unseen categories share"
    # dataset-level
    VOLUME = "volume", "Rows"
    DRIFT_SHARE = "drift_share", "Share of drifted features"
    DRIFTED_FEATURES = "drifted_features", "Drifted features"
    LABEL_COVERAGE = "label_coverage", "Label coverage"
    LABELLED = "labelled", "Labelled rows"
    ACCURACY = "accuracy", "Accuracy"
    PRECISION = "precision", "Precision"
    RECALL = "recall", "Recall"
    F1 = "f1", "F1"
    ROC_AUC = "roc_auc", "ROC AUC"
    LOG_LOSS = "log_loss", "Log loss"
    MAE = "mae", "MAE"
    RMSE = "rmse", "RMSE"
    R2 = "r2", "R²"


#: ``MetricValue.feature`` for the prediction column (prediction drift); '' is dataset-level.
PREDICTION_FEATURE = "__prediction__"
SCORE_FEATURE = "__score__"


# Cost (``monitoring.models_cost``)


class CostCategory(models.TextChoices):
    SERVING = "serving", "Serving"
    TRAINING = "training", "Training"
    STORAGE = "storage", "Storage"
    INFERENCE = "inference", "LLM inference (tokens)"
    OTHER = "other", "Other"


class CostSource(models.TextChoices):
    API = "api", "API"
    CSV = "csv", "Cloud bill (CSV)"
    REQUESTS = "requests", "Computed from request records"


# Incidents, reviews and findings (``monitoring.oversight``)


class IncidentSeverity(models.TextChoices):
    """EU AI Act Art. 73 classes, each with its legal reporting clock (see ``deadlines``)."""

    SERIOUS = "serious", "Serious incident (Art. 73(2): 15 days)"
    WIDESPREAD = "widespread", "Widespread infringement or critical infrastructure (Art. 73(3): 2 days)"
    DEATH = "death", "Death of a person (Art. 73(4): 10 days)"
    MALFUNCTION = "malfunction", "Malfunction, not serious (no legal deadline)"


class IncidentStatus(models.TextChoices):
    OPEN = "open", "Open"
    REPORTED = "reported", "Initial report filed"
    RESOLVED = "resolved", "Root cause found"
    CLOSED = "closed", "Closed"


class IncidentEventKind(models.TextChoices):
    OPENED = "opened", "Opened"
    NOTE = "note", "Investigation note"
    SUSPENDED = "suspended", "Use suspended"
    REPORT_INITIAL = "report_initial", "Initial report"
    REPORT_FINAL = "report_final", "Final report"
    RESOLVED = "resolved", "Root cause"
    CLOSED = "closed", "Closed"
    REMINDER = "reminder", "Deadline reminder"


class SuspendMode(models.TextChoices):
    ROLLBACK = "rollback", "Roll back to the previous approved version"
    RETIRE = "retire", "Retire: no production version"


class ReportKind(models.TextChoices):
    INITIAL = "initial", "Initial (may be incomplete)"
    FINAL = "final", "Final (complete)"


class ReviewStatus(models.TextChoices):
    OPEN = "open", "Awaiting the owner's attestation"
    ATTESTED = "attested", "Awaiting the validator"
    COMPLETED = "completed", "Completed"


class ReviewTriggerKind(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled (cadence by risk tier)"
    DRIFT_ALERT = "drift_alert", "Critical drift alert"
    FAIRNESS = "fairness", "Fairness breach"
    INCIDENT = "incident", "New incident"
    MANUAL = "manual", "Requested"


class FindingSeverity(models.TextChoices):
    LOW = "low", "Low severity"
    MEDIUM = "medium", "Medium severity"
    HIGH = "high", "High severity"


class FindingStatus(models.TextChoices):
    OPEN = "open", "Open"
    REMEDIATED = "remediated", "Remediation submitted"
    CLOSED = "closed", "Closed on retest"
