"""Enumerations of incidents, reviews and findings."""

from django.db import models


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
