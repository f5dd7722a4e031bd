"""``{% fairness_report_section model %}``: the compliance report's section "Data governance and
bias examination (Art. 10) · performance on groups (Art. 13)" (monitoring/selectors_fairness.py)."""

from __future__ import annotations

from django import template

from monitoring.selectors_fairness import fairness_compliance

register = template.Library()


@register.inclusion_tag("monitoring/inc/compliance_fairness.html", takes_context=True)
def fairness_report_section(context, model):
    request = context.get("request")
    user = getattr(request, "user", None)
    return {"fairness": fairness_compliance(user=user, model=model) if user else None, "model": model}
