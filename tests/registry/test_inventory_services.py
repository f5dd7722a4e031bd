import math

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction

from registry.choices import Stage
from registry.models import AuditEvent, ModelVersion, RegisteredModel, Tag
from registry.services.audit import CLI
from registry.services.inventory import (
    model_create,
    model_update,
    team_create,
    validate_feature_schema,
    validate_metrics,
    version_create,
    version_update,
)
from registry.services.promotions import promotion_cancel, promotion_request
from registry.services.stages import PromotionConflict
from tests.factories import ModelVersionFactory, TeamFactory

SCHEMA = [{"name": "age", "type": "numeric"}, {"name": "plan", "type": "categorical"}]


def test_owner_registers_a_model_in_their_team_and_it_is_audited(owner, team, last_seq):
    start = last_seq()
    model = model_create(
        actor=owner, context=CLI, name="fraud", description="Flags fraud.", risk_tier="high", tags=["PII", "fraud"]
    )
    assert model.owner == owner and model.team == team and model.created_by == owner
    assert sorted(model.tags.values_list("name", flat=True)) == ["fraud", "pii"]
    event = AuditEvent.objects.get(seq__gt=start)
    assert event.action == "model.created"
    assert event.model_id == model.pk and event.source == "cli"
    assert event.after["name"] == "fraud" and event.after["risk_tier"] == "high"
    assert event.after["tags"] == ["fraud", "pii"]


def test_registering_a_duplicate_name_is_refused_and_writes_nothing(owner, churn, last_seq):
    start = last_seq()
    with pytest.raises(ValidationError) as err:
        model_create(actor=owner, context=CLI, name="churn")
    assert "name" in err.value.message_dict
    assert RegisteredModel.objects.count() == 1
    assert last_seq() == start


@pytest.mark.parametrize("name", ["Churn", "has space", "-lead", "", "x" * 101, "ümlaut"])
def test_registering_an_invalid_name_is_refused(owner, name, last_seq):
    start = last_seq()
    with pytest.raises(ValidationError) as err:
        model_create(actor=owner, context=CLI, name=name)
    assert "name" in err.value.message_dict
    assert not RegisteredModel.objects.exists()
    assert last_seq() == start


def test_owner_cannot_register_a_model_in_a_team_they_are_not_in(owner, last_seq):
    other = TeamFactory(slug="other")
    with pytest.raises(ValidationError) as err:
        model_create(actor=owner, context=CLI, name="m1", team=other)
    assert "team" in err.value.message_dict
    assert not RegisteredModel.objects.exists()


@pytest.mark.parametrize("role", ["reviewer", "auditor", "outsider"])
def test_users_without_a_team_or_auditors_cannot_register_models(roles, role, last_seq):
    start = last_seq()
    with pytest.raises(PermissionDenied):
        model_create(actor=roles[role], context=CLI, name="m1")
    assert not RegisteredModel.objects.exists() and last_seq() == start


def test_model_update_records_only_the_changed_fields(admin_user, churn, last_seq):
    start = last_seq()  # an admin: only an admin changes a risk tier (tests/registry/test_risk_tier.py)
    model_update(model=churn, actor=admin_user, context=CLI, changes={"risk_tier": "high", "tags": ["b", "a"]})
    churn.refresh_from_db()
    assert churn.risk_tier == "high"
    event = AuditEvent.objects.get(seq__gt=start)
    assert event.action == "model.updated"
    assert event.before == {"risk_tier": "medium", "tags": []}
    assert event.after == {"risk_tier": "high", "tags": ["a", "b"]}


def test_model_update_without_changes_writes_no_event(owner, churn, last_seq):
    start = last_seq()
    model_update(model=churn, actor=owner, context=CLI, changes={"risk_tier": churn.risk_tier})
    assert last_seq() == start


def test_model_name_cannot_be_changed(owner, churn, last_seq):
    with pytest.raises(ValidationError):
        model_update(model=churn, actor=owner, context=CLI, changes={"name": "other"})
    churn.refresh_from_db()
    assert churn.name == "churn"


@pytest.mark.parametrize("role", ["reviewer", "auditor", "outsider"])
def test_only_owner_or_admin_can_update_a_model(roles, churn, role, last_seq):
    start = last_seq()
    with pytest.raises(PermissionDenied):
        model_update(model=churn, actor=roles[role], context=CLI, changes={"description": "x"})
    assert last_seq() == start


