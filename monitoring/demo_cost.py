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

``manage.py load_demo`` sends them on their days (``cost_steps``): the history before the
monitoring demo's first day imported that morning with the usual budgets, then each day's
records that evening, and the near-budget model's budget the evening of the last day.

Everything goes through the services (``cost_records_store``, ``budget_set``,
``budget_evaluate``; audit source ``cli``) and is idempotent: records carry an external id
(``demo:<category>:<day>``), so a re-run stores nothing new, and an unchanged budget is not
re-audited.
"""

from __future__ import annotations

import functools
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
    """The days versions were registered in the period (as far as the story has come: ``clock``)."""
    registered = [v.created_at for v in model.versions.all() if v.created_at and v.created_at <= clock.now()]
    days = sorted({at.date() for at in registered if start <= at.date() <= today})
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


def _budget_amount(model: RegisteredModel, records: list[dict], today: date, near: bool, evening=False) -> Decimal:
    """``evening``: set the evening of ``today``, before that day's inference cost is computed."""
    month = today.replace(day=1)
    if near:  # every record of the month in the budget's currency: the inference cost too
        spent = CostRecord.objects.filter(
            model=model, currency=_currency(model), period_start__gte=month, period_start__lte=today
        )
        if evening:
            spent = spent.exclude(category=CostCategory.INFERENCE, period_start=today)
        spent = spent.aggregate(total=Sum("amount"))["total"] or Decimal(0)
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


def _models(names: list[str]) -> list[RegisteredModel]:
    models = RegisteredModel.objects.select_related("owner").prefetch_related("versions").order_by("name")
    return list(models.filter(name__in=names))


def _near(models: list[RegisteredModel]) -> str:
    return NEAR_BUDGET if any(m.name == NEAR_BUDGET for m in models) else models[0].name


def _send(names: list[str], span: tuple[date, date], days: tuple[date, date], created: dict[str, int]) -> None:
    """Each model's records of ``days`` (first, last) out of its history over ``span``, sent
    now; none before the model was registered."""
    for model in _models(names):
        since = max(days[0], clock.now().date() if model.created_at is None else model.created_at.date())
        records = [r for r in _records(model, *span) if since <= r["period_start"] <= days[1]]
        if records:
            summary = cost_records_store(model=model, records=records, actor=model.owner, context=CONTEXT)
            created["cost_records"] = created.get("cost_records", 0) + summary["created"]


def _budget(model: RegisteredModel, amount: Decimal, created: dict[str, int]) -> None:
    created["budgets"] = created.get("budgets", 0) + (0 if hasattr(model, "budget") else 1)
    budget_set(
        model=model, actor=model.owner, context=CONTEXT, values={"monthly_amount": amount, "currency": _currency(model)}
    )


def _usual_budgets(names: list[str], span: tuple[date, date], created: dict[str, int]) -> None:
    """Every model but the near-budget one: one and a half times its usual spend (its plan)."""
    models = _models(names)
    for model in models if models else []:
        if model.name != _near(models):
            _budget(model, _budget_amount(model, _records(model, *span), span[1], near=False), created)


def _near_budget(names: list[str], span: tuple[date, date], created: dict[str, int], before: set) -> None:
    """The near-budget model's budget, set the evening of the last day: the month to date at
    about 84 % of it, so its evaluation opens the 80 % warning."""
    models = _models(names)
    if models:
        model = next(m for m in models if m.name == _near(models))
        _budget(model, _budget_amount(model, _records(model, *span), span[1], near=True, evening=True), created)
        budget_evaluate(model=model, context=CONTEXT)  # also queued when the budget commits
    opened = Alert.objects.filter(kind=AlertKind.BUDGET).exclude(pk__in=before).count()
    created["budget_alerts"] = created.get("budget_alerts", 0) + opened


def cost_steps(*, today: date, names: list[str], since: datetime, created: dict[str, int]) -> list[tuple]:
    """The cost history on its days, as ``(moment, action)`` for the monitoring demo's day loop
    (each idempotent): ``DAYS`` days up to yesterday; what is older than ``since`` is imported
    then (the bill's history, when cost tracking began) with the budgets of every model but the
    near-budget one; then each day's records at 23:00 that day; the near-budget model's budget
    at 23:30 the last day."""
    span = (today - timedelta(days=DAYS), today - timedelta(days=1))
    before = set(Alert.objects.filter(kind=AlertKind.BUDGET).values_list("pk", flat=True))
    steps: list[tuple] = [
        (since, functools.partial(_send, names, span, (span[0], since.date() - timedelta(days=1)), created)),
        (since + timedelta(minutes=1), functools.partial(_usual_budgets, names, span, created)),
    ]
    day = since.date()
    while day <= span[1]:
        steps.append(
            (datetime.combine(day, time(23), tzinfo=UTC), functools.partial(_send, names, span, (day, day), created))
        )
        day += timedelta(days=1)
    evening = datetime.combine(span[1], time(23, 30), tzinfo=UTC)
    steps.append((evening, functools.partial(_near_budget, names, span, created, before)))
    return steps


__all__ = ["NEAR_BUDGET", "cost_steps", "load_demo_costs"]
