"""Govern an MLflow model registry: import its models and versions, write production
decisions back as an alias, and flag aliases moved behind the portal's back.

- **Import** (``mlflow_sync``): every registered model and version, with the run's
  params, metrics and ``mlflow.source.git.commit`` tag as lineage and offline
  metrics. All HTTP reads for one model happen first; its writes then run in one
  transaction, so a server that fails half-way leaves nothing half-imported.
  A second sync with nothing changed in MLflow writes nothing. Changed
  descriptions and tags are updated through ``model_update`` (audited).
  On first import, the version carrying the production alias is adopted as the
  portal's production version (audited ``stage.changed``, kind ``sync``).
- **Write-back** (``mlflow_writeback``): when the portal's production version of a
  linked model changed after the last write-back, the alias is set on the
  matching MLflow version (audited ``mlflow.alias_set``); failures are recorded
  on the link and retried on the next run.
- **Detection**: after write-back, an alias that points elsewhere than the
  portal's production version opens an ``MlflowAliasViolation`` (audited
  ``mlflow.unapproved_alias_change``, webhook event ``alert.mlflow_unapproved_alias``
  from the same payload); it resolves when the alias is back where governance put it.
  Opening or resolving one queues the model's health evaluation at once, by task name
  (``monitoring.tasks.health_evaluate``), so the governance alert appears now rather
  than at the next health sweep; the registry never imports the monitoring app.

All HTTP goes through ``registry.mlflow_client`` and so through the outbound-URL policy.
"""

from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from celery import current_app
from django.db import transaction
from django.utils.text import slugify

from mlops_portal import clock
from mlops_portal.queue import enqueue_on_commit
from registry.choices import Stage, TaskType
from registry.limits import CARD_TEXT_MAX_LENGTH, RESERVED_MODEL_NAMES
from registry.mlflow_client import MlflowRest, MlflowUnavailable, alias_version, tags_dict
from registry.models import (
    MlflowAliasViolation,
    MlflowModelLink,
    MlflowServer,
    MlflowVersionLink,
    RegisteredModel,
    StageTransition,
)

from .audit import AuditContext, audit_record
from .inventory import model_create, model_update, version_create
from .stages import stage_move
from .webhooks import event_record

logger = logging.getLogger(__name__)

REGRESSION_METRICS = {"rmse", "mae", "mse", "r2", "mape"}
HEALTH_TASK = "monitoring.tasks.health_evaluate"  # by name: registry never imports monitoring


@dataclass
class SyncSummary:
    models_created: int = 0
    models_updated: int = 0
    versions_created: int = 0
    aliases_written: int = 0
    violations_opened: int = 0
    violations_resolved: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(v for k, v in asdict(self).items() if k != "errors")


def portal_name(mlflow_name: str) -> str:
    """MLflow names are free text; portal names are slugs."""
    name = re.sub(r"[^a-z0-9_-]+", "-", mlflow_name.lower()).strip("-_")[:100] or "model"
    return f"{name}-model" if name in RESERVED_MODEL_NAMES else name


def portal_tags(tags: dict[str, str]) -> list[str]:
    """MLflow key/value tags as portal tag slugs (``key`` or ``key-value``); MLflow's own tags skipped."""
    names = []
    for key, value in sorted(tags.items()):
        if key.startswith("mlflow."):
            continue
        text = key if value in ("", "true", "True") else f"{key}-{value}"
        slug = slugify(text)[:50]
        if slug:
            names.append(slug)
    return sorted(set(names))[:20]


def remote_description(item: dict[str, Any]) -> str:
    """An MLflow model's or version's description, cut to what a card holds (``CARD_TEXT_MAX_LENGTH``)."""
    return (item.get("description") or "")[:CARD_TEXT_MAX_LENGTH]


