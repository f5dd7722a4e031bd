"""A production alias moved in MLflow behind the portal's back is an alert like any other:
the model turns critical, an alert opens (and is resolved once the alias is back)."""

from django.utils import timezone

from monitoring.choices import AlertKind, AlertStatus, HealthState
from monitoring.models import Alert
from monitoring.services.health import health_evaluate
from registry.models import MlflowAliasViolation, MlflowModelLink, MlflowServer


def test_an_unapproved_mlflow_alias_change_opens_a_critical_governance_alert(churn, team, owner, audit_actions):
    server = MlflowServer.objects.create(
        name="mlflow", tracking_url="http://127.0.0.1:5000", team=team, default_owner=owner
    )
    link = MlflowModelLink.objects.create(model=churn, server=server, mlflow_name="churn")
    violation = MlflowAliasViolation.objects.create(
        model_link=link, alias="champion", found_version="3", expected_version="2"
    )
    health = health_evaluate(model=churn)
    assert health.status == HealthState.CRITICAL
    alert = Alert.objects.get(model=churn, kind=AlertKind.GOVERNANCE)
    assert alert.status == AlertStatus.OPEN and "v3" in alert.title and "v2" in alert.title
    assert "alert.opened" in audit_actions()

    violation.resolved_at = timezone.now()
    violation.save()
    health_evaluate(model=churn)
    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED


def test_a_sync_that_records_a_violation_evaluates_the_models_health_at_once(
    churn, team, owner, django_capture_on_commit_callbacks
):
    """The sync queues ``monitoring.tasks.health_evaluate`` by name on commit (registry never
    imports monitoring): the alert is there when the sync's transaction commits, and the
    model does not show ``no_data`` until the next health sweep."""
    import monitoring.tasks  # noqa: F401 - registers the task the sync queues by name (a worker imports it too)
    from monitoring.models import HealthStatus
    from registry.choices import Stage
    from registry.models import AuditEvent, MlflowVersionLink
    from registry.services.audit import CLI
    from registry.services.mlflow_sync import SyncSummary, _check_alias
    from tests.factories import ModelVersionFactory

    server = MlflowServer.objects.create(
        name="mlflow", tracking_url="http://127.0.0.1:5000", team=team, default_owner=owner
    )
    link = MlflowModelLink.objects.create(model=churn, server=server, mlflow_name="churn")
    production = ModelVersionFactory(model=churn, stage=Stage.PRODUCTION, stage_changed_at=timezone.now())
    MlflowVersionLink.objects.create(
        version=production,
        model_link=link,
        mlflow_version="1",
        writeback=MlflowVersionLink.WriteBack.DONE,
        writeback_at=timezone.now(),
    )
    remote = {"name": "churn", "aliases": [{"alias": "champion", "version": "2"}]}
    summary = SyncSummary()
    with django_capture_on_commit_callbacks(execute=True):
        _check_alias(link=link, remote=remote, context=CLI, summary=summary)
    assert summary.violations_opened == 1
    alert = Alert.objects.get(model=churn, kind=AlertKind.GOVERNANCE)
    assert alert.status == AlertStatus.OPEN
    assert HealthStatus.objects.get(model=churn).status == HealthState.CRITICAL
    event = AuditEvent.objects.get(model=churn, action="mlflow.unapproved_alias_change")
    assert (event.before, event.after["version"], event.after["found_version"]) == (
        {"alias": "champion", "version": "1"},
        "2",
        "2",
    )

    # the alias is put back: the violation resolves and the alert with it, at once
    remote["aliases"] = [{"alias": "champion", "version": "1"}]
    with django_capture_on_commit_callbacks(execute=True):
        _check_alias(link=link, remote=remote, context=CLI, summary=summary)
    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED
