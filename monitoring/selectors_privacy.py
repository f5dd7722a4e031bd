"""Reads for privacy officers and auditors: retention policies, erasure requests and the
records of processing (GDPR Art. 30) per model, restricted to what the user may see."""

from __future__ import annotations

import csv
import io
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Prefetch, Q

from mlops_portal import clock
from monitoring.models import (
    ErasureOutcome,
    ErasureOutcomeStatus,
    ErasureRequest,
    GroundTruth,
    Prediction,
    RetentionPolicy,
)
from monitoring.models_retention import ART30_FIELDS, HIGH_RISK_FLOOR_DAYS
from monitoring.services.retention import (
    RAW_DAYS_TIER_DEFAULT,
    effective_raw_days,
    raw_days_source,
    retention_policy_get,
)
from registry.choices import RiskTier
from registry.models import AuditEvent, RegisteredModel
from registry.rules import AUDITOR_GROUP, PRIVACY_GROUP, REVIEWER_GROUP, can_view_privacy

RECORD_COLUMNS = [
    "model",
    "risk_tier",
    "ai_act_category",
    "purpose",
    "data_subject_categories",
    "data_categories",
    "sensitive_attributes",
    "subject_ids_received",
    "recipients",
    "third_country_transfers",
    "not_recorded",
    "raw_days",
    "raw_days_source",
    "legal_hold",
    "legal_hold_reason",
    "legal_hold_article",
    "aggregates_kept",
    "owner",
    "team",
    "team_members",
    "roles_seeing_all_models",
    "controller",
    "data_protection_officer",
    "generated_at",
]
# Art. 30(1)(g): a general description of the technical and organisational security measures
SECURITY_MEASURES = (
    "Data-subject ids are stored only as HMAC-SHA256 under a per-installation key (SUBJECT_KEY), never in clear.",
    "Access follows roles decided on the server: owners and their team see their models; reviewers, auditors, "
    "privacy officers and admins see all of them.",
    "Every change is recorded in an append-only, hash-chained audit log that verifies offline.",
    "Raw predictions and labels leave after the retention period, each purge receipted in the audit log; "
    "a data subject's rows are erased on request unless a legal hold keeps them.",
    "Sensitive attributes are stored apart from features, never profiled or exported; groups under the "
    "minimum size are reported without rates.",
    "API tokens are stored hashed, scoped and expiring; sign-in locks out repeated failures and sensitive "
    "actions need a fresh sign-in.",
)


NOT_RECORDED = "not recorded"  # an Art. 30 entry left empty; "none" is an answer, recorded
SEES_ALL_GROUPS = (REVIEWER_GROUP, AUDITOR_GROUP, PRIVACY_GROUP)
RECEIPTS_SHOWN = 100
ERASURES_SHOWN = 100


def purge_receipts(*, model: RegisteredModel | None = None):
    """The purges' receipts (audit events ``retention.purged``), newest first; one model's if
    given. Callers have already decided the user may see them (the privacy page, a model's
    compliance report)."""
    events = AuditEvent.objects.filter(action="retention.purged")
    return (events.filter(model_id=model.pk) if model is not None else events).order_by("-seq")


def model_erasures(*, model: RegisteredModel) -> tuple[list[ErasureOutcome], int]:
    """The erasure requests that reached this model (its rows of the subject: erased or held),
    newest first, each with the ``seq`` of its ``erasure.completed`` event; the latest
    ``ERASURES_SHOWN`` and how many in all. No subject id: only its hash was ever stored."""
    outcomes = ErasureOutcome.objects.filter(model=model).select_related("request")
    latest = list(outcomes.order_by("-request__requested_at", "-request_id")[:ERASURES_SHOWN])
    # the request's own event, or the later one that erased the rows here when a hold was lifted
    seqs = dict(
        AuditEvent.objects.filter(
            Q(model_id__isnull=True) | Q(model_id=model.pk),
            action="erasure.completed",
            object_type=ErasureRequest._meta.label_lower,
            object_id__in=[str(o.request_id) for o in latest],
        )
        .order_by("seq")
        .values_list("object_id", "seq")
    )
    for outcome in latest:
        outcome.audit_seq = seqs.get(str(outcome.request_id))
    return latest, outcomes.count()


