"""Ingestion services: predictions, labels and reference data; rejected batches store nothing.
Runs on PostgreSQL (COPY) and SQLite (ORM): both writers store the same values."""

from __future__ import annotations

import pytest

from monitoring.choices import Granularity
from monitoring.models import DirtyWindow, GroundTruth, IngestBatch, Prediction, ReferenceProfile
from monitoring.services.ingest_parsing import BatchError
from monitoring.services.ingestion import labels_ingest, predictions_ingest, reference_upload
from registry.choices import TaskType
from registry.services.audit import CLI
from tests.factories import ModelVersionFactory
from tests.monitoring.helpers import (
    T0,
    as_csv,
    as_json,
    as_ndjson,
    csv_bytes,
    prediction_records,
    reference_frame,
)

pytestmark = pytest.mark.django_db


def test_json_batch_is_stored_with_windows_marked_dirty_and_one_audit_event(churn_v1, owner, last_seq, audit_actions):
    seq = last_seq()
    records = prediction_records(50, spread_hours=3)
    summary = predictions_ingest(
        version=churn_v1, body=as_json(records), content_type="application/json", actor=owner, context=CLI
    )
    assert summary["rows"] == 50
    assert Prediction.objects.filter(version=churn_v1).count() == 50
    stored = Prediction.objects.get(version=churn_v1, prediction_id="p0")
    assert stored.features["plan"] == records[0]["features"]["plan"]
    assert stored.prediction == str(records[0]["prediction"])
    hours = set(
        DirtyWindow.objects.filter(version=churn_v1, granularity=Granularity.HOURLY).values_list(
            "window_start", flat=True
        )
    )
    assert len(hours) == 3
    assert DirtyWindow.objects.filter(version=churn_v1, granularity=Granularity.DAILY, window_start=T0).exists()
    assert audit_actions(seq) == ["predictions.ingested"]


@pytest.mark.parametrize("encode,content_type", [(as_ndjson, "application/x-ndjson"), (as_csv, "text/csv")])
def test_json_lines_and_csv_batches_are_accepted(churn_v1, owner, encode, content_type):
    records = prediction_records(20)
    predictions_ingest(version=churn_v1, body=encode(records), content_type=content_type, actor=owner, context=CLI)
    assert Prediction.objects.filter(version=churn_v1).count() == 20
    row = Prediction.objects.get(version=churn_v1, prediction_id="p3")
    assert row.features["age"] == pytest.approx(records[3]["features"]["age"])
    assert row.score == pytest.approx(records[3]["score"])


def test_ids_and_categories_with_tabs_newlines_and_backslashes_are_stored_verbatim(churn_v1, owner):
    records = prediction_records(2)
    records[0]["prediction_id"] = "a\tb\\c"
    records[0]["features"]["plan"] = 'multi\nline \\ "quoted"\r'
    records[1]["score"] = None
    predictions_ingest(
        version=churn_v1, body=as_json(records), content_type="application/json", actor=owner, context=CLI
    )
    stored = Prediction.objects.get(version=churn_v1, prediction_id="a\tb\\c")
    assert stored.features["plan"] == 'multi\nline \\ "quoted"\r'
    assert stored.features["age"] == records[0]["features"]["age"]
    assert Prediction.objects.get(version=churn_v1, prediction_id="p1").score is None


def test_json_values_are_read_column_wise_with_their_spellings(churn_v1, owner):
    churn_v1.task_type = TaskType.MULTICLASS  # any class: a binary version takes only its two
    churn_v1.save(update_fields=["task_type"])
    records = [
        {"prediction_id": 17, "timestamp": 1_772_409_600, "features": {"age": 1}, "prediction": True, "score": 1},
        {"prediction_id": " b ", "timestamp": 1_772_409_600.5, "features": {"plan": 3.0}, "prediction": 0},
        {"prediction_id": "c", "timestamp": "2026-03-02T05:00:00+05:00", "features": {"plan": True}, "prediction": 2.0},
        {"prediction_id": "d", "timestamp": "2026-03-02T00:00:00", "features": {"age": 2**70}, "prediction": "yes"},
    ]
    summary = predictions_ingest(
        version=churn_v1, body=as_json(records), content_type="application/json", actor=owner, context=CLI
    )
    assert summary["rows"] == 4 and summary["format"] == "json"
    rows = {p.prediction_id: p for p in Prediction.objects.filter(version=churn_v1)}
    assert rows["17"].features == {"age": 1.0, "income": None, "plan": None}
    assert (rows["17"].prediction, rows["17"].score) == ("1", 1.0)
    assert rows["17"].timestamp.isoformat() == "2026-03-02T00:00:00+00:00"
    assert rows["b"].timestamp.isoformat() == "2026-03-02T00:00:00.500000+00:00"
    assert rows["b"].features["plan"] == "3" and rows["b"].prediction == "0"
    assert rows["c"].timestamp.isoformat() == "2026-03-02T00:00:00+00:00"
    assert rows["c"].features["plan"] == "1" and rows["c"].prediction == "2"
    assert float(rows["d"].features["age"]) == float(2**70) and rows["d"].prediction == "yes"


