"""Inventory writes: teams, models (with their card and tags) and versions.

Every service is keyword-only, runs in one transaction, validates with
``full_clean`` and records its audit event in that same transaction.
Stage changes are not made here: they belong to the promotion workflow.
"""

from __future__ import annotations

import math
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils.text import slugify

from registry.choices import HIGH_RISK_FLOOR_DAYS, RESERVED_COLUMNS, FeatureType, PromotionStatus, RiskTier, Stage
from registry.classes import validate_classes
from registry.models import MODEL_CARD_FIELDS, ModelVersion, PromotionRequest, RegisteredModel, Tag, Team
from registry.models_llm import LLM_PART_NAMES
from registry.rules import can_change_model, can_change_risk_tier, can_register_model, is_admin
from registry.sensitive import SCHEMA_KEYS, schema_entry_errors

from .audit import AuditContext, audit_record, diff, model_snapshot
from .llm_versions import llm_audit_summary, llm_duplicate_check, llm_parts_for_model, llm_version_store
from .stages import PromotionConflict

MODEL_FIELDS = ["name", "kind", "owner", "team", *MODEL_CARD_FIELDS]
MODEL_EDITABLE = ["team", *MODEL_CARD_FIELDS, "tags"]

# A version's fields: what can be edited, what is also given at registration (the schema and
# task type are fixed then), and everything the audit snapshot and the API show.
VERSION_EDITABLE = [
    "description",
    "artifact_uri",
    "source_commit",
    "training_run_id",
    "training_data_ref",
    "training_data_hash",
    "metrics",
]
VERSION_CREATE = [*VERSION_EDITABLE, "feature_schema", "task_type", "classes", "positive_class"]
# What a promotion request is decided on (the gates and the request page read them): frozen
# while the version has a pending request, and for good once one was approved
# (``evidence_check_unchanged``). The feature schema, task type and classes never change.
VERSION_EVIDENCE = [field for field in VERSION_EDITABLE if field != "description"]
VERSION_FIELDS = ["version", "stage", *VERSION_CREATE]

MAX_TAGS = 20
MAX_METRICS = 200
MAX_FEATURES = 2000


# --- validation shared by forms, API and services -------------------------------------------


def validate_metrics(value: Any) -> dict[str, float | int]:
    """Offline metrics: an object of metric name -> finite number."""
    if not isinstance(value, dict):
        raise ValidationError({"metrics": 'Metrics must be a JSON object of name -> number, e.g. {"roc_auc": 0.91}.'})
    if len(value) > MAX_METRICS:
        raise ValidationError({"metrics": f"At most {MAX_METRICS} metrics."})
    errors = []
    for name, number in value.items():
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            errors.append(f"Metric name {name!r} must be a non-empty string of at most 100 characters.")
        elif isinstance(number, bool) or not isinstance(number, (int, float)):
            errors.append(f"Metric '{name}' must be a number, got {type(number).__name__}.")
        elif not math.isfinite(number):
            errors.append(f"Metric '{name}' must be a finite number (NaN and infinity are refused).")
    if errors:
        raise ValidationError({"metrics": errors})
    return value


# What a registered version must name: the artifact, or the commit or run that trained it.
VERSION_REFERENCE_FIELDS = ("artifact_uri", "source_commit", "training_run_id")


def validate_version_reference(values: dict[str, Any]) -> None:
    """A version registered through the API or the form names what was trained: at least one of
    ``VERSION_REFERENCE_FIELDS`` is non-blank (an empty body registers nothing). Internal
    callers (the MLflow sync, benchmarks) copy what their source has and are not held to it."""
    if not any(str(values.get(field) or "").strip() for field in VERSION_REFERENCE_FIELDS):
        message = "Give the artifact URI, the source commit or the training run id (at least one)."
        raise ValidationError(dict.fromkeys(VERSION_REFERENCE_FIELDS, message))