def held_erasure_requests(*, model: RegisteredModel) -> list[int]:
    """The ids of the erasure requests whose rows this model holds under its legal hold."""
    outcomes = ErasureOutcome.objects.filter(model=model, status=ErasureOutcomeStatus.HELD).order_by("request_id")
    return list(outcomes.values_list("request_id", flat=True))


def held_erasures_by_model() -> dict[str, list[int]]:
    """Model name → the ids of the erasure requests whose rows it holds under its legal hold."""
    held: dict[str, list[int]] = {}
    outcomes = ErasureOutcome.objects.filter(status=ErasureOutcomeStatus.HELD).order_by("request_id")
    for name, request_id in outcomes.values_list("model__name", "request_id"):
        held.setdefault(name, []).append(request_id)
    return held


def _raw_days_set(model: RegisteredModel) -> AuditEvent | None:
    """The latest ``retention.changed`` event of the model that set its days (a new policy's
    event holds every field; a change's, only those it changed: a hold or an Art. 30 entry
    saved alone does not name ``raw_days``)."""
    events = AuditEvent.objects.filter(model_id=model.pk, action="retention.changed", after__has_key="raw_days")
    return events.order_by("-seq").only("seq", "timestamp", "actor_name").first()


def model_retention(*, model: RegisteredModel) -> dict[str, Any]:
    """One model's retention for its compliance report: the days applied and where they come
    from (the risk tier's default, or the policy with the latest event that set them in the
    audit chain), the high-risk floor, the legal hold, the latest receipts and how many purges
    there were, and the erasure requests that reached it."""
    policy = retention_policy_get(model=model)  # unsaved, following the tier's default, if never set
    saved = policy.pk is not None
    source = raw_days_source(policy)
    receipts = purge_receipts(model=model)
    erasures, erasure_count = model_erasures(model=model)
    return {
        "raw_days": effective_raw_days(policy),
        "source": source,
        "policy": policy if saved else None,
        "changed": None if source == RAW_DAYS_TIER_DEFAULT else _raw_days_set(model),
        "floor": HIGH_RISK_FLOOR_DAYS if model.risk_tier == RiskTier.HIGH else None,
        "receipts": list(receipts[:RECEIPTS_SHOWN]),
        "purges": receipts.count(),
        "erasures": erasures,
        "erasure_count": erasure_count,
    }


def erasure_request_list(*, user):
    """Erasure requests, newest first (privacy officers, admins and auditors; others none)."""
    if not can_view_privacy(user):
        return ErasureRequest.objects.none()
    outcomes = Prefetch("outcomes", queryset=ErasureOutcome.objects.select_related("model"))
    return ErasureRequest.objects.select_related("requested_by").prefetch_related(outcomes)


def erasure_request_get(*, user, pk: int) -> ErasureRequest:
    return erasure_request_list(user=user).get(pk=pk)


def _schema(model: RegisteredModel) -> list[dict]:
    version = model.versions.order_by("-version").first()
    return list(version.feature_schema or []) if version else []


def _subject_ids_stored(model: RegisteredModel) -> bool:
    """Whether the model's stored predictions or labels carry a data subject's id (as its hash)."""
    return (
        Prediction.objects.filter(version__model=model, subject_hash__isnull=False).exists()
        or GroundTruth.objects.filter(model=model, subject_hash__isnull=False).exists()
    )


def _roles_seeing_all_models() -> list[str]:
    """Each role that sees every model (``registry.rules.sees_all_models``) with its active
    members: the admins (staff or superuser) and the reviewer, auditor and privacy groups."""
    users = get_user_model().objects.filter(is_active=True)
    admins = users.filter(Q(is_staff=True) | Q(is_superuser=True))
    roles = [("admin", admins), *((name, users.filter(groups__name=name)) for name in SEES_ALL_GROUPS)]
    return [f"{name} ({', '.join(sorted(set(members.values_list('username', flat=True))))})" for name, members in roles]


