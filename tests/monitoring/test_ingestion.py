"""Ingestion services: predictions, labels and reference data; rejected batches store nothing."""

from __future__ import annotations

import pytest

from monitoring.choices import Granularity
from monitoring.models import DirtyWindow, Prediction
from monitoring.services.ingestion import predictions_ingest
from registry.services.audit import CLI
from tests.monitoring.helpers import (
    T0,
    as_csv,
    as_json,
    as_ndjson,
    prediction_records,
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