def _lineage(version: dict[str, Any], run: dict[str, Any]) -> dict[str, Any]:
    data = run.get("data", {}) if run else {}
    params = {p["key"]: p.get("value", "") for p in data.get("params", []) or []}
    run_tags = {t["key"]: t.get("value", "") for t in data.get("tags", []) or []}
    metrics: dict[str, float] = {}
    for metric in data.get("metrics", []) or []:
        value = metric.get("value")
        if isinstance(value, (int, float)) and value == value and abs(value) != float("inf"):
            metrics[metric["key"]] = value
    inputs = (run.get("inputs") or {}).get("dataset_inputs") or []
    dataset = inputs[0].get("dataset", {}) if inputs else {}
    task_type = params.get("task_type") or version.get("tags_dict", {}).get("task_type", "")
    if task_type not in TaskType.values:
        task_type = TaskType.REGRESSION if REGRESSION_METRICS & set(metrics) else TaskType.BINARY
    return {
        "description": remote_description(version),
        "artifact_uri": (version.get("source") or "")[:500],
        "source_commit": run_tags.get("mlflow.source.git.commit", "")[:64],
        "training_run_id": (version.get("run_id") or "")[:100],
        "training_data_ref": (params.get("training_data") or dataset.get("source") or dataset.get("name") or "")[:500],
        "training_data_hash": (params.get("training_data_hash") or dataset.get("digest") or "")[:128],
        "metrics": metrics,
        "task_type": task_type,
    }


def unlinked_model(mlflow_name: str) -> RegisteredModel | None:
    """The portal model of this MLflow name that nothing is linked to yet (a first import links it)."""
    return RegisteredModel.objects.filter(name=portal_name(mlflow_name), mlflow_link__isnull=True).first()


def model_link_create(
    *,
    server: MlflowServer,
    remote: dict[str, Any],
    model: RegisteredModel | None,
    synced_tags: dict[str, str],
    context: AuditContext,
    summary: SyncSummary,
    **create_fields: Any,
) -> MlflowModelLink:
    """Link the MLflow entry ``remote`` (a registered model or a prompt) to ``model``; without one,
    to a portal model registered for it (``model_create`` with ``create_fields``, owned by the
    server's default owner, in its team)."""
    if model is None:
        name = portal_name(remote["name"])
        model = model_create(actor=server.default_owner, context=context, name=name, team=server.team, **create_fields)
        summary.models_created += 1
    description = remote_description(remote)
    return MlflowModelLink.objects.create(
        model=model, server=server, mlflow_name=remote["name"], synced_description=description, synced_tags=synced_tags
    )


def adopt_production(*, link: MlflowModelLink, remote: dict[str, Any], context: AuditContext) -> None:
    """At first import, the version behind the server's production alias becomes production here
    (unless the model has one already) through the one stage writer (transition, audit event and
    webhook); the alias is already where production is, so nothing is written back."""
    alias = link.server.alias
    target = alias_version(remote, alias)
    if not target or link.model.versions.filter(stage=Stage.PRODUCTION).exists():
        return
    linked = MlflowVersionLink.objects.filter(model_link=link, mlflow_version=target).select_related("version").first()
    if linked is None:
        return
    version = linked.version
    now = clock.now()
    stage_move(
        version=version,
        to_stage=Stage.PRODUCTION,
        kind=StageTransition.Kind.SYNC,
        actor=None,
        reason=f"Adopted from MLflow alias '{alias}' at first import.",
        context=context,
        now=now,
    )
    MlflowVersionLink.objects.filter(version=version).update(
        writeback=MlflowVersionLink.WriteBack.DONE, writeback_at=now
    )


