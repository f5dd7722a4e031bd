"""How alerts recover: the settings of ``MonitoringConfig`` and the state of each ``Alert``.

An open alert resolves only after ``alert_recovery_windows`` consecutive windows judged its
condition within thresholds (``Alert.clear_windows`` counts them; each window, by its start
``Alert.judged_window``, counts once however often it is evaluated; a window that cannot judge
the condition neither counts nor resets). A condition found again within
``alert_reopen_windows`` windows after the window that resolved its alert reopens that alert
instead of opening a new one. ``monitoring.services.alerts`` applies both.

Three windows by default: a figure that sits at its threshold passes a window about half the
time, so it passes three in a row about one time in eight (two in a row: one in four), while a
real recovery is confirmed two windows after its first one. Reopening within three windows keeps
one alert, one acknowledgement and one review trigger for an episode that comes back at once.
"""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

MAX_WINDOWS = 100


class AlertRecoverySettings(models.Model):
    """Fields of ``MonitoringConfig``: when an alert of the model resolves, and when it reopens."""

    alert_recovery_windows = models.PositiveSmallIntegerField(
        default=3,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_WINDOWS)],
        help_text="An open alert resolves after this many consecutive windows within thresholds (1: the first).",
    )
    alert_reopen_windows = models.PositiveSmallIntegerField(
        default=3,
        validators=[MaxValueValidator(MAX_WINDOWS)],
        help_text="A condition found again within this many windows after its alert resolved reopens that "
        "alert instead of opening a new one (0: never).",
    )

    class Meta:
        abstract = True


class AlertRecoveryState(models.Model):
    """Fields of ``Alert``: its recovery so far, and its reopenings."""

    clear_windows = models.PositiveSmallIntegerField(
        default=0, help_text="Consecutive windows within thresholds since the condition was last found."
    )
    recovery_windows = models.PositiveSmallIntegerField(
        default=3, help_text="The windows within thresholds it needs to resolve (the model's setting when judged)."
    )
    judged_window = models.DateTimeField(
        null=True, blank=True, help_text="Start of the latest window that judged it (a window counts once)."
    )
    reopen_count = models.PositiveIntegerField(
        default=0, help_text="How often its condition came back soon after it resolved (the same alert reopened)."
    )
    reopened_at = models.DateTimeField(null=True, blank=True, help_text="When it was last reopened.")

    class Meta:
        abstract = True

    @property
    def recovering(self) -> bool:
        """Active, and some windows within thresholds already: on its way to resolving."""
        return self.status != "resolved" and 0 < self.clear_windows < self.recovery_windows

    @property
    def recovery_note(self) -> str:
        """Why a recovering alert is still open, as the pages say it."""
        if not self.recovering:
            return ""
        return f"recovering, {self.clear_windows} of {self.recovery_windows} windows within thresholds"
