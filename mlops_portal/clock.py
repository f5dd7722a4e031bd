"""The time that services stamp on what they write: ``timezone.now()``, except inside
``at(moment)``, which the demo loader uses to replay its history at the past times it tells
(see docs/audit.md, "Back-dated demo history"). Nothing else sets it.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime

from django.utils import timezone

_FROZEN: contextvars.ContextVar[datetime.datetime | None] = contextvars.ContextVar("clock_frozen", default=None)


def now() -> datetime.datetime:
    """The current time, or the moment of the enclosing ``at()``."""
    return _FROZEN.get() or timezone.now()


@contextlib.contextmanager
def at(moment: datetime.datetime):
    """Within the block, ``now()`` is ``moment`` (an aware datetime)."""
    if timezone.is_naive(moment):
        raise ValueError("clock.at() needs an aware datetime")
    token = _FROZEN.set(moment)
    try:
        yield moment
    finally:
        _FROZEN.reset(token)
