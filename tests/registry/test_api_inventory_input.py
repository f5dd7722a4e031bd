"""Hostile and malformed bodies on the inventory API: each a 4xx with the JSON error shape, and
nothing written."""

import pytest

from registry.models import ModelVersion, RegisteredModel
from tests.factories import TeamFactory
from tests.registry.test_api_inventory import LIST, assert_error, post_json

BAD_MODEL_BODIES = [
    ({"name": "churn"}, "name"),  # duplicate
    ({"name": "Bad Name"}, "name"),
    ({"name": 7}, "name"),
    ({}, "name"),
    ({"name": "ok", "colour": "red"}, "colour"),
    ({"name": "ok", "risk_tier": "extreme"}, "risk_tier"),
    ({"name": "ok", "kind": "agent"}, "kind"),
    ({"name": "ok", "retrain_cadence_days": "weekly"}, "retrain_cadence_days"),
    ({"name": "ok", "retrain_cadence_days": 0}, "retrain_cadence_days"),
    ({"name": "ok", "tags": "pii"}, "tags"),
    ({"name": "ok", "team": "nope"}, "team"),
    ({"name": "ok", "team": "elsewhere"}, "team"),
    ({"name": "ok", "primary_metric_higher_is_better": "maybe"}, "primary_metric_higher_is_better"),
    (["not", "an", "object"], "non_field_errors"),
]


@pytest.mark.parametrize(("body", "field"), BAD_MODEL_BODIES)
def test_bad_model_bodies_are_a_400_and_write_nothing(owner, churn, api_client_for, last_seq, body, field):
    TeamFactory(slug="elsewhere")
    client = api_client_for(owner)
    start = last_seq()
    assert_error(post_json(client, LIST, body), 400, field=field)
    assert RegisteredModel.objects.count() == 1 and last_seq() == start


BAD_VERSION_BODIES = [
    ({"metrics": {"auc": "high"}}, "metrics"),
    ({"metrics": {"auc": None}}, "metrics"),
    ({"metrics": [1, 2]}, "metrics"),
    ({"feature_schema": [{"name": "a", "type": "text"}]}, "feature_schema"),
    ({"feature_schema": [{"name": "a", "type": "numeric"}, {"name": "a", "type": "numeric"}]}, "feature_schema"),
    ({"task_type": "ranking"}, "task_type"),
    ({"stage": "production"}, "stage"),
    ({"version": 5}, "version"),
    ({"artifact_uri": "x" * 501}, "artifact_uri"),
    ({"source_commit": ["a"]}, "source_commit"),
]


@pytest.mark.parametrize(("body", "field"), BAD_VERSION_BODIES)
def test_bad_version_bodies_are_a_400_and_write_nothing(owner, churn, api_client_for, last_seq, body, field):
    client = api_client_for(owner)
    start = last_seq()
    body = {"artifact_uri": "s3://models/churn/1", **body}  # each body is wrong in its one field only
    assert_error(post_json(client, "/api/v1/models/churn/versions/", body), 400, field=field)
    assert not ModelVersion.objects.exists() and last_seq() == start


@pytest.mark.parametrize("raw", ['{"metrics": {"auc": NaN}}', '{"metrics": {"auc": Infinity}}', '{"name": ', "\xff"])
def test_malformed_json_and_nan_are_a_400(owner, churn, api_client_for, last_seq, raw):
    client = api_client_for(owner)
    start = last_seq()
    response = client.post(
        "/api/v1/models/churn/versions/", data=raw.encode("latin-1"), content_type="application/json"
    )
    error = assert_error(response, 400)
    assert "JSON" in error["message"]
    assert not ModelVersion.objects.exists() and last_seq() == start


def test_metric_overflowing_to_infinity_is_a_400(owner, churn, api_client_for, last_seq):
    client = api_client_for(owner)
    start = last_seq()
    response = client.post(
        "/api/v1/models/churn/versions/",
        data='{"artifact_uri": "s3://m/1", "metrics": {"auc": 1e999}}',
        content_type="application/json",
    )
    error = assert_error(response, 400, field="metrics")
    assert "finite" in error["message"]
    assert not ModelVersion.objects.exists() and last_seq() == start


def test_oversize_body_is_a_413(owner, churn, api_client_for, last_seq, settings):
    settings.API_MAX_BODY_BYTES = 2000
    client = api_client_for(owner)
    start = last_seq()
    body = {"description": "x" * 3000}
    error = assert_error(post_json(client, "/api/v1/models/churn/versions/", body), 413)
    assert error["code"] == "payload_too_large"
    assert_error(post_json(client, LIST, {"name": "big", "description": "y" * 3000}), 413)
    assert not ModelVersion.objects.exists() and RegisteredModel.objects.count() == 1 and last_seq() == start


def test_non_json_content_type_is_a_415(owner, churn, api_client_for):
    response = api_client_for(owner).post(LIST, data="name=x", content_type="application/x-www-form-urlencoded")
    assert_error(response, 415)
