"""MLflow's prompt registry, governed like its models: each prompt becomes a portal model of kind
``llm_app`` and each prompt version a portal version whose ``prompts`` part holds its template.

MLflow stores a prompt as a registered model tagged ``mlflow.prompt.is_prompt = true``; each
version carries its template in the tag ``mlflow.prompt.text`` (a string, or for a chat prompt a
JSON list of ``{"role", "content"}`` messages), its type in ``_mlflow_prompt_type`` and, when
the author gave one, its model configuration in ``_mlflow_prompt_model_config`` (JSON:
``provider``, ``model_name`` and parameters such as ``temperature`` and ``max_tokens``).

- A text prompt is one portal prompt named after the MLflow prompt; a chat prompt is one portal
  prompt per message, named by its role (``user``, ``user-2``... when a role repeats).
- ``llm``: the model configuration's provider and model name (``"unspecified"`` when missing) and
  its other valid values as parameters; without a model configuration, ``PLACEHOLDER_LLM``
  (provider and model ``"unspecified"``, no parameters): the owner registers a complete version
  in the portal when the hosted model is known. ``safety`` is empty (MLflow has none).
- Import is idempotent (``MlflowModelLink``/``MlflowVersionLink``, as for models): a second
  sync writes nothing. A prompt version whose parts equal an earlier version's is not imported
  (an LLM version is its parts). On first import, the version behind the server's alias is
  adopted as production.
- Write-back: an approved promotion to production moves the prompt's alias in MLflow through the
  models' write-back (``mlflow_writeback``: the links are the same), and an alias moved behind
  the portal's back opens an ``MlflowAliasViolation`` as for models.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from registry.choices import ModelKind
from registry.mlflow_client import MlflowRest, MlflowUnavailable, tags_dict
from registry.models import MlflowModelLink, MlflowServer, MlflowVersionLink

from .audit import AuditContext
from .inventory import version_create
from .llm_versions import EMPTY_SAFETY, PLACEHOLDER_LLM, DuplicateLLMVersion

logger = logging.getLogger(__name__)

IS_PROMPT_TAG = "mlflow.prompt.is_prompt"
PROMPT_TEXT_TAG = "mlflow.prompt.text"
PROMPT_TYPE_TAG = "_mlflow_prompt_type"
PROMPT_MODEL_CONFIG_TAG = "_mlflow_prompt_model_config"


def is_prompt(remote: dict[str, Any]) -> bool:
    """Whether an MLflow registered model (or model version) is a prompt."""
    return tags_dict(remote).get(IS_PROMPT_TAG, "").lower() == "true"


def _prompts_part(name: str, tags: dict[str, str]) -> list[dict[str, str]]:
    text = tags.get(PROMPT_TEXT_TAG, "")
    if tags.get(PROMPT_TYPE_TAG) != "chat":
        return [{"name": name[:100], "template": text}]
    try:
        messages = json.loads(text)
    except ValueError:
        return [{"name": name[:100], "template": text}]
    prompts, seen = [], {}
    for message in messages if isinstance(messages, list) else []:
        if not isinstance(message, dict):
            continue
        role = str(message.get("role") or "message")[:90]
        seen[role] = seen.get(role, 0) + 1
        content = message.get("content", "")
        template = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
        prompts.append({"name": role if seen[role] == 1 else f"{role}-{seen[role]}", "template": template})
    return prompts or [{"name": name[:100], "template": text}]


def _llm_part(tags: dict[str, str]) -> dict[str, Any]:
    try:
        config = json.loads(tags[PROMPT_MODEL_CONFIG_TAG])
    except (KeyError, ValueError):
        config = None
    if not isinstance(config, dict):
        return dict(PLACEHOLDER_LLM, parameters={})
    parameters = {
        key: value
        for key, value in config.items()
        if key not in ("provider", "model_name", "model")
        and (value is None or isinstance(value, (bool, int, float, str)))
        and (not isinstance(value, float) or value == value and abs(value) != float("inf"))
    }
    return {
        "provider": str(config.get("provider") or "unspecified")[:100],
        "model": str(config.get("model_name") or config.get("model") or "unspecified")[:200],
        "parameters": parameters,
    }


def prompt_version_fields(name: str, version: dict[str, Any]) -> dict[str, Any]:
    """``version_create``'s keywords for one MLflow prompt version (its parts and description)."""
    tags = tags_dict(version)
    return {
        "description": (version.get("description") or "")[:5000],
        "prompts": _prompts_part(name, tags),
        "llm": _llm_part(tags),
        "safety": dict(EMPTY_SAFETY, rules=[], blocked_topics=[]),
    }


def _prompt_model(*, server: MlflowServer, remote: dict[str, Any], context: AuditContext, summary) -> MlflowModelLink:
    from .mlflow_sync import model_link_create, unlinked_model

    model = unlinked_model(remote["name"])
    if model is not None and not model.is_llm_app:
        raise ValidationError(f"Portal model '{model.name}' exists and is not an LLM application: prompt not imported.")
    default = f"Prompt '{remote['name']}' of MLflow's prompt registry ({server.name})."
    return model_link_create(
        server=server,
        remote=remote,
        model=model,
        synced_tags={},
        context=context,
        summary=summary,
        kind=ModelKind.LLM_APP,
        description=remote.get("description", "") or default,
    )


@transaction.atomic
def _import_prompt(
    *, server: MlflowServer, remote: dict[str, Any], versions: list[dict[str, Any]], context: AuditContext, summary
) -> MlflowModelLink:
    from .mlflow_sync import adopt_production

    link = MlflowModelLink.objects.select_related("model").filter(server=server, mlflow_name=remote["name"]).first()
    first_import = link is None
    if link is None:
        link = _prompt_model(server=server, remote=remote, context=context, summary=summary)
    known = set(link.versions.values_list("mlflow_version", flat=True))
    for remote_version in versions:
        number = str(remote_version["version"])
        if number in known:
            continue
        fields = prompt_version_fields(remote["name"], remote_version)
        try:
            with transaction.atomic():
                version = version_create(model=link.model, actor=link.model.owner, context=context, **fields)
        except DuplicateLLMVersion as exc:  # the same parts as an earlier prompt version: nothing new
            logger.info("MLflow prompt %s v%s repeats portal v%s", remote["name"], number, exc.existing)
            continue
        MlflowVersionLink.objects.create(version=version, model_link=link, mlflow_version=number)
        summary.versions_created += 1
    if first_import:
        adopt_production(link=link, remote=remote, context=context)
    return link


def mlflow_prompts_sync(*, server: MlflowServer, client: MlflowRest, context: AuditContext, summary) -> None:
    """Import the server's prompts (within its search filter) and check their aliases; errors are
    added to ``summary`` (one prompt failing does not stop the others)."""
    from .mlflow_sync import _check_alias

    try:
        remote_prompts = client.prompts(server.search_filter)
    except MlflowUnavailable as exc:
        summary.errors.append(f"prompts: {exc}")
        return
    for remote in remote_prompts:
        if not is_prompt(remote):
            continue
        try:
            versions = [v for v in client.prompt_versions(remote["name"]) if is_prompt(v)]
        except MlflowUnavailable as exc:
            summary.errors.append(f"{remote['name']}: {exc}")
            break
        try:
            link = _import_prompt(server=server, remote=remote, versions=versions, context=context, summary=summary)
            _check_alias(link=link, remote=remote, context=context, summary=summary)
        except Exception as exc:  # one bad prompt must not stop the others; its transaction rolled back
            logger.exception("MLflow import of prompt %s failed", remote.get("name"))
            summary.errors.append(f"{remote['name']}: {exc}")
