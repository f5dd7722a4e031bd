"""Reads of LLM applications' versions: the version a page compares with, and the diff of two
versions' parts (prompt text, hosted model and its parameters, tools, retrieval, safety).

``llm_version_diff(version, against)`` returns plain data (lists and dicts) that the version page
renders and the API returns as JSON. Both versions must belong to the same model and have been
read through ``version_get`` (so the caller may see them).
"""

from __future__ import annotations

import difflib
import json
from typing import Any

from registry.choices import Stage
from registry.models import ModelVersion
from registry.services.llm_versions import rule_name


def llm_parts(version: ModelVersion) -> dict[str, Any] | None:
    """The version's parts, or None for a version without them (an ML model's)."""
    llm = getattr(version, "llm", None)
    return llm.parts if llm is not None else None


def llm_version_parts(version: ModelVersion) -> dict[str, Any] | None:
    """What describes an LLM application's version where a tabular model shows its training
    lineage and task: its parts' content hash, hosted model (provider/model) and prompts' names.
    None for an ML model's version; ``{"registered": False}`` for an LLM application's version
    registered without parts."""
    if not version.model.is_llm_app:
        return None
    llm = getattr(version, "llm", None)
    if llm is None:
        return {"registered": False}
    return {
        "registered": True,
        "content_hash": llm.content_hash,
        "hosted_model": f"{llm.provider}/{llm.model_id}",
        "prompts": [p.get("name") for p in llm.prompts or []],
        "retrieval": retrieval_label(llm.retrieval),
    }


def retrieval_label(retrieval: dict[str, Any] | None) -> str:
    """``name@version (embedding model)`` of a retrieval part, or "none"."""
    if not retrieval:
        return "none"
    ref = retrieval.get("version") or retrieval.get("content_hash") or ""
    return f"{retrieval.get('name')}@{ref} ({retrieval.get('embedding_model')})"


def llm_display(parts: dict[str, Any]) -> dict[str, Any]:
    """What the version page shows of the parts, flattened for the template."""
    return {
        "hosted_model": f"{parts['llm']['provider']}/{parts['llm']['model']}",
        "retrieval": retrieval_label(parts["retrieval"]),
        "rules": [rule_name(r) for r in (parts["safety"] or {}).get("rules", [])],
    }


def llm_comparison_base(version: ModelVersion) -> ModelVersion | None:
    """What the version page compares with: the production version, or, for the production
    version itself (or when none is in production), the latest earlier version with parts."""
    others = ModelVersion.objects.filter(model_id=version.model_id, llm__isnull=False).exclude(pk=version.pk)
    production = others.filter(stage=Stage.PRODUCTION).select_related("llm", "model").first()
    if production is not None:
        return production
    return others.filter(version__lt=version.version).select_related("llm", "model").order_by("-version").first()


def _text_diff(old: str, new: str, name: str, old_label: str, new_label: str) -> list[str]:
    lines = difflib.unified_diff(
        old.splitlines(), new.splitlines(), f"{name} ({old_label})", f"{name} ({new_label})", lineterm="", n=2
    )
    return list(lines)


def _prompts_diff(old: list, new: list, old_label: str, new_label: str) -> list[dict[str, Any]]:
    before = {p["name"]: p for p in old}
    after = {p["name"]: p for p in new}
    out = []
    for name in [*after, *(n for n in before if n not in after)]:
        was, now = before.get(name), after.get(name)
        if was is None:
            status = "added"
        elif now is None:
            status = "removed"
        else:
            status = "changed" if was["template"] != now["template"] else "unchanged"
        lines = _text_diff(was["template"] if was else "", now["template"] if now else "", name, old_label, new_label)
        old_vars, new_vars = set((was or {}).get("variables", [])), set((now or {}).get("variables", []))
        out.append(
            {
                "name": name,
                "status": status,
                "diff": lines if status != "unchanged" else [],
                "variables_added": sorted(new_vars - old_vars),
                "variables_removed": sorted(old_vars - new_vars),
            }
        )
    return out


