"""Cost reads: a model's cost records and totals, its budget status, the dashboard's cost panel,
the fleet's roll-up by team and risk tier, and the compliance report's monthly lines.

All records count, whatever their source (API, cloud bill CSV, computed from LLM requests). A
record counts on the day (and in the month) of its ``period_start``: a monthly storage line is
spent on the first day of its month, as the bill shows it. A dashboard range counts the days whose
start it holds (``monitoring.forms.range_days``): its partial first day is left out and named.
Sums are ``Decimal`` added in Python (SQLite would add them as floats) and are per currency:
amounts in different currencies are never added together nor converted.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import QuerySet

from monitoring.choices import CostCategory, Granularity, Metric
from monitoring.models import MetricValue
from monitoring.models_cost import Budget, CostRecord
from registry.models import RegisteredModel

WARNING, CRITICAL = "warning", "critical"


def month_start(day: date) -> date:
    return day.replace(day=1)


def previous_month_start(day: date) -> date:
    return month_start(month_start(day) - timedelta(days=1))


def months_back(day: date, n: int) -> list[date]:
    """The first days of the ``n`` months up to ``day``'s, oldest first."""
    months = [month_start(day)]
    while len(months) < n:
        months.append(previous_month_start(months[-1]))
    return months[::-1]


# --------------------------------------------------------------------------- records and totals


def cost_list(
    *, user, model: RegisteredModel, date_from: date | None = None, date_to: date | None = None, category: str = ""
) -> QuerySet[CostRecord]:
    """The model's cost records (all sources) whose period overlaps ``date_from``..``date_to``."""
    records = CostRecord.objects.filter(model=model, model__in=RegisteredModel.objects.visible_to(user))
    if date_from:
        records = records.filter(period_end__gte=date_from)
    if date_to:
        records = records.filter(period_start__lte=date_to)
    if category:
        records = records.filter(category=category)
    return records.select_related("version").order_by("-period_start", "pk")


def cost_totals(records) -> list[dict]:
    """``[{"currency", "amount"}]`` per currency (exact ``Decimal`` sums), by currency code."""
    sums: dict[str, Decimal] = defaultdict(Decimal)
    for currency, amount in records.order_by().values_list("currency", "amount").iterator():
        sums[currency] += amount
    return [{"currency": c, "amount": sums[c]} for c in sorted(sums)]


def _sum(records) -> Decimal:
    return sum((amount for amount in records.order_by().values_list("amount", flat=True)), Decimal(0))


# --------------------------------------------------------------------------- budget


@dataclass(frozen=True)
class BudgetStatus:
    """Month-to-date spend against the budget, in the budget's currency; other currencies apart."""

    budget: Budget
    month: date
    today: date
    spent: Decimal
    share: Decimal
    level: str  # "", "warning" or "critical"
    other_currencies: list[dict] = field(default_factory=list)

    @property
    def percent(self) -> Decimal:
        return (self.share * 100).quantize(Decimal("0.1"))

    @property
    def remaining(self) -> Decimal:
        return self.budget.monthly_amount - self.spent


def budget_level(budget: Budget, share: Decimal) -> str:
    if share >= budget.critical_share:
        return CRITICAL
    return WARNING if share >= budget.warning_share else ""


Row = tuple[date, str, str, Decimal]  # period_start, currency, category, amount


def _rows(records) -> list[Row]:
    return list(records.order_by().values_list("period_start", "currency", "category", "amount"))


def _sums(rows) -> list[dict]:
    sums: dict[str, Decimal] = defaultdict(Decimal)
    for _, currency, _, amount in rows:
        sums[currency] += amount
    return [{"currency": c, "amount": sums[c]} for c in sorted(sums)]


def _status(budget: Budget, today: date, rows: list[Row]) -> BudgetStatus:
    """From the model's rows (any range that covers ``today``'s month up to ``today``)."""
    month = month_start(today)
    in_month = [r for r in rows if month <= r[0] <= today]
    spent = sum((r[3] for r in in_month if r[1] == budget.currency), Decimal(0))
    share = spent / budget.monthly_amount
    return BudgetStatus(
        budget=budget,
        month=month,
        today=today,
        spent=spent,
        share=share,
        level=budget_level(budget, share),
        other_currencies=_sums(r for r in in_month if r[1] != budget.currency),
    )


def budget_status(*, model: RegisteredModel, today: date, budget: Budget | None = None) -> BudgetStatus | None:
    """The budget status of the month of ``today`` (records from its first day to ``today``)."""
    budget = budget or Budget.objects.filter(model=model).first()
    if budget is None:
        return None
    month = month_start(today)
    return _status(budget, today, _rows(CostRecord.objects.filter(model=model, period_start__range=(month, today))))


