"""The portal governs a real MLflow registry: import, no-op re-sync, updates, alias write-back,
detection of aliases moved behind the portal's back, and a server that is down."""

from __future__ import annotations

import pytest

from registry.choices import Stage
from registry.models import (
    AuditEvent,
    MlflowAliasViolation,
    MlflowServer,
    ModelVersion,
    RegisteredModel,
    StageTransition,
)
from registry.services.audit import CLI
from registry.services.inventory import model_update
from registry.services.mlflow_sync import mlflow_sync, portal_name
from registry.services.promotions import promotion_approve, promotion_request

pytestmark = [pytest.mark.integration]


@pytest.fixture(autouse=True)
def _allow_loopback(settings):
    """The MLflow server runs on 127.0.0.1, which the outbound policy refuses by default."""
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]


@pytest.fixture
def server(governed_server):
    return governed_server


def _events() -> int:
    return AuditEvent.objects.count()


def test_sync_imports_models_versions_lineage_and_metrics(server, registered):
    summary = mlflow_sync(server=server, context=CLI)
    assert summary.errors == []
    model = RegisteredModel.objects.get(name=portal_name(registered))
    assert model.description == "Predicts churn"
    assert set(model.tags.values_list("name", flat=True)) == {"domain-retention", "pii"}
    v1, v2 = ModelVersion.objects.filter(model=model).order_by("version")
    assert v1.metrics == {"roc_auc": 0.81, "accuracy": 0.77}
    assert v2.source_commit == "b2" * 20
    assert v2.training_data_ref == "s3://d/churn-2.parquet"
    assert v2.training_run_id and v2.artifact_uri.startswith("runs:/")
    # the version behind the champion alias is adopted as production at first import
    assert v1.stage == Stage.PRODUCTION and v2.stage == Stage.NONE
    actions = set(AuditEvent.objects.filter(model=model).values_list("action", flat=True))
    assert {"model.created", "version.registered", "stage.changed"} <= actions
    # through the one stage writer: its transition row and the same event a promotion records
    adopted = AuditEvent.objects.get(model=model, action="stage.changed")
    transition = StageTransition.objects.get(version=v1)
    assert (transition.kind, transition.to_stage) == (StageTransition.Kind.SYNC, Stage.PRODUCTION)
    assert adopted.after["kind"] == "sync" and adopted.after["transition"] == transition.pk
    server.refresh_from_db()
    assert server.last_status == MlflowServer.Status.OK


def test_second_sync_is_a_no_op(server, registered):
    mlflow_sync(server=server, context=CLI)
    before = _events()
    summary = mlflow_sync(server=server, context=CLI)
    assert not summary.changed and summary.errors == []
    assert _events() == before


def test_changed_description_and_tags_are_updated_with_an_audit_event(server, registered, mlflow_admin):
    mlflow_sync(server=server, context=CLI)
    mlflow_admin.update_model(registered, "Predicts churn within 30 days")
    mlflow_admin.set_model_tag(registered, "domain", "growth")
    summary = mlflow_sync(server=server, context=CLI)
    model = RegisteredModel.objects.get(name=portal_name(registered))
    assert summary.models_updated == 1
    assert model.description == "Predicts churn within 30 days"
    assert "domain-growth" in model.tags.values_list("name", flat=True)
    assert "domain-retention" not in model.tags.values_list("name", flat=True)
    event = AuditEvent.objects.filter(model=model, action="model.updated").latest("seq")
    assert event.after["description"] == "Predicts churn within 30 days"


def test_an_approved_promotion_moves_the_alias_in_mlflow(server, registered, mlflow_admin, owner, reviewer):
    mlflow_sync(server=server, context=CLI)
    model = RegisteredModel.objects.get(name=portal_name(registered))
    model_update(
        model=model,
        actor=owner,
        context=CLI,
        changes={
            "intended_use": "Retention offers",
            "limitations": "Not for credit decisions",
            "primary_metric": "roc_auc",
        },
    )
    v2 = model.versions.get(version=2)
    request = promotion_request(
        version=v2, target_stage=Stage.PRODUCTION, requester=owner, justification="Better AUC", context=CLI
    )
    promotion_approve(request=request, reviewer=reviewer, comment="Evidence is fine", context=CLI)
    v2.refresh_from_db()
    assert v2.stage == Stage.PRODUCTION
    summary = mlflow_sync(server=server, context=CLI)
    assert summary.aliases_written == 1
    assert mlflow_admin.alias(registered, "champion") == "2"
    assert AuditEvent.objects.filter(model=model, action="mlflow.alias_set").count() == 1
    assert not MlflowAliasViolation.objects.filter(model_link__model=model).exists()
    # and the next sync has nothing left to write
    assert mlflow_sync(server=server, context=CLI).aliases_written == 0


def test_an_alias_moved_in_mlflow_behind_the_portals_back_raises_an_alert(server, registered, mlflow_admin):
    mlflow_sync(server=server, context=CLI)
    model = RegisteredModel.objects.get(name=portal_name(registered))
    mlflow_admin.set_alias(registered, "champion", "2")  # nobody approved version 2
    summary = mlflow_sync(server=server, context=CLI)
    assert summary.violations_opened == 1
    violation = MlflowAliasViolation.objects.get(model_link__model=model, resolved_at=None)
    assert (violation.found_version, violation.expected_version) == ("2", "1")
    event = AuditEvent.objects.get(model=model, action="mlflow.unapproved_alias_change")
    assert (event.before, event.after["alias"], event.after["version"]) == (
        {"alias": "champion", "version": "1"},
        "champion",
        "2",
    )
    # detected once, not on every sync
    assert mlflow_sync(server=server, context=CLI).violations_opened == 0
    # putting the alias back where governance put it resolves the alert
    mlflow_admin.set_alias(registered, "champion", "1")
    assert mlflow_sync(server=server, context=CLI).violations_resolved == 1
    violation.refresh_from_db()
    assert violation.resolved_at is not None


def test_a_server_that_is_down_is_recorded_and_nothing_is_imported(db, team, owner):
    from tests.integration.conftest import free_port

    server = MlflowServer.objects.create(
        name="down", tracking_url=f"http://127.0.0.1:{free_port()}", team=team, default_owner=owner
    )
    before = (RegisteredModel.objects.count(), _events())
    summary = mlflow_sync(server=server, context=CLI)
    assert summary.errors and "connection_error" in summary.errors[0]
    server.refresh_from_db()
    assert server.last_status == MlflowServer.Status.ERROR
    assert "connection_error" in server.last_error
    assert (RegisteredModel.objects.count(), _events()) == before


def test_by_default_an_mlflow_server_on_loopback_is_refused(server, registered, settings):
    settings.OUTBOUND_ALLOWED_HOSTS = []
    before = (RegisteredModel.objects.count(), _events())
    summary = mlflow_sync(server=server, context=CLI)
    assert summary.errors and "refused" in summary.errors[0]
    server.refresh_from_db()
    assert server.last_status == MlflowServer.Status.ERROR
    assert (RegisteredModel.objects.count(), _events()) == before
