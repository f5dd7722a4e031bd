"""The time that services stamp on what they write: ``timezone.now()``, except inside
``at(moment)``, which the demo loader uses to replay its history at the past times it tells
(see docs/audit.md, "Back-dated demo history"). Nothing else sets it.

Rows take it through ``default=clock.now`` (a creation time) and ``UpdatedAtField`` (a last
change), never ``auto_now``, which reads the wall clock: a back-dated change would say "today"
while its audit event says when it happened.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime

from django.db import models
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


class UpdatedAtField(models.DateTimeField):
    """The time of a row's last change, from ``now()``: stamped on every save (and on a
    ``save(update_fields=[...])`` that names it), as ``auto_now`` would from the wall clock.
    ``None`` on an instance never saved."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("editable", False)
        kwargs.setdefault("blank", True)
        super().__init__(*args, **kwargs)

    def pre_save(self, model_instance, add):
        value = now()
        setattr(model_instance, self.attname, value)
        return value
