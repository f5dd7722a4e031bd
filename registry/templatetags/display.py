"""How pages write values for people (``{% load display %}``): moments in one format with their
zone, stored identifiers as labels, counts with their noun.

- ``utc``: a moment (an aware or naive datetime, or ISO 8601 text) as ``2026-11-28 04:40 UTC``,
  the one date-time format of the pages; a bare date stays a date. Empty stays empty, so
  ``|utc|default:"—"`` works.
- ``object_label``: an audit event's object type (``registry.modelversion``) as its model's name
  (``Model version``).
- ``table_label``: a database table (``monitoring_llmrequest``) as its model's plural name
  (``LLM requests``).
- ``purge_method``: a purge receipt's method (``range_delete``) as what was done (``rows deleted``).
- ``with_status``: the items of a list whose ``status`` is the one given (acknowledged alerts).
- ``humanize``: a stored identifier (``drifted_share_warning``, ``range_delete``) as words
  (``drifted share warning``, ``range delete``), acronyms kept (``llm_latency``: ``LLM latency``).
"""

from __future__ import annotations

import datetime

from django import template
from django.apps import apps
from django.utils.text import capfirst

register = template.Library()

MOMENT_FORMAT = "%Y-%m-%d %H:%M UTC"
# monitoring.services.retention's receipt methods
PURGE_METHODS = {"range_delete": "rows deleted", "partition_drop": "day partition dropped"}
_ACRONYMS = {"llm": "LLM", "id": "id", "api": "API", "url": "URL", "pii": "PII"}


def _as_moment(value):
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            return datetime.date.fromisoformat(text) if len(text) == 10 else datetime.datetime.fromisoformat(text)
        except ValueError:
            return value
    return value


@register.filter
def utc(value) -> str:
    """``2026-11-28 04:40 UTC`` for a moment; a date as ``2026-11-28``; nothing for nothing."""
    value = _as_moment(value)
    if value in (None, ""):
        return ""
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(datetime.UTC)
        return value.strftime(MOMENT_FORMAT)
    if isinstance(value, datetime.date):
        return value.isoformat()
    return str(value)


@register.filter
def humanize(value) -> str:
    """``drifted_share_warning`` → ``drifted share warning``; ``llm_latency`` → ``LLM latency``."""
    if value in (None, ""):
        return ""
    return _words(str(value).replace("_", " "))


def _words(text: str) -> str:
    return " ".join(_ACRONYMS.get(word, word) for word in text.split())


def _model_for_label(label: str):
    try:
        return apps.get_model(label)
    except (LookupError, ValueError):
        return None


@register.filter
def object_label(object_type) -> str:
    """``registry.modelversion`` → ``Model version``; an unknown type as words."""
    model = _model_for_label(str(object_type or ""))
    if model is None:
        return capfirst(humanize(str(object_type or "").rpartition(".")[2]))
    return capfirst(_words(str(model._meta.verbose_name)))


@register.filter
def table_label(table) -> str:
    """``monitoring_llmrequest`` → ``LLM requests``; an unknown table as words."""
    for model in apps.get_models():
        if model._meta.db_table == table:
            return capfirst(_words(str(model._meta.verbose_name_plural)))
    return capfirst(humanize(table))


@register.filter
def purge_method(method) -> str:
    """``range_delete`` → ``rows deleted``; an unknown method as words."""
    return PURGE_METHODS.get(method, humanize(method))


@register.filter
def with_status(items, status: str) -> list:
    """The items whose ``status`` is ``status``: ``alerts|with_status:"acknowledged"``."""
    return [item for item in items or () if getattr(item, "status", None) == status]
