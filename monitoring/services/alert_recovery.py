"""How an alert recovers (``monitoring.models_alerting``): the consecutive windows within
thresholds it has, whether that is enough to resolve it, and which resolved alert a condition
found again reopens. Used by ``monitoring.services.alerts`` (its sync, and the health's held
reasons), which writes and audits."""

from __future__ import annotations

from datetime import datetime

from monitoring.choices import AlertStatus
from monitoring.models import Alert
from registry.models import RegisteredModel

from .health import MODEL_KINDS

IMMEDIATE_RECOVERY = MODEL_KINDS
"""Alert kinds the model checks judge on every evaluation, window or not: facts, not noisy
measurements (a newer production version, an alias put back); an alert of theirs resolves as
soon as the fact is gone, and a new finding is a new alert."""
Window = tuple[datetime, datetime] | None
"""The bounds (start, end) of the window an evaluation judged; None: no window."""


def reopenable(*, model: RegisteredModel, kind: str, window: Window, reopen_windows: int) -> Alert | None:
    """The model's resolved alert of ``kind`` that a condition found in ``window`` reopens: the
    latest one, when ``window`` is one of the ``reopen_windows`` windows after the one that
    resolved it. Only window kinds reopen (a model check's finding is a new alert)."""
    if window is None or not reopen_windows or kind in IMMEDIATE_RECOVERY:
        return None
    latest = (
        Alert.objects.select_for_update()
        .filter(model=model, kind=kind, status=AlertStatus.RESOLVED)
        .order_by("-resolved_at", "-pk")
        .first()
    )
    if latest is None or latest.judged_window is None:
        return None
    start, end = window
    return latest if latest.judged_window < start <= latest.judged_window + reopen_windows * (end - start) else None


def clear_windows_with(alert: Alert, window: Window) -> int:
    """The alert's consecutive windows within thresholds, counting ``window`` judged so now (a
    window already counted, or older than the last judged, counts once: evaluations repeat)."""
    if window is None:
        return alert.clear_windows
    if alert.judged_window is not None and window[0] <= alert.judged_window:
        return alert.clear_windows
    return alert.clear_windows + 1


def recovered(alert: Alert, window: Window, needed: int) -> bool:
    """Whether an alert judged within thresholds now has recovered: a model check's kind at
    once; a window kind after ``needed`` consecutive windows within thresholds."""
    return alert.kind in IMMEDIATE_RECOVERY or clear_windows_with(alert, window) >= needed


def latest_judged(alert: Alert, window: Window):
    """The start of the latest window that judged the alert, ``window`` included."""
    if window is None:
        return alert.judged_window
    return max(window[0], alert.judged_window) if alert.judged_window else window[0]
