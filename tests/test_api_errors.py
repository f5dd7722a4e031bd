"""Hostile input never gets a 500 page: every error under /api/ is the JSON error format, deep
nesting and NUL characters are 400s naming the field, unexpected methods are JSON 405s.

This module is also the URL conf of the tests that need a view which fails (``pytest.mark.urls``).
"""

from __future__ import annotations

import logging
import re

import pytest
from django.test import Client
from django.urls import include, path
from rest_framework.views import APIView

from mlops_portal.api.parsers import MAX_JSON_DEPTH, JSONInputError, json_loads
from mlops_portal.urls import handler400, handler404, handler500
from mlops_portal.urls import urlpatterns as portal_urlpatterns
from registry.models import ModelVersion, PromotionRequest, RegisteredModel
from registry.services.audit import CLI
from registry.services.promotions import promotion_request

# ---------------------------------------------------------------- a URL conf with failing views


class _FailingAPIView(APIView):
    permission_classes: list = []

    def get(self, request):
        raise RuntimeError("boom in an API view")


def _failing_plain_view(request):
    raise RuntimeError("boom in a plain view")


urlpatterns = [
    path("api/test/drf-failure/", _FailingAPIView.as_view()),
    path("api/test/plain-failure/", _failing_plain_view),
    path("test/page-failure/", _failing_plain_view),
    path("", include(portal_urlpatterns)),
]
__all__ = ["handler400", "handler404", "handler500", "urlpatterns"]  # this module is a URL conf

DEEP = "[" * 100_000


def _error(response, status):
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, body
    return body["error"]


@pytest.fixture
def lenient(api_client_for):
    """An API client (full scopes) that returns 500 answers instead of raising the exception."""

    def make(user):
        client = api_client_for(user)
        client.raise_request_exception = False
        return client

    return make


# ---------------------------------------------------------------- 500s


@pytest.mark.urls("tests.test_api_errors")
def test_an_unhandled_error_in_an_api_view_answers_the_json_error_and_is_logged(db, caplog):
    client = Client(raise_request_exception=False)
    with caplog.at_level(logging.ERROR):
        response = client.get("/api/test/drf-failure/")
    error = _error(response, 500)
    assert error["code"] == "server_error"
    assert "boom" not in response.content.decode()  # no internals in the answer
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR and r.exc_info]
    assert any("boom in an API view" in str(r.exc_info[1]) for r in logged)


@pytest.mark.urls("tests.test_api_errors")
def test_an_unhandled_error_in_a_plain_view_under_the_api_answers_json(db, caplog):
    client = Client(raise_request_exception=False)
    with caplog.at_level(logging.ERROR):
        response = client.get("/api/test/plain-failure/")
    assert _error(response, 500)["code"] == "server_error"
    assert any(r.exc_info and "boom in a plain view" in str(r.exc_info[1]) for r in caplog.records)


@pytest.mark.urls("tests.test_api_errors")
def test_pages_outside_the_api_keep_the_html_error_page(db):
    response = Client(raise_request_exception=False).get("/test/page-failure/")
    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html")


# ---------------------------------------------------------------- deep nesting


def test_json_loads_refuses_deep_nesting_without_recursing():
    with pytest.raises(JSONInputError, match=f"deeper than {MAX_JSON_DEPTH}"):
        json_loads(DEEP)
    with pytest.raises(JSONInputError, match=f"deeper than {MAX_JSON_DEPTH}"):
        json_loads("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1))
    nested = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert json_loads(nested) is not None
    with pytest.raises(JSONInputError, match="Malformed JSON"):
        json_loads('{"a": NaN}')


@pytest.fixture
def pending_request(churn_v1, owner):
    return promotion_request(
        version=churn_v1, target_stage="production", requester=owner, justification="Ship it.", context=CLI
    )


DEEP_ENDPOINTS = [
    ("post", "/api/v1/models/"),
    ("patch", "/api/v1/models/churn/"),
    ("post", "/api/v1/models/churn/versions/"),
    ("patch", "/api/v1/models/churn/versions/1/"),
    ("post", "/api/v1/promotions/"),
    ("post", "/api/v1/promotions/{pk}/approve/"),
    ("post", "/api/v1/promotions/{pk}/reject/"),
    ("post", "/api/v1/promotions/{pk}/cancel/"),
    ("post", "/api/v1/models/churn/rollback/"),
    ("patch", "/api/v1/models/churn/monitoring/"),
]


@pytest.mark.parametrize(("method", "url"), DEEP_ENDPOINTS)
def test_deeply_nested_json_is_a_400_on_every_json_endpoint(admin_user, pending_request, lenient, method, url):
    client = lenient(admin_user)
    response = getattr(client, method)(url.format(pk=pending_request.pk), DEEP, content_type="application/json")
    error = _error(response, 400)
    assert f"deeper than {MAX_JSON_DEPTH}" in error["message"]
    assert PromotionRequest.objects.get().status == "pending"


def test_the_version_form_refuses_deeply_nested_json(owner, churn, client_for):
    response = client_for(owner).post(
        "/models/churn/versions/new/", {"task_type": "binary", "metrics": DEEP, "feature_schema": DEEP}
    )
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert f"deeper than {MAX_JSON_DEPTH}" in errors["metrics"][0]
    assert f"deeper than {MAX_JSON_DEPTH}" in errors["feature_schema"][0]
    assert not ModelVersion.objects.exists()


# ---------------------------------------------------------------- NUL characters


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"metrics": {"auc\u0000": 0.9}}, "metrics"),
        ({"feature_schema": [{"name": "age\u0000", "type": "numeric"}]}, "feature_schema"),
        ({"description": "nul \u0000 here"}, "description"),
        ({"training_run_id": "\u0000"}, "training_run_id"),
    ],
)
def test_a_nul_character_in_a_version_body_is_a_400_naming_the_field(owner, churn, lenient, body, field):
    response = lenient(owner).post("/api/v1/models/churn/versions/", body, format="json")
    error = _error(response, 400)
    assert field in error["details"], error
    assert "NUL" in str(error["details"][field]) or "Null" in str(error["details"][field])
    assert not ModelVersion.objects.exists()


