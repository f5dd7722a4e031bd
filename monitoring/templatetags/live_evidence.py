"""``{% live_evidence_block req %}``: the promotion request page's live evidence and recent
drift (monitoring data shown on a registry page without registry importing monitoring)."""

from django import template

from monitoring.selectors_live import live_block

register = template.Library()


@register.inclusion_tag("monitoring/live_evidence_block.html", takes_context=True)
def live_evidence_block(context, req):
    request = context.get("request")
    user = getattr(request, "user", None)
    return {"live": live_block(user=user, request=req) if user is not None else None, "req": req}
