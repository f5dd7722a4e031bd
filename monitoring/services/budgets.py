"""A model's monthly cost budget: set by its owner or an admin (audited ``budget.changed``), and
its alerts.

``budget_evaluate`` compares the month-to-date spend in the budget's currency with the budget
(``monitoring.selectors.cost.budget_status``): at ``warning_share`` (default 80 %) a warning
alert opens, at ``critical_share`` (default 100 %) it escalates to critical; each level alerts
at most once per calendar month (``Budget.alerted_month`` / ``alerted_level``), however often
it is evaluated. A new month resolves the previous month's alert. The alert is an ordinary
``Alert`` of kind ``budget`` (``alert_record``: audited, webhook, e-mail). It runs after cost
records commit (task ``monitoring.tasks.budget_evaluate``) and daily (beat,
``budgets_evaluate_all``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from mlops_portal import clock
from mlops_portal.queue import enqueue_on_commit
from monitoring.choices import AlertKind, AlertStatus
from monitoring.models import Alert
from monitoring.models_cost import Budget
from monitoring.selectors.cost import CRITICAL, WARNING, BudgetStatus, budget_status, month_start
from registry.models import RegisteredModel
from registry.rules import can_change_model
from registry.services.audit import WORKER, AuditContext, audit_record, model_snapshot

from .alerts import alert_open, alert_record, alert_resolve, alert_title
from .model_settings import settings_row_for_update

BUDGET_FIELDS = ["monthly_amount", "currency", "warning_share", "critical_share"]
LEVEL_RANK = {"": 0, WARNING: 1, CRITICAL: 2}


@transaction.atomic
def budget_set(*, model: RegisteredModel, actor, context: AuditContext, values: dict[str, Any]) -> Budget:
    """Create or replace the model's budget (owner or admin); audited ``budget.changed`` with
    before/after. The budget is evaluated again once this commits."""
    if not can_change_model(actor, model):
        raise PermissionDenied("Only the model's owner or an admin can set its budget.")
    budget, created = settings_row_for_update(Budget, model=model, changes=values, fields=BUDGET_FIELDS)
    before = None if created else model_snapshot(budget, BUDGET_FIELDS)
    budget.warning_share = Decimal("0.8")
    budget.critical_share = Decimal("1.0")
    for name, value in values.items():
        setattr(budget, name, value)
    if budget.critical_share < budget.warning_share:
        raise ValidationError({"critical_share": "Must not be below warning_share."})
    budget.updated_by = actor if getattr(actor, "is_authenticated", False) else None
    budget.updated_at = clock.now()
    budget.full_clean()
    budget.save()
    budget.refresh_from_db(fields=BUDGET_FIELDS)  # Decimals as stored (quantised)
    after = model_snapshot(budget, BUDGET_FIELDS)
    if before != after:
        audit_record(
            actor=actor, action="budget.changed", context=context, obj=budget, model=model, before=before, after=after
        )
        from monitoring import tasks

        enqueue_on_commit(tasks.budget_evaluate, model.pk)
    return budget


def _reasons(status: BudgetStatus) -> list[dict]:
    budget = status.budget
    threshold = budget.critical_share if status.level == CRITICAL else budget.warning_share
    message = (
        f"Month-to-date cost reached {status.spent:,.2f} {budget.currency} on {status.today:%Y-%m-%d}: "
        f"{status.percent}% of the monthly budget {budget.monthly_amount:,.2f} {budget.currency} "
        f"({status.month:%Y-%m})."
    )
    return [
        {
            "kind": AlertKind.BUDGET,
            "severity": status.level,
            "message": message,
            "value": float(status.share),
            "threshold": float(threshold),
            "month": f"{status.month:%Y-%m}",
            "spent": str(status.spent),
            "currency": budget.currency,
        }
    ]


def _raise(model: RegisteredModel, active: Alert | None, status: BudgetStatus, context: AuditContext, now) -> Alert:
    """Open the month's budget alert, or escalate the open one to the status's level."""
    reasons = _reasons(status)
    if active is None:
        return alert_open(
            model=model, kind=AlertKind.BUDGET, severity=status.level, reasons=reasons, context=context, now=now
        )
    before = {"severity": active.severity, "status": active.status}
    active.severity, active.reasons, active.updated_at = status.level, reasons, now
    active.title = alert_title(AlertKind.BUDGET, reasons)
    active.status = AlertStatus.OPEN  # a worse state needs a new acknowledgement
    active.save(update_fields=["severity", "reasons", "title", "updated_at", "status"])
    alert_record(active, "escalated", context=context, before=before)
    return active


@transaction.atomic
def budget_evaluate(*, model: RegisteredModel, context: AuditContext = WORKER, now=None) -> Alert | None:
    """Alert once per level per month (see the module docstring); the alert opened or escalated
    now, else None."""
    budget = Budget.objects.select_for_update().filter(model=model).first()
    if budget is None:
        return None
    now = now or clock.now()
    today = now.date()
    month = month_start(today)
    active = (
        Alert.objects.select_for_update()
        .filter(model=model, kind=AlertKind.BUDGET)
        .exclude(status=AlertStatus.RESOLVED)
        .first()
    )
    if budget.alerted_month != month:
        if active is not None:
            alert_resolve(active, context=context, now=now)
            active = None
        budget.alerted_month, budget.alerted_level = month, ""
    status = budget_status(model=model, today=today, budget=budget)
    raised = None
    if LEVEL_RANK[status.level] > LEVEL_RANK[budget.alerted_level]:
        raised = _raise(model, active, status, context, now)
        budget.alerted_level = status.level
    Budget.objects.filter(pk=budget.pk).update(alerted_month=budget.alerted_month, alerted_level=budget.alerted_level)
    return raised


def budget_evaluate_by_id(*, model_id: int, context: AuditContext = WORKER) -> Alert | None:
    model = RegisteredModel.objects.filter(pk=model_id).first()
    return budget_evaluate(model=model, context=context) if model is not None else None


def budget_model_ids() -> list[int]:
    return list(Budget.objects.order_by("model_id").values_list("model_id", flat=True))


__all__ = ["BUDGET_FIELDS", "budget_evaluate", "budget_evaluate_by_id", "budget_model_ids", "budget_set"]
