"""Navigation badges for overdue oversight items (registered in settings' context processors).

The counts are lazy: a page costs no query for them. ``base.html`` loads them with htmx from
``monitoring:oversight_badges`` after the page (so cached pages stay query-free), and that
fragment reads them from here."""

from django.utils.functional import SimpleLazyObject

from .selectors import oversight_counts


def oversight_nav(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"oversight_nav": SimpleLazyObject(lambda: oversight_counts(user=user))}
