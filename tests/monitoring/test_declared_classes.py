"""A classification version declares its classes (and a binary one its positive class) at
registration: ingestion takes them from the first prediction on, without reference data, and
precision, recall and the fairness figures are about the declared positive class, not the one
inferred from the labels' spelling (``registry/classes.py``)."""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pytest
from sklearn import metrics as skm

from monitoring.choices import Granularity, Metric
from monitoring.fairness_data import FAIRNESS_SCHEMA
from monitoring.models import GroundTruth, MetricValue, Prediction
from monitoring.services.ingestion import labels_ingest, reference_upload
from monitoring.services.windows import window_compute
from registry.choices import Stage, TaskType
from registry.models import AuditEvent, ModelVersion
from registry.services.audit import CLI
from tests.factories import FEATURE_SCHEMA, ModelVersionFactory, RegisteredModelFactory
from tests.monitoring.helpers import T0, as_json, assert_error, csv_bytes, ingest_predictions, reference_frame

pytestmark = pytest.mark.django_db

VERSIONS = "/api/v1/models/churn/versions/"
DECLARED = {"classes": ["stayed", "churned"], "positive_class": "churned"}
SCHEMA = FEATURE_SCHEMA


def post(client, url, body):
    return client.post(url, data=json.dumps(body), content_type="application/json")


def test_a_version_registered_with_its_classes_shows_and_audits_them(churn, owner, api_client_for):
    body = {"training_run_id": "run-1", "feature_schema": SCHEMA, **DECLARED}
    response = post(api_client_for(owner), VERSIONS, body)
    assert response.status_code == 201, response.content
    assert (response.json()["classes"], response.json()["positive_class"]) == (["stayed", "churned"], "churned")
    version = ModelVersion.objects.get(model=churn)
    assert (version.classes, version.positive_class) == (["stayed", "churned"], "churned")
    event = AuditEvent.objects.get(action="version.registered")
    assert event.after["classes"] == ["stayed", "churned"] and event.after["positive_class"] == "churned"


@pytest.mark.parametrize(
    "declared,field,needle",
    [
        ({"classes": ["a", "b", "c"], "positive_class": "a"}, "classes", "exactly two"),
        ({"classes": ["a", "a"], "positive_class": "a"}, "classes", "more than once"),
        ({"classes": ["a", "b"]}, "positive_class", "Name the positive class"),
        ({"classes": ["a", "b"], "positive_class": "c"}, "positive_class", "one of the classes"),
        ({"positive_class": "a"}, "positive_class", "two classes"),
        ({"classes": ["a", 1.5], "positive_class": "a"}, "classes", "no class label"),
        ({"classes": ["a", "b\u0000"], "positive_class": "a"}, "classes", "NUL"),
        ({"classes": ["a", True], "positive_class": "a"}, "classes", "no class label"),
        ({"classes": "a,b", "positive_class": "a"}, "classes", "JSON list"),
        ({"classes": ["a", "b"], "positive_class": "a", "task_type": "regression"}, "classes", "regression"),
        ({"classes": ["a", "b", "c"], "positive_class": "a", "task_type": "multiclass"}, "positive_class", "binary"),
    ],
)
def test_a_bad_declaration_is_a_400_naming_its_field_and_registers_nothing(
    churn, owner, api_client_for, declared, field, needle
):
    body = {"training_run_id": "run-1", "feature_schema": SCHEMA, **declared}
    assert_error(post(api_client_for(owner), VERSIONS, body), 400, field, needle)
    assert not ModelVersion.objects.filter(model=churn).exists()


def test_an_llm_application_refuses_classes(owner, api_client_for):
    RegisteredModelFactory(name="helpdesk", owner=owner, kind="llm_app")
    body = {"llm": {"provider": "openai", "model": "gpt-x", "parameters": {}}, **DECLARED}
    assert_error(post(api_client_for(owner), "/api/v1/models/helpdesk/versions/", body), 400, "classes")


def _record(i: int, prediction: str, **extra) -> dict:
    stamp = (T0 + timedelta(minutes=i % 60)).isoformat()
    features = {"age": 40.0 + i % 7, "income": 1000.0, "plan": "basic"}
    return {"prediction_id": f"p{i}", "timestamp": stamp, "features": features, "prediction": prediction, **extra}


def test_predictions_take_the_declared_classes_without_reference_data(churn, owner, api_client_for):
    version = ModelVersionFactory(model=churn, feature_schema=SCHEMA, **DECLARED)
    client = api_client_for(owner)
    url = f"{VERSIONS}{version.version}/predictions/"
    ok = [_record(0, "churned", score=0.8), _record(1, "stayed", score=0.1)]
    assert post(client, url, ok).status_code in (200, 201, 202)
    assert_error(post(client, url, [_record(2, "maybe")]), 400, "Row 1", "'churned', 'stayed'")
    assert Prediction.objects.filter(version=version).count() == 2
    labels = [{"prediction_id": "p0", "label": "stayed"}, {"prediction_id": "p1", "label": 1}]
    assert_error(post(client, "/api/v1/models/churn/ground-truth/", labels), 400, "Row 2", "label")
    assert not GroundTruth.objects.exists()