def validate_feature_schema(value: Any) -> list[dict[str, str]]:
    """Feature schema: a list of {"name": str, "type": "numeric"|"categorical"} with unique names,
    none of them a row's own column (``RESERVED_COLUMNS``); optionally "sensitive": bool and
    "use": "input"|"monitoring" (registry/sensitive.py)."""
    example = '[{"name": "age", "type": "numeric"}, {"name": "plan", "type": "categorical"}]'
    if not isinstance(value, list):
        raise ValidationError({"feature_schema": f"Feature schema must be a JSON list, e.g. {example}."})
    if len(value) > MAX_FEATURES:
        raise ValidationError({"feature_schema": f"At most {MAX_FEATURES} features."})
    errors, seen = [], set()
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            errors.append(f"Item {i} must be an object with 'name' and 'type'.")
            continue
        extra = sorted(set(item) - SCHEMA_KEYS)
        if extra:
            errors.append(f"Item {i} has unknown key(s): {', '.join(map(str, extra))}.")
        name, ftype = item.get("name"), item.get("type")
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            errors.append(f"Item {i} needs a non-empty string 'name' (at most 200 characters).")
        elif name in seen:
            errors.append(f"Feature name '{name}' appears more than once.")
        elif name in RESERVED_COLUMNS:
            reserved = ", ".join(RESERVED_COLUMNS)
            errors.append(f"Feature name '{name}' is reserved for the prediction row's own columns ({reserved}).")
        else:
            seen.add(name)
        if ftype not in FeatureType.values:
            errors.append(f"Item {i} 'type' must be one of {', '.join(FeatureType.values)}, got {ftype!r}.")
        errors.extend(schema_entry_errors(i, item))  # "sensitive" / "use" (registry/sensitive.py)
    if errors:
        raise ValidationError({"feature_schema": errors})
    return value


def normalise_tag_names(names: Any) -> list[str]:
    """Tag names as a list of slugs (``"Fraud Risk"`` -> ``fraud-risk``), de-duplicated and sorted."""
    if isinstance(names, str):
        names = [n for n in names.split(",")]
    if not isinstance(names, (list, tuple)):
        raise ValidationError({"tags": "Tags must be a list of names."})
    out = set()
    for raw in names:
        if not isinstance(raw, str):
            raise ValidationError({"tags": f"Tag {raw!r} must be a string."})
        if not raw.strip():
            continue
        slug = slugify(raw.strip())
        if not slug or len(slug) > 50:
            raise ValidationError({"tags": f"Tag '{raw}' must contain letters or digits (at most 50 characters)."})
        out.add(slug)
    if len(out) > MAX_TAGS:
        raise ValidationError({"tags": f"At most {MAX_TAGS} tags."})
    return sorted(out)


def _set_tags(model: RegisteredModel, names: list[str]) -> None:
    existing = {t.name: t for t in Tag.objects.filter(name__in=names)}
    missing = [n for n in names if n not in existing]
    if missing:
        Tag.objects.bulk_create([Tag(name=n) for n in missing], ignore_conflicts=True)
        existing = {t.name: t for t in Tag.objects.filter(name__in=names)}
    model.tags.set([existing[n] for n in names])


def _tag_names(model: RegisteredModel) -> list[str]:
    return sorted(model.tags.values_list("name", flat=True))


def _check_team(actor, team: Team | None) -> Team:
    if team is None:
        teams = list(actor.teams.all()[:2]) if actor.is_authenticated else []
        if len(teams) == 1:
            return teams[0]
        raise ValidationError({"team": "Choose the team that owns this model."})
    if not is_admin(actor) and not team.members.filter(pk=actor.pk).exists():
        raise ValidationError({"team": f"You are not a member of team '{team.slug}'."})
    return team


# --- teams ----------------------------------------------------------------------------------


@transaction.atomic
def team_create(
    *, name: str, slug: str = "", description: str = "", members=None, actor, context: AuditContext
) -> Team:
    """Create a team (admins only), with its first ``members`` when given (named in the event)."""
    if not is_admin(actor):
        raise PermissionDenied("Only administrators create teams.")
    team = Team(name=name, slug=slug or slugify(name), description=description)
    team.full_clean()
    team.save()
    after = {"name": team.name, "slug": team.slug, "description": team.description}
    if members is not None:
        team.members.set(members)
        after["members"] = sorted(team.members.values_list("username", flat=True))
    audit_record(actor=actor, action="team.created", obj=team, context=context, after=after)
    return team