def records_header(records: list[dict[str, Any]]) -> dict[str, Any]:
    """What the records say once for all models: when they were drawn up, the controller and
    the data protection officer (settings; said when missing), the security measures, and how
    many of ``records`` lack an Art. 30 entry the privacy officer has still to record."""
    return {
        "generated_at": clock.now().isoformat(),
        "controller": settings.DATA_CONTROLLER or "not configured (DATA_CONTROLLER)",
        "data_protection_officer": settings.DATA_PROTECTION_OFFICER or "not configured (DATA_PROTECTION_OFFICER)",
        "security_measures": list(SECURITY_MEASURES),
        "incomplete_records": sum(1 for record in records if record["not_recorded"]),
    }


def _art30_entries(policy: RetentionPolicy) -> dict[str, Any]:
    """The policy's Art. 30(1)(c)-(e) entries, "not recorded" where empty, and the names of those."""
    values = {name: getattr(policy, name).strip() for name in ART30_FIELDS}
    return {
        **{name: value or NOT_RECORDED for name, value in values.items()},
        "not_recorded": [name for name, value in values.items() if not value],
    }


def records_of_processing(*, user) -> list[dict[str, Any]]:
    """One record per model the user may see: purpose, categories of data subjects, categories
    of data (the latest version's feature schema, sensitive attributes flagged), recipients,
    transfers to third countries, retention and hold, and who can see it."""
    models = (
        RegisteredModel.objects.visible_to(user)
        .select_related("owner", "team")
        .prefetch_related("team__members")
        .order_by("name")
    )
    policies = {p.model_id: p for p in RetentionPolicy.objects.filter(model__in=models)}
    seeing_all = _roles_seeing_all_models()
    records = []
    for model in models:
        policy = policies.get(model.pk) or RetentionPolicy(model=model, raw_days=None)  # the tier's default
        policy.model = model
        schema = _schema(model)
        art30 = _art30_entries(policy)
        records.append(
            {
                "model": model.name,
                "risk_tier": model.risk_tier,
                "ai_act_category": model.ai_act_category,
                "purpose": model.intended_use,
                "data_subject_categories": art30.pop("data_subject_categories"),
                "data_categories": [{"name": f.get("name"), "type": f.get("type", "numeric")} for f in schema],
                "sensitive_attributes": [f.get("name") for f in schema if f.get("sensitive")],
                "subject_ids_received": _subject_ids_stored(model),
                **art30,  # recipients, third-country transfers, and which entries are not recorded
                "raw_days": effective_raw_days(policy),
                "raw_days_source": raw_days_source(policy),
                "legal_hold": policy.legal_hold,
                "legal_hold_reason": policy.legal_hold_reason,
                "legal_hold_article": policy.legal_hold_article,
                "aggregates_kept": "while the model is in the inventory",
                "owner": model.owner.get_username(),
                "team": model.team.name,
                "team_members": sorted(u.get_username() for u in model.team.members.all()),
                "roles_seeing_all_models": seeing_all,
            }
        )
    return records


def _cell(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula is prefixed with an apostrophe."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def records_csv(records: list[dict[str, Any]], header: dict[str, Any]) -> str:
    """One row per model; the header's controller, officer and time repeated on each row."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=RECORD_COLUMNS)
    writer.writeheader()
    once = {key: header[key] for key in ("controller", "data_protection_officer", "generated_at")}
    for record in records:
        row = dict(record) | once
        row["data_categories"] = "; ".join(f"{c['name']} ({c['type']})" for c in record["data_categories"])
        for key in ("sensitive_attributes", "not_recorded", "team_members", "roles_seeing_all_models"):
            row[key] = "; ".join(record[key])
        writer.writerow({key: _cell(value) for key, value in row.items()})
    return out.getvalue()


__all__ = [
    "erasure_request_get",
    "erasure_request_list",
    "held_erasure_requests",
    "held_erasures_by_model",
    "model_erasures",
    "model_retention",
    "purge_receipts",
    "records_csv",
    "records_header",
    "records_of_processing",
]
