"""Template context shared by every page (navigation counts)."""

from registry.selectors import navigation_counts


def navigation(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"nav": navigation_counts(user=user)}