def test_admin_can_update_any_model(admin_user, churn, audit_actions, last_seq):
    start = last_seq()
    model_update(model=churn, actor=admin_user, context=CLI, changes={"limitations": "None known."})
    assert audit_actions(start) == ["model.updated"]


def test_versions_are_numbered_per_model_and_start_in_stage_none(owner, churn, last_seq):
    start = last_seq()
    v1 = version_create(model=churn, actor=owner, context=CLI, metrics={"roc_auc": 0.9}, feature_schema=SCHEMA)
    v2 = version_create(model=churn, actor=owner, context=CLI, metrics={"roc_auc": 0.91})
    assert (v1.version, v2.version) == (1, 2)
    assert v1.stage == Stage.NONE and v1.created_by == owner
    events = list(AuditEvent.objects.filter(seq__gt=start).order_by("seq"))
    assert [e.action for e in events] == ["version.registered", "version.registered"]
    assert events[0].model_id == churn.pk and events[0].after["version"] == 1
    assert events[0].after["feature_schema"] == SCHEMA


BAD_METRICS = [{"auc": float("nan")}, {"auc": math.inf}, {"auc": "0.9"}, {"auc": True}, [0.9], {"": 1.0}, {"auc": None}]
BAD_FEATURE_SCHEMAS = [
    {"age": "numeric"},
    [{"name": "age"}],
    [{"name": "age", "type": "text"}],
    [{"name": "age", "type": "numeric"}, {"name": "age", "type": "categorical"}],
    [{"name": "", "type": "numeric"}],
    [{"name": "age", "type": "numeric", "unit": "years"}],
    ["age"],
    [{"name": "score", "type": "numeric"}],  # an ingested row's own columns are not features
    [{"name": "prediction_id", "type": "categorical"}],
    [{"name": "subject_id", "type": "categorical"}],
]


@pytest.mark.parametrize(
    ("field", "value"),
    [("metrics", m) for m in BAD_METRICS] + [("feature_schema", s) for s in BAD_FEATURE_SCHEMAS],
)
def test_version_with_bad_metrics_or_feature_schema_is_refused(owner, churn, field, value, last_seq):
    start = last_seq()
    with pytest.raises(ValidationError) as err:
        version_create(model=churn, actor=owner, context=CLI, **{field: value})
    assert field in err.value.message_dict
    assert not ModelVersion.objects.exists() and last_seq() == start


def test_a_feature_named_as_a_rows_own_column_is_refused_naming_the_reserved_names():
    with pytest.raises(ValidationError) as err:
        validate_feature_schema([{"name": "age", "type": "numeric"}, {"name": "timestamp", "type": "numeric"}])
    (message,) = err.value.message_dict["feature_schema"]
    assert "'timestamp'" in message and "reserved" in message and "prediction_id" in message


def test_validators_accept_good_values():
    assert validate_metrics({"auc": 0.9, "n": 3}) == {"auc": 0.9, "n": 3}
    assert validate_feature_schema(SCHEMA) == SCHEMA


@pytest.mark.parametrize("role", ["reviewer", "auditor", "outsider"])
def test_only_owner_or_admin_can_register_versions(roles, churn, role, last_seq):
    start = last_seq()
    with pytest.raises(PermissionDenied):
        version_create(model=churn, actor=roles[role], context=CLI)
    assert not ModelVersion.objects.exists() and last_seq() == start


def test_version_update_changes_metadata_and_records_a_diff(owner, churn_v1, last_seq):
    start = last_seq()
    version_update(
        version=churn_v1, actor=owner, context=CLI, changes={"metrics": {"roc_auc": 0.86}, "description": "retuned"}
    )
    event = AuditEvent.objects.get(seq__gt=start)
    assert event.action == "version.updated"
    assert event.before == {"description": "", "metrics": {"roc_auc": 0.85, "accuracy": 0.8}}
    assert event.after == {"description": "retuned", "metrics": {"roc_auc": 0.86}}


@pytest.mark.parametrize("field", ["stage", "version", "feature_schema", "task_type"])
def test_version_update_refuses_stage_and_identity_fields(owner, churn_v1, field, last_seq):
    start = last_seq()
    with pytest.raises(ValidationError) as err:
        version_update(version=churn_v1, actor=owner, context=CLI, changes={field: "production"})
    assert field in str(err.value)
    churn_v1.refresh_from_db()
    assert churn_v1.stage == Stage.NONE and last_seq() == start


