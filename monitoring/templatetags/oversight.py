"""``{% load oversight %}``: the post-market section of the compliance report and the overdue
banner of the fleet, scorecard and alerts pages, each from the oversight selectors."""

from django import template

from monitoring.oversight import selectors

register = template.Library()


@register.inclusion_tag("monitoring/inc/report_post_market.html", takes_context=True)
def post_market_report(context, model):
    """Art. 72 / Art. 73 / SR 26-2 content of ``model``'s compliance report, for the request's user."""
    request = context.get("request")
    user = getattr(request, "user", None)
    return {"pm": selectors.post_market_report(model, user) if user else None, "request": request}


@register.inclusion_tag("monitoring/inc/oversight_overdue_slot.html")
def oversight_overdue():
    """Where the overdue banner goes: loaded with htmx after the page (no query in the page)."""
    return {}


def overdue_items(user) -> dict:
    """Overdue reviews, findings and incident reports of the models the user may see."""
    return {
        "reviews": list(selectors.overdue_reviews(user=user).order_by("due_at")[:20]),
        "findings": list(selectors.overdue_findings(user=user).order_by("due_at")[:20]),
        "incidents": list(selectors.overdue_incidents(user=user).order_by("deadline")[:20]),
    }
