"""MLflow governance through a real Celery worker (Redis, PostgreSQL, a real MLflow server),
with the production visibility timeout:

- an approval moves the MLflow alias within seconds (the write-back task is queued on commit
  and run by the worker, not called directly as a unit test would);
- a sync that finds an unapproved alias change has the model's health evaluated at once;
- a worker killed in the middle of a sync loses and doubles nothing: after the restart, the
  next periodic sync leaves exactly what a fresh sync imports.
"""

from __future__ import annotations

import time

import pytest

from monitoring.choices import AlertKind, AlertStatus, HealthState
from monitoring.models import Alert, HealthStatus
from registry.choices import Stage
from registry.models import AuditEvent, MlflowModelLink, MlflowServer, MlflowVersionLink, ModelVersion, RegisteredModel
from registry.services.audit import CLI
from registry.services.inventory import model_update
from registry.services.mlflow_sync import mlflow_sync, portal_name
from registry.services.promotions import promotion_approve, promotion_request
from tests.integration.conftest import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

PRODUCTION_VISIBILITY_TIMEOUT = "3600"  # settings.py's default: a killed task is not handed out again for an hour


@pytest.fixture
def worker_env(services, monkeypatch):
    """Workers run with production defaults, plus the allow-list entry for the MLflow server on 127.0.0.1."""
    make_env = services.env

    def env(broker_url=None):
        return {
            **make_env(broker_url),
            "CELERY_VISIBILITY_TIMEOUT": PRODUCTION_VISIBILITY_TIMEOUT,
            "OUTBOUND_ALLOWED_HOSTS": "127.0.0.1",
        }

    monkeypatch.setattr(services, "env", env)
    return services


def _ready_for_production(model, owner):
    model_update(
        model=model,
        actor=owner,
        context=CLI,
        changes={"intended_use": "Retention offers", "limitations": "Not for credit", "primary_metric": "roc_auc"},
    )


def test_an_approval_moves_the_mlflow_alias_within_seconds(
    worker_env, governed_server, registered, mlflow_admin, owner, reviewer
):
    mlflow_sync(server=governed_server, context=CLI)
    model = RegisteredModel.objects.get(name=portal_name(registered))
    _ready_for_production(model, owner)
    worker_env.worker()
    request = promotion_request(
        version=model.versions.get(version=2),
        target_stage=Stage.PRODUCTION,
        requester=owner,
        justification="Better AUC",
        context=CLI,
    )
    approved_at = time.monotonic()
    promotion_approve(request=request, reviewer=reviewer, comment="Evidence checked", context=CLI)  # commits
    wait_until(lambda: mlflow_admin.alias(registered, "champion") == "2", timeout=30, what="the alias write-back")
    assert time.monotonic() - approved_at < 30  # not the next periodic sync (every 5 minutes)
    # the worker moves the alias, then commits its audit event: wait for the commit, not a race
    wait_until(
        lambda: AuditEvent.objects.filter(model=model, action="mlflow.alias_set").exists(),
        timeout=30,
        what="the write-back's audit event",
    )
    assert AuditEvent.objects.filter(model=model, action="mlflow.alias_set").count() == 1
    assert "mlflow_writeback_model" in worker_env.logs()


def test_a_sync_that_finds_an_unapproved_alias_has_the_alert_open_at_once(
    worker_env, governed_server, registered, mlflow_admin
):
    mlflow_sync(server=governed_server, context=CLI)
    model = RegisteredModel.objects.get(name=portal_name(registered))
    worker_env.worker()
    mlflow_admin.set_alias(registered, "champion", "2")  # nobody approved version 2
    assert mlflow_sync(server=governed_server, context=CLI).violations_opened == 1
    alert = wait_until(
        lambda: Alert.objects.filter(model=model, kind=AlertKind.GOVERNANCE, status=AlertStatus.OPEN).first(),
        timeout=30,
        what="the governance alert (no health sweep is running)",
    )
    assert "v2" in alert.title
    assert HealthStatus.objects.get(model=model).status == HealthState.CRITICAL


# --------------------------------------------------------------------------- fault: worker killed mid-sync

MODELS = 16
VERSIONS = 3


@pytest.fixture
def many_registered(mlflow_admin, prefix):
    """MODELS models of VERSIONS versions each in MLflow; every other one has the champion alias on v2."""
    expected = {}
    for i in range(MODELS):
        name = f"{prefix} model {i:02d}"
        mlflow_admin.create_model(name, description=f"Model {i}")
        versions = []
        for v in range(1, VERSIONS + 1):
            commit = f"{i:02d}{v:02d}".ljust(40, "c")
            run = mlflow_admin.log_run(
                metrics={"roc_auc": 0.7 + v / 100}, params={"training_data": f"s3://d/{i}-{v}.parquet"}, commit=commit
            )
            mlflow_admin.create_version(name, run)
            versions.append((v, commit, f"s3://d/{i}-{v}.parquet"))
        if i % 2 == 0:
            mlflow_admin.set_alias(name, "champion", "2")
        expected[portal_name(name)] = {"versions": versions, "production": 2 if i % 2 == 0 else None}
    return expected


def _imported(server: MlflowServer) -> dict:
    """What the portal holds for this server: per model, its versions' lineage and production version."""
    result = {}
    for link in MlflowModelLink.objects.filter(server=server).select_related("model"):
        versions = ModelVersion.objects.filter(model=link.model).order_by("version")
        result[link.model.name] = {
            "versions": [(v.version, v.source_commit, v.training_data_ref) for v in versions],
            "production": next((v.version for v in versions if v.stage == Stage.PRODUCTION), None),
        }
    return result


def test_a_worker_killed_during_an_mlflow_sync_loses_and_doubles_nothing(worker_env, governed_server, many_registered):
    from registry.tasks import mlflow_sync_all

    worker = worker_env.worker(name="first")
    mlflow_sync_all.delay()
    wait_until(
        lambda: MlflowModelLink.objects.filter(server=governed_server).exists(),
        timeout=60,
        interval=0.02,
        what="the sync to import its first model",
    )
    worker.kill()  # SIGKILL to the worker's process group, in the middle of the sync
    partial = MlflowModelLink.objects.filter(server=governed_server).count()
    assert 0 < partial < MODELS, f"the sync was not interrupted ({partial} of {MODELS} models imported)"
    governed_server.refresh_from_db()
    assert governed_server.last_sync_at is None  # it never finished

    # Every model that is there is whole: each model's import is one transaction.
    for name, held in _imported(governed_server).items():
        assert held == many_registered[name], name

    worker_env.worker(name="restarted")
    mlflow_sync_all.delay()  # what beat sends every five minutes
    wait_until(
        lambda: MlflowServer.objects.filter(pk=governed_server.pk, last_sync_at__isnull=False).exists(),
        timeout=120,
        what="the next sync to finish",
    )
    governed_server.refresh_from_db()
    assert governed_server.last_status == MlflowServer.Status.OK, governed_server.last_error
    assert _imported(governed_server) == many_registered  # what a fresh sync imports

    models = RegisteredModel.objects.filter(mlflow_link__server=governed_server)
    assert models.count() == MODELS
    assert MlflowVersionLink.objects.filter(model_link__server=governed_server).count() == MODELS * VERSIONS
    events = AuditEvent.objects.filter(model__in=models)
    assert events.filter(action="model.created").count() == MODELS
    assert events.filter(action="version.registered").count() == MODELS * VERSIONS
    assert events.filter(action="stage.changed").count() == MODELS // 2  # adoption of the champion, once each