def test_a_nul_character_in_a_model_body_is_a_400(owner, team, lenient):
    body = {"name": "nul-model", "team": team.slug, "tags": ["a\u0000"], "description": "x"}
    response = lenient(owner).post("/api/v1/models/", body, format="json")
    error = _error(response, 400)
    assert "tags" in error["details"]
    assert not RegisteredModel.objects.filter(name="nul-model").exists()


def test_a_nul_character_in_a_promotion_body_is_a_400_naming_the_field(churn_v1, owner, lenient):
    body = {"model": "churn", "version": 1, "target_stage": "production", "justification": "ship\u0000it"}
    response = lenient(owner).post("/api/v1/promotions/", body, format="json")
    assert "justification" in _error(response, 400)["details"]
    assert not PromotionRequest.objects.exists()


def test_the_version_form_refuses_nul_characters_in_json_fields(owner, churn, client_for):
    response = client_for(owner).post(
        "/models/churn/versions/new/",
        {
            "task_type": "binary",
            "metrics": '{"auc\\u0000": 0.9}',
            "feature_schema": '[{"name": "age\\u0000", "type": "numeric"}]',
        },
    )
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert "NUL" in errors["metrics"][0] and "NUL" in errors["feature_schema"][0]
    assert not ModelVersion.objects.exists()


@pytest.mark.parametrize(
    "url",
    ["/api/v1/models/ab%00c/", "/api/v1/models/?team=%00", "/api/v1/promotions/?model=x%00", "/api/v1/audit/?a%00=1"],
)
def test_a_nul_character_in_an_api_url_is_a_json_400(admin_user, lenient, url):
    assert "NUL" in _error(lenient(admin_user).get(url), 400)["message"]


def test_a_nul_character_in_a_page_url_is_a_400(owner, churn, client_for):
    client = client_for(owner)
    client.raise_request_exception = False
    assert client.get("/models/ch%00urn/").status_code == 400
    assert client.get("/models/?q=%00").status_code == 400


# ---------------------------------------------------------------- methods


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("delete", "/api/v1/promotions/"),
        ("put", "/api/v1/promotions/{pk}/"),
        ("get", "/api/v1/promotions/{pk}/approve/"),
        ("delete", "/api/v1/models/churn/rollback/"),
        ("delete", "/api/v1/models/churn/"),
        ("put", "/api/v1/alerts/"),
    ],
)
def test_an_unexpected_method_is_a_json_405(admin_user, pending_request, lenient, method, url):
    response = getattr(lenient(admin_user), method)(url.format(pk=pending_request.pk))
    assert _error(response, 405)["code"] == "method_not_allowed"


# ---------------------------------------------------------------- pagination


@pytest.mark.parametrize(
    "query",
    [
        "limit=abc",
        "limit=",
        "limit=0",
        "limit=1001",
        "offset=-1",
        "offset=1.5",
        f"offset={10**30}",
        "offset=1&offset=2",
    ],
)
def test_a_bad_page_parameter_is_a_400_naming_it(admin_user, lenient, query):
    error = _error(lenient(admin_user).get(f"/api/v1/promotions/?{query}"), 400)
    assert set(error["details"]) == {query.split("=")[0]}


def test_good_page_parameters_page(admin_user, lenient, pending_request):
    body = lenient(admin_user).get("/api/v1/promotions/?limit=1&offset=0").json()
    assert body["count"] == 1 and len(body["results"]) == 1


# ---------------------------------------------------------------- the schema


