"""Prediction ids of every JSON type, in predictions and labels alike: a string is taken as sent
(trimmed), an integer as its decimal text (so a label sent as "12" joins a prediction sent as 12);
booleans, floats, objects, arrays, null, blank strings and ids over 100 characters are a 400
naming the row and the field, in JSON arrays, JSON Lines and CSV, with nothing stored."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from monitoring.models import GroundTruth, Prediction
from tests.monitoring.helpers import assert_error

pytestmark = pytest.mark.django_db

PRED_URL = "/api/v1/models/churn/versions/1/predictions/"
LABEL_URL = "/api/v1/models/churn/ground-truth/"
STAMP = (datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)).isoformat()
MARK = '"@ID@"'

# JSON tokens sent as the second record's prediction_id
REFUSED_TOKENS = {
    "true": "true",
    "false": "false",
    "float 1.0": "1.0",
    "float 1e3": "1e3",
    "float -0.0": "-0.0",
    "float 2.5": "2.5",
    "empty object": "{}",
    "object": '{"id": "a"}',
    "empty array": "[]",
    "array": '["a"]',
    "null": "null",
    "empty string": '""',
    "blank string": '"   "',
    "101 characters": json.dumps("x" * 101),
    "integer of 101 digits": "1" * 101,
}
# CSV cells are text: only an empty, blank or over-long cell can be wrong
REFUSED_CELLS = {"empty cell": "", "blank cell": "   ", "101 characters": "x" * 101}


def prediction(pid) -> dict:
    return {"prediction_id": pid, "timestamp": STAMP, "features": {"age": 40.0}, "prediction": 1}


def label(pid) -> dict:
    return {"prediction_id": pid, "label": 1}


def json_body(kind: str, fmt: str, token: str) -> tuple[bytes, str]:
    """Two records, the second's prediction_id the raw JSON ``token``."""
    make = prediction if kind == "predictions" else label
    texts = [json.dumps(make("ok-1")), json.dumps(make("@ID@")).replace(MARK, token)]
    if fmt == "json":
        return ("[" + ",".join(texts) + "]").encode(), "application/json"
    return "\n".join(texts).encode(), "application/x-ndjson"


def csv_body(kind: str, cell: str) -> bytes:
    if kind == "predictions":
        return f"prediction_id,timestamp,age,prediction\nok-1,{STAMP},40,1\n{cell},{STAMP},41,0\n".encode()
    return f"prediction_id,label\nok-1,1\n{cell},0\n".encode()


def url_and_table(kind: str):
    return (PRED_URL, Prediction) if kind == "predictions" else (LABEL_URL, GroundTruth)


@pytest.fixture
def client(churn_v1, owner, api_client_for):
    return api_client_for(owner)


@pytest.mark.parametrize("case", sorted(REFUSED_TOKENS))
@pytest.mark.parametrize("fmt", ["json", "jsonl"])
@pytest.mark.parametrize("kind", ["predictions", "labels"])
def test_a_prediction_id_neither_string_nor_integer_is_a_400_naming_row_and_field(client, kind, fmt, case, last_seq):
    body, content_type = json_body(kind, fmt, REFUSED_TOKENS[case])
    url, table = url_and_table(kind)
    seq = last_seq()
    error = assert_error(client.generic("POST", url, body, content_type=content_type), 400, "Row 2", "prediction_id")
    assert list(error["details"]) == ["prediction_id"], error
    assert error["details"]["prediction_id"][0].startswith("Row 2, field 'prediction_id': "), error
    assert table.objects.count() == 0
    assert last_seq() == seq


@pytest.mark.parametrize("case", sorted(REFUSED_CELLS))
@pytest.mark.parametrize("kind", ["predictions", "labels"])
def test_an_empty_blank_or_overlong_csv_id_is_a_400_naming_row_and_field(client, kind, case):
    url, table = url_and_table(kind)
    response = client.generic("POST", url, csv_body(kind, REFUSED_CELLS[case]), content_type="text/csv")
    error = assert_error(response, 400, "Row 2", "prediction_id")
    assert list(error["details"]) == ["prediction_id"], error
    assert table.objects.count() == 0


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
@pytest.mark.parametrize("kind", ["predictions", "labels"])
def test_the_refusal_says_what_an_id_may_be(client, kind, fmt):
    body, content_type = json_body(kind, fmt, "true")
    url, _ = url_and_table(kind)
    error = assert_error(client.generic("POST", url, body, content_type=content_type), 400)
    assert "string or an integer" in error["message"] and "bool" in error["message"], error


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv"])
def test_integer_ids_are_stored_as_decimal_text_and_labels_sent_as_text_join_them(client, fmt):
    predictions = [prediction(12), prediction(-7), prediction(10**30), prediction(" padded ")]
    if fmt == "csv":
        lines = ["prediction_id,timestamp,age,prediction"] + [f"{p['prediction_id']},{STAMP},40,1" for p in predictions]
        body, content_type = ("\n".join(lines) + "\n").encode(), "text/csv"
    else:
        records = [json.dumps(p) for p in predictions]
        body = ("[" + ",".join(records) + "]" if fmt == "json" else "\n".join(records)).encode()
        content_type = "application/json" if fmt == "json" else "application/x-ndjson"
    response = client.generic("POST", PRED_URL, body, content_type=content_type)
    assert response.status_code == 201, response.content
    expected = {"12", "-7", str(10**30), "padded"}
    assert set(Prediction.objects.values_list("prediction_id", flat=True)) == expected
    labels = [label("12"), label(-7), label(str(10**30)), label("padded")]
    answer = client.post(LABEL_URL, labels, format="json")
    assert answer.status_code == 201, answer.content
    assert answer.json()["matched_predictions"] == 4
    assert set(GroundTruth.objects.values_list("prediction_id", flat=True)) == expected


def test_a_label_sent_as_an_integer_joins_a_prediction_sent_as_text(client):
    body = json.dumps([prediction("12")]).encode()
    assert client.generic("POST", PRED_URL, body, content_type="application/json").status_code == 201
    answer = client.generic("POST", LABEL_URL, b"prediction_id,label\n12,1\n", content_type="text/csv")
    assert answer.status_code == 201 and answer.json()["matched_predictions"] == 1
    again = client.post(LABEL_URL, [label(12)], format="json")
    assert again.json()["unchanged"] == 1 and again.json()["matched_predictions"] == 1


def test_an_integer_and_its_text_in_one_batch_are_the_same_id(client):
    body = json.dumps([prediction(5), prediction("5")]).encode()
    response = client.generic("POST", PRED_URL, body, content_type="application/json")
    assert_error(response, 400, "Row 2", "prediction_id", "Duplicate")