# --- models ---------------------------------------------------------------------------------


@transaction.atomic
def model_create(
    *,
    actor,
    context: AuditContext,
    name: str,
    kind: str = "ml",
    team: Team | None = None,
    description: str = "",
    risk_tier: str = "medium",
    ai_act_category: str = "",
    intended_use: str = "",
    limitations: str = "",
    retrain_cadence_days: int | None = None,
    primary_metric: str = "",
    primary_metric_higher_is_better: bool = True,
    time_zone: str = "",
    tags: list[str] | None = None,
) -> RegisteredModel:
    """Register a model owned by ``actor`` in one of the actor's teams."""
    if not can_register_model(actor):
        raise PermissionDenied("You may not register models (you need to belong to a team).")
    team = _check_team(actor, team)
    tag_names = normalise_tag_names(tags or [])
    model = RegisteredModel(
        name=name,
        kind=kind,
        owner=actor,
        team=team,
        description=description,
        risk_tier=risk_tier,
        ai_act_category=ai_act_category,
        intended_use=intended_use,
        limitations=limitations,
        retrain_cadence_days=retrain_cadence_days,
        primary_metric=primary_metric,
        primary_metric_higher_is_better=primary_metric_higher_is_better,
        time_zone=time_zone,
        created_by=actor,
    )
    model.full_clean()
    try:
        with transaction.atomic():
            model.save()
    except IntegrityError as exc:  # a concurrent registration of the same name
        raise ValidationError({"name": f"A model named '{name}' already exists."}) from exc
    _set_tags(model, tag_names)
    after = model_snapshot(model, MODEL_FIELDS)
    after["tags"] = tag_names
    audit_record(actor=actor, action="model.created", obj=model, context=context, after=after)
    return model


@transaction.atomic
def model_update(*, model: RegisteredModel, actor, context: AuditContext, changes: dict[str, Any]) -> RegisteredModel:
    """Edit a model's card, team or tags; its risk tier (admins only). The name is permanent."""
    if not can_change_model(actor, model):
        raise PermissionDenied("Only the model's owner or an administrator may edit it.")
    unknown = sorted(set(changes) - set(MODEL_EDITABLE))
    if unknown:
        raise ValidationError({"non_field_errors": [f"These fields cannot be changed: {', '.join(unknown)}."]})
    model = RegisteredModel.objects.select_for_update().get(pk=model.pk)
    if changes.get("risk_tier", model.risk_tier) != model.risk_tier:
        _check_risk_tier_change(actor, model, changes["risk_tier"])
    _check_decision_fields_unchanged(model, changes)
    before = model_snapshot(model, MODEL_FIELDS)
    before["tags"] = _tag_names(model)
    changes = dict(changes)
    tag_names = normalise_tag_names(changes.pop("tags")) if "tags" in changes else None
    if "team" in changes and changes["team"] != model.team:
        changes["team"] = _check_team(actor, changes["team"])
    for field, value in changes.items():
        setattr(model, field, value)
    model.full_clean()
    after = model_snapshot(model, MODEL_FIELDS)
    after["tags"] = tag_names if tag_names is not None else before["tags"]
    b, a = diff(before, after)
    if not a:  # no value differs: no save (updated_at stays), no audit event, no cache bump
        return model
    model.save()
    if "tags" in a:
        _set_tags(model, tag_names)
    audit_record(actor=actor, action="model.updated", obj=model, context=context, before=b, after=a)
    return model


# What a pending request is judged by that the model itself holds: the primary metric and its
# direction (the metric gate, the page's better/worse colours) and the risk tier (whose policy the
# request's snapshot froze, and the step-up).
DECISION_FIELDS = ("primary_metric", "primary_metric_higher_is_better", "risk_tier")


