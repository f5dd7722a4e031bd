"""Erasure takes the labels of the erased predictions with them (GDPR Art. 17): a label sent
without a subject id (the README's example has none) is the subject's data too when its
prediction is. The join probes the labels' (model, prediction_id) index; holds still apply."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from monitoring.models import ErasureOutcome, GroundTruth, Prediction, RetentionPolicy
from monitoring.services.erasure import erasure_request_create, erasure_results
from monitoring.services.ingestion import labels_ingest, predictions_ingest
from registry.models import AuditEvent
from registry.services.audit import CLI
from tests.monitoring.helpers import T0, as_json, prediction_records

pytestmark = pytest.mark.django_db
SUBJECT = "subject-er@example.org"


def _load(version, owner, prefix="er-"):
    records = prediction_records(4, start=T0, prefix=prefix)
    for record in records[:3]:
        record["subject_id"] = SUBJECT
    predictions_ingest(
        version=version, body=as_json(records), content_type="application/json", actor=owner, context=CLI
    )
    labels = [
        {"prediction_id": f"{prefix}0", "label": 1, "subject_id": SUBJECT},
        {"prediction_id": f"{prefix}1", "label": 0, "subject_id": SUBJECT},
        {"prediction_id": f"{prefix}2", "label": 1},  # no subject id: still the subject's label
        {"prediction_id": f"{prefix}3", "label": 1},  # another person's prediction: stays
    ]
    body = json.dumps(labels).encode()
    labels_ingest(model=version.model, body=body, content_type="application/json", actor=owner, context=CLI)


def test_the_labels_of_the_erased_predictions_are_erased_and_counted(churn_v1, owner, privacy):
    _load(churn_v1, owner)
    request = erasure_request_create(subject_id=SUBJECT, actor=privacy, context=CLI)
    assert list(GroundTruth.objects.values_list("prediction_id", flat=True)) == ["er-3"]
    assert list(Prediction.objects.values_list("prediction_id", flat=True)) == ["er-3"]
    results = [{"model": "churn", "predictions": 3, "labels": 3, "status": "erased"}]
    assert erasure_results(request.outcomes.all()) == results
    assert list(ErasureOutcome.objects.values_list("predictions", "labels")) == [(3, 3)]
    event = AuditEvent.objects.get(action="erasure.completed")
    assert event.after["results"] == results


def test_a_held_model_keeps_the_labels_and_counts_them(churn_v1, owner, privacy):
    _load(churn_v1, owner)
    RetentionPolicy.objects.create(
        model=churn_v1.model,
        raw_days=183,
        legal_hold=True,
        legal_hold_reason="Litigation",
        legal_hold_article="Art. 17(3)(e)",
    )
    request = erasure_request_create(subject_id=SUBJECT, actor=privacy, context=CLI)
    assert GroundTruth.objects.count() == 4 and Prediction.objects.count() == 4
    assert erasure_results(request.outcomes.all()) == [
        {
            "model": "churn",
            "predictions": 3,
            "labels": 3,
            "status": "held",
            "reason": "Litigation",
            "article": "Art. 17(3)(e)",
        }
    ]


def test_another_models_label_for_the_same_id_stays(churn_v1, owner, privacy, churn):
    from tests.factories import ModelVersionFactory, RegisteredModelFactory

    fraud = RegisteredModelFactory(name="fraud", owner=owner, team=churn.team)
    fraud_v1 = ModelVersionFactory(model=fraud)
    _load(churn_v1, owner)
    body = json.dumps([{"prediction_id": "er-2", "label": 0}]).encode()
    labels_ingest(model=fraud, body=body, content_type="application/json", actor=owner, context=CLI)
    erasure_request_create(subject_id=SUBJECT, actor=privacy, context=CLI)
    assert list(GroundTruth.objects.filter(model=fraud).values_list("prediction_id", flat=True)) == ["er-2"]
    assert fraud_v1.pk


@pytest.mark.postgres
def test_the_label_erasure_probes_the_indexes(churn_v1, owner, privacy):
    """The labels of the subject's predictions by the (model, prediction_id) index, the others
    by the subject-hash index: neither statement reads every label of the model."""
    _load(churn_v1, owner)
    received = GroundTruth.objects.values_list("received_at", flat=True).first()
    others = [
        GroundTruth(model=churn_v1.model, prediction_id=f"o{i}", label=1, received_at=received) for i in range(5000)
    ]
    GroundTruth.objects.bulk_create(others, batch_size=1000)
    table = GroundTruth._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f'ANALYZE "{table}"')  # statistics as a real table has them
    with CaptureQueriesContext(connection) as queries:
        erasure_request_create(subject_id=SUBJECT, actor=privacy, context=CLI)
    by_id, by_hash = [q["sql"] for q in queries.captured_queries if q["sql"].startswith(f'DELETE FROM "{table}"')]
    plans = []
    with connection.cursor() as cursor:
        for sql in (by_id, by_hash):
            cursor.execute("EXPLAIN " + sql)
            plans.append("\n".join(row[0] for row in cursor.fetchall()))
    for plan in plans:  # empty partitions are read whole at no cost; the others through an index
        assert all("cost=0.00..0.00" in line for line in plan.splitlines() if "Seq Scan" in line), plan
    conds = [line for line in plans[0].splitlines() if "Index Cond" in line]
    assert conds and all("model_id" in c and "prediction_id" in c for c in conds), plans[0]
    assert "model_id_prediction_id_idx" in plans[0], plans[0]
    assert "Index Cond: ((subject_hash)" in plans[1], plans[1]
