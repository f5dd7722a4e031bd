"""Bad filter values answer the one error shape everywhere: ``{"error": {"code", "message",
"details"}}`` whose details map each field to a list of readable messages (strings), as every
other 400 does; never Django's ``[{"message", "code"}]`` dicts."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db

API = [
    "/api/v1/models/?risk_tier=bogus",
    "/api/v1/models/churn/costs/?from=garbage",
    "/api/v1/audit/?since=garbage",
]
PAGES = [
    "/audit/export/?since=garbage",
    "/monitoring/models/churn/batches-since/?since=garbage",
    "/monitoring/incidents/?severity=bogus",
]


def _assert_shape(response) -> None:
    assert response.status_code == 400, response.content[:300]
    error = response.json()["error"]
    assert error["code"] and error["message"]
    assert error["details"], error
    for field, messages in error["details"].items():
        assert isinstance(messages, list) and messages, (field, messages)
        assert all(isinstance(m, str) and m for m in messages), (field, messages)


@pytest.mark.parametrize("url", API)
def test_api_filter_errors_have_the_one_shape(url, admin_user, churn, api_client_for):
    _assert_shape(api_client_for(admin_user).get(url))


@pytest.mark.parametrize("url", PAGES)
def test_json_answers_of_pages_to_bad_filters_have_the_one_shape(url, admin_user, churn, client_for):
    _assert_shape(client_for(admin_user).get(url, HTTP_HX_REQUEST="true"))
