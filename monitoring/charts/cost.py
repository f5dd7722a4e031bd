"""The cost panel's figures (``monitoring.selectors.cost.CostPanel``), with the package's builders:
cost per day stacked by category, cost per 1,000 predictions (or requests), and the month-to-date
cumulative cost against the monthly budget and its warning line. One currency per figure."""

from __future__ import annotations

from ..selectors.cost import CostPanel
from .base import BRAND, CRITICAL, MUTED, WARNING, empty_figure, figure, floats, threshold_line, trace

CATEGORY_COLOURS = {
    "serving": BRAND,
    "training": "#7c3aed",
    "storage": "#0891b2",
    "inference": "#db2777",
    "other": MUTED,
}
DAILY_ID, PER_THOUSAND_ID, BUDGET_ID = "chart-cost-daily", "chart-cost-per-thousand", "chart-cost-budget"


def cost_per_day(p: CostPanel) -> dict:
    title = f"Cost per day ({p.currency})" if p.currency else "Cost per day"
    if not p.by_category:
        return empty_figure(title, "No cost records in this range.")
    x = [d.isoformat() for d in p.days]
    traces = [
        trace(
            "bar",
            x=x,
            y=floats(values),
            name=category,
            marker={"color": CATEGORY_COLOURS.get(category, MUTED)},
            hovertemplate=f"%{{y:,.2f}} {p.currency} {category}<extra>%{{x}}</extra>",
        )
        for category, values in p.by_category.items()
    ]
    return figure(traces, title=title, height=320, barmode="stack", yaxis={"title": {"text": p.currency}})


def cost_per_thousand(p: CostPanel) -> dict:
    title = f"Cost per 1,000 {p.unit_label} ({p.currency})" if p.currency else f"Cost per 1,000 {p.unit_label}"
    if p.unit_label == "predictions":  # serving pays for shadow traffic too; the Volume chart shows one version
        title += "<br><sup>every version's predictions, shadow traffic included</sup>"
    if not any(v is not None for v in p.per_thousand):
        return empty_figure(title, f"Needs cost records and {p.unit_label} on the same days.")
    x = [d.isoformat() for d in p.days]
    # the volume bars on the first axis (right) and the cost line on the one overlaying it (left),
    # so the line is drawn over the bars, not hidden behind them
    traces = [
        trace(
            "bar",
            x=x,
            y=floats(p.units),
            name=p.unit_label,
            marker={"color": "#e5e7eb"},
            legendrank=2,
            hovertemplate=f"%{{y:,}} {p.unit_label}<extra>%{{x}}</extra>",
        ),
        trace(
            "scatter",
            x=x,
            y=floats(p.per_thousand),
            mode="lines+markers",
            name=f"per 1,000 {p.unit_label}",
            yaxis="y2",
            legendrank=1,
            line={"color": BRAND, "width": 1.5},
            hovertemplate=f"%{{y:,.4f}} {p.currency}<extra>%{{x}}</extra>",
        ),
    ]
    layout = {
        "yaxis": {
            "side": "right",
            "showgrid": False,
            "automargin": True,
            "title": {"text": p.unit_label, "standoff": 6},
        },
        "yaxis2": {
            "overlaying": "y",
            "side": "left",
            "tickmode": "auto",
            "gridcolor": "#eef0f3",
            "rangemode": "tozero",
            "automargin": True,
            "title": {"text": p.currency},
        },
    }
    return figure(traces, title=title, height=320, **layout)


def budget_burn(p: CostPanel) -> dict:
    status = p.budget
    title = f"Month to date against the budget ({p.currency})" if p.currency else "Month to date"
    if not p.month_days or (status is None and not any(p.month_cumulative)):
        return empty_figure(title, "No monthly budget and no cost this month.")
    traces = [
        trace(
            "scatter",
            x=[d.isoformat() for d in p.month_days],
            y=floats(p.month_cumulative),
            mode="lines",
            fill="tozeroy",
            name="month to date",
            line={"color": BRAND, "width": 2},
            hovertemplate=f"%{{y:,.2f}} {p.currency}<extra>%{{x}}</extra>",
        )
    ]
    shapes = []
    if status is not None:
        amount = float(status.budget.monthly_amount)
        shapes = [
            threshold_line(amount * float(status.budget.critical_share), colour=CRITICAL, label="budget"),
            threshold_line(
                amount * float(status.budget.warning_share),
                colour=WARNING,
                label=f"{float(status.budget.warning_share):.0%} warning",
            ),
        ]
    return figure(traces, title=title, height=320, shapes=shapes, yaxis={"rangemode": "tozero"})


def cost_figures(p: CostPanel) -> dict[str, dict]:
    """{element id: figure} for the dashboard's ``#figures`` script."""
    return {DAILY_ID: cost_per_day(p), PER_THOUSAND_ID: cost_per_thousand(p), BUDGET_ID: budget_burn(p)}


__all__ = [
    "BUDGET_ID",
    "DAILY_ID",
    "PER_THOUSAND_ID",
    "budget_burn",
    "cost_figures",
    "cost_per_day",
    "cost_per_thousand",
]
