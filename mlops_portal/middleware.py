"""Request id and Content-Security-Policy middleware."""

import re
import uuid

from django.http import HttpResponseBadRequest

from mlops_portal.api.errors import json_error

_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'self'",
        "form-action 'self'",
    ]
)


class RequestIdMiddleware:
    """Gives every request an id (``request.id``), honouring a sane incoming
    ``X-Request-ID``, and returns it in the ``X-Request-ID`` response header."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request.id = incoming if _VALID_ID.match(incoming) else uuid.uuid4().hex
        response = self.get_response(request)
        response["X-Request-ID"] = request.id
        return response


class ContentSecurityPolicyMiddleware:
    """A strict CSP for our own pages: scripts only from our origin (no inline
    script; data for charts travels in ``json_script`` blocks, which are not executed)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not request.path.startswith("/api/docs") and not request.path.startswith("/admin"):
            response.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response


class RefuseNulMiddleware:
    """A NUL character (``%00``) in the path or the query string is a 400 before any view runs:
    PostgreSQL cannot compare text with it, so a lookup by such a name would fail as a 500.
    (JSON bodies are checked by ``mlops_portal.api.parsers.json_loads``.)"""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        query = (text for key, values in request.GET.lists() for text in (key, *values))
        if "\x00" in request.path or any("\x00" in text for text in query):
            message = "NUL characters (\\u0000) are not allowed in the URL."
            if request.path.startswith("/api/"):
                return json_error(400, message)
            return HttpResponseBadRequest(message, content_type="text/plain")
        return self.get_response(request)