def predictions_per_day(*, model: RegisteredModel, start: date, end: date) -> dict[date, int]:
    """Predictions per day from the stored volume metric (hourly windows, else daily ones)."""
    rows = (
        MetricValue.objects.filter(
            model=model,
            metric=Metric.VOLUME,
            feature="",
            window_start__date__gte=start,
            window_start__date__lte=end,
        )
        .order_by()
        .values_list("granularity", "window_start", "value")
    )
    per: dict[str, dict[date, float]] = {Granularity.HOURLY: defaultdict(float), Granularity.DAILY: defaultdict(float)}
    for granularity, start_at, value in rows.iterator():
        per[granularity][start_at.date()] += value or 0
    days = set(per[Granularity.HOURLY]) | set(per[Granularity.DAILY])
    return {d: int(per[Granularity.HOURLY].get(d) or per[Granularity.DAILY].get(d) or 0) for d in sorted(days)}


@dataclass
class CostPanel:
    """What the dashboard's cost panel draws, in one currency (the budget's, else the most used)."""

    model: RegisteredModel
    start: date
    end: date
    currency: str
    days: list[date]
    by_category: dict[str, list[Decimal]]
    units: list[int]
    unit_label: str
    per_thousand: list[Decimal | None]
    budget: BudgetStatus | None
    month_days: list[date]
    month_cumulative: list[Decimal]
    totals: list[dict]
    other_currencies: list[str]
    left_out: date | None = None  # the range's partial first day, whose cost is not counted

    @property
    def days_label(self) -> str:
        """The days counted, as the panel says them: "7 days, 1–7 Dec 2026"."""
        n = len(self.days)
        return f"{n} day{'s' if n != 1 else ''}, {day_span(self.start, self.end)}"

    @property
    def has_cost(self) -> bool:
        return bool(self.totals)

    @property
    def total(self) -> Decimal:
        return next((t["amount"] for t in self.totals if t["currency"] == self.currency), Decimal(0))


def day_span(first: date, last: date) -> str:
    """ "7 Dec 2026", "1–7 Dec 2026", "29 Nov – 5 Dec 2026", "31 Dec 2026 – 6 Jan 2027"."""
    if first == last:
        return f"{last.day} {last:%b %Y}"
    if (first.year, first.month) == (last.year, last.month):
        return f"{first.day}–{last.day} {last:%b %Y}"
    if first.year == last.year:
        return f"{first.day} {first:%b} – {last.day} {last:%b %Y}"
    return f"{first.day} {first:%b %Y} – {last.day} {last:%b %Y}"


def _panel_currency(budget: Budget | None, rows: list[Row]) -> str:
    """The budget's currency, else the one with the most records (ties: alphabetical)."""
    if budget is not None:
        return budget.currency
    counts: dict[str, int] = defaultdict(int)
    for _, currency, _, _ in rows:
        counts[currency] += 1
    return max(sorted(counts), key=counts.__getitem__) if counts else ""


def cost_panel(
    *,
    user,
    model: RegisteredModel,
    start: date,
    end: date,
    today: date | None = None,
    units_per_day: dict[date, int] | None = None,
    unit_label: str = "predictions",
    left_out: date | None = None,
) -> CostPanel:
    """Cost per day by category over the days ``start``..``end`` (a dashboard range's
    ``DashboardQuery.cost_days``; ``left_out`` its partial first day, named on the panel), cost
    per 1,000 units (``units_per_day``: predictions per day by default; an LLM application passes
    its requests per day with ``unit_label="requests"``) and the month-to-date spend of
    ``today``'s month (default ``end``) against the budget. Three queries: the records, the
    budget, the volume (if not given)."""
    today = today or end
    month = month_start(today)
    visible = CostRecord.objects.filter(model=model, model__in=RegisteredModel.objects.visible_to(user))
    rows = _rows(visible.filter(period_start__range=(min(start, month), max(end, today))))
    budget = Budget.objects.filter(model=model).first()
    status = _status(budget, today, rows) if budget is not None else None
    in_range = [r for r in rows if start <= r[0] <= end]
    currency = _panel_currency(budget, in_range or rows)
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    index = {d: i for i, d in enumerate(days)}
    by_category: dict[str, list[Decimal]] = {}
    for day, cur, category, amount in in_range:
        if cur == currency:
            by_category.setdefault(category, [Decimal(0)] * len(days))[index[day]] += amount
    by_category = {c: by_category[c] for c in CostCategory.values if c in by_category}
    daily = [sum((v[i] for v in by_category.values()), Decimal(0)) for i in range(len(days))]
    if units_per_day is None:
        units_per_day = predictions_per_day(model=model, start=start, end=end)
    units = [int(units_per_day.get(d, 0)) for d in days]
    per_thousand = [
        (cost * 1000 / n).quantize(Decimal("0.0001")) if n else None for cost, n in zip(daily, units, strict=True)
    ]
    month_days = [month + timedelta(days=i) for i in range((today - month).days + 1)]
    per_day: dict[date, Decimal] = defaultdict(Decimal)
    for day, cur, _, amount in rows:
        if cur == currency and month <= day <= today:
            per_day[day] += amount
    running, cumulative = Decimal(0), []
    for day in month_days:
        running += per_day.get(day, Decimal(0))
        cumulative.append(running)
    totals = _sums(in_range)
    return CostPanel(
        model=model,
        start=start,
        end=end,
        currency=currency,
        days=days,
        by_category=by_category,
        units=units,
        unit_label=unit_label,
        per_thousand=per_thousand,
        budget=status,
        month_days=month_days,
        month_cumulative=cumulative,
        totals=totals,
        other_currencies=[t["currency"] for t in totals if t["currency"] != currency],
        left_out=left_out,
    )


