"""Every API view's transactions (one rule, tested in tests/registry/test_request_revisions.py): reads
run without ATOMIC_REQUESTS' transaction, writes keep it."""

from __future__ import annotations

from django.db import transaction
from django.utils.decorators import method_decorator
from rest_framework.permissions import SAFE_METHODS


@method_decorator(transaction.non_atomic_requests, name="dispatch")
class AtomicWritesMixin:
    """ATOMIC_REQUESTS' one transaction per request, for the requests that may write only.

    A GET, HEAD or OPTIONS request writes at most single autocommitted statements (a token's
    last use, once a minute), and each of its reads sees committed data with or without a
    transaction (PostgreSQL's READ COMMITTED): BEGIN and COMMIT were two more round trips to the
    database on every read (docs/performance.md, inventory). Any other method runs its whole
    dispatch (authentication, permissions, handler, DRF's exception handler) in one
    ``transaction.atomic()``, as ATOMIC_REQUESTS would: an error response that DRF marks for
    rollback still rolls everything back. A read that starts inside a transaction already open (a
    test's, a caller's) runs in its own savepoint as before, since DRF's error responses mark the
    innermost atomic block for rollback. Put it first among a view's bases (it owns ``dispatch``)."""

    def dispatch(self, request, *args, **kwargs):
        if request.method in SAFE_METHODS and not transaction.get_connection().in_atomic_block:
            return super().dispatch(request, *args, **kwargs)
        with transaction.atomic():
            return super().dispatch(request, *args, **kwargs)