def _check_decision_fields_unchanged(model: RegisteredModel, changes: dict[str, Any]) -> None:
    """``DECISION_FIELDS`` cannot change while a promotion request of the model is pending: a new
    primary metric would turn a red gate green under the reviewer's eyes, and a raised risk tier
    would leave the request under the laxer policy it was opened with. Raises ``PromotionConflict``
    (a 409) naming the request. The caller holds the model's row lock, which ``promotion_request``
    also takes."""
    changed = sorted(f for f in DECISION_FIELDS if f in changes and changes[f] != getattr(model, f))
    if not changed:
        return
    pending = (
        PromotionRequest.objects.filter(version__model=model, status=PromotionStatus.PENDING)
        .select_related("version")
        .order_by("pk")
        .first()
    )
    if pending is None:
        return
    raise PromotionConflict(
        f"{model.name} has a pending promotion request (#{pending.pk}: v{pending.version.version} to "
        f"{pending.target_stage}) judged by its primary metric and its risk tier's policy, which cannot change "
        f"until the request is decided or cancelled: {', '.join(changed)}.",
        {"pending_request": pending.pk, "fields": changed},
    )


def _check_risk_tier_change(actor, model: RegisteredModel, tier: str) -> None:
    """Only an admin changes a risk tier (``can_change_risk_tier``). A model becoming high risk
    must already keep its raw data for the floor: a shorter saved retention is refused, naming it
    (a policy without days of its own follows the tier's default, which keeps the floor; lowering
    the tier keeps the stored days, which are above any lower tier's floor)."""
    if not can_change_risk_tier(actor):
        raise PermissionDenied(
            f"Only an administrator may change a model's risk tier ({model.risk_tier} to {tier}): it sets the "
            "approvals a promotion needs, the fairness gate and the retention floor."
        )
    if tier != RiskTier.HIGH:
        return
    kept = (  # monitoring's RetentionPolicy, read through the relation (registry never imports monitoring)
        RegisteredModel.objects.filter(pk=model.pk, retention_policy__raw_days__lt=HIGH_RISK_FLOOR_DAYS)
        .values_list("retention_policy__raw_days", flat=True)
        .first()
    )
    if kept is not None:
        raise ValidationError(
            {
                "risk_tier": f"A high-risk model keeps raw data at least {HIGH_RISK_FLOOR_DAYS} days (EU AI Act "
                f"Art. 19(1) and 26(6)); {model.name}'s retention policy keeps {kept}. Raise its retention to "
                f"{HIGH_RISK_FLOOR_DAYS} days or more first."
            }
        )


# --- versions -------------------------------------------------------------------------------


@transaction.atomic
def version_create(
    *,
    model: RegisteredModel,
    actor,
    context: AuditContext,
    description: str = "",
    artifact_uri: str = "",
    source_commit: str = "",
    training_run_id: str = "",
    training_data_ref: str = "",
    training_data_hash: str = "",
    metrics: dict | None = None,
    feature_schema: list | None = None,
    task_type: str = "binary",
    classes: list | None = None,
    positive_class: str = "",
    **llm_parts: Any,
) -> ModelVersion:
    """Register the model's next version (max + 1, under a lock on the model row), stage ``none``.

    A version of an LLM application takes its parts as keywords (``prompts``, ``llm``,
    ``retrieval``, ``tools``, ``safety``: see registry/services/llm_versions.py), stored with it."""
    if not can_change_model(actor, model):
        raise PermissionDenied("Only the model's owner or an administrator may register versions.")
    ml_fields = {"feature_schema": feature_schema, "training_data_ref": training_data_ref}
    ml_fields |= {"training_data_hash": training_data_hash, "task_type": task_type if task_type != "binary" else ""}
    ml_fields |= {"classes": classes, "positive_class": positive_class}
    parts = llm_parts_for_model(model=model, given=_llm_given(llm_parts), ml_fields=ml_fields)
    metrics = validate_metrics({} if metrics is None else metrics)
    feature_schema = validate_feature_schema([] if feature_schema is None else feature_schema)
    classes, positive_class = validate_classes(task_type, classes, positive_class)
    model = RegisteredModel.objects.select_for_update().get(pk=model.pk)
    content_hash = llm_duplicate_check(model=model, parts=parts) if parts is not None else ""
    last = ModelVersion.objects.filter(model=model).aggregate(m=Max("version"))["m"] or 0
    version = ModelVersion(
        model=model,
        version=last + 1,
        stage=Stage.NONE,
        description=description,
        artifact_uri=artifact_uri,
        source_commit=source_commit,
        training_run_id=training_run_id,
        training_data_ref=training_data_ref,
        training_data_hash=training_data_hash,
        metrics=metrics,
        feature_schema=feature_schema,
        task_type=task_type,
        classes=classes,
        positive_class=positive_class,
        created_by=actor,
    )
    version.full_clean()
    version.save()
    after = model_snapshot(version, VERSION_FIELDS)
    if parts is not None:
        llm_version_store(version=version, parts=parts, content_hash=content_hash)
        after |= llm_audit_summary(parts, content_hash)
    RegisteredModel.objects.filter(pk=model.pk).update(updated_at=version.created_at)
    audit_record(actor=actor, action="version.registered", obj=version, model=model, context=context, after=after)
    return version