@pytest.mark.parametrize(
    "records,row,field",
    [
        ([{"prediction_id": "a", "timestamp": "2026-03-02T00:00:00Z", "features": {"age": "4"}}], 1, "features.age"),
        ([{"prediction_id": "a", "timestamp": True, "features": {}}], 1, "timestamp"),
        ([{"prediction_id": 1.5, "timestamp": "2026-03-02T00:00:00Z", "features": {}}], 1, "prediction_id"),
        ([{"prediction_id": "a", "timestamp": "2026-03-02T00:00:00Z", "features": {"plan": [1]}}], 1, "features.plan"),
        (
            [
                {"prediction_id": "a", "timestamp": "2026-03-02T00:00:00Z", "features": {}},
                {"prediction_id": "b", "features": {}},
            ],
            2,
            "timestamp",
        ),
        (
            [{"prediction_id": "a", "timestamp": "2026-03-02T00:00:00Z", "features": {}, "prediction": {}}],
            1,
            "prediction",
        ),
        ([{"prediction_id": "a", "timestamp": "2026-03-02T00:00:00Z", "features": {}, "score": "0.5"}], 1, "score"),
        ([{"prediction_id": "a", "timestamp": "2026-03-02T00:00:00Z", "features": {}}, 5], 2, "record"),
    ],
)
def test_json_errors_name_the_first_bad_row_and_field(churn_v1, owner, records, row, field):
    with pytest.raises(BatchError) as caught:
        predictions_ingest(
            version=churn_v1, body=as_json(records), content_type="application/json", actor=owner, context=CLI
        )
    assert (caught.value.row, caught.value.field) == (row, field), caught.value.messages
    assert Prediction.objects.count() == 0


def test_regression_predictions_are_stored_as_numbers(churn, owner):
    version = ModelVersionFactory(model=churn, task_type=TaskType.REGRESSION)
    records = prediction_records(3)
    records[0]["prediction"], records[1]["prediction"], records[2]["prediction"] = 2.5, None, 7
    predictions_ingest(
        version=version, body=as_ndjson(records), content_type="application/x-ndjson", actor=owner, context=CLI
    )
    assert sorted(Prediction.objects.values_list("prediction", flat=True), key=str) == [2.5, 7.0, None]


def test_labels_are_upserted_and_mark_the_windows_of_their_predictions(churn_v1, owner, last_seq, audit_actions):
    records = prediction_records(10)
    predictions_ingest(
        version=churn_v1, body=as_json(records), content_type="application/json", actor=owner, context=CLI
    )
    DirtyWindow.objects.all().delete()
    seq = last_seq()
    body = b"prediction_id,label\np1,1\np2,0\nnone,1\n"
    summary = labels_ingest(model=churn_v1.model, body=body, content_type="text/csv", actor=owner, context=CLI)
    assert summary == {
        "rows": 3,
        "new": 3,
        "updated": 0,
        "unchanged": 0,
        "matched_predictions": 2,
        "dirty_windows": 2,
    }
    again = labels_ingest(
        model=churn_v1.model,
        body=as_json([{"prediction_id": "p1", "label": True}]),
        content_type="application/json",
        actor=owner,
        context=CLI,
    )
    assert (again["updated"], again["unchanged"]) == (0, 1)  # True is the label "1" already stored
    assert dict(GroundTruth.objects.values_list("prediction_id", "label")) == {"p1": "1", "p2": "0", "none": "1"}
    assert audit_actions(seq) == ["labels.ingested"]


def test_an_identical_body_is_stored_once(churn_v1, owner, last_seq):
    body = as_json(prediction_records(5))
    first = predictions_ingest(version=churn_v1, body=body, content_type="application/json", actor=owner, context=CLI)
    seq = last_seq()
    second = predictions_ingest(version=churn_v1, body=body, content_type="application/json", actor=owner, context=CLI)
    assert second == {**{k: v for k, v in first.items() if k != "batch"}, "duplicate_of_batch": first["batch"]}
    assert Prediction.objects.count() == 5 and last_seq() == seq
    assert IngestBatch.objects.get().rows == 5