def test_the_schema_documents_errors_nullable_fields_string_enums_and_record_batches(admin_user, lenient):
    schema = lenient(admin_user).get("/api/schema/?format=json").json()
    paths, components = schema["paths"], schema["components"]["schemas"]
    approve = paths["/api/v1/promotions/{id}/approve/"]["post"]
    for code in ("400", "401", "403", "404", "405", "409", "413", "415"):
        assert approve["responses"][code]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Error"
        }
    assert components["Error"]["required"] == ["error"]
    assert components["PromotionRequest"]["properties"]["overridden_by"]["nullable"] is True
    assert components["Alert"]["properties"]["acknowledged_by"]["nullable"] is True
    assert components["Health"]["properties"]["computed_at"]["nullable"] is True
    assert components["MonitoringConfig"]["properties"]["updated_at"]["nullable"] is True
    health = next(p for p in paths["/api/v1/models/"]["get"]["parameters"] if p["name"] == "health")
    assert health["schema"]["type"] == "string" and "critical" in health["schema"]["enum"]
    batch = paths["/api/v1/models/{name}/versions/{version}/predictions/"]["post"]["requestBody"]["content"]
    assert batch["application/json"]["schema"]["type"] == "array"
    assert components["RollbackRequest"]["additionalProperties"] is False


# ---------------------------------------------------------------- OPTIONS on every operation


def test_options_on_every_documented_path_answers_without_a_server_error(admin_user, pending_request, lenient):
    # OPTIONS /api/v1/alerts/{id}/acknowledge/ was a 500 (DRF's metadata asked a view with no
    # serializer_class for its serializer); every path of the schema is tried, ids filled in
    client = lenient(admin_user)
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    values = {"name": "churn", "version": "1", "id": str(pending_request.pk), "pk": str(pending_request.pk)}
    failures = []
    for template in schema["paths"]:
        url = re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "1"), template)
        response = client.options(url)
        if response.status_code >= 500:
            failures.append((url, response.status_code))
    assert len(schema["paths"]) > 40 and not failures, failures


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/alerts/?active=null",
        "/api/v1/alerts/?active=maybe",
        "/api/v1/incidents/?overdue=null",
        "/api/v1/incidents/?active=yes",
        "/api/v1/models/churn/metrics/?provisional=nope",
    ],
)
def test_a_boolean_filter_refuses_what_is_not_a_boolean(admin_user, churn_v1, lenient, url):
    # `?overdue=null` was read as "not filtered" and answered the whole list
    error = _error(lenient(admin_user).get(url), 400)
    assert "Enter true or false." in error["message"]


@pytest.mark.parametrize("value", ["true", "false", "1", "0", ""])
def test_a_boolean_filter_takes_true_false_and_empty(admin_user, lenient, value):
    assert lenient(admin_user).get(f"/api/v1/alerts/?active={value}").status_code == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"n_bins": "12"}, "Expected an integer, got str."),
        ({"n_bins": True}, "Expected an integer, got bool."),
        ({"psi_warning": "0.2"}, "Expected a number, got str."),
        ({"retrain_url": 7}, "Expected a string, got int."),
    ],
)
def test_a_json_value_of_the_wrong_type_is_a_400_naming_the_field(admin_user, churn, lenient, body, message):
    # DRF turned "12" into 12 where the schema says integer (schemathesis: schema-violating request accepted)
    response = lenient(admin_user).patch("/api/v1/models/churn/monitoring/", body, format="json")
    error = _error(response, 400)
    assert error["details"][next(iter(body))] == [message]


def test_a_required_text_field_says_in_the_schema_that_it_may_not_be_blank(admin_user, lenient):
    # schemathesis sent {"reason": "\n"}: valid for minLength 1, refused once DRF trimmed it
    schema = lenient(admin_user).get("/api/schema/", HTTP_ACCEPT="application/json").json()
    reason = schema["components"]["schemas"]["SuspendRequest"]["properties"]["reason"]
    assert re.search(reason["pattern"], "Rolled back") and not re.search(reason["pattern"], "\n \t")


def test_a_json_key_given_twice_is_a_400_and_changes_nothing(owner, churn, lenient):
    # Other readers of the same body (a proxy, a log, the sender's own check) keep the first value
    # of a repeated key, Python's parser the last: the portal must not act on a value nobody else saw.
    client = lenient(owner)
    twice = b'{"description": "Reviewed card", "description": "Something else"}'
    response = client.generic("PATCH", "/api/v1/models/churn/", twice, content_type="application/json")
    error = _error(response, 400)
    assert "description" in error["message"] and "twice" in error["message"]
    churn.refresh_from_db()
    assert churn.description not in ("Reviewed card", "Something else")
    nested = b'{"source_commit": "abc", "metrics": {"auc": 0.91, "auc": 0.55}}'
    response = client.generic("POST", "/api/v1/models/churn/versions/", nested, content_type="application/json")
    assert "auc" in _error(response, 400)["message"]
    assert not ModelVersion.objects.filter(model=churn).exists()
