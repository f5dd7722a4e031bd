"""Sensitive attributes in a version's feature schema (EU AI Act Art. 10(5) safeguards).

A schema entry may carry ``"sensitive": true`` and ``"use": "input"`` (default: a model input)
or ``"use": "monitoring"`` (sent with predictions for bias monitoring, not a model input).
Sensitive values are kept apart from ordinary features, never written to the audit log or
exports, and only aggregated groups leave the API.
"""

from __future__ import annotations

from typing import Any

USE_INPUT, USE_MONITORING = "input", "monitoring"
SCHEMA_KEYS = frozenset({"name", "type", "sensitive", "use"})


def schema_entry_errors(i: int, item: dict[str, Any]) -> list[str]:
    """Errors of the ``sensitive`` and ``use`` keys of schema entry ``i``."""
    errors = []
    if "sensitive" in item and not isinstance(item["sensitive"], bool):
        errors.append(f"Item {i} 'sensitive' must be true or false, got {item['sensitive']!r}.")
    if "use" in item and item["use"] not in (USE_INPUT, USE_MONITORING):
        errors.append(f"Item {i} 'use' must be '{USE_INPUT}' or '{USE_MONITORING}', got {item['use']!r}.")
    if item.get("sensitive") is True and item.get("type") == "numeric":
        errors.append(
            f"Item {i} is sensitive and numeric: declare sensitive attributes as categorical groups "
            "(e.g. an age band rather than the age)."
        )
    return errors


def sensitive_attributes(schema: list[dict] | None) -> list[str]:
    """Names of the schema's sensitive attributes, in schema order."""
    return [f["name"] for f in schema or [] if f.get("sensitive") is True]


def input_features(schema: list[dict] | None) -> list[dict]:
    """The entries that are model inputs (``use`` absent or ``input``)."""
    return [f for f in schema or [] if f.get("use", USE_INPUT) == USE_INPUT]


def is_sensitive(schema: list[dict] | None, name: str) -> bool:
    return name in sensitive_attributes(schema)


def ordinary_features(schema: list[dict] | None) -> list[dict]:
    """The entries that are not sensitive: what drift profiles and ``Prediction.features`` hold."""
    return [f for f in schema or [] if f.get("sensitive") is not True]
