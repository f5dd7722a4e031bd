"""A key repeated within one JSON record (``{"prediction_id": "a", "prediction_id": "b"}``) is a
400 naming the row and the key, in JSON arrays and JSON Lines, predictions and labels, at the
top level or inside ``features``; nothing is stored. Records whose strings hold colons, escapes
or numbers beyond 64 bits are no false alarm."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from monitoring.models import GroundTruth, Prediction
from monitoring.services.ingest_parsing import BatchError, parse_body
from tests.monitoring.helpers import assert_error

pytestmark = pytest.mark.django_db

PRED_URL = "/api/v1/models/churn/versions/1/predictions/"
LABEL_URL = "/api/v1/models/churn/ground-truth/"
STAMP = (datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)).isoformat()


def prediction_text(pid: str, *, extra: str = "", features: str = '{"age": 40.0}') -> str:
    return f'{{"prediction_id": "{pid}", "timestamp": "{STAMP}", "features": {features}, "prediction": 1{extra}}}'


def body_of(texts: list[str], fmt: str) -> tuple[bytes, str]:
    if fmt == "json":
        return ("[" + ",\n".join(texts) + "]").encode(), "application/json"
    return "\n".join(texts).encode(), "application/x-ndjson"


@pytest.fixture
def client(churn_v1, owner, api_client_for):
    return api_client_for(owner)


REPEATED_PREDICTIONS = {
    "prediction_id": (prediction_text("b", extra=', "prediction_id": "c"'), "prediction_id"),
    "timestamp": (prediction_text("b", extra=f', "timestamp": "{STAMP}"'), "timestamp"),
    "prediction, same value": (prediction_text("b", extra=', "prediction": 1'), "prediction"),
    "features": (prediction_text("b", extra=', "features": {"age": 1}'), "features"),
    "a feature": (prediction_text("b", features='{"age": 40.0, "plan": "x", "age": 41}'), "features.age"),
}


@pytest.mark.parametrize("case", sorted(REPEATED_PREDICTIONS))
@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_a_key_repeated_in_a_prediction_is_a_400_naming_row_and_key(client, fmt, case, last_seq):
    repeated, field = REPEATED_PREDICTIONS[case]
    body, content_type = body_of([prediction_text("a"), repeated, prediction_text("c")], fmt)
    seq = last_seq()
    response = client.generic("POST", PRED_URL, body, content_type=content_type)
    error = assert_error(response, 400, "Row 2", "appears more than once")
    assert list(error["details"]) == [field], error
    assert error["details"][field][0].startswith(f"Row 2, field '{field}': Key '{field.split('.')[-1]}' ")
    assert Prediction.objects.count() == 0
    assert last_seq() == seq


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_a_key_repeated_in_a_label_is_a_400_naming_row_and_key(client, fmt):
    texts = ['{"prediction_id": "a", "label": 1}', '{"prediction_id": "b", "label": 0, "label": 1}']
    body, content_type = body_of(texts, fmt)
    error = assert_error(client.generic("POST", LABEL_URL, body, content_type=content_type), 400, "Row 2")
    assert list(error["details"]) == ["label"], error
    assert GroundTruth.objects.count() == 0


def test_a_repeat_hidden_behind_an_escaped_colon_is_found():
    """Keys' and values' colons written as \\u003a do not mask a repeat."""
    texts = [prediction_text("a"), prediction_text("b\\u003a1", extra=', "prediction_id": "b\\u003a2"')]
    with pytest.raises(BatchError) as caught:
        parse_body(body_of(texts, "json")[0], "application/json")
    assert (caught.value.row, caught.value.field) == (2, "prediction_id")


def test_a_repeat_in_a_record_with_numbers_beyond_64_bits_is_found():
    texts = [prediction_text("a", extra=', "score": 0.5, "score": 1' + "0" * 25)]
    with pytest.raises(BatchError) as caught:
        parse_body(body_of(texts, "jsonl")[0], "application/x-ndjson")
    assert (caught.value.row, caught.value.field) == (1, "score")


def test_a_repeat_after_a_blank_line_in_json_lines_names_the_record():
    body = (prediction_text("a") + "\n\n" + prediction_text("b", extra=', "prediction": 0')).encode()
    with pytest.raises(BatchError) as caught:
        parse_body(body, "application/x-ndjson")
    assert (caught.value.row, caught.value.field) == (2, "prediction")


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_colons_escapes_and_same_named_keys_in_different_objects_are_accepted(client, fmt):
    """Keys repeated across records or between a record and its features are not repeats."""
    client_texts = [
        prediction_text("a:b", features='{"age": 40.0, "plan": "x:\\"y\\":z"}'),
        prediction_text("c\\u003ad", features='{"plan": "\\u003a", "age": 1}'),
        prediction_text("e\\\\", features='{"age": 2, "plan": "prediction_id"}'),
    ]
    body, content_type = body_of(client_texts, fmt)
    response = client.generic("POST", PRED_URL, body, content_type=content_type)
    assert response.status_code == 201, response.content
    assert set(Prediction.objects.values_list("prediction_id", flat=True)) == {"a:b", "c:d", "e\\"}


def test_a_large_clean_batch_is_parsed_without_the_slow_path(monkeypatch):
    """The exact re-read (standard library) runs only when the quick check cannot vouch for a body."""
    import monitoring.services.ingest_parsing as parsing

    texts = [prediction_text(f"p{i}", features=json.dumps({"age": i, "plan": f"t{i}:00"})) for i in range(500)]
    calls = []
    monkeypatch.setattr(parsing, "_first_repeated_key", lambda *a, **k: calls.append(a) or None)
    for fmt in ("json", "jsonl"):
        body, content_type = body_of(texts, fmt)
        assert parse_body(body, content_type).n == 500
    assert calls == []


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_a_repeat_hidden_under_nesting_too_deep_to_search_is_refused(fmt):
    """orjson reads 1,000 levels; the standard library, which names the repeat, does not: such a
    body is refused as nested too deeply rather than stored with the repeat unnoticed."""
    deep = "[" * 1000 + "]" * 1000
    body, content_type = body_of(
        [prediction_text("b", extra=', "prediction_id": "c"', features=f'{{"age": {deep}}}')], fmt
    )
    with pytest.raises(BatchError, match="nested too deeply"):
        parse_body(body, content_type)
