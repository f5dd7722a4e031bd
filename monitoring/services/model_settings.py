"""A model's one-row settings (its monitoring config, retention policy and cost budget): the
row a change applies to, locked, the refusal of names that are not settings, and the audit
event of a change."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from django.core.exceptions import ValidationError
from django.db.models import Model

from registry.models import RegisteredModel
from registry.services.audit import AuditContext, audit_record, diff, model_snapshot

M = TypeVar("M", bound=Model)


def settings_row_for_update(
    cls: type[M], *, model: RegisteredModel, changes: dict[str, Any], fields: Iterable[str], **defaults: Any
) -> tuple[M, bool]:
    """The model's row of ``cls`` locked for the change, or a new unsaved one with ``defaults``,
    and whether it is new. Names in ``changes`` that are not in ``fields`` are refused first."""
    unknown = sorted(set(changes) - set(fields))
    if unknown:
        raise ValidationError({name: "Unknown setting." for name in unknown})
    row = cls.objects.select_for_update().filter(model=model).first()
    if row is not None:
        return row, False
    return cls(model=model, **defaults), True


def settings_record(
    row: Model, before: dict[str, Any] | None, fields: Iterable[str], *, action: str, actor, context: AuditContext
) -> None:
    """Audit ``action`` on a settings row just saved: all its values when it is new (``before``
    None), only the changed ones (before and after) otherwise, and nothing when none changed."""
    after = model_snapshot(row, list(fields))
    old, new = (None, after) if before is None else diff(before, after)
    if new:
        audit_record(actor=actor, action=action, context=context, obj=row, model=row.model, before=old, after=new)
