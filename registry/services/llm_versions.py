"""The parts of an LLM application's version: strict validation, normalisation and storage.

A version of a model of kind ``llm_app`` is made of (``registry.models_llm.LLM_PART_NAMES``):

- ``prompts``: a non-empty list of ``{"name", "template", "variables"?}``; the variables are the
  template's ``{{var}}`` placeholders in order of first appearance (when ``variables`` is given
  it must name exactly those);
- ``llm``: ``{"provider", "model", "parameters"?}``, parameters being name -> finite number,
  boolean, string, null or list of strings (e.g. ``temperature``, ``max_tokens``, ``stop``);
- ``retrieval`` (optional): ``{"name", "version" or "content_hash", "embedding_model"}``;
- ``tools`` (optional): a list of ``{"name", "schema", "description"?}``, the schema a JSON-schema
  object;
- ``safety``: ``{"rules": [...], "blocked_topics": [...]}``, a rule being a string or
  ``{"name", "action"?, "description"?, "threshold"?}``.

Unknown keys, wrong types, duplicate names, NaN/infinity, NUL characters and oversize values are
refused with a ``ValidationError`` naming the part. Normalised parts hash with
``llm_content_hash``: the order of keys never matters. Parts identical to an existing version of
the same model are refused (``DuplicateLLMVersion``, a 409 in the API) naming that version.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from django.core.exceptions import ValidationError

from registry.models_llm import LLM_PART_NAMES, LLMAppVersion, llm_content_hash

MAX_PROMPTS = 50
MAX_TEMPLATE_CHARS = 50_000
MAX_TOOLS = 100
MAX_PARAMETERS = 50
MAX_RULES = 200
MAX_PARTS_CHARS = 500_000  # all parts together, as canonical JSON
MAX_NUMBER = 1e15
NAME_MAX = 100
TEXT_MAX = 1000
TOOL_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*\}\}")
RULE_ACTIONS = {"block", "warn", "redact", "log"}
JSON_SCHEMA_TYPES = {"object", "array", "string", "number", "integer", "boolean", "null"}

# Fields of a version that describe a trained tabular model: an LLM application refuses them.
ML_ONLY_FIELDS = ("feature_schema", "task_type", "classes", "positive_class", "training_data_ref", "training_data_hash")
PLACEHOLDER_LLM = {"provider": "unspecified", "model": "unspecified", "parameters": {}}
EMPTY_SAFETY = {"rules": [], "blocked_topics": []}


class DuplicateLLMVersion(ValidationError):
    """The parts are those of an existing version of the same model (API: 409)."""

    def __init__(self, existing: int, content_hash: str):
        super().__init__(
            f"These parts are identical to version {existing} (content hash {content_hash[:12]}…): "
            "an LLM version is identified by its parts; promote or roll back to that version instead."
        )
        self.existing = existing
        self.content_hash = content_hash


class _Errors:
    """Collects messages per part; ``raise_if_any`` raises one ValidationError naming them."""

    def __init__(self) -> None:
        self.by_part: dict[str, list[str]] = {}

    def add(self, part: str, message: str) -> None:
        self.by_part.setdefault(part, []).append(message)

    def raise_if_any(self) -> None:
        if self.by_part:
            raise ValidationError(self.by_part)


def _text(value: Any, where: str, errors: _Errors, part: str, *, max_len: int, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str):
        errors.add(part, f"{where} must be a string, got {type(value).__name__}.")
        return None
    if required and not value.strip():
        errors.add(part, f"{where} must not be empty.")
        return None
    if len(value) > max_len:
        errors.add(part, f"{where} is longer than {max_len} characters.")
        return None
    if "\x00" in value:
        errors.add(part, f"{where} contains a NUL character (\\u0000).")
        return None
    return value


def _object(value: Any, part: str, allowed: set[str], required: set[str], errors: _Errors, where: str) -> bool:
    if not isinstance(value, dict):
        errors.add(part, f"{where} must be a JSON object, got {type(value).__name__}.")
        return False
    unknown = sorted(str(k) for k in set(value) - allowed)
    if unknown:
        errors.add(part, f"{where} has unknown key(s): {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))}).")
    missing = sorted(required - set(value))
    if missing:
        errors.add(part, f"{where} needs {', '.join(missing)}.")
    return not unknown and not missing


def _objects(value: list, part: str, label: str, allowed: set[str], required: set[str], errors: _Errors):
    """The items of a list part that are objects with the allowed and required keys, each with
    its place (``"<label> <index>"``, for messages); the others are reported."""
    for i, item in enumerate(value):
        where = f"{label} {i}"
        if _object(item, part, allowed, required, errors, where):
            yield where, item


def _repeated(name: str, seen: set[str], part: str, label: str, errors: _Errors) -> bool:
    """Whether ``name`` came earlier in its list (reported); a new one is remembered in ``seen``."""
    if name in seen:
        errors.add(part, f"{label} name '{name}' appears more than once.")
        return True
    seen.add(name)
    return False


def _number_problem(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number (NaN and infinity are refused)"
    if abs(value) > MAX_NUMBER:
        return f"must be at most {MAX_NUMBER:.0e} in absolute value"
    return None


def template_variables(template: str) -> list[str]:
    """The ``{{var}}`` placeholders of a template, in order of first appearance."""
    return list(dict.fromkeys(m.group(1) for m in PLACEHOLDER.finditer(template)))


def _prompts(value: Any, errors: _Errors) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        errors.add("prompts", 'Give at least one prompt: a list of {"name", "template"}.')
        return []
    if len(value) > MAX_PROMPTS:
        errors.add("prompts", f"At most {MAX_PROMPTS} prompts.")
        return []
    out, seen = [], set()
    required = {"name", "template"}
    for where, item in _objects(value, "prompts", "Prompt", required | {"variables"}, required, errors):
        name = _text(item["name"], f"{where} 'name'", errors, "prompts", max_len=NAME_MAX)
        template = _text(item["template"], f"{where} 'template'", errors, "prompts", max_len=MAX_TEMPLATE_CHARS)
        if name is None or template is None or _repeated(name, seen, "prompts", "Prompt", errors):
            continue
        derived = template_variables(template)
        given = item.get("variables")
        if given is not None:
            if not isinstance(given, list) or not all(isinstance(v, str) for v in given):
                errors.add("prompts", f"Prompt '{name}' 'variables' must be a list of strings.")
                continue
            if set(given) != set(derived):
                errors.add(
                    "prompts",
                    f"Prompt '{name}' 'variables' {sorted(set(given))} differ from the template's "
                    f"{{{{placeholders}}}} {sorted(derived)}.",
                )
                continue
        out.append({"name": name, "template": template, "variables": derived})
    return out


def _parameter_value(name: str, value: Any, errors: _Errors) -> bool:
    if value is None or isinstance(value, bool):
        return True
    if isinstance(value, (int, float)):
        problem = _number_problem(value)
        if problem:
            errors.add("llm", f"Parameter '{name}' {problem}.")
        return problem is None
    if isinstance(value, str):
        return _text(value, f"Parameter '{name}'", errors, "llm", max_len=TEXT_MAX, required=False) is not None
    if isinstance(value, list) and len(value) <= 20:
        return all(
            _text(v, f"Parameter '{name}' item", errors, "llm", max_len=TEXT_MAX, required=False) is not None
            for v in value
        )
    errors.add("llm", f"Parameter '{name}' must be a number, boolean, string, null or a list of at most 20 strings.")
    return False


def _llm(value: Any, errors: _Errors) -> dict[str, Any]:
    if not _object(value, "llm", {"provider", "model", "parameters"}, {"provider", "model"}, errors, "llm"):
        return {}
    provider = _text(value["provider"], "llm 'provider'", errors, "llm", max_len=100)
    model = _text(value["model"], "llm 'model'", errors, "llm", max_len=200)
    parameters = value.get("parameters", {})
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, dict):
        errors.add("llm", f"llm 'parameters' must be a JSON object, got {type(parameters).__name__}.")
        return {}
    if len(parameters) > MAX_PARAMETERS:
        errors.add("llm", f"At most {MAX_PARAMETERS} parameters.")
        return {}
    for name, item in parameters.items():
        if _text(name, "A parameter name", errors, "llm", max_len=NAME_MAX) is not None:
            _parameter_value(name, item, errors)
    for name, low, high in (("temperature", 0, 2), ("top_p", 0, 1)):
        item = parameters.get(name)
        if isinstance(item, (int, float)) and not isinstance(item, bool) and not _number_problem(item):
            if not low <= item <= high:
                errors.add("llm", f"Parameter '{name}' must be between {low} and {high}, got {item}.")
    tokens = parameters.get("max_tokens")
    if tokens is not None and (isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 1):
        errors.add("llm", f"Parameter 'max_tokens' must be a positive integer, got {tokens!r}.")
    return {"provider": provider, "model": model, "parameters": dict(parameters)}


def _retrieval(value: Any, errors: _Errors) -> dict[str, Any] | None:
    if value is None:
        return None
    allowed = {"name", "version", "content_hash", "embedding_model"}
    if not _object(value, "retrieval", allowed, {"name", "embedding_model"}, errors, "retrieval"):
        return None
    out: dict[str, Any] = {
        "name": _text(value["name"], "retrieval 'name'", errors, "retrieval", max_len=200),
        "embedding_model": _text(
            value["embedding_model"], "retrieval 'embedding_model'", errors, "retrieval", max_len=200
        ),
    }
    version, digest = value.get("version"), value.get("content_hash")
    if version is None and digest is None:
        errors.add("retrieval", "retrieval needs 'version' or 'content_hash' (the index it reads).")
    if version is not None:
        if isinstance(version, int) and not isinstance(version, bool) and _number_problem(version) is None:
            version = str(version)  # 3 and "3" name the same index version (and hash alike)
        out["version"] = _text(version, "retrieval 'version'", errors, "retrieval", max_len=200)
    if digest is not None:
        out["content_hash"] = _text(digest, "retrieval 'content_hash'", errors, "retrieval", max_len=200)
    return out


def _schema_problem(schema: Any) -> str | None:
    if not isinstance(schema, dict):
        return f"must be a JSON-schema object, got {type(schema).__name__}"
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if kind is not None else []
    if not all(isinstance(k, str) and k in JSON_SCHEMA_TYPES for k in kinds):
        return f"'type' must be one of {', '.join(sorted(JSON_SCHEMA_TYPES))} (or a list of them)"
    if "properties" in schema and not isinstance(schema["properties"], dict):
        return "'properties' must be an object"
    if "required" in schema and not (
        isinstance(schema["required"], list) and all(isinstance(r, str) for r in schema["required"])
    ):
        return "'required' must be a list of property names"
    return None


def _tools(value: Any, errors: _Errors) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_TOOLS:
        errors.add("tools", f'tools must be a list of at most {MAX_TOOLS} {{"name", "schema"}} objects.')
        return []
    out, seen = [], set()
    for where, item in _objects(value, "tools", "Tool", {"name", "schema", "description"}, {"name", "schema"}, errors):
        name = item["name"]
        if not isinstance(name, str) or not TOOL_NAME.match(name):
            errors.add("tools", f"{where} 'name' must be 1-64 letters, digits, '_', '.' or '-', got {name!r}.")
            continue
        if _repeated(name, seen, "tools", "Tool", errors):
            continue
        if problem := _schema_problem(item["schema"]):
            errors.add("tools", f"Tool '{name}' schema {problem}.")
            continue
        tool = {"name": name, "schema": item["schema"]}
        if item.get("description") is not None:
            where = f"Tool '{name}' description"
            tool["description"] = _text(item["description"], where, errors, "tools", max_len=TEXT_MAX)
        out.append(tool)
    return out


def _rule(item: Any, i: int, errors: _Errors) -> Any:
    if isinstance(item, str):
        return _text(item, f"Safety rule {i}", errors, "safety", max_len=TEXT_MAX)
    allowed = {"name", "action", "description", "threshold"}
    if not _object(item, "safety", allowed, {"name"}, errors, f"Safety rule {i}"):
        return None
    rule = {"name": _text(item["name"], f"Safety rule {i} 'name'", errors, "safety", max_len=NAME_MAX)}
    if item.get("action") is not None:
        if item["action"] not in RULE_ACTIONS:
            errors.add("safety", f"Safety rule {i} 'action' must be one of {', '.join(sorted(RULE_ACTIONS))}.")
        rule["action"] = item["action"]
    if item.get("description") is not None:
        where = f"Safety rule {i} 'description'"
        rule["description"] = _text(item["description"], where, errors, "safety", max_len=TEXT_MAX)
    threshold = item.get("threshold")
    if threshold is not None:
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or _number_problem(threshold):
            errors.add("safety", f"Safety rule {i} 'threshold' must be a finite number.")
        elif not 0 <= threshold <= 1:
            errors.add("safety", f"Safety rule {i} 'threshold' must be between 0 and 1.")
        rule["threshold"] = threshold
    return rule


def rule_name(rule: Any) -> str:
    return rule if isinstance(rule, str) else str(rule.get("name", ""))


def _safety(value: Any, errors: _Errors) -> dict[str, Any]:
    if not _object(value, "safety", {"rules", "blocked_topics"}, set(), errors, "safety"):
        return {}
    rules, topics = value.get("rules", []), value.get("blocked_topics", [])
    if not isinstance(rules, list) or len(rules) > MAX_RULES:
        errors.add("safety", f"safety 'rules' must be a list of at most {MAX_RULES} rules.")
        rules = []
    if not isinstance(topics, list) or len(topics) > MAX_RULES:
        errors.add("safety", f"safety 'blocked_topics' must be a list of at most {MAX_RULES} strings.")
        topics = []
    out_rules = [_rule(item, i, errors) for i, item in enumerate(rules)]
    names = [rule_name(r) for r in out_rules if r]
    if len(names) != len(set(names)):
        errors.add("safety", "Safety rule names must be unique.")
    out_topics = [_text(t, f"Blocked topic {i}", errors, "safety", max_len=200) for i, t in enumerate(topics)]
    if len(set(filter(None, out_topics))) != len(out_topics):
        errors.add("safety", "Blocked topics must be unique.")
    return {"rules": out_rules, "blocked_topics": out_topics}


def llm_parts_clean(given: dict[str, Any]) -> dict[str, Any]:
    """Validate and normalise the five parts (``prompts`` and ``llm`` required, ``safety`` given
    as an object, empty lists allowed); raises ``ValidationError`` naming every faulty part."""
    errors = _Errors()
    for name in ("prompts", "llm", "safety"):
        if given.get(name) is None:
            errors.add(name, f"An LLM application's version needs '{name}'.")
    errors.raise_if_any()
    parts = {
        "prompts": _prompts(given["prompts"], errors),
        "llm": _llm(given["llm"], errors),
        "retrieval": _retrieval(given.get("retrieval"), errors),
        "tools": _tools(given.get("tools"), errors),
        "safety": _safety(given["safety"], errors),
    }
    errors.raise_if_any()
    try:
        size = len(json.dumps(parts, allow_nan=False, ensure_ascii=False))
    except ValueError as exc:  # a NaN deep inside a tool's schema
        raise ValidationError({"tools": f"Tool schemas must hold finite numbers only ({exc})."}) from exc
    if size > MAX_PARTS_CHARS:
        raise ValidationError({"prompts": f"The parts together are larger than {MAX_PARTS_CHARS} characters."})
    return parts


def llm_parts_for_model(*, model, given: dict[str, Any], ml_fields: dict[str, Any]) -> dict[str, Any] | None:
    """The cleaned parts for a new version of ``model``, or None for an ML model.

    An ML model refuses any LLM part, an LLM application refuses the ML-only fields it was given
    (``ml_fields``: name -> value, a blank value counting as not given), both naming the field."""
    sent = {name: value for name, value in given.items() if value is not None}
    if not model.is_llm_app:
        if sent:
            message = f"Model '{model.name}' is an ML model: LLM parts are for models of kind llm_app."
            raise ValidationError(dict.fromkeys(sorted(sent), message))
        return None
    refused = sorted(name for name, value in ml_fields.items() if value not in (None, "", [], {}))
    if refused:
        message = f"Model '{model.name}' is an LLM application: this field describes a trained tabular model."
        raise ValidationError(dict.fromkeys(refused, message))
    return llm_parts_clean(sent)


def llm_duplicate_check(*, model, parts: dict[str, Any]) -> str:
    """The parts' content hash; raises ``DuplicateLLMVersion`` when a version of ``model`` has it."""
    content_hash = llm_content_hash(parts)
    existing = (
        LLMAppVersion.objects.filter(version__model=model, content_hash=content_hash)
        .values_list("version__version", flat=True)
        .first()
    )
    if existing is not None:
        raise DuplicateLLMVersion(existing, content_hash)
    return content_hash


def llm_version_store(*, version, parts: dict[str, Any], content_hash: str) -> LLMAppVersion:
    """Store the parts of ``version`` (called by ``version_create`` inside its transaction)."""
    return LLMAppVersion.objects.create(
        version=version,
        provider=parts["llm"]["provider"],
        model_id=parts["llm"]["model"],
        content_hash=content_hash,
        **{name: parts[name] for name in LLM_PART_NAMES},
    )


def llm_audit_summary(parts: dict[str, Any], content_hash: str) -> dict[str, Any]:
    """What the version's audit event records of its parts (the parts themselves are immutable)."""
    return {
        "content_hash": content_hash,
        "llm_provider": parts["llm"]["provider"],
        "llm_model": parts["llm"]["model"],
        "prompts": [p["name"] for p in parts["prompts"]],
        "tools": [t["name"] for t in parts["tools"]],
    }
