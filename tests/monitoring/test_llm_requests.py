"""Request records of an LLM application (POST …/versions/{v}/requests/): hostile or careless
batches are a 4xx JSON error with nothing stored, a resent batch is acknowledged once, only
LLM applications take them, and roles are kept apart."""

from __future__ import annotations

import codecs
from datetime import timedelta

import pytest

from monitoring.models import DirtyWindow, IngestBatch, LLMRequest
from registry.models import AuditEvent
from tests.monitoring.helpers import assert_error
from tests.monitoring.llm_helpers import NOW, as_csv, as_json, as_ndjson, llm_model, llm_version, request_record

pytestmark = pytest.mark.django_db

URL = "/api/v1/models/assistant/versions/1/requests/"


@pytest.fixture
def owner_client(assistant_v1, owner, api_client_for):
    return api_client_for(owner)


def post(client, body: bytes, content_type="application/json", url=URL):
    return client.generic("POST", url, body, content_type=content_type)


def records(n: int = 3, **overrides) -> list[dict]:
    return [request_record(i, **overrides) for i in range(n)]


# ------------------------------------------------------------------ accepted


@pytest.mark.parametrize(
    ("encode", "content_type"),
    [(as_json, "application/json"), (as_ndjson, "application/x-ndjson"), (as_csv, "text/csv")],
)
def test_a_batch_in_each_format_is_stored_with_its_values(owner_client, assistant_v1, encode, content_type):
    batch = records(3)
    batch[1]["safety_flags"] = ["pii", "jailbreak"]
    batch[2]["feedback"] = None
    response = post(owner_client, encode(batch), content_type)
    assert response.status_code == 201, response.content
    assert response.json()["rows"] == 3
    stored = {r.request_id: r for r in LLMRequest.objects.filter(version=assistant_v1)}
    assert set(stored) == {"q0", "q1", "q2"}
    assert (stored["q1"].tokens_in, stored["q1"].tokens_out, stored["q1"].latency_ms) == (101, 51, 401.0)
    assert stored["q1"].safety_flags == ["pii", "jailbreak"] and stored["q0"].safety_flags == []
    assert stored["q0"].feedback == 1.0 and stored["q2"].feedback is None
    assert DirtyWindow.objects.filter(version=assistant_v1).exists()
    assert AuditEvent.objects.filter(action="llm_requests.ingested").count() == 1


def test_a_csv_with_a_byte_order_mark_is_read(owner_client, assistant_v1):
    response = post(owner_client, codecs.BOM_UTF8 + as_csv(records(2)), "text/csv")
    assert response.status_code == 201, response.content
    assert LLMRequest.objects.filter(version=assistant_v1).count() == 2


def test_feedback_in_zero_one_and_minus_one_one_is_accepted(owner_client, assistant_v1):
    batch = [request_record(0, feedback=-1), request_record(1, feedback=0.25), request_record(2, feedback=0)]
    assert post(owner_client, as_json(batch)).status_code == 201
    assert sorted(LLMRequest.objects.values_list("feedback", flat=True)) == [-1.0, 0.0, 0.25]


# ------------------------------------------------------------------ refused, nothing stored

