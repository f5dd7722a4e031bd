"""``{% privacy_report_section model %}``: the compliance report's section on the model's
retention of raw data, legal hold and purge receipts (HTML and PDF). The report's view has
already decided the user may see the model."""

from __future__ import annotations

from django import template

from monitoring.selectors_privacy import model_retention

register = template.Library()


@register.inclusion_tag("monitoring/inc/compliance_privacy.html")
def privacy_report_section(model):
    return {"model": model, "retention": model_retention(model=model)}
