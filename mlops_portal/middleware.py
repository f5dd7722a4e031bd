"""Request id and Content-Security-Policy middleware."""

import re
import uuid

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
