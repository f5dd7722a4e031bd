"""Unpaired surrogate escapes (``"\\ud800"``) in an ingestion body: orjson refuses them, the
standard library would accept them, and nothing can store or even echo them. Every ingestion
endpoint answers a 400 in the error shape naming the row and field, and stores nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from monitoring.models import GroundTruth, IngestBatch, Prediction, ReferenceProfile
from monitoring.models_llm import LLMRequest
from registry.models import EvaluationRun
from tests.monitoring.helpers import assert_error
from tests.monitoring.llm_helpers import llm_model, llm_version, request_record

pytestmark = pytest.mark.django_db

STAMP = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0).isoformat()
PRED_URL = "/api/v1/models/churn/versions/1/predictions/"
LABEL_URL = "/api/v1/models/churn/ground-truth/"
REF_URL = "/api/v1/models/churn/versions/1/reference/"
REQ_URL = "/api/v1/models/assistant/versions/1/requests/"
EVAL_URL = "/api/v1/models/assistant/versions/1/evaluations/?evaluation_set=s1"


def prediction(i: int, **overrides) -> dict:
    rec = {
        "prediction_id": f"s{i}",
        "timestamp": STAMP,
        "features": {"age": 40.0, "income": 1000.0, "plan": "basic"},
        "prediction": 1,
        "score": 0.7,
    }
    return rec | overrides


def label(i: int, **overrides) -> dict:
    return {"prediction_id": f"s{i}", "label": 1} | overrides


def evaluation(i: int, **overrides) -> dict:
    return {"case_id": f"c{i}", "correctness": 0.8, "safety_pass": True} | overrides


LONE = "\ud800"
CASES = {
    "prediction id": (PRED_URL, prediction, {"prediction_id": LONE}, "prediction_id"),
    "prediction feature key": (PRED_URL, prediction, {"features": {"age": 1.0, "\udc00": 2.0}}, "features"),
    "prediction feature value": (PRED_URL, prediction, {"features": {"age": 1.0, "plan": LONE}}, "features"),
    "label id": (LABEL_URL, label, {"prediction_id": LONE}, "prediction_id"),
    "label key": (LABEL_URL, label, {"\udc00": 1}, "\\udc00"),
    "request id": (REQ_URL, request_record, {"request_id": LONE}, "request_id"),
    "request flag": (REQ_URL, request_record, {"safety_flags": [LONE]}, "safety_flags"),
    "request key": (REQ_URL, request_record, {"\udc00": 1}, "\\udc00"),
    "evaluation case": (EVAL_URL, evaluation, {"case_id": LONE}, "case_id"),
    "evaluation key": (EVAL_URL, evaluation, {"\udc00": "x"}, "\\udc00"),
}


def _body(records: list[dict], lines: bool) -> bytes:
    # json.dumps writes a lone surrogate as its \\uXXXX escape, as a client would
    if lines:
        return b"\n".join(json.dumps(r).encode() for r in records)
    return json.dumps(records).encode()


def _stored() -> list[int]:
    return [
        m.objects.count() for m in (Prediction, GroundTruth, IngestBatch, LLMRequest, EvaluationRun, ReferenceProfile)
    ]


@pytest.fixture
def client(churn_v1, owner, team, api_client_for):
    llm_version(llm_model(owner, team))
    return api_client_for(owner)


@pytest.mark.parametrize("content_type", ["application/json", "application/x-ndjson"])
@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_a_lone_surrogate_is_a_400_naming_row_and_field(client, case, content_type):
    url, make, overrides, field = CASES[case]
    records = [make(0), make(1, **overrides)]
    before = _stored()
    response = client.generic("POST", url, _body(records, content_type != "application/json"), content_type)
    assert_error(response, 400, "Row 2", field, "surrogate")
    assert _stored() == before


def test_a_lone_surrogate_with_a_nan_elsewhere_is_still_refused(client):
    body = json.dumps([prediction(0, score=float("nan")), prediction(1, prediction_id=LONE)]).encode()
    response = client.generic("POST", PRED_URL, body, "application/json")
    assert response.status_code == 400
    assert Prediction.objects.count() == 0


@pytest.mark.parametrize("content_type", ["application/json", "application/x-ndjson"])
def test_reference_upload_refuses_json_and_surrogate_bytes(client, content_type):
    response = client.generic("POST", REF_URL, _body([prediction(0, prediction_id=LONE)], False), content_type)
    assert response.status_code in (400, 415)
    assert response.json()["error"]["code"]
    assert ReferenceProfile.objects.count() == 0


def test_reference_upload_refuses_an_encoded_surrogate_in_a_csv(client):
    # CESU-8 bytes of U+D800 in a header and in a cell: not UTF-8
    body = b"age,income,plan,score,label,\xed\xa0\x80\n1,2,\xed\xa0\x80,0.5,1,x\n"
    response = client.generic("POST", REF_URL, body, "text/csv")
    assert_error(response, 400)
    assert ReferenceProfile.objects.count() == 0


def test_an_error_message_escapes_text_that_cannot_be_encoded():
    from monitoring.services.ingest_parsing import BatchError

    error = BatchError(3, "features.\udc00", "Unknown feature '\udc00'.")
    assert "\\udc00" in error.details["field"] and "\\udc00" in error.details["reason"]
    json.dumps(error.message_dict, ensure_ascii=False).encode("utf-8")


def test_the_api_error_body_escapes_text_that_cannot_be_encoded():
    from mlops_portal.api.errors import error_body

    body = error_body(400, "bad '\ud800'", {"\udc00": ["x\ud800"]})
    json.dumps(body, ensure_ascii=False).encode("utf-8")
    assert "\\ud800" in body["error"]["message"]