@transaction.atomic
def _import_model(
    *,
    server: MlflowServer,
    remote: dict[str, Any],
    versions: list[dict[str, Any]],
    runs: dict[str, dict[str, Any]],
    context: AuditContext,
    summary: SyncSummary,
) -> MlflowModelLink:
    tags = tags_dict(remote)
    description = remote_description(remote)
    link = MlflowModelLink.objects.select_related("model").filter(server=server, mlflow_name=remote["name"]).first()
    first_import = link is None
    if link is None:
        link = model_link_create(
            server=server,
            remote=remote,
            model=unlinked_model(remote["name"]),
            synced_tags=tags,
            context=context,
            summary=summary,
            description=description,
            tags=portal_tags(tags),
        )
    elif description != link.synced_description or tags != link.synced_tags:
        model = link.model
        changes: dict[str, Any] = {}
        if description != link.synced_description:
            changes["description"] = description
        if tags != link.synced_tags:
            kept = set(model.tags.values_list("name", flat=True)) - set(portal_tags(link.synced_tags))
            changes["tags"] = sorted(kept | set(portal_tags(tags)))
        model_update(model=model, actor=model.owner, context=context, changes=changes)
        link.synced_description, link.synced_tags = description, tags
        link.save(update_fields=["synced_description", "synced_tags"])
        summary.models_updated += 1

    known = set(link.versions.values_list("mlflow_version", flat=True))
    for remote_version in versions:
        number = str(remote_version["version"])
        if number in known:
            continue
        remote_version["tags_dict"] = tags_dict(remote_version)
        fields = _lineage(remote_version, runs.get(remote_version.get("run_id") or "", {}))
        version = version_create(model=link.model, actor=link.model.owner, context=context, **fields)
        MlflowVersionLink.objects.create(version=version, model_link=link, mlflow_version=number)
        summary.versions_created += 1

    if first_import:
        adopt_production(link=link, remote=remote, context=context)
    return link


def _production_link(link: MlflowModelLink) -> MlflowVersionLink | None:
    return (
        MlflowVersionLink.objects.select_related("version")
        .filter(model_link=link, version__stage=Stage.PRODUCTION)
        .first()
    )


def _needs_writeback(version_link: MlflowVersionLink | None) -> bool:
    if version_link is None:
        return False
    changed_at = version_link.version.stage_changed_at
    return version_link.writeback_at is None or (changed_at is not None and version_link.writeback_at < changed_at)


@transaction.atomic
def _check_alias(*, link: MlflowModelLink, remote: dict[str, Any], context: AuditContext, summary: SyncSummary) -> None:
    alias = link.server.alias
    found = alias_version(remote, alias)
    production = _production_link(link)
    if _needs_writeback(production):
        return  # the portal's decision has not reached MLflow yet; the write-back will move the alias
    expected = production.mlflow_version if production else ""
    open_violation = MlflowAliasViolation.objects.select_for_update().filter(model_link=link, resolved_at=None).first()
    if found == expected or (not expected and not found):
        if open_violation:
            open_violation.resolved_at = clock.now()
            open_violation.save(update_fields=["resolved_at"])
            audit_record(
                actor=None,
                action="mlflow.alias_violation_resolved",
                obj=open_violation,
                model=link.model,
                context=context,
                after={"alias": alias, "version": found},
            )
            summary.violations_resolved += 1
            health_evaluate_on_commit(link.model_id)
        return
    if open_violation and open_violation.found_version == found:
        return
    if open_violation:
        open_violation.resolved_at = clock.now()
        open_violation.save(update_fields=["resolved_at"])
    violation = MlflowAliasViolation.objects.create(
        model_link=link, alias=alias, found_version=found, expected_version=expected
    )
    event_record(
        action="mlflow.unapproved_alias_change",
        event="alert.mlflow_unapproved_alias",
        actor=None,
        obj=violation,
        model=link.model,
        context=context,
        before={"alias": alias, "version": expected},
        payload={
            "kind": "mlflow.unapproved_alias_change",
            "model": link.model.name,
            "mlflow_model": link.mlflow_name,
            "alias": alias,
            "version": found,
            "found_version": found,
            "expected_version": expected,
            "severity": "critical",
        },
    )
    summary.violations_opened += 1
    health_evaluate_on_commit(link.model_id)


def health_evaluate_on_commit(model_id: int) -> None:
    """Queue the model's health evaluation after commit, by task name (the monitoring app
    turns an open alias violation into a critical governance alert)."""
    enqueue_on_commit(current_app.signature(HEALTH_TASK), model_id)


