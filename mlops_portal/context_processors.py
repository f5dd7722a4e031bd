"""Template context shared by every page: the layout's links and the navigation counts."""

from functools import cache

from django.core.signals import setting_changed
from django.dispatch import receiver
from django.templatetags.static import static
from django.urls import get_script_prefix, reverse

from registry.selectors import navigation_counts

# The links of base.html: name in the template -> URL name.
LAYOUT_URLS = {
    "fleet": "monitoring:fleet",
    "inventory": "registry:model_list",
    "reviews": "registry:review_queue",
    "alerts": "monitoring:alert_list",
    "scorecard": "monitoring:scorecard",
    "as_of": "registry:as_of",
    "audit": "registry:audit_log",
    "privacy": "monitoring:privacy",
    "tokens": "registry:token_list",
    "logout": "logout",
}
LAYOUT_STATIC = {
    "favicon": "favicon.svg",
    "css": "css/app.css",
    "htmx": "vendor/htmx.min.js",
    "js": "js/app.js",
}


def layout(request):
    return {"layout": _layout_links(get_script_prefix())}


@cache
def _layout_links(script_prefix: str) -> dict[str, str]:
    """The layout's URLs, the same on every page: reversed and looked up in the static manifest
    once per process (and script prefix) instead of a dozen times per page."""
    links = {key: reverse(name) for key, name in LAYOUT_URLS.items()}
    links |= {key: static(path) for key, path in LAYOUT_STATIC.items()}
    return links


@receiver(setting_changed)
def _forget_layout_links(**kwargs):
    # URL configuration, static storage and prefixes are settings; tests change them.
    _layout_links.cache_clear()


def navigation(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"nav": navigation_counts(user=user)}
