"""One error format for the whole API: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response

logger = logging.getLogger("mlops_portal.api")

SERVER_ERROR_MESSAGE = "The server failed to answer this request; the error has been logged."

_CODES = {
    400: "invalid",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "throttled",
    500: "server_error",
}


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state."
    default_code = "conflict"


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body too large."
    default_code = "payload_too_large"


def escape_unencodable(text: str) -> str:
    """``text`` with what UTF-8 cannot encode (unpaired surrogates) escaped as ``\\udc00``, so an
    error that echoes client input can always be rendered."""
    if text.isascii():
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _escaped(value):
    """Strings (and keys) of an error's message and details, escaped by ``escape_unencodable``."""
    if isinstance(value, str):
        return escape_unencodable(value)
    if isinstance(value, dict):
        return {_escaped(key): _escaped(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_escaped(item) for item in value]
    return value


def error_body(status_code: int, message: str, details=None, code: str | None = None) -> dict:
    return {
        "error": {
            "code": code or _CODES.get(status_code, "error"),
            "message": escape_unencodable(str(message)),
            "details": _escaped(details) or {},
        }
    }


def _message_for(details) -> str:
    if isinstance(details, dict):
        parts = []
        for field, errors in details.items():
            text = errors[0] if isinstance(errors, list) and errors else errors
            if isinstance(text, (dict, list)):
                text = "invalid"
            parts.append(f"{field}: {text}" if field not in ("non_field_errors", "__all__") else str(text))
        return "; ".join(parts) or "Invalid input."
    if isinstance(details, list):
        return "; ".join(str(d) for d in details) or "Invalid input."
    return str(details)


def exception_handler(exc, context):
    """DRF exception handler: Django's ValidationError becomes a 400 with field details, a
    service's ``PromotionConflict`` a 409 with its details; any exception DRF does not know
    becomes the JSON 500 (logged)."""
    # imported here: rest_framework.views reads DEFAULT_PARSER_CLASSES (our parsers module,
    # which imports this one) when it is first imported
    from rest_framework.views import exception_handler as drf_exception_handler

    from registry.services.stages import PromotionConflict  # imported here: registry imports this module

    if isinstance(exc, PromotionConflict):  # the action does not fit the state: a 409 naming why
        return Response(error_body(409, exc.message, exc.details), status=status.HTTP_409_CONFLICT)
    if isinstance(exc, DjangoValidationError):
        details = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        exc = exceptions.ValidationError(details)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "Not found.")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = drf_exception_handler(exc, context)
    if response is None:
        return _server_error(exc, context)
    details = response.data
    if isinstance(exc, exceptions.ValidationError):
        message = _message_for(details)
        details = details if isinstance(details, dict) else {"non_field_errors": details}
    else:
        message = str(getattr(exc, "detail", "")) or _CODES.get(response.status_code, "Error")
        details = {}
    code = getattr(exc, "default_code", None) if not isinstance(exc, exceptions.ValidationError) else "invalid"
    body = error_body(response.status_code, message, details, code=code)
    return Response(body, status=response.status_code, headers=dict(response.items()))


def _server_error(exc, context) -> Response:
    """Any exception DRF does not know: logged with its traceback, the transaction rolled back,
    and the API's JSON error instead of Django's HTML page."""
    request = context.get("request")
    logger.error(
        "Unhandled %s in %s %s (request id %s)",
        type(exc).__name__,
        getattr(request, "method", "?"),
        getattr(request, "path", "?"),
        getattr(request, "id", "-"),
        exc_info=exc,
    )
    from rest_framework.views import set_rollback

    set_rollback()
    return Response(error_body(500, SERVER_ERROR_MESSAGE, code="server_error"), status=500)


def server_error(request) -> JsonResponse:
    """``handler500`` for requests under /api/ (Django has already logged the exception)."""
    return json_error(500, SERVER_ERROR_MESSAGE, code="server_error")


def json_error(status_code: int, message: str, details=None, code: str | None = None) -> JsonResponse:
    """For plain Django views and middleware under /api/ (handler404, handler500 etc.)."""
    return JsonResponse(error_body(status_code, message, details, code=code), status=status_code)


def form_error_details(errors) -> dict[str, list[str]]:
    """A form's or filterset's errors as the error shape's details: each field (``__all__`` for
    the whole form) to its messages, as strings, the shape every other 400 has."""
    return {field: [str(message) for message in messages] for field, messages in errors.items()}
