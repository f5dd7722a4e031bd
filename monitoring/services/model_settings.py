"""A model's one-row settings (its monitoring config, retention policy and cost budget): the
row a change applies to, locked, and the refusal of names that are not settings."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from django.core.exceptions import ValidationError
from django.db.models import Model

from registry.models import RegisteredModel

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