# --------------------------------------------------------------------------- fleet and report


@dataclass
class CostGroup:
    """One team or risk tier: month-to-date and last month's cost per currency."""

    key: str
    label: str
    month_to_date: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    last_month: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))

    @property
    def currencies(self) -> list[str]:
        return sorted(set(self.month_to_date) | set(self.last_month))

    @property
    def rows(self) -> list[dict]:
        return [
            {
                "currency": c,
                "month_to_date": self.month_to_date.get(c, Decimal(0)),
                "last_month": self.last_month.get(c, Decimal(0)),
            }
            for c in self.currencies
        ]


@dataclass
class CostRollup:
    month: date
    last_month: date
    today: date
    by_team: list[CostGroup]
    by_tier: list[CostGroup]

    @property
    def empty(self) -> bool:
        return not self.by_team


def fleet_cost_rollup(*, user, today: date) -> CostRollup:
    """Cost of the models ``user`` may see, by team and by risk tier, for the month to date
    (up to ``today``) and the whole previous month, per currency."""
    month, last = month_start(today), previous_month_start(today)
    visible = RegisteredModel.objects.visible_to(user)
    rows = (
        CostRecord.objects.filter(model__in=visible, period_start__gte=last, period_start__lte=today)
        .order_by()
        .values_list("model__team__slug", "model__team__name", "model__risk_tier", "period_start", "currency", "amount")
    )
    teams: dict[str, CostGroup] = {}
    tiers: dict[str, CostGroup] = {}
    tier_labels = dict(RegisteredModel._meta.get_field("risk_tier").choices)
    for slug, team_name, tier, day, currency, amount in rows.iterator():
        for group in (
            teams.setdefault(slug or "", CostGroup(slug or "", team_name or "no team")),
            tiers.setdefault(tier, CostGroup(tier, str(tier_labels.get(tier, tier)))),
        ):
            bucket = group.month_to_date if day >= month else group.last_month
            bucket[currency] += amount
    tier_order = list(tier_labels)
    return CostRollup(
        month=month,
        last_month=last,
        today=today,
        by_team=sorted(teams.values(), key=lambda g: g.label.lower()),
        by_tier=sorted(tiers.values(), key=lambda g: tier_order.index(g.key) if g.key in tier_order else 99),
    )


def cost_by_month(*, user, model: RegisteredModel, today: date, months: int = 12) -> list[dict]:
    """The compliance report's cost lines: per month of the last ``months`` (oldest first) and per
    currency, ``{"month", "currency", "amount", "by_category"}``; months without cost are left out."""
    first = months_back(today, months)[0]
    records = cost_list(user=user, model=model).filter(period_start__gte=first, period_start__lte=today)
    sums: dict[tuple[date, str], dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for day, currency, category, amount in (
        records.order_by().values_list("period_start", "currency", "category", "amount").iterator()
    ):
        sums[(month_start(day), currency)][category] += amount
    return [
        {
            "month": month,
            "currency": currency,
            "amount": sum(by_category.values(), Decimal(0)),
            "by_category": {c: by_category[c] for c in CostCategory.values if c in by_category},
        }
        for (month, currency), by_category in sorted(sums.items())
    ]


__all__ = [
    "BudgetStatus",
    "CostGroup",
    "CostPanel",
    "CostRollup",
    "budget_level",
    "budget_status",
    "cost_by_month",
    "cost_list",
    "cost_panel",
    "cost_totals",
    "day_span",
    "fleet_cost_rollup",
    "month_start",
    "months_back",
    "predictions_per_day",
    "previous_month_start",
]
