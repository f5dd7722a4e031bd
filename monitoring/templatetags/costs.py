"""Cost sections of pages that the monitoring views do not render: ``{% fleet_cost_rollup %}`` on
the fleet page (by team and by risk tier, month to date and last month) and
``{% cost_report_section model %}`` in the compliance report, HTML and PDF (a line per month of
the last 12, per currency). Reads through ``monitoring.selectors.cost`` (visible models only)."""

from __future__ import annotations

from django import template

from mlops_portal import clock
from monitoring.selectors.cost import cost_by_month, fleet_cost_rollup

register = template.Library()


def _user(context):
    request = context.get("request")
    return getattr(request, "user", None)


@register.inclusion_tag("monitoring/inc/fleet_cost.html", takes_context=True)
def fleet_cost_rollup_section(context):
    user = _user(context)
    return {"cost_rollup": fleet_cost_rollup(user=user, today=clock.now().date()) if user else None}


@register.inclusion_tag("monitoring/inc/compliance_cost.html", takes_context=True)
def cost_report_section(context, model):
    user = _user(context)
    today = clock.now().date()
    lines = cost_by_month(user=user, model=model, today=today) if user else []
    return {"cost_lines": lines, "model": model, "today": today}
