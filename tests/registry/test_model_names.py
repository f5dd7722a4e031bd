"""A model's name is the last part of its page's address: a name that the portal's own pages use
there (``/models/new/`` is the registration form) would make that model's page unreachable."""

import pytest

from registry.models import RegisteredModel
from registry.services.mlflow_sync import portal_name

pytestmark = pytest.mark.django_db


def test_a_model_cannot_be_named_like_the_registration_page(owner, team, api_client_for, client_for):
    api = api_client_for(owner, scopes=["models:write"])
    refused = api.post("/api/v1/models/", {"name": "new", "team": team.slug}, format="json")
    assert refused.status_code == 400, refused.content
    assert "name" in refused.json()["error"]["details"]
    assert not RegisteredModel.objects.filter(name="new").exists()
    form = client_for(owner).post("/models/new/", {"name": "new", "team": team.pk, "risk_tier": "low"})
    assert form.status_code in (200, 400) and not RegisteredModel.objects.filter(name="new").exists()
    assert api.post("/api/v1/models/", {"name": "new-churn", "team": team.slug}, format="json").status_code == 201


def test_an_mlflow_model_named_new_gets_a_reachable_portal_name():
    assert portal_name("New") != "new" and portal_name("New").startswith("new")
    assert portal_name("Churn Model") == "churn-model"
