"""GET/POST /api/v1/prices/ (admins add prices, audited; every signed-in user reads them) and the
LLM thresholds of the monitoring configuration."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from monitoring.models import MonitoringConfig, Price
from registry.models import AuditEvent
from tests.monitoring.llm_helpers import llm_model

pytestmark = pytest.mark.django_db

URL = "/api/v1/prices/"
PRICE = {
    "provider": "openai",
    "model": "gpt-4.1-mini",
    "input_per_million": "0.40",
    "output_per_million": "1.60",
    "currency": "USD",
    "effective_from": "2026-01-01T00:00:00Z",
}


def post(client, data, url=URL):
    return client.generic("POST", url, json.dumps(data), content_type="application/json")


def test_an_admin_adds_a_price_and_it_is_audited(admin_user, api_client_for):
    response = post(api_client_for(admin_user), PRICE)
    assert response.status_code == 201, response.content
    price = Price.objects.get()
    assert price.input_per_million == Decimal("0.400000") and price.output_per_million == Decimal("1.600000")
    assert response.json()["input_per_million"] == "0.400000"
    event = AuditEvent.objects.get(action="price.created")
    assert event.after["currency"] == "USD" and event.after["input_per_million"] == "0.400000"


def test_a_changed_price_is_a_new_row_and_both_are_listed(admin_user, auditor, api_client_for):
    admin = api_client_for(admin_user)
    assert post(admin, PRICE).status_code == 201
    assert (
        post(admin, {**PRICE, "input_per_million": "0.30", "effective_from": "2026-02-01T00:00:00Z"}).status_code == 201
    )
    listed = api_client_for(auditor, scopes=["monitoring:read"]).get(URL, {"model": "gpt-4.1-mini"}).json()["results"]
    assert [row["input_per_million"] for row in listed] == ["0.300000", "0.400000"]  # newest first


def test_the_same_start_twice_is_refused(admin_user, api_client_for):
    admin = api_client_for(admin_user)
    assert post(admin, PRICE).status_code == 201
    response = post(admin, {**PRICE, "input_per_million": "9"})
    assert response.status_code == 400 and Price.objects.count() == 1


@pytest.mark.parametrize("role", ["owner", "reviewer", "auditor", "outsider"])
def test_only_admins_add_prices(roles, role, api_client_for):
    response = post(api_client_for(roles[role]), PRICE)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert not Price.objects.exists() and not AuditEvent.objects.filter(action="price.created").exists()


@pytest.mark.parametrize("role", ["owner", "reviewer", "auditor", "admin", "outsider"])
def test_every_signed_in_user_reads_prices(roles, role, api_client_for, admin_user):
    post(api_client_for(admin_user), PRICE)
    response = api_client_for(roles[role], scopes=["models:read"]).get(URL)
    assert response.status_code == 200 and response.json()["count"] == 1


def test_a_token_without_a_read_scope_may_not_list(owner, api_client_for):
    assert api_client_for(owner, scopes=["incidents:write"]).get(URL).status_code == 403


@pytest.mark.parametrize(
    "change",
    [
        {"input_per_million": "-1"},
        {"input_per_million": "NaN"},
        {"output_per_million": "1e30"},
        {"input_per_million": 0.1234567},
        {"currency": "dollars"},
        {"effective_from": "soon"},
        {"provider": "a\u0000b"},
        {"colour": "red"},
        {"model": ["x"]},
    ],
)
def test_bad_prices_are_a_400(admin_user, api_client_for, change):
    response = post(api_client_for(admin_user), {**PRICE, **change})
    assert response.status_code == 400, response.content
    assert set(response.json()["error"]) == {"code", "message", "details"}
    assert not Price.objects.exists()


# ------------------------------------------------------------------ thresholds


def test_llm_thresholds_are_read_and_changed_with_the_others(owner, team, api_client_for):
    llm_model(owner, team)
    client = api_client_for(owner)
    url = "/api/v1/models/assistant/monitoring/"
    assert client.get(url).json()["llm_latency_p95_warning_ms"] == 2000
    changes = {"llm_latency_p95_warning_ms": 1500, "llm_latency_p95_critical_ms": 4000, "llm_feedback_floor": -0.2}
    response = client.patch(url, changes, format="json")
    assert response.status_code == 200, response.content
    config = MonitoringConfig.objects.get()
    assert (config.llm_latency_p95_warning_ms, config.llm_feedback_floor) == (1500, -0.2)
    event = AuditEvent.objects.filter(action="monitoring.thresholds_changed").latest("seq")
    assert event.after["llm_latency_p95_critical_ms"] == 4000


@pytest.mark.parametrize(
    "changes",
    [
        {"llm_latency_p95_warning_ms": 5000, "llm_latency_p95_critical_ms": 1000},
        {"llm_safety_flag_rate_warning": 1.5},
        {"llm_feedback_floor": -2},
        {"llm_latency_p95_warning_ms": "fast"},
    ],
)
def test_bad_llm_thresholds_are_a_400(owner, team, api_client_for, changes):
    llm_model(owner, team)
    response = api_client_for(owner).patch("/api/v1/models/assistant/monitoring/", changes, format="json")
    assert response.status_code == 400, response.content


def test_a_filter_with_a_nul_character_is_a_400(owner, api_client_for):
    response = api_client_for(owner).get(URL, {"provider": "open\u0000ai"})
    assert response.status_code == 400 and set(response.json()["error"]) == {"code", "message", "details"}


def test_a_too_long_filter_is_a_400(owner, api_client_for):
    response = api_client_for(owner).get(URL, {"model": "x" * 201})
    assert response.status_code == 400 and "model" in response.json()["error"]["details"]
