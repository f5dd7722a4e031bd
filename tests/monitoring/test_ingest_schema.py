"""The OpenAPI schema describes the ingestion endpoints as they behave: the records of each body
(their fields; unknown fields refused), the media types, and the answers (``batch``,
``duplicate_of_batch``, ``rows``, ``new``, ``updated``). It was an array of free-form objects
with free-form answers. Real batches and the server's real answers are checked against it."""

from __future__ import annotations

import json

import jsonschema
import pytest
from drf_spectacular.generators import SchemaGenerator

from tests.monitoring.helpers import as_json, prediction_records
from tests.monitoring.llm_helpers import request_record

pytestmark = pytest.mark.django_db

PREDICTIONS = "/api/v1/models/{name}/versions/{version}/predictions/"
LABELS = "/api/v1/models/{name}/ground-truth/"
REQUESTS = "/api/v1/models/{name}/versions/{version}/requests/"


@pytest.fixture(scope="module")
def schema():
    return json.loads(json.dumps(SchemaGenerator().get_schema(request=None, public=True), default=str))


def _json_schema(node, components):
    """An OpenAPI 3.0 schema as JSON Schema: ``$ref`` resolved, ``nullable`` as a null type."""
    if isinstance(node, list):
        return [_json_schema(item, components) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return _json_schema(components[node["$ref"].rsplit("/", 1)[1]], components)
    out = {key: _json_schema(value, components) for key, value in node.items() if key != "nullable"}
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        elif "oneOf" in out:
            out["oneOf"] = [*out["oneOf"], {"type": "null"}]
    return out


def body_schema(schema, path, media="application/json"):
    content = schema["paths"][path]["post"]["requestBody"]["content"]
    return _json_schema(content[media]["schema"], schema["components"]["schemas"])


def answer_schema(schema, path, status):
    content = schema["paths"][path]["post"]["responses"][str(status)]["content"]["application/json"]
    return _json_schema(content["schema"], schema["components"]["schemas"])


@pytest.mark.parametrize("path", [PREDICTIONS, LABELS, REQUESTS])
def test_an_ingestion_body_is_json_records_json_lines_or_csv_and_its_records_refuse_unknown_fields(schema, path):
    content = schema["paths"][path]["post"]["requestBody"]["content"]
    assert set(content) == {"application/json", "application/x-ndjson", "text/csv"}
    records = body_schema(schema, path)
    assert records["type"] == "array" and records["minItems"] == 1
    assert records["items"]["additionalProperties"] is False
    assert {"timestamp", "prediction_id", "request_id"} & set(records["items"]["required"])


def test_predictions_and_their_answers_match_the_schema(schema, churn_v1, owner, api_client_for):
    records = prediction_records(3)
    rows = body_schema(schema, PREDICTIONS)
    jsonschema.validate(records, rows)
    assert set(rows["items"]["properties"]) == {
        "prediction_id",
        "timestamp",
        "features",
        "prediction",
        "score",
        "subject_id",
    }
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate([{**records[0], "tenure_months": 3}], rows)

    client = api_client_for(owner)
    url = PREDICTIONS.format(name="churn", version=1)
    stored = client.generic("POST", url, as_json(records), content_type="application/json")
    assert stored.status_code == 201, stored.content
    jsonschema.validate(stored.json(), answer_schema(schema, PREDICTIONS, 201))
    resent = client.generic("POST", url, as_json(records), content_type="application/json")
    assert resent.status_code == 200 and resent.json()["duplicate_of_batch"] == stored.json()["batch"]
    jsonschema.validate(resent.json(), answer_schema(schema, PREDICTIONS, 200))
    assert "batch" in answer_schema(schema, PREDICTIONS, 201)["required"]
    assert "duplicate_of_batch" in answer_schema(schema, PREDICTIONS, 200)["properties"]

    labels = [{"prediction_id": records[0]["prediction_id"], "label": 1}]
    jsonschema.validate(labels, body_schema(schema, LABELS))
    answer = client.generic("POST", LABELS.format(name="churn"), as_json(labels), content_type="application/json")
    assert answer.status_code == 201, answer.content
    label_answer = answer_schema(schema, LABELS, 201)
    jsonschema.validate(answer.json(), label_answer)
    assert {"rows", "new", "updated"} <= set(label_answer["required"])


def test_llm_request_records_and_their_answer_match_the_schema(schema, assistant_v1, owner, api_client_for):
    records = [request_record(i) for i in range(3)]
    jsonschema.validate(records, body_schema(schema, REQUESTS))
    url = REQUESTS.format(name="assistant", version=1)
    stored = api_client_for(owner).generic("POST", url, as_json(records), content_type="application/json")
    assert stored.status_code == 201, stored.content
    jsonschema.validate(stored.json(), answer_schema(schema, REQUESTS, 201))