def test_a_reference_upload_replaces_the_previous_one(churn_v1, owner, django_capture_on_commit_callbacks):
    reference_upload(
        version=churn_v1, body=csv_bytes(reference_frame(100)), content_type="text/csv", actor=owner, context=CLI
    )
    profile = reference_upload(
        version=churn_v1, body=csv_bytes(reference_frame(60)), content_type="text/csv", actor=owner, context=CLI
    )
    assert ReferenceProfile.objects.get().pk == profile.pk and profile.n_rows == 60


@pytest.mark.parametrize(
    "body,content_type",
    [
        (b"prediction_id,timestamp,plan,prediction\na,2026-03-02T00:00:00Z,x,cat\nb,2026-03-02,,\n", "text/csv"),
        (
            b'[{"prediction_id": "a", "timestamp": "2026-03-02T00:00:00Z", "features": {"plan": "x"}, '
            b'"prediction": "cat"}, {"prediction_id": "b", "timestamp": "2026-03-02", "features": {}}]',
            "application/json",
        ),
    ],
)
def test_a_schema_of_categories_only(churn, owner, body, content_type):
    version = ModelVersionFactory(
        model=churn, feature_schema=[{"name": "plan", "type": "categorical"}], task_type=TaskType.MULTICLASS
    )
    predictions_ingest(version=version, body=body, content_type=content_type, actor=owner, context=CLI)
    rows = {p.prediction_id: p for p in Prediction.objects.filter(version=version)}
    assert (rows["a"].features, rows["a"].prediction) == ({"plan": "x"}, "cat")
    assert (rows["b"].features, rows["b"].prediction) == ({"plan": None}, None)


def test_the_first_bad_numeric_feature_is_named_with_its_row(churn_v1, owner):
    records = prediction_records(4)
    records[2]["features"]["income"] = "lots"
    records[3]["features"]["age"] = None
    with pytest.raises(BatchError) as caught:
        predictions_ingest(
            version=churn_v1, body=as_json(records), content_type="application/json", actor=owner, context=CLI
        )
    assert caught.value.details == {"row": 3, "field": "features.income", "reason": "Expected a number, got str."}


@pytest.mark.parametrize(
    "schema",
    [["a", "b"], ["a", "b", "plan", "tier"], ["plan", "tier"]],
    ids=["numbers only", "numbers then categories", "categories only"],
)
def test_every_mix_of_feature_kinds_stores_each_value_and_the_time_to_the_microsecond(churn, owner, schema):
    """Numbers keep float type (2 → 2.0), missing ones are null, categories are text; the stored
    time is the sent one whether it has a fraction of a second or not."""
    kinds = {"a": "numeric", "b": "numeric", "plan": "categorical", "tier": "categorical"}
    version = ModelVersionFactory(model=churn, feature_schema=[{"name": n, "type": kinds[n]} for n in schema])
    values = {"a": [2, None, -0.5], "b": [1e-7, 3.25, 1e15], "plan": ["x", None, 'q"t'], "tier": ["1", "2", None]}
    stamps = ["2026-01-05T10:00:00+00:00", "2026-01-05T10:00:00.000001+00:00", "2026-01-05T11:30:00.5+02:00"]
    records = [
        {
            "prediction_id": f"r{i}",
            "timestamp": stamps[i],
            "features": {n: values[n][i] for n in schema},
            "prediction": 1,
        }
        for i in range(3)
    ]
    predictions_ingest(
        version=version, body=as_json(records), content_type="application/json", actor=owner, context=CLI
    )
    rows = {p.prediction_id: p for p in Prediction.objects.filter(version=version)}
    for i in range(3):
        expected = {
            n: (float(values[n][i]) if kinds[n] == "numeric" and values[n][i] is not None else values[n][i])
            for n in schema
        }
        assert rows[f"r{i}"].features == expected
        for name in schema:
            assert type(rows[f"r{i}"].features[name]) is type(expected[name])
    assert [rows[f"r{i}"].timestamp.isoformat() for i in range(3)] == [
        "2026-01-05T10:00:00+00:00",
        "2026-01-05T10:00:00.000001+00:00",
        "2026-01-05T09:30:00.500000+00:00",
    ]
