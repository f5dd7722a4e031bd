"""Prediction batches in JSON are decoded by the version's feature schema (``ingest_json``):
columns straight from the body, no dict per record. What that reader does not accept goes to the
general reader, whose refusals name the row and the field; a repeat of a key must never slip
through either reader, and a JSON Lines line holds exactly one record."""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from monitoring.models import GroundTruth, Prediction
from monitoring.services.ingest_json import predictions_read
from monitoring.services.ingest_parsing import BatchError
from tests.monitoring.helpers import assert_error

PRED_URL = "/api/v1/models/churn/versions/1/predictions/"
LABEL_URL = "/api/v1/models/churn/ground-truth/"
STAMP = (datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)).isoformat()
SCHEMA = {"age": "numeric", "income": "numeric", "plan": "categorical"}
JSON, JSONL = "application/json", "application/x-ndjson"


def record(pid: str, features: str = '{"age": 40, "income": 1.5, "plan": "pro"}', extra: str = "") -> str:
    return f'{{"prediction_id": "{pid}", "timestamp": "{STAMP}", "features": {features}{extra}}}'


def array(*texts: str) -> bytes:
    return ("[" + ",\n".join(texts) + "]").encode()


def lines(*texts: str) -> bytes:
    return "\n".join(texts).encode()


def test_a_plain_batch_is_decoded_into_columns_with_nan_and_none_for_what_is_missing():
    body = array(
        record("a", extra=', "prediction": 1, "score": 0.75'),
        record("b", '{"age": null, "plan": null}', ', "prediction": "0"'),
        record("c", '{"income": 2}'),
    )
    batch = predictions_read(body, JSON, SCHEMA)
    assert batch.features is not None, "decoded by type, not by the general reader"
    assert (batch.fmt, batch.n) == ("json", 3)
    assert batch.present == ["features", "prediction", "prediction_id", "score", "timestamp"]
    assert batch.features["age"].dtype == np.float64
    assert np.array_equal(batch.features["age"], [40.0, np.nan, np.nan], equal_nan=True)
    assert np.array_equal(batch.features["income"], [1.5, np.nan, 2.0], equal_nan=True)
    assert batch.features["plan"] == ["pro", None, None]
    assert batch.columns["prediction"] == [1, "0", None]
    assert batch.columns["score"] == [0.75, None, None]
    assert "subject_id" not in batch.columns


def test_json_lines_blank_lines_and_a_byte_order_mark_are_read_by_type():
    body = b"\xef\xbb\xbf" + lines(record("a"), "", "  ", record("b"))
    batch = predictions_read(body, JSONL, SCHEMA)
    assert (batch.features is not None, batch.fmt, batch.columns["prediction_id"]) == (True, "jsonl", ["a", "b"])


def test_feature_names_that_are_no_identifiers_are_read_and_their_colons_counted():
    schema = {"age:years": "numeric", "plan type": "categorical", "class": "numeric"}
    body = array(
        record("a", '{"age:years": 3, "plan type": "x:y", "class": 1}'),
        record("b", '{"plan type": "z"}'),
    )
    batch = predictions_read(body, JSON, schema)
    assert batch.features is not None
    assert np.array_equal(batch.features["age:years"], [3.0, np.nan], equal_nan=True)
    assert batch.features["plan type"] == ["x:y", "z"]
    repeated = array(record("a", '{"age:years": 3, "class": 1, "age:years": 4}'))
    with pytest.raises(BatchError) as caught:
        predictions_read(repeated, JSON, schema)
    assert (caught.value.row, caught.value.field) == (1, "features.age:years")


REPEATS = {
    "top level": (record("b", extra=', "prediction_id": "c"'), "prediction_id"),
    "numeric feature": (record("b", '{"age": 1, "age": 2}'), "features.age"),
    "categorical feature": (record("b", '{"plan": "x", "plan": "y"}'), "features.plan"),
    "repeat of a null": (record("b", '{"age": null, "age": null}'), "features.age"),
    "behind an escaped colon": (record("b\\u003a1", extra=', "prediction_id": "b\\u003a2"'), "prediction_id"),
}


@pytest.mark.parametrize("case", sorted(REPEATS))
@pytest.mark.parametrize(("content_type", "join"), [(JSON, array), (JSONL, lines)])
def test_a_repeated_key_is_refused_naming_row_and_key(case, content_type, join):
    repeated, field = REPEATS[case]
    with pytest.raises(BatchError) as caught:
        predictions_read(join(record("a"), repeated), content_type, SCHEMA)
    assert (caught.value.row, caught.value.field) == (2, field)
    assert "appears more than once" in caught.value.reason


