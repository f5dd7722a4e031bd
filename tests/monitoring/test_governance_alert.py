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