def _pending(version, owner):
    return promotion_request(
        version=version, target_stage=Stage.STAGING, requester=owner, justification="Ship it.", context=CLI
    )


@pytest.mark.parametrize(
    "field, value",
    [
        ("metrics", {"roc_auc": 0.99, "accuracy": 0.8}),
        ("training_data_ref", "s3://data/other.parquet"),
        ("training_data_hash", "f" * 64),
        ("source_commit", "0" * 40),
        ("training_run_id", "run-other"),
        ("artifact_uri", "s3://models/other.pkl"),
    ],
)
def test_version_update_refuses_to_change_the_evidence_of_a_pending_request(owner, churn_v1, field, value, last_seq):
    req = _pending(churn_v1, owner)
    before = getattr(churn_v1, field)
    start = last_seq()
    with pytest.raises(PromotionConflict) as err:
        version_update(version=churn_v1, actor=owner, context=CLI, changes={field: value, "description": "x"})
    assert f"#{req.pk}" in err.value.message and field in err.value.message
    assert err.value.details == {"pending_request": req.pk, "fields": [field]}
    churn_v1.refresh_from_db()
    assert getattr(churn_v1, field) == before and churn_v1.description == "" and last_seq() == start


def test_version_update_still_edits_the_description_of_a_version_under_review(owner, churn_v1, last_seq):
    _pending(churn_v1, owner)
    start = last_seq()
    same = {"metrics": dict(churn_v1.metrics), "source_commit": churn_v1.source_commit}
    version_update(version=churn_v1, actor=owner, context=CLI, changes={"description": "retuned", **same})
    event = AuditEvent.objects.get(seq__gt=start)
    assert event.action == "version.updated" and event.after == {"description": "retuned"}


def test_version_update_changes_the_evidence_again_once_the_request_is_cancelled(owner, churn_v1):
    req = _pending(churn_v1, owner)
    promotion_cancel(request=req, actor=owner, comment="More training.", context=CLI)
    version_update(version=churn_v1, actor=owner, context=CLI, changes={"metrics": {"roc_auc": 0.9}})
    churn_v1.refresh_from_db()
    assert churn_v1.metrics == {"roc_auc": 0.9}


def test_database_keeps_at_most_one_production_version_per_model(churn):
    ModelVersionFactory(model=churn, stage=Stage.PRODUCTION)
    ModelVersionFactory(model=churn, stage=Stage.STAGING)
    with pytest.raises(IntegrityError):
        with transaction.atomic():
            ModelVersion.objects.filter(model=churn, stage=Stage.STAGING).update(stage=Stage.PRODUCTION)
    assert ModelVersion.objects.filter(model=churn, stage=Stage.PRODUCTION).count() == 1


def test_other_models_may_each_have_their_own_production_version(churn, owner, team):
    other = model_create(actor=owner, context=CLI, name="other", team=team)
    ModelVersionFactory(model=churn, stage=Stage.PRODUCTION)
    ModelVersionFactory(model=other, stage=Stage.PRODUCTION)
    assert ModelVersion.objects.filter(stage=Stage.PRODUCTION).count() == 2


def test_admin_creates_teams_and_others_cannot(admin_user, owner, audit_actions, last_seq):
    start = last_seq()
    team = team_create(name="Pricing", actor=admin_user, context=CLI)
    assert team.slug == "pricing"
    assert audit_actions(start) == ["team.created"]
    with pytest.raises(PermissionDenied):
        team_create(name="Rogue", actor=owner, context=CLI)


def test_tags_are_normalised_and_reused(owner, churn):
    model_update(model=churn, actor=owner, context=CLI, changes={"tags": ["Fraud Risk", "fraud-risk", " "]})
    assert list(churn.tags.values_list("name", flat=True)) == ["fraud-risk"]
    assert Tag.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_version_registrations_get_distinct_consecutive_numbers(owner, churn):
    import threading

    from django.db import connection

    errors, barrier = [], threading.Barrier(6)

    def register():
        try:
            barrier.wait(timeout=30)
            version_create(model=churn, actor=owner, context=CLI, metrics={"roc_auc": 0.9})
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=register) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert sorted(ModelVersion.objects.filter(model=churn).values_list("version", flat=True)) == [1, 2, 3, 4, 5, 6]
    assert AuditEvent.objects.filter(action="version.registered").count() == 6