REFUSED = {
    "a boolean feature": (record("b", '{"age": true}'), "features.age", "Expected a number, got bool"),
    "a number as text": (record("b", '{"age": "4"}'), "features.age", "Expected a number, got str"),
    "NaN": (record("b", '{"age": NaN}'), "features.age", "NaN and infinity"),
    "beyond float64": (record("b", '{"age": 1e999}'), "features.age", "NaN and infinity"),
    "an unknown feature": (record("b", '{"height": 1}'), "features.height", "Unknown feature"),
    "no features": ('{"prediction_id": "b", "timestamp": "' + STAMP + '"}', "features", "Required"),
    "an unknown field": (record("b", extra=', "colour": 1'), "colour", "Unknown field"),
    "an object as a category": (record("b", '{"plan": {"a": 1}}'), "features.plan", "object/array"),
    "an id as a float": (record("b").replace('"b"', "1.5"), "prediction_id", "float"),
    "a NUL in a category": (record("b", '{"plan": "a\\u0000"}'), "features.plan", "NUL"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", sorted(REFUSED))
def test_what_the_typed_reader_refuses_is_a_400_naming_row_and_field(churn_v1, owner, api_client_for, case, last_seq):
    """The general reader and the validators give the refusal its row, field and reason."""
    bad, field, reason = REFUSED[case]
    client = api_client_for(owner)
    seq = last_seq()
    response = client.generic("POST", PRED_URL, array(record("a"), bad), content_type=JSON)
    error = assert_error(response, 400, reason)
    assert list(error["details"]) == [field], error
    assert error["details"][field][0].startswith(f"Row 2, field '{field}': "), error
    assert Prediction.objects.count() == 0 and last_seq() == seq


def test_integer_ids_beyond_64_bits_and_epoch_seconds_are_read_exactly():
    big = 2**70 + 1
    body = array(f'{{"prediction_id": {big}, "timestamp": 1700000000.5, "features": {{"age": {2**64}}}}}')
    batch = predictions_read(body, JSON, SCHEMA)
    assert batch.columns["prediction_id"] == [big] and batch.columns["timestamp"] == [1700000000.5]
    assert batch.features["age"][0] == float(2**64)


@pytest.mark.django_db
@pytest.mark.parametrize("url", [PRED_URL, LABEL_URL])
def test_a_json_lines_line_holding_two_records_is_a_400_naming_it(churn_v1, owner, api_client_for, url):
    """Before: the lines were joined into one array, so a line ``{…}, {…}`` became two records and
    every later row was misnumbered."""
    texts = [record("a"), record("b") + ", " + record("c"), record("d")]
    if url == LABEL_URL:
        label = '{{"prediction_id": "{}", "label": 1}}'.format
        texts = [label("a"), label("b") + ", " + label("c")]
    response = api_client_for(owner).generic("POST", url, lines(*texts), content_type=JSONL)
    assert_error(response, 400, "Row 2", "Invalid JSON")
    assert Prediction.objects.count() == GroundTruth.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("url", [PRED_URL, LABEL_URL])
def test_a_record_split_across_two_lines_with_a_repeated_key_is_a_400(churn_v1, owner, api_client_for, url):
    """Before: line 1 held a record and the start of another, line 2 its end; joined, they made
    two records for two lines, the repeated key went unnoticed and the first value was lost."""
    if url == PRED_URL:
        first, second = (
            record("a") + ', {"prediction_id": "b", "features": {"age": 5}, "features": {"age": 6}',
            (f'"timestamp": "{STAMP}"}}'),
        )
    else:
        first, second = '{"prediction_id": "a", "label": 1}, {"prediction_id": "b", "label": 0, "label": 1', '"x": 1}'
    response = api_client_for(owner).generic("POST", url, lines(first, second), content_type=JSONL)
    assert_error(response, 400, "Row 1", "Invalid JSON")
    assert Prediction.objects.count() == GroundTruth.objects.count() == 0


BIG = 123456789012345678901234567890


@pytest.mark.django_db
@pytest.mark.parametrize("escaped", [False, True], ids=["read by type", "read by the general reader"])
def test_integers_beyond_64_bits_are_stored_exactly_whichever_reader_reads_them(
    churn_v1, owner, api_client_for, escaped
):
    """Before: orjson read them as floats, so a category stored other digits (…683968) and a
    subject id sent as a number was refused, but only when the body went to the general reader
    (here sent there by a colon written as an escape)."""
    from monitoring.services.subjects import subject_hashes

    pid = "a\\u003a1" if escaped else "a:1"
    body = array(record(pid, f'{{"plan": {BIG}}}', f', "subject_id": {BIG}, "prediction": 1'))
    assert (predictions_read(body, JSON, SCHEMA).features is None) is escaped
    response = api_client_for(owner).generic("POST", PRED_URL, body, content_type=JSON)
    assert response.status_code == 201, response.content
    stored = Prediction.objects.get()
    assert (stored.prediction_id, stored.features["plan"]) == ("a:1", str(BIG))
    assert stored.subject_hash == subject_hashes([str(BIG)])[0]


@pytest.mark.django_db
def test_the_same_rows_sent_as_json_and_as_csv_are_stored_alike(churn, owner, api_client_for):
    """One batch, two formats, two versions: the stored rows are the same, value for value."""
    from tests.factories import ModelVersionFactory

    ModelVersionFactory(model=churn, version=1)
    ModelVersionFactory(model=churn, version=2)
    rows = [
        ("a", 40.25, 1.0e6, "pro", 1, 0.9),
        ("b", None, 2.5, None, 0, 0.1),
        ("c", -3.0, None, "basic", 1, None),
    ]
    names = ["prediction_id", "age", "income", "plan", "prediction", "score"]
    records = []
    for row in rows:
        values = dict(zip(names, row, strict=True))
        features = {name: values.pop(name) for name in ("age", "income", "plan")}
        records.append({**values, "timestamp": STAMP, "features": features})
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow([*names, "timestamp"])
    for row in rows:
        writer.writerow(["" if value is None else value for value in (*row, STAMP)])
    client = api_client_for(owner)
    assert predictions_read(json.dumps(records).encode(), JSON, SCHEMA).features is not None, "read by type"
    as_json = client.generic("POST", PRED_URL, json.dumps(records), content_type=JSON)
    as_csv = client.generic("POST", PRED_URL.replace("/1/", "/2/"), text.getvalue(), content_type="text/csv")
    assert (as_json.status_code, as_csv.status_code) == (201, 201), (as_json.content, as_csv.content)

    def stored(version: int) -> list:
        rows = Prediction.objects.filter(version__version=version).order_by("prediction_id")
        return [(p.prediction_id, p.timestamp, _clean(p.features), p.prediction, p.score) for p in rows]

    assert stored(1) == stored(2) and len(stored(1)) == 3


def _clean(features: dict) -> dict:
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in features.items()}