BAD_BATCHES = {
    "tokens as text": ([request_record(0), request_record(1, tokens_in="many")], ["Row 2", "tokens_in"]),
    "negative tokens": ([request_record(0, tokens_out=-1)], ["Row 1", "tokens_out", "at least 0"]),
    "fractional tokens": ([request_record(0, tokens_in=1.5)], ["Row 1", "tokens_in", "whole number"]),
    "huge tokens": ([request_record(0, tokens_in=10**30)], ["Row 1", "tokens_in", "at most 2147483647."]),
    "boolean latency": ([request_record(0, latency_ms=True)], ["Row 1", "latency_ms"]),
    "negative latency": ([request_record(0, latency_ms=-5)], ["Row 1", "latency_ms"]),
    "missing latency": ([request_record(0, latency_ms=None)], ["Row 1", "latency_ms", "Required"]),
    "feedback out of range": ([request_record(0), request_record(1, feedback=2)], ["Row 2", "feedback", "at most 1"]),
    "flags not a list": ([request_record(0, safety_flags="pii")], ["Row 1", "safety_flags", "list"]),
    "flag not a string": ([request_record(0, safety_flags=[1])], ["Row 1", "safety_flags"]),
    "flag too long": ([request_record(0, safety_flags=["x" * 65])], ["Row 1", "safety_flags"]),
    "bad timestamp": ([request_record(0, timestamp="yesterday")], ["Row 1", "timestamp", "ISO 8601"]),
    "future timestamp": (
        [request_record(0, timestamp=(NOW + timedelta(days=30)).isoformat())],
        ["Row 1", "timestamp", "future"],
    ),
    "duplicate ids": ([request_record(0), request_record(1, request_id="q0")], ["Row 2", "request_id", "Duplicate"]),
    "empty id": ([request_record(0, request_id=" ")], ["Row 1", "request_id", "Required"]),
    "NUL in id": ([request_record(0, request_id="a\u0000b")], ["Row 1", "request_id", "NUL"]),
    "prompt text": ([request_record(0, prompt="Hello?")], ["Row 1", "prompt", "text is not accepted"]),
    "unknown field": ([request_record(0, colour="red")], ["Row 1", "colour", "Unknown field"]),
    "missing tokens": ([{k: v for k, v in request_record(0).items() if k != "tokens_in"}], ["tokens_in", "Required"]),
    "not an object": ([request_record(0), [1, 2]], ["Row 2", "record"]),
}


@pytest.mark.parametrize("case", list(BAD_BATCHES))
def test_a_bad_json_batch_is_refused_and_nothing_is_stored(owner_client, assistant_v1, case):
    batch, needles = BAD_BATCHES[case]
    assert_error(post(owner_client, as_json(batch)), 400, *needles)
    assert not LLMRequest.objects.exists()
    assert not IngestBatch.objects.exists() and not DirtyWindow.objects.exists()
    assert not AuditEvent.objects.filter(action="llm_requests.ingested").exists()


def test_nan_and_infinity_are_refused(owner_client, assistant_v1):
    body = as_json([request_record(0)]).replace(b'"latency_ms": 400.0', b'"latency_ms": NaN')
    assert_error(post(owner_client, body), 400, "Row 1", "latency_ms", "NaN")
    body = as_json([request_record(0)]).replace(b'"feedback": 1', b'"feedback": Infinity')
    assert_error(post(owner_client, body), 400, "Row 1", "feedback")
    assert not LLMRequest.objects.exists()


HEADER = "request_id,timestamp,tokens_in,tokens_out,latency_ms,feedback,safety_flags"


@pytest.mark.parametrize(
    ("lines", "needles"),
    [
        ([HEADER, "a,2026-01-01T00:00:00,1,2,3,,", "b,2026-01-01T00:00:00,1,2"], ["Row 2", "Fewer cells"]),
        ([HEADER, "a,2026-01-01T00:00:00,1,2,3,,,extra"], ["Row 1", "More cells"]),
        ([HEADER, "a,{ts},1,2,NaN,,"], ["Row 1", "latency_ms", "NaN"]),
        ([HEADER, "a,{ts},-1,2,3,,"], ["Row 1", "tokens_in"]),
        ([HEADER.replace(",latency_ms", ""), "a,{ts},1,2,,"], ["latency_ms", "missing from the CSV header"]),
        ([HEADER + ",prompt", "a,{ts},1,2,3,,,hi"], ["prompt", "text is not accepted"]),
        ([HEADER, "a,{ts},1,2,3,,", "a,{ts},1,2,3,,"], ["Row 2", "request_id", "Duplicate"]),
    ],
)
def test_a_bad_csv_batch_is_refused_and_nothing_is_stored(owner_client, assistant_v1, lines, needles):
    ts = (NOW - timedelta(hours=2)).isoformat()
    body = ("\n".join(line.format(ts=ts) for line in lines) + "\n").encode()
    assert_error(post(owner_client, body, "text/csv"), 400, *needles)
    assert not LLMRequest.objects.exists()