def test_reference_data_cannot_bring_classes_the_version_did_not_declare(churn, owner):
    version = ModelVersionFactory(model=churn, feature_schema=SCHEMA, **DECLARED)
    frame = reference_frame(50).assign(prediction=["churned", "left"] * 25)
    with pytest.raises(Exception) as err:
        reference_upload(version=version, body=csv_bytes(frame), content_type="text/csv", actor=owner, context=CLI)
    assert "left" in str(err.value) and "prediction" in str(err.value)


def _labelled_window(version, owner, predictions, labels, capture, sensitive=None):
    records = []
    for i, p in enumerate(predictions):
        record = _record(i, p, score=0.9 if p == version.positive_class else 0.2)
        if sensitive is not None:
            record["features"] = record["features"] | sensitive[i]
        records.append(record)
    with capture(execute=True):
        ingest_predictions(version, records, owner)
        body = as_json([{"prediction_id": f"p{i}", "label": lab} for i, lab in enumerate(labels)])
        labels_ingest(model=version.model, body=body, content_type="application/json", actor=owner, context=CLI)
    window_compute(version_id=version.pk, window_start=T0, granularity=Granularity.HOURLY)


def _value(version, metric, feature=""):
    return MetricValue.objects.get(
        version=version, granularity=Granularity.HOURLY, window_start=T0, feature=feature, metric=metric
    ).value


def test_precision_and_recall_are_about_the_declared_positive_class(owner, team, django_capture_on_commit_callbacks):
    """'approved' sorts first, so the labels alone would make 'denied' the positive class."""
    model = RegisteredModelFactory(name="credit", owner=owner, team=team)
    version = ModelVersionFactory(
        model=model, feature_schema=SCHEMA, classes=["denied", "approved"], positive_class="approved"
    )
    rng = np.random.default_rng(5)
    labels = rng.choice(["approved", "denied"], 300, p=[0.3, 0.7]).tolist()
    predictions = [lab if rng.random() < 0.8 else rng.choice(["approved", "denied"]) for lab in labels]
    predictions = [str(p) for p in predictions]
    _labelled_window(version, owner, predictions, labels, django_capture_on_commit_callbacks)
    expected = {
        Metric.RECALL: skm.recall_score(labels, predictions, pos_label="approved"),
        Metric.PRECISION: skm.precision_score(labels, predictions, pos_label="approved"),
        Metric.F1: skm.f1_score(labels, predictions, pos_label="approved"),
    }
    assert expected[Metric.RECALL] != pytest.approx(skm.recall_score(labels, predictions, pos_label="denied"))
    for metric, value in expected.items():
        assert _value(version, metric) == pytest.approx(value), metric


def test_fairness_selection_rates_are_rates_of_the_declared_positive_class(
    owner, team, django_capture_on_commit_callbacks
):
    model = RegisteredModelFactory(name="credit", owner=owner, team=team)
    version = ModelVersionFactory(
        model=model,
        feature_schema=FAIRNESS_SCHEMA,
        task_type=TaskType.BINARY,
        stage=Stage.PRODUCTION,
        classes=["denied", "approved"],
        positive_class="approved",
    )
    n = 400
    sex = ["F" if i % 2 else "M" for i in range(n)]
    rng = np.random.default_rng(9)
    predictions = ["approved" if rng.random() < (0.3 if s == "F" else 0.6) else "denied" for s in sex]
    features = [
        {"income": 1000.0 + i, "debt_ratio": 0.3, "years_employed": 4.0, "age_band": "25-40", "sex": s}
        for i, s in enumerate(sex)
    ]
    records = []
    for i, p in enumerate(predictions):
        stamp = (T0 + timedelta(minutes=i % 60)).isoformat()
        records.append({"prediction_id": f"p{i}", "timestamp": stamp, "features": features[i], "prediction": p})
    with django_capture_on_commit_callbacks(execute=True):
        ingest_predictions(version, records, owner)
    window_compute(version_id=version.pk, window_start=T0, granularity=Granularity.HOURLY)
    rate = {g: np.mean([p == "approved" for p, s in zip(predictions, sex, strict=True) if s == g]) for g in "FM"}
    assert _value(version, "fairness.selection_rate", "sex=F") == pytest.approx(rate["F"])
    assert _value(version, "fairness.disparate_impact", "sex") == pytest.approx(rate["F"] / rate["M"])


def test_the_form_registers_declared_classes_and_the_version_page_names_the_positive_one(churn_v1, owner, client_for):
    client = client_for(owner)
    url = "/models/churn/versions/new/"
    form = {"task_type": "binary", "feature_schema": json.dumps(SCHEMA), "source_commit": "abc"}
    blank = client.get(url).content.decode()
    assert 'name="classes"' in blank and 'value="[]"' not in blank  # nothing declared reads as empty
    refused = client.post(url, form | {"classes": '["stayed", "churned"]', "positive_class": "gone"})
    assert refused.status_code == 400 and "The positive class must be one of the classes" in refused.content.decode()
    response = client.post(url, form | {"classes": '["stayed", "churned"]', "positive_class": "churned"})
    assert response.status_code == 302, response.content.decode()[:2000]
    page = client.get(response["Location"]).content.decode()
    assert '<code>churned</code> <span class="muted">(positive)</span>' in page
    assert "not declared" in client.get("/models/churn/versions/1/").content.decode()
    report = client.get("/models/churn/report/").content.decode()
    assert "positive class <code>churned</code>" in report
