"""Bad GET or POST values on a monitoring page: one answer per kind of client.

A browser gets the page again, status 400, each field's errors beside its input
(``field_errors.<name>``, shown by ``monitoring/inc/field_error.html``; errors of the whole
form under ``field_errors.form``). An API path or an htmx request (a fragment: htmx swaps
nothing on a 4xx) gets the JSON error ``{"error": {"code", "message", "details"}}``.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import render

from mlops_portal.api.errors import form_error_details, json_error

FILTERS = "Invalid filter values."
VALUES = "Invalid values."


def _details(errors) -> dict:
    """A form's errors or a ValidationError as the JSON error's details."""
    if isinstance(errors, ValidationError):
        return errors.message_dict if hasattr(errors, "error_dict") else {"__all__": errors.messages}
    return form_error_details(errors)


def field_messages(errors) -> dict[str, list[str]]:
    """Field name → its messages; errors of the whole form under ``form``."""
    out: dict[str, list[str]] = {}
    for name, items in _details(errors).items():
        messages = [item["message"] if isinstance(item, dict) else str(item) for item in items]
        out["form" if name == "__all__" else name] = messages
    return out


def invalid_values(errors, message: str = FILTERS) -> HttpResponse:
    """The 400 JSON error for bad values (a form's errors or a ValidationError)."""
    return json_error(400, message, _details(errors))


def wants_json(request) -> bool:
    """An API call, or an htmx request for a fragment."""
    return request.path.startswith("/api/") or bool(getattr(request, "htmx", False))


def invalid_page(request, errors, *, template: str, context: dict, message: str = FILTERS) -> HttpResponse:
    """400 for bad values: the page ``template`` rendered with ``context`` and each field's errors
    beside it for a browser; the JSON error for an API path or an htmx fragment."""
    if wants_json(request):
        return invalid_values(errors, message)
    return render(request, template, {**context, "field_errors": field_messages(errors)}, status=400)


__all__ = ["FILTERS", "VALUES", "field_messages", "invalid_page", "invalid_values", "wants_json"]
