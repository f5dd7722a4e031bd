"""Who acts and through what: the ``AuditContext`` passed explicitly into every service, the
two contexts for work without a request (``WORKER``, ``CLI``), and ``acting_as`` for changes
that are only seen through signals (role changes)."""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from typing import Any

from registry.choices import AuditSource


@dataclasses.dataclass(frozen=True)
class AuditContext:
    """Who acted and through what: passed explicitly into every service."""

    source: str = AuditSource.CLI
    request_id: str = ""
    ip: str | None = None
    token: str = ""  # the API token the request was made with, if any: ``token_public_id``

    @classmethod
    def from_request(cls, request, source: str = AuditSource.UI) -> AuditContext:
        from mlops_portal.net import client_ip  # REMOTE_ADDR unless a trusted proxy forwarded it
        from registry.models import ApiToken

        # a valid address in canonical text form, or None: a forged X-Forwarded-For must
        # neither break the insert nor the hash
        ip = client_ip(request)
        auth = getattr(request, "auth", None)  # DRF: the ApiToken of a Bearer request (registry.api.auth)
        token = token_public_id(auth) if isinstance(auth, ApiToken) else ""
        return cls(source=source, request_id=str(getattr(request, "id", "") or "")[:64], ip=ip, token=token)


def token_public_id(token) -> str:
    """What names an API token in the audit log (``AuditEvent.token``): its prefix, as the tokens
    page shows it, and its id; never the secret or its hash. Blank for sessions, workers, the
    command line and the events written before tokens were recorded."""
    return f"{token.prefix}#{token.pk}"


WORKER = AuditContext(source=AuditSource.WORKER)
CLI = AuditContext(source=AuditSource.CLI)

# Who is acting, for changes that are only seen through signals (role changes made with
# ``user.groups.add``): code that changes roles wraps the change in ``acting_as``.
_acting: contextvars.ContextVar[tuple[Any, AuditContext] | None] = contextvars.ContextVar("audit_acting", default=None)


@contextlib.contextmanager
def acting_as(actor, context: AuditContext):
    """Attribute signal-audited changes (role changes) made inside the block to ``actor``."""
    token = _acting.set((actor, context))
    try:
        yield
    finally:
        _acting.reset(token)


def current_actor(default_context: AuditContext) -> tuple[Any, AuditContext]:
    """The actor set by ``acting_as``, or (None, default_context)."""
    return _acting.get() or (None, default_context)
