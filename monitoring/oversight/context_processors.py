"""Navigation badges for overdue oversight items (registered in settings' context processors)."""

from .selectors import oversight_counts


def oversight_nav(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"oversight_nav": oversight_counts(user=user)}
