"""The cost part of the demo: every model that exists gets about eight weeks of cost and a budget.

* serving: one record a day (a base derived from the model's name, busier on weekdays);
* training: on each version's registration date in the period (its retrain), else every four
  weeks;
* storage: one record per month, on the first day of each month in the period.

Amounts are deterministic (no randomness: a hash of the model's name and the day), in EUR for
classic models; an LLM application is billed in USD, its providers' currency: its tokens are
costed from its request records (``monitoring.demo_llm_requests``, run before), and the demo
adds only its hosting and its retrieval index's storage (no training). Each model gets a
monthly budget of about one and a half times its usual spend, except ``NEAR_BUDGET`` (the
support assistant, else the first model by name), whose budget is set so that the month to
date, every record of the month in its currency included, is at about 84 % of it: its budget
evaluation opens the 80 % warning alert.

Everything goes through the services (``cost_records_store``, ``budget_set``,
``budget_evaluate``; audit source ``cli``) and is idempotent: records carry an external id
(``demo:<category>:<day>``), so a re-run stores nothing new, and an unchanged budget is not
re-audited.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_UP, Decimal

from django.db.models import Sum

from mlops_portal import clock
from monitoring.choices import AlertKind, CostCategory
from monitoring.models import Alert
from monitoring.models_cost import CostRecord
from monitoring.services.budgets import budget_evaluate, budget_set
from monitoring.services.costs import cost_records_store
from registry.choices import AuditSource
from registry.models import RegisteredModel
from registry.services.audit import AuditContext

CONTEXT = AuditContext(source=AuditSource.CLI, request_id="load_demo")
DAYS = 56
CURRENCY = "EUR"
LLM_CURRENCY = "USD"
NEAR_BUDGET = "support-assistant"
NEAR_SHARE = Decimal("0.84")
CENT = Decimal("0.01")


def _unit(name: str, salt: str) -> Decimal:
    """A deterministic number in [0, 1) from the model's name and a salt."""
    digest = hashlib.sha256(f"{name}|{salt}".encode()).digest()
    return Decimal(int.from_bytes(digest[:4], "big")) / Decimal(2**32)


def _serving(name: str, day: date) -> Decimal:
    base = Decimal(18) + Decimal(40) * _unit(name, "base")
    weekday = Decimal("1.0") if day.weekday() < 5 else Decimal("0.55")
    jitter = Decimal("0.9") + Decimal("0.2") * _unit(name, day.isoformat())
    return (base * weekday * jitter).quantize(CENT)


def _training_days(model: RegisteredModel, start: date, today: date) -> list[date]:
    days = sorted(
        {v.created_at.date() for v in model.versions.all() if v.created_at and start <= v.created_at.date() <= today}
    )
    return days or [start + timedelta(days=offset) for offset in range(10, DAYS, 28)]


def _currency(model: RegisteredModel) -> str:
    return LLM_CURRENCY if model.is_llm_app else CURRENCY


def _records(model: RegisteredModel, start: date, today: date) -> list[dict]:
    name, currency = model.name, _currency(model)
    hosting = Decimal("0.25") if model.is_llm_app else Decimal(1)  # an LLM app's tokens are costed apart
    out = []
    for offset in range((today - start).days + 1):
        day = start + timedelta(days=offset)
        out.append(_record(day, day, (_serving(name, day) * hosting).quantize(CENT), CostCategory.SERVING, currency))
        if day.day == 1:
            month_end = (day.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
            storage = (Decimal(35) + Decimal(120) * _unit(name, "storage")).quantize(CENT)
            out.append(_record(day, month_end, storage, CostCategory.STORAGE, currency))
    for day in [] if model.is_llm_app else _training_days(model, start, today):
        amount = (Decimal(120) + Decimal(380) * _unit(name, f"train|{day}")).quantize(CENT)
        out.append(_record(day, day, amount, CostCategory.TRAINING, currency))
    return out


def _record(start: date, end: date, amount: Decimal, category: str, currency: str = CURRENCY) -> dict:
    return {
        "period_start": start,
        "period_end": end,
        "amount": amount,
        "currency": currency,
        "category": category,
        "external_id": f"demo:{category}:{start.isoformat()}",
    }


def _budget_amount(model: RegisteredModel, records: list[dict], today: date, near: bool) -> Decimal:
    month = today.replace(day=1)
    if near:  # every record of the month in the budget's currency: the inference cost too
        spent = CostRecord.objects.filter(
            model=model, currency=_currency(model), period_start__gte=month, period_start__lte=today
        ).aggregate(total=Sum("amount"))["total"] or Decimal(0)
        return (spent / NEAR_SHARE).quantize(CENT, rounding=ROUND_UP)
    usual = sum((r["amount"] for r in records), Decimal(0)) / DAYS * 30
    return (usual * Decimal("1.5") / 100).quantize(Decimal(1), rounding=ROUND_UP) * 100


def load_demo_costs(*, today: date, names: list[str] | None = None) -> dict[str, int]:
    """Cost history up to ``today`` and budgets for the models named (default: every model that
    exists); returns counts (``cost_records`` created, ``budgets`` set, ``budget_alerts`` opened)."""
    created = {"cost_records": 0, "budgets": 0, "budget_alerts": 0}
    budget_alerts = Alert.objects.filter(kind=AlertKind.BUDGET)
    alerts_before = set(budget_alerts.values_list("pk", flat=True))
    models = RegisteredModel.objects.select_related("owner").prefetch_related("versions").order_by("name")
    models = list(models if names is None else models.filter(name__in=names))
    if not models:
        return created
    near = NEAR_BUDGET if any(m.name == NEAR_BUDGET for m in models) else models[0].name
    start = today - timedelta(days=DAYS - 1)
    moment = clock.now() if clock.now().date() == today else datetime.combine(today, time(12), tzinfo=UTC)
    for model in models:
        records = _records(model, start, today)
        summary = cost_records_store(model=model, records=records, actor=model.owner, context=CONTEXT)
        created["cost_records"] += summary["created"]
        amount = _budget_amount(model, records, today, model.name == near)
        created["budgets"] += 0 if hasattr(model, "budget") else 1
        budget_set(
            model=model,
            actor=model.owner,
            context=CONTEXT,
            values={"monthly_amount": amount, "currency": _currency(model)},
        )
        budget_evaluate(model=model, context=CONTEXT, now=moment)  # also queued when the records commit
    created["budget_alerts"] = budget_alerts.exclude(pk__in=alerts_before).count()  # opened by this run
    return created


__all__ = ["NEAR_BUDGET", "load_demo_costs"]
