"""Labels and predictions a version can use: a binary version's two classes (from its reference
data, else 0 and 1), a multiclass version's declared classes, a score in [0, 1], finite
regression values. Anything else is a 400 naming the row and the field, with nothing stored."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from monitoring.choices import Granularity
from monitoring.models import GroundTruth, Prediction, WindowFailure
from monitoring.services.ingestion import reference_upload
from monitoring.services.windows import window_compute
from registry.choices import TaskType
from registry.services.audit import CLI
from tests.factories import ModelVersionFactory
from tests.monitoring.helpers import T0, as_json, assert_error, csv_bytes, prediction_records, reference_frame

pytestmark = pytest.mark.django_db

NOW = datetime.now(UTC).replace(microsecond=0)
LABEL_URL = "/api/v1/models/churn/ground-truth/"
PRED_URL = "/api/v1/models/churn/versions/1/predictions/"


def post(client, url, records):
    return client.generic("POST", url, as_json(records), content_type="application/json")


def record(i: int = 0, **overrides) -> dict:
    rec = {
        "prediction_id": f"p-{i}",
        "timestamp": (NOW - timedelta(hours=1)).isoformat(),
        "features": {"age": 40.0, "income": 1000.0, "plan": "basic"},
        "prediction": 1,
        "score": 0.7,
    }
    return rec | overrides


@pytest.fixture
def owner_client(churn_v1, owner, api_client_for):
    return api_client_for(owner)


@pytest.mark.parametrize("label", [7, "yes", 0.5, "banana"])
def test_a_binary_model_refuses_a_label_outside_its_two_classes(owner_client, label):
    labels = [{"prediction_id": "p-1", "label": 1}, {"prediction_id": "p-2", "label": label}]
    response = post(owner_client, LABEL_URL, labels)
    assert_error(response, 400, "Row 2", "label", "'0', '1'")
    assert not GroundTruth.objects.exists(), "the batch is one transaction"


def test_a_model_without_a_version_takes_labels_of_a_binary_task(churn, owner, api_client_for):
    client = api_client_for(owner)
    assert not churn.versions.exists()
    assert post(client, LABEL_URL, [{"prediction_id": "p-1", "label": 1}]).status_code == 201
    assert_error(post(client, LABEL_URL, [{"prediction_id": "p-2", "label": 7}]), 400, "Row 1", "'0', '1'")
    assert list(GroundTruth.objects.values_list("prediction_id", flat=True)) == ["p-1"]


@pytest.mark.parametrize(
    "overrides,field",
    [({"prediction": "banana"}, "prediction"), ({"prediction": 7}, "prediction"), ({"score": -3}, "score")],
)
def test_a_binary_version_refuses_predictions_and_scores_it_cannot_have_made(owner_client, overrides, field):
    response = post(owner_client, PRED_URL, [record(0), record(1, **overrides)])
    assert_error(response, 400, "Row 2", field)
    assert not Prediction.objects.exists()


def test_a_binary_version_accepts_its_classes_spelled_as_numbers_booleans_or_text(owner_client):
    records = [record(0, prediction=True), record(1, prediction="0"), record(2, prediction=1.0, score=1)]
    assert post(owner_client, PRED_URL, records).status_code == 201
    labels = [{"prediction_id": "p-0", "label": False}, {"prediction_id": "p-1", "label": "1"}]
    assert post(owner_client, LABEL_URL, labels).status_code == 201
    assert sorted(GroundTruth.objects.values_list("label", flat=True)) == ["0", "1"]


def test_a_binary_version_with_named_classes_takes_them_from_its_reference_data(
    churn_v1, owner, owner_client, django_capture_on_commit_callbacks
):
    frame = reference_frame(200)
    frame["prediction"] = frame["prediction"].map({0: "stay", 1: "churn"})
    with django_capture_on_commit_callbacks(execute=True):
        reference_upload(version=churn_v1, body=csv_bytes(frame), content_type="text/csv", actor=owner, context=CLI)
    assert post(owner_client, PRED_URL, [record(0, prediction="churn")]).status_code == 201
    assert_error(post(owner_client, PRED_URL, [record(1, prediction=1)]), 400, "Row 1", "prediction", "'churn'")
    assert post(owner_client, LABEL_URL, [{"prediction_id": "p-0", "label": "stay"}]).status_code == 201
    assert_error(post(owner_client, LABEL_URL, [{"prediction_id": "p-0", "label": 1}]), 400, "Row 1", "label")


def test_a_multiclass_version_refuses_a_class_its_reference_data_does_not_declare(
    churn, owner, api_client_for, django_capture_on_commit_callbacks
):
    version = ModelVersionFactory(
        model=churn, task_type=TaskType.MULTICLASS, feature_schema=[{"name": "plan", "type": "categorical"}]
    )
    client = api_client_for(owner)
    url = f"/api/v1/models/churn/versions/{version.version}/predictions/"
    one = {"prediction_id": "m-0", "timestamp": record()["timestamp"], "features": {"plan": "basic"}}
    assert post(client, url, [one | {"prediction": "cat"}]).status_code == 201, "no classes declared: any"
    frame = reference_frame(90)[["plan"]].assign(prediction=["cat", "dog", "bird"] * 30)
    with django_capture_on_commit_callbacks(execute=True):
        reference_upload(version=version, body=csv_bytes(frame), content_type="text/csv", actor=owner, context=CLI)
    refused = post(client, url, [one | {"prediction_id": "m-1", "prediction": "banana"}])
    assert_error(refused, 400, "Row 1", "prediction", "'bird', 'cat', 'dog'")
    assert_error(post(client, LABEL_URL, [{"prediction_id": "m-0", "label": "banana"}]), 400, "Row 1", "label")
    assert post(client, LABEL_URL, [{"prediction_id": "m-0", "label": "dog"}]).status_code == 201


def test_a_regression_model_refuses_a_label_that_is_no_finite_number(churn, owner, api_client_for):
    ModelVersionFactory(model=churn, task_type=TaskType.REGRESSION)
    response = post(api_client_for(owner), LABEL_URL, [{"prediction_id": "p-0", "label": "high"}])
    assert_error(response, 400, "Row 1", "label", "Expected a number")
    assert post(api_client_for(owner), LABEL_URL, [{"prediction_id": "p-0", "label": 3.5}]).status_code == 201


def test_a_failed_window_shows_a_sentence_with_the_error_folded_away_and_keeps_it(
    profiled, owner, monkeypatch, caplog, client_for
):
    """The owner reads what a failed window means; the exception is kept on the failure (the
    operator's detail, folded under "Technical detail") and in the worker's log."""
    from monitoring import tasks
    from monitoring.services import windows
    from tests.monitoring.helpers import ingest_predictions

    monkeypatch.setattr(tasks.monitoring_sweep_dirty_windows, "delay", lambda *a, **k: None)
    ingest_predictions(profiled, prediction_records(20), owner)

    def fails(*args, **kwargs):
        raise ValueError("Target is multiclass but average='binary'.")

    monkeypatch.setattr(windows.stats, "bin_window", fails)
    with caplog.at_level(logging.ERROR, logger="monitoring.services.windows"):
        window_compute(version_id=profiled.pk, window_start=T0, granularity=Granularity.HOURLY)
    assert WindowFailure.objects.get().reason == "ValueError: Target is multiclass but average='binary'."
    assert "Target is multiclass" in caplog.text, "the detail is in the log"
    page = client_for(owner).get(f"/monitoring/models/{profiled.model.name}/").content.decode()
    sentence = page.index("The metrics could not be computed from this window")
    assert sentence < page.index("<summary>Technical detail</summary>") < page.index("Target is multiclass")
