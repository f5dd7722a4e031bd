"""The inventory API shows and filters by the health the monitoring engine computed."""

from django.utils import timezone

from monitoring.choices import HealthState
from monitoring.models import HealthStatus
from tests.factories import RegisteredModelFactory


def test_model_detail_carries_health_and_no_data_before_any_window(churn, owner, api_client_for):
    client = api_client_for(owner, ["models:read"])
    assert client.get("/api/v1/models/churn/").json()["health"]["status"] == "no_data"
    HealthStatus.objects.create(
        model=churn,
        status=HealthState.CRITICAL,
        reasons=[{"kind": "drift", "severity": "critical", "message": "PSI 0.31 on tenure"}],
        computed_at=timezone.now(),
    )
    health = client.get("/api/v1/models/churn/").json()["health"]
    assert health["status"] == "critical" and health["reasons"][0]["kind"] == "drift"


def test_inventory_filters_by_health(churn, owner, team, api_client_for):
    quiet = RegisteredModelFactory(name="quiet", owner=owner, team=team)
    HealthStatus.objects.create(model=churn, status=HealthState.WARNING, reasons=[], computed_at=timezone.now())
    client = api_client_for(owner, ["models:read"])
    names = lambda q: [m["name"] for m in client.get(f"/api/v1/models/?health={q}").json()["results"]]  # noqa: E731
    assert names("warning") == ["churn"]
    assert names("no_data") == [quiet.name]
    assert client.get("/api/v1/models/?health=purple").status_code == 400


def test_inventory_page_shows_health_badges_and_filters_by_health(churn, owner, client_for):
    HealthStatus.objects.create(model=churn, status=HealthState.CRITICAL, reasons=[], computed_at=timezone.now())
    page = client_for(owner).get("/models/?health=critical")
    assert page.status_code == 200
    assert b'badge-critical">critical' in page.content and b"churn" in page.content
    assert b"churn" not in client_for(owner).get("/models/?health=ok").content.split(b"<table")[-1]