def _change(old: Any, new: Any) -> dict[str, Any] | None:
    return None if old == new else {"old": old, "new": new}


def _llm_diff(old: dict, new: dict) -> dict[str, Any]:
    old_params, new_params = old.get("parameters") or {}, new.get("parameters") or {}
    parameters = []
    for name in sorted(set(old_params) | set(new_params)):
        if name not in old_params:
            parameters.append({"name": name, "status": "added", "old": None, "new": new_params[name]})
        elif name not in new_params:
            parameters.append({"name": name, "status": "removed", "old": old_params[name], "new": None})
        elif old_params[name] != new_params[name]:
            parameters.append({"name": name, "status": "changed", "old": old_params[name], "new": new_params[name]})
    return {
        "provider": _change(old.get("provider"), new.get("provider")),
        "model": _change(old.get("model"), new.get("model")),
        "hosted_model": _change(
            f"{old.get('provider')}/{old.get('model')}", f"{new.get('provider')}/{new.get('model')}"
        ),
        "parameters": parameters,
    }


def _tools_diff(old: list, new: list) -> list[dict[str, Any]]:
    before = {t["name"]: t for t in old}
    after = {t["name"]: t for t in new}
    out = []
    for name in sorted(set(before) | set(after)):
        if name not in before:
            out.append({"name": name, "status": "added", "schema": after[name]["schema"]})
        elif name not in after:
            out.append({"name": name, "status": "removed", "schema": before[name]["schema"]})
        elif before[name] != after[name]:
            old_text = json.dumps(before[name], indent=2, sort_keys=True)
            new_text = json.dumps(after[name], indent=2, sort_keys=True)
            out.append({"name": name, "status": "changed", "diff": _text_diff(old_text, new_text, name, "old", "new")})
    return out


def _safety_diff(old: dict, new: dict) -> dict[str, Any]:
    old_rules = {rule_name(r): r for r in old.get("rules", [])}
    new_rules = {rule_name(r): r for r in new.get("rules", [])}
    old_topics, new_topics = old.get("blocked_topics", []), new.get("blocked_topics", [])
    return {
        "rules_added": [n for n in new_rules if n not in old_rules],
        "rules_removed": [n for n in old_rules if n not in new_rules],
        "rules_changed": [n for n in new_rules if n in old_rules and new_rules[n] != old_rules[n]],
        "topics_added": [t for t in new_topics if t not in old_topics],
        "topics_removed": [t for t in old_topics if t not in new_topics],
    }


def llm_version_diff(version: ModelVersion, against: ModelVersion | None) -> dict[str, Any] | None:
    """The changes from ``against`` to ``version`` (None when either has no LLM parts).

    ``prompts``: per prompt name, ``status`` added/removed/changed/unchanged and a unified text
    diff; ``llm``: provider and model changes (``{"old", "new"}`` or None) and the parameters
    added/removed/changed (``hosted_model``: "provider/model" old and new, or None); ``tools``:
    added/removed/changed; ``retrieval``: ``{"old", "new"}`` or None (and ``retrieval_labels``);
    ``safety``: rules and blocked topics added/removed; ``changed``: whether anything differs."""
    new, old = llm_parts(version), llm_parts(against) if against is not None else None
    if new is None or old is None:
        return None
    old_label, new_label = f"v{against.version}", f"v{version.version}"
    result = {
        "version": version.version,
        "against": against.version,
        "against_stage": against.stage,
        "against_hash": against.llm.content_hash,
        "content_hash": version.llm.content_hash,
        "prompts": _prompts_diff(old["prompts"], new["prompts"], old_label, new_label),
        "llm": _llm_diff(old["llm"], new["llm"]),
        "tools": _tools_diff(old["tools"] or [], new["tools"] or []),
        "retrieval": _change(old["retrieval"], new["retrieval"]),
        "retrieval_labels": _change(retrieval_label(old["retrieval"]), retrieval_label(new["retrieval"])),
        "safety": _safety_diff(old["safety"] or {}, new["safety"] or {}),
    }
    result["changed"] = result["content_hash"] != result["against_hash"]
    return result