def _record_status(server: MlflowServer, summary: SyncSummary) -> None:
    server.last_sync_at = clock.now()
    server.last_status = MlflowServer.Status.ERROR if summary.errors else MlflowServer.Status.OK
    server.last_error = "\n".join(summary.errors)[:5000]
    server.last_summary = {k: v for k, v in asdict(summary).items() if k != "errors"}
    server.save(update_fields=["last_sync_at", "last_status", "last_error", "last_summary"])


def mlflow_writeback(*, server: MlflowServer, context: AuditContext, client: MlflowRest | None = None) -> int:
    """Move the alias to every production version decided in the portal since the last write-back."""
    client = client or MlflowRest(server.tracking_url, server.token)
    written = 0
    pending = MlflowVersionLink.objects.select_related("version", "model_link").filter(
        model_link__server=server, version__stage=Stage.PRODUCTION
    )
    for version_link in pending:
        if not _needs_writeback(version_link):
            continue
        try:
            client.set_alias(version_link.model_link.mlflow_name, server.alias, version_link.mlflow_version)
        except MlflowUnavailable as exc:
            MlflowVersionLink.objects.filter(pk=version_link.pk).update(
                writeback=MlflowVersionLink.WriteBack.FAILED,
                writeback_attempts=version_link.writeback_attempts + 1,
                writeback_error=str(exc)[:2000],
            )
            raise
        with transaction.atomic():
            MlflowVersionLink.objects.filter(pk=version_link.pk).update(
                writeback=MlflowVersionLink.WriteBack.DONE,
                writeback_attempts=version_link.writeback_attempts + 1,
                writeback_error="",
                writeback_at=clock.now(),
            )
            audit_record(
                actor=None,
                action="mlflow.alias_set",
                obj=version_link.version,
                context=context,
                after={
                    "server": server.name,
                    "mlflow_model": version_link.model_link.mlflow_name,
                    "alias": server.alias,
                    "version": version_link.mlflow_version,
                },
            )
        written += 1
    return written


def mlflow_sync(*, server: MlflowServer, context: AuditContext, progress=None) -> SyncSummary:
    """Write back pending decisions, import new and changed models, then prompts (as LLM
    applications: registry/services/mlflow_prompts.py), check aliases. Never raises for a
    server that is down: the error is recorded on the server and the next run tries again."""
    from .mlflow_prompts import is_prompt, mlflow_prompts_sync

    summary = SyncSummary()
    client = MlflowRest(server.tracking_url, server.token)
    try:
        summary.aliases_written = mlflow_writeback(server=server, context=context, client=client)
        remote_models = client.registered_models(server.search_filter)
    except MlflowUnavailable as exc:
        summary.errors.append(str(exc))
        _record_status(server, summary)
        return summary
    if progress is not None:
        progress.reset(total=len(remote_models))
    for remote in remote_models:
        if is_prompt(remote):  # prompts are imported as LLM applications (mlflow_prompts), never as models
            if progress is not None:
                progress.update(1)
            continue
        try:
            versions = client.model_versions(remote["name"])
            known = set(
                MlflowVersionLink.objects.filter(
                    model_link__server=server, model_link__mlflow_name=remote["name"]
                ).values_list("mlflow_version", flat=True)
            )
            runs = {
                v["run_id"]: client.run(v["run_id"])
                for v in versions
                if v.get("run_id") and str(v["version"]) not in known
            }
        except MlflowUnavailable as exc:
            summary.errors.append(f"{remote['name']}: {exc}")
            break
        try:
            link = _import_model(
                server=server, remote=remote, versions=versions, runs=runs, context=context, summary=summary
            )
            _check_alias(link=link, remote=remote, context=context, summary=summary)
        except Exception as exc:  # one bad model must not stop the others; its transaction rolled back
            logger.exception("MLflow import of %s failed", remote.get("name"))
            summary.errors.append(f"{remote['name']}: {exc}")
        if progress is not None:
            progress.update(1)
    mlflow_prompts_sync(server=server, client=client, context=context, summary=summary)
    _record_status(server, summary)
    return summary
