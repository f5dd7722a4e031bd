"""Ingestion endpoints at the edges: hostile or careless input is a 4xx JSON error with nothing
stored, a resent batch is acknowledged once, browser sessions with a CSRF token may send data,
and OPTIONS describes the endpoints."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.middleware.csrf import get_token
from django.test import Client
from django.test.client import RequestFactory

from monitoring.models import GroundTruth, IngestBatch, Prediction, ReferenceProfile
from tests.monitoring.helpers import as_csv, as_json, as_ndjson, assert_error, csv_bytes, reference_frame

pytestmark = pytest.mark.django_db

PRED_URL = "/api/v1/models/churn/versions/1/predictions/"
LABEL_URL = "/api/v1/models/churn/ground-truth/"
REF_URL = "/api/v1/models/churn/versions/1/reference/"
NOW = datetime.now(UTC).replace(microsecond=0)


def post(client, url, body: bytes, content_type="application/json", **extra):
    return client.generic("POST", url, body, content_type=content_type, **extra)


def record(i: int = 0, **overrides) -> dict:
    rec = {
        "prediction_id": f"r{i}",
        "timestamp": (NOW - timedelta(hours=1)).isoformat(),
        "features": {"age": 40.0, "income": 1000.0, "plan": "basic"},
        "prediction": 1,
        "score": 0.7,
    }
    rec.update(overrides)
    return rec


def csv_of(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


STAMP = (NOW - timedelta(hours=1)).isoformat()


@pytest.fixture
def owner_client(churn_v1, owner, api_client_for):
    return api_client_for(owner)


# ------------------------------------------------------------------ NUL characters

NUL_PREDICTIONS = {
    "JSON id": (as_json([record(prediction_id="a\u0000b")]), "application/json", ["Row 1", "prediction_id", "NUL"]),
    "JSON category": (
        as_json([record(0), record(1, features={"age": 1.0, "plan": "x\u0000"})]),
        "application/json",
        ["Row 2", "features.plan", "NUL"],
    ),
    "JSON class label": (as_json([record(prediction="\u0000")]), "application/json", ["Row 1", "prediction", "NUL"]),
    "JSON feature name": (
        as_json([record(features={"a\u0000ge": 1.0})]),
        "application/json",
        ["Row 1", "Unknown feature"],
    ),
    "JSON Lines category": (
        as_ndjson([record(0), record(1, features={"plan": "\u0000"})]),
        "application/x-ndjson",
        ["Row 2", "features.plan", "NUL"],
    ),
    "CSV id": (
        csv_of("prediction_id,timestamp,age", f"a\x00,{STAMP},1"),
        "text/csv",
        ["Row 1", "prediction_id", "NUL"],
    ),
    "CSV category": (
        csv_of("prediction_id,timestamp,plan", f"a,{STAMP},ok", f"b,{STAMP},x\x00y"),
        "text/csv",
        ["Row 2", "features.plan", "NUL"],
    ),
    "CSV prediction": (
        csv_of("prediction_id,timestamp,prediction", f"a,{STAMP},\x00"),
        "text/csv",
        ["Row 1", "prediction", "NUL"],
    ),
    "CSV column name": (csv_of("prediction_id,timestamp,pl\x00an", f"a,{STAMP},x"), "text/csv", ["Unknown column"]),
}


@pytest.mark.parametrize("case", sorted(NUL_PREDICTIONS))
def test_nul_characters_in_predictions_are_a_400_naming_row_and_field(owner_client, case, last_seq):
    body, content_type, needles = NUL_PREDICTIONS[case]
    seq = last_seq()
    assert_error(post(owner_client, PRED_URL, body, content_type), 400, *needles)
    assert Prediction.objects.count() == 0
    assert last_seq() == seq


@pytest.mark.parametrize(
    "body,content_type,needles",
    [
        (as_json([{"prediction_id": "a\u0000", "label": 1}]), "application/json", ["Row 1", "prediction_id", "NUL"]),
        (
            as_json([{"prediction_id": "a", "label": 1}, {"prediction_id": "b", "label": "\u0000"}]),
            "application/json",
            ["Row 2", "label", "NUL"],
        ),
        (b"prediction_id,label\na,x\x00\n", "text/csv", ["Row 1", "label", "NUL"]),
    ],
)
def test_nul_characters_in_labels_are_a_400_naming_row_and_field(owner_client, body, content_type, needles):
    assert_error(post(owner_client, LABEL_URL, body, content_type), 400, *needles)
    assert GroundTruth.objects.count() == 0


def test_a_reference_upload_with_nul_is_refused_at_upload_not_left_pending(owner_client, last_seq):
    frame = reference_frame(50)
    frame.loc[3, "plan"] = "pro\x00"
    seq = last_seq()
    assert_error(post(owner_client, REF_URL, csv_bytes(frame), "text/csv"), 400, "plan", "NUL", "Row 4")
    assert ReferenceProfile.objects.count() == 0
    assert last_seq() == seq


# ------------------------------------------------------------------ timestamps

BAD_TIMES = {
    "offset +16:00": "2026-11-30T10:00:00+16:00",
    "offset -23:59": "2026-11-30T10:00:00-23:59",
    "start of the calendar": "0001-01-01T00:00:00+05:00",
    "end of the calendar": "9999-12-31T23:59:59-05:00",
    "year 9999 in UTC": "9999-01-01T00:00:00Z",
    "two days ahead": (NOW + timedelta(days=2)).isoformat(),
    "older than the horizon": (NOW - timedelta(days=401)).isoformat(),
}


@pytest.mark.parametrize("case", sorted(BAD_TIMES))
@pytest.mark.parametrize("encoding", ["json", "csv"])
def test_implausible_timestamps_are_a_400_never_a_500(owner_client, case, encoding):
    stamp = BAD_TIMES[case]
    if encoding == "json":
        body, content_type = as_json([record(0), record(1, timestamp=stamp)]), "application/json"
    else:
        body, content_type = csv_of("prediction_id,timestamp,age", f"a,{STAMP},1", f"b,{stamp},2"), "text/csv"
    assert_error(post(owner_client, PRED_URL, body, content_type), 400, "Row 2", "timestamp")
    assert Prediction.objects.count() == 0


def test_epoch_seconds_far_in_the_future_are_refused(owner_client):
    body = as_json([record(timestamp=253_402_300_799)])  # 9999-12-31
    assert_error(post(owner_client, PRED_URL, body), 400, "Row 1", "timestamp")


def test_the_accepted_time_range_follows_the_settings(owner_client, settings):
    settings.INGEST_MAX_FUTURE = 3600
    settings.INGEST_MAX_AGE_DAYS = 2
    ahead = record(0, timestamp=(NOW + timedelta(hours=2)).isoformat())
    assert_error(post(owner_client, PRED_URL, as_json([ahead])), 400, "INGEST_MAX_FUTURE")
    old = record(0, timestamp=(NOW - timedelta(days=3)).isoformat())
    assert_error(post(owner_client, PRED_URL, as_json([old])), 400, "INGEST_MAX_AGE_DAYS")
    fine = [record(0, timestamp=(NOW + timedelta(minutes=30)).isoformat()), record(1)]
    assert post(owner_client, PRED_URL, as_json(fine)).status_code == 201


def test_real_time_zone_offsets_are_accepted_and_stored_in_utc(owner_client):
    local = (NOW - timedelta(hours=3)).astimezone(UTC).replace(tzinfo=None)
    records = [
        record(0, timestamp=(local + timedelta(hours=14)).isoformat() + "+14:00"),
        record(1, timestamp=(local - timedelta(hours=12)).isoformat() + "-12:00"),
    ]
    assert post(owner_client, PRED_URL, as_json(records)).status_code == 201
    stored = set(Prediction.objects.values_list("timestamp", flat=True))
    assert stored == {local.replace(tzinfo=UTC)}


# ------------------------------------------------------------------ resent batches


@pytest.mark.parametrize(
    "encode,content_type", [(as_json, "application/json"), (as_ndjson, "application/x-ndjson"), (as_csv, "text/csv")]
)
def test_an_identical_batch_resent_is_acknowledged_as_already_stored(
    owner_client, encode, content_type, last_seq, audit_actions
):
    body = encode([record(i) for i in range(20)])
    first = post(owner_client, PRED_URL, body, content_type)
    assert first.status_code == 201, first.content
    seq = last_seq()
    again = post(owner_client, PRED_URL, body, content_type)
    assert again.status_code == 200, again.content
    answer = again.json()
    assert answer["duplicate_of_batch"] == first.json()["batch"]
    assert answer["rows"] == 20
    assert Prediction.objects.count() == 20
    assert IngestBatch.objects.count() == 1
    assert last_seq() == seq  # nothing changed, nothing audited


def test_a_different_batch_reusing_stored_ids_is_still_refused(owner_client):
    assert post(owner_client, PRED_URL, as_json([record(0), record(1)])).status_code == 201
    changed = as_json([record(5), record(1, score=0.1)])
    assert_error(post(owner_client, PRED_URL, changed), 400, "Row 2", "already stored")
    assert Prediction.objects.count() == 2


def test_the_same_body_for_another_version_is_stored_there(churn_v1, owner_client):
    from tests.factories import ModelVersionFactory

    ModelVersionFactory(model=churn_v1.model)
    body = as_json([record(0)])
    assert post(owner_client, PRED_URL, body).status_code == 201
    assert post(owner_client, "/api/v1/models/churn/versions/2/predictions/", body).status_code == 201
    assert Prediction.objects.count() == 2


def test_resent_labels_change_nothing(owner_client):
    body = as_json([{"prediction_id": "a", "label": 1}])
    assert post(owner_client, LABEL_URL, body).status_code == 201
    again = post(owner_client, LABEL_URL, body)
    assert again.status_code == 201 and (again.json()["updated"], again.json()["unchanged"]) == (0, 1)
    assert GroundTruth.objects.count() == 1


# ------------------------------------------------------------------ CSV shape, encodings, numbers, ids, columns

REFUSED = {
    "CSV row shorter than the header": (
        csv_of("prediction_id,timestamp,age,plan", f"a,{STAMP},1,x", f"b,{STAMP},2"),
        "text/csv",
        ["Row 2", "Fewer cells"],
    ),
    "CSV row longer than the header": (
        csv_of("prediction_id,timestamp,age", f"a,{STAMP},1,2"),
        "text/csv",
        ["Row 1", "More cells"],
    ),
    "invalid UTF-8 in JSON": (b'[{"prediction_id": "\xff"}]', "application/json", ["UTF-8"]),
    "NaN in CSV": (csv_of("prediction_id,timestamp,age", f"a,{STAMP},nan"), "text/csv", ["Row 1", "features.age"]),
    "Infinity in CSV score": (
        csv_of("prediction_id,timestamp,score", f"a,{STAMP},1", f"b,{STAMP},-inf"),
        "text/csv",
        ["Row 2", "score", "NaN"],
    ),
    "NaN in JSON Lines": (
        b'{"prediction_id": "a", "timestamp": "' + STAMP.encode() + b'", "features": {"age": NaN}}',
        "application/x-ndjson",
        ["Row 1", "features.age", "NaN"],
    ),
    "duplicate id in CSV": (
        csv_of("prediction_id,timestamp,age", f"a,{STAMP},1", f"b,{STAMP},1", f" a ,{STAMP},2"),
        "text/csv",
        ["Row 3", "Duplicate"],
    ),
    "duplicate id in JSON Lines": (
        as_ndjson([record(0), record(0)]),
        "application/x-ndjson",
        ["Row 2", "Duplicate"],
    ),
    "CSV missing timestamp column": (csv_of("prediction_id,age", "a,1"), "text/csv", ["timestamp", "missing"]),
    "CSV duplicate column": (csv_of("prediction_id,timestamp,age,age", f"a,{STAMP},1,2"), "text/csv", ["age", "twice"]),
    "CSV features column": (csv_of("prediction_id,timestamp,features", f"a,{STAMP},x"), "text/csv", ["features"]),
    "CSV header only": (b"prediction_id,timestamp,age\n", "text/csv", ["no records"]),
    "JSON nested too deeply": (b"[" * 100_000, "application/json", ["Invalid JSON"]),
    "JSON integer of 5,000 digits": (
        b'[{"prediction_id": "a", "timestamp": "' + STAMP.encode() + b'", "features": {"age": 1' + b"0" * 5000 + b"}}]",
        "application/json",
        ["Invalid JSON"],
    ),
    "JSON number beyond float64": (
        as_json([record(features={"age": 10**400})]),
        "application/json",
        ["Row 1", "features.age", "64-bit float"],
    ),
    "JSON epoch seconds beyond float64": (
        as_json([record(timestamp=10**400)]),
        "application/json",
        ["Row 1", "timestamp"],
    ),
    "JSON id of 400 digits": (as_json([record(prediction_id=10**400)]), "application/json", ["Row 1", "prediction_id"]),
    "boolean label column for a number": (
        as_json([record(features={"age": True})]),
        "application/json",
        ["Row 1", "features.age"],
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_careless_batches_are_a_4xx_with_nothing_stored(owner_client, case, last_seq):
    body, content_type, needles = REFUSED[case]
    seq = last_seq()
    assert_error(post(owner_client, PRED_URL, body, content_type), 400, *needles)
    assert Prediction.objects.count() == 0
    assert last_seq() == seq


def test_label_csv_rows_shorter_than_the_header_are_refused(owner_client):
    assert_error(post(owner_client, LABEL_URL, b"prediction_id,label\na,1\nb\n", "text/csv"), 400, "Row 2", "Fewer")
    assert GroundTruth.objects.count() == 0


def test_a_byte_order_mark_before_the_csv_header_is_skipped(owner_client):
    body = b"\xef\xbb\xbf" + csv_of("prediction_id,timestamp,age", f"a,{STAMP},1")
    assert post(owner_client, PRED_URL, body, "text/csv").status_code == 201
    assert Prediction.objects.get().features["age"] == 1.0


def test_oversize_label_and_reference_bodies_are_a_413(owner_client, settings):
    settings.INGEST_MAX_BODY_BYTES = 100
    assert_error(post(owner_client, LABEL_URL, b"[" + b" " * 200 + b"]"), 413, "INGEST_MAX_BODY_BYTES")
    assert_error(post(owner_client, REF_URL, csv_bytes(reference_frame(50)), "text/csv"), 413, "split the batch")
    assert ReferenceProfile.objects.count() == 0


# ------------------------------------------------------------------ browser sessions and OPTIONS


def _session_client(user) -> tuple[Client, str]:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    request = RequestFactory().get("/")
    token = get_token(request)
    client.cookies["csrftoken"] = request.META["CSRF_COOKIE"]
    return client, token


def test_session_ingestion_with_a_csrf_token_works(churn_v1, owner):
    client, token = _session_client(owner)
    response = post(client, PRED_URL, as_json([record(0)]), HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 201, response.content
    labels = post(client, LABEL_URL, as_json([{"prediction_id": "r0", "label": 1}]), HTTP_X_CSRFTOKEN=token)
    assert labels.status_code == 201, labels.content
    reference = post(client, REF_URL, csv_bytes(reference_frame(50)), "text/csv", HTTP_X_CSRFTOKEN=token)
    assert reference.status_code == 202, reference.content


def test_session_ingestion_without_a_csrf_token_is_a_403(churn_v1, owner):
    client, _ = _session_client(owner)
    assert_error(post(client, PRED_URL, as_json([record(0)])), 403, "CSRF")
    assert Prediction.objects.count() == 0


@pytest.mark.parametrize("url", [PRED_URL, LABEL_URL, REF_URL])
def test_options_on_the_ingestion_endpoints_answers_200(owner_client, url):
    response = owner_client.options(url)
    assert response.status_code == 200, response.content
    assert response.json()["name"]


def test_a_get_on_the_predictions_endpoint_is_a_json_405(owner_client):
    assert_error(owner_client.get(PRED_URL), 405)