def test_an_unsupported_media_type_is_a_415(owner_client):
    assert_error(post(owner_client, b"<xml/>", "application/xml"), 415)


# ------------------------------------------------------------------ resend


def test_a_resent_batch_answers_the_same_and_stores_nothing_twice(owner_client, assistant_v1):
    body = as_json(records(4))
    first = post(owner_client, body)
    again = post(owner_client, body)
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["duplicate_of_batch"] == first.json()["batch"]
    assert {k: v for k, v in again.json().items() if k != "duplicate_of_batch"} == {
        k: v for k, v in first.json().items() if k != "batch"
    }
    assert LLMRequest.objects.count() == 4 and IngestBatch.objects.count() == 1
    assert AuditEvent.objects.filter(action="llm_requests.ingested").count() == 1


def test_a_different_batch_reusing_a_stored_id_is_refused_whole(owner_client, assistant_v1):
    assert post(owner_client, as_json(records(2))).status_code == 201
    clash = [request_record(5), request_record(1, latency_ms=9.0)]
    assert_error(post(owner_client, as_json(clash)), 400, "Row 2", "already stored")
    assert sorted(LLMRequest.objects.values_list("request_id", flat=True)) == ["q0", "q1"]


# ------------------------------------------------------------------ which models, who


def test_a_version_of_an_ml_model_takes_no_request_records(churn_v1, owner, api_client_for):
    client = api_client_for(owner)
    response = post(client, as_json(records(1)), url="/api/v1/models/churn/versions/1/requests/")
    assert_error(response, 400, "ML model", "llm_app")
    assert not LLMRequest.objects.exists()


@pytest.mark.parametrize(
    ("role", "status"),
    [("owner", 201), ("admin", 201), ("reviewer", 403), ("auditor", 403), ("outsider", 403)],
)
def test_who_may_send_request_records(assistant_v1, roles, api_client_for, role, status):
    response = post(api_client_for(roles[role]), as_json(records(1)))
    assert response.status_code == status, response.content
    assert LLMRequest.objects.exists() == (status == 201)


def test_a_token_without_monitoring_write_may_not_send(assistant_v1, owner, api_client_for):
    client = api_client_for(owner, scopes=["monitoring:read"])
    assert_error(post(client, as_json(records(1))), 403, "monitoring:write")
    assert not LLMRequest.objects.exists()


def test_predictions_and_labels_sent_to_an_llm_application_are_refused_pointing_to_its_requests(
    owner, team, api_client_for
):
    """An LLM application takes request records (and their feedback), not predictions or labels:
    both answer a 400 that says where its data goes, and nothing is stored."""
    from monitoring.models import GroundTruth, Prediction

    version = llm_version(llm_model(owner, team))
    client = api_client_for(owner)
    base = f"/api/v1/models/{version.model.name}"
    rows = [{"prediction_id": "p1", "timestamp": "2026-03-01T10:00:00Z", "features": {}, "prediction": "1"}]
    sent = client.post(f"{base}/versions/{version.version}/predictions/", rows, format="json")
    assert sent.status_code == 400, sent.content
    assert "/requests/" in sent.json()["error"]["message"]
    labelled = client.post(f"{base}/ground-truth/", [{"prediction_id": "p1", "label": "1"}], format="json")
    assert labelled.status_code == 400, labelled.content
    assert "/requests/" in labelled.json()["error"]["message"]
    assert not Prediction.objects.exists() and not GroundTruth.objects.exists()
