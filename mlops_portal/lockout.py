"""Login lockout: django-axes' database handler with a second, wider limit (``AXES_HANDLER``).

Axes counts failures per ``AXES_LOCKOUT_PARAMETERS`` entry and compares them with one limit. The
portal locks an account at one address (``[["username", "ip_address"]]``) after
``AXES_FAILURE_LIMIT`` failures, so that behind a shared NAT one person's typos, or an
outsider's guesses, never lock out the colleagues (and the admin) at that address. On its own that
would let one address try a password on every account (password spraying), and many addresses
try many passwords on one account, so this handler also locks

- an address, after ``LOGIN_WIDE_FAILURE_LIMIT`` failures from it over all accounts, and
- an account, after ``LOGIN_WIDE_FAILURE_LIMIT`` failures for it from all addresses,

counting the failures of the last ``AXES_COOLOFF_TIME``, as axes counts its own. A successful
sign-in clears that account's failures at that address (``AXES_RESET_ON_SUCCESS``), so an office's
corrected typos do not add up. A custom handler is how axes' maintainers answer for a limit per
address different from the one per account (jazzband/django-axes#661).
"""

from __future__ import annotations

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Sum
from django.utils import timezone


class LockoutHandler(AxesDatabaseHandler):
    """Axes' database handler; an address or an account over the wide limit counts as locked.

    Axes asks ``get_failures`` both before a sign-in (refused when at the limit) and after a
    failure (the lockout answer and the ``user_locked_out`` signal, which is audited), so the wide
    limits answer there: at or over one, the failures are reported as at least the pair's limit."""

    def get_failures(self, request, credentials: dict | None = None) -> int:
        failures = super().get_failures(request, credentials)
        if failures < settings.AXES_FAILURE_LIMIT and _over_a_wide_limit(request, credentials):
            return settings.AXES_FAILURE_LIMIT
        return failures


def _over_a_wide_limit(request, credentials: dict | None) -> bool:
    limit = settings.LOGIN_WIDE_FAILURE_LIMIT
    address = getattr(request, "axes_ip_address", None)
    username = get_client_username(request, credentials)
    return bool(
        (address and _recent_failures(ip_address=address) >= limit)
        or (username and _recent_failures(username=username) >= limit)
    )


def _recent_failures(**match) -> int:
    since = timezone.now() - settings.AXES_COOLOFF_TIME
    attempts = AccessAttempt.objects.filter(attempt_time__gte=since, **match)
    return attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0
