"""Token scopes: a view declares ``required_scopes`` and ``HasScope`` checks the request's token."""

from __future__ import annotations

from rest_framework import permissions


def token_scopes(request) -> set[str] | None:
    """The scopes of the request's token, or None for a browser session (no scope limit)."""
    token = getattr(request, "auth", None)
    if token is None or not hasattr(token, "scopes"):
        return None
    return set(token.scopes)


def view_handles(view, method: str) -> bool:
    """Whether the view answers this HTTP method (else DRF answers 405 once permissions pass)."""
    return method.lower() in view.http_method_names and hasattr(view, method.lower())


class HasScope(permissions.BasePermission):
    """Requires the view's ``required_scopes`` mapping {HTTP method or '*': scope} for token requests.

    Views declare e.g. ``required_scopes = {"GET": "models:read", "POST": "models:write"}``.
    Session-authenticated requests are not limited by scopes (rules still apply).
    """

    message = "This token lacks the scope required for this action."

    def has_permission(self, request, view) -> bool:
        scopes = token_scopes(request)
        if scopes is None or not view_handles(view, request.method):
            return True  # a method the view does not answer is its 405, never a 403
        mapping = getattr(view, "required_scopes", {})
        action = getattr(view, "action", None)
        needed = mapping.get(action) or mapping.get(request.method) or mapping.get("*")
        if needed is None:
            return False
        self.message = f"This token lacks the '{needed}' scope."
        return needed in scopes
