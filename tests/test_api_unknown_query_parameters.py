"""A list endpoint with filters refuses a query parameter it does not know, naming it and the
ones it accepts: a misspelt filter used to answer the whole list as if filtered. The promotions
list filters the risk tier as ``tier`` and the models list as ``risk_tier``, and each answered
every row to the other's spelling (``/api/v1/promotions/?risk_tier=high`` listed low-risk
requests too)."""

from __future__ import annotations

import pytest

from registry.choices import RiskTier, Stage
from registry.services.audit import CLI
from registry.services.promotions import promotion_request
from tests.factories import ModelVersionFactory, RegisteredModelFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_requests(owner, team):
    for name, tier in (("low-one", RiskTier.LOW), ("high-one", RiskTier.HIGH)):
        version = ModelVersionFactory(model=RegisteredModelFactory(name=name, owner=owner, team=team, risk_tier=tier))
        promotion_request(
            version=version, target_stage=Stage.STAGING, requester=owner, justification="Try it.", context=CLI
        )


@pytest.mark.parametrize(
    "url, unknown",
    [
        ("/api/v1/promotions/?risk_tier=high", "risk_tier"),
        ("/api/v1/models/?tier=high", "tier"),
        ("/api/v1/models/churn/metrics/?window_start__gte=2026-01-01", "window_start__gte"),
        ("/api/v1/alerts/?state=open", "state"),
    ],
)
def test_an_unknown_filter_is_a_400_naming_it_and_the_accepted_ones(
    url, unknown, reviewer, churn, two_requests, api_client_for
):
    response = api_client_for(reviewer).get(url)
    assert response.status_code == 400, response.content[:300]
    error = response.json()["error"]
    assert error["code"] == "invalid" and list(error["details"]) == [unknown]
    assert "Unknown query parameter" in error["details"][unknown][0] and "limit" in error["details"][unknown][0]


def test_the_known_filters_and_pages_still_filter(reviewer, two_requests, api_client_for):
    client = api_client_for(reviewer)
    body = client.get("/api/v1/promotions/?tier=high&limit=10&offset=0").json()
    assert [r["model"] for r in body["results"]] == ["high-one"]
    assert client.get("/api/v1/models/?risk_tier=high").json()["count"] == 1
    assert client.get("/api/v1/promotions/?format=json").status_code == 200


@pytest.mark.parametrize(
    "url, repeated",
    [
        ("/api/v1/promotions/?status=pending&status=applied", "status"),
        ("/api/v1/models/?risk_tier=high&risk_tier=low", "risk_tier"),
    ],
)
def test_a_filter_given_twice_is_a_400_naming_it(url, repeated, reviewer, two_requests, api_client_for):
    """Read as its last value, ``?status=pending&status=applied`` listed the applied requests only."""
    response = api_client_for(reviewer).get(url)
    assert response.status_code == 400, response.content[:300]
    details = response.json()["error"]["details"]
    assert list(details) == [repeated] and "once" in details[repeated][0]