def _llm_given(llm_parts: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(llm_parts) - set(LLM_PART_NAMES))
    if unknown:
        raise TypeError(f"version_create() got unexpected keyword argument(s): {', '.join(unknown)}")
    return llm_parts


@transaction.atomic
def version_update(*, version: ModelVersion, actor, context: AuditContext, changes: dict[str, Any]) -> ModelVersion:
    """Edit a version's description, artifact, lineage or metrics. Never its stage."""
    if not can_change_model(actor, version.model):
        raise PermissionDenied("Only the model's owner or an administrator may edit versions.")
    unknown = sorted(set(changes) - set(VERSION_EDITABLE))
    if unknown:
        hint = " Stage changes go through a promotion request." if "stage" in unknown else ""
        if set(unknown) & set(LLM_PART_NAMES):
            hint += " A version's LLM parts are immutable: register a new version instead."
        raise ValidationError({"non_field_errors": [f"These fields cannot be changed: {', '.join(unknown)}.{hint}"]})
    if "metrics" in changes:
        validate_metrics(changes["metrics"])
    version = ModelVersion.objects.select_for_update(of=("self",)).select_related("model").get(pk=version.pk)
    before = model_snapshot(version, VERSION_FIELDS)
    for field, value in changes.items():
        setattr(version, field, value)
    version.full_clean()
    b, a = diff(before, model_snapshot(version, VERSION_FIELDS))
    if not a:  # no value differs: nothing is written
        return version
    evidence_check_unchanged(version, changed=[field for field in VERSION_EVIDENCE if field in a])
    version.save()
    audit_record(actor=actor, action="version.updated", obj=version, context=context, before=b, after=a)
    return version


def evidence_approved_in(version: ModelVersion) -> PromotionRequest | None:
    """The first promotion request that approved ``version``'s evidence (None if none did)."""
    approved = PromotionRequest.objects.filter(
        version=version, status__in=[PromotionStatus.APPROVED, PromotionStatus.APPLIED]
    )
    return approved.order_by("pk").first()


def evidence_check_unchanged(version: ModelVersion, *, changed: list[str]) -> None:
    """The one rule for a version's evidence (``VERSION_EVIDENCE`` and its reference data): it
    cannot change while a promotion request made on it is pending, nor ever once a request for it
    was approved (reviewers signed off on these numbers; the report shows them as approved).
    Raises ``PromotionConflict`` (a 409) naming the request. The caller holds the version's row
    lock, which ``promotion_request`` also takes, so no request opens meanwhile."""
    if not changed:
        return
    approved = evidence_approved_in(version)
    if approved is not None:
        raise PromotionConflict(
            f"{version}'s evidence was approved in promotion request #{approved.pk} (to {approved.target_stage}) "
            f"and is frozen: {', '.join(changed)} cannot change. Register a new version instead.",
            {"approved_request": approved.pk, "fields": changed},
        )
    pending = PromotionRequest.objects.filter(version=version, status=PromotionStatus.PENDING).order_by("pk").first()
    if pending is None:
        return
    raise PromotionConflict(
        f"{version} has a pending promotion request (#{pending.pk} to {pending.target_stage}) made on its "
        f"evidence, which cannot change until the request is decided or cancelled: {', '.join(changed)}. "
        "Cancel the request first, or register a new version.",
        {"pending_request": pending.pk, "fields": changed},
    )
