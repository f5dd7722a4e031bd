"""Window computation: reference profiles, hourly/daily metrics, rollups, idempotence, late labels."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from monitoring.choices import Granularity, Metric, ProfileStatus
from monitoring.models import DirtyWindow, MetricValue, Prediction, ReferenceProfile, WindowBinCounts
from monitoring.services import metrics
from monitoring.services.ingestion import labels_ingest, predictions_ingest, reference_upload
from monitoring.services.windows import load_window_columns, window_compute
from registry.services.audit import CLI
from tests.monitoring.helpers import T0, as_json, csv_bytes, prediction_records, reference_frame

pytestmark = pytest.mark.django_db


@pytest.fixture
def profiled(churn_v1, owner, django_capture_on_commit_callbacks):
    """churn v1 with a computed reference profile (the Celery task runs eagerly on commit)."""
    with django_capture_on_commit_callbacks(execute=True):
        reference_upload(
            version=churn_v1, body=csv_bytes(reference_frame(3000)), content_type="text/csv", actor=owner, context=CLI
        )
    churn_v1.refresh_from_db()
    return churn_v1


def ingest(version, owner, records, capture):
    with capture(execute=True):
        return predictions_ingest(
            version=version, body=as_json(records), content_type="application/json", actor=owner, context=CLI
        )


def metric(version, granularity, start, feature, name):
    return MetricValue.objects.get(
        version=version, granularity=granularity, window_start=start, feature=feature, metric=name
    ).value


def test_reference_upload_computes_the_profile_and_stamps_the_version(profiled, audit_actions):
    ref = ReferenceProfile.objects.get(version=profiled)
    assert ref.status == ProfileStatus.READY
    assert profiled.reference_profile_at is not None
    assert set(ref.profile["features"]) == {"age", "income", "plan", "__prediction__", "__score__"}
    assert "reference.uploaded" in audit_actions() and "reference.profiled" in audit_actions()


def test_ingested_predictions_are_computed_into_hourly_and_daily_metrics(
    profiled, owner, django_capture_on_commit_callbacks
):
    records = prediction_records(600, spread_hours=3)
    ingest(profiled, owner, records, django_capture_on_commit_callbacks)
    assert not DirtyWindow.objects.filter(version=profiled).exists()
    daily_volume = metric(profiled, Granularity.DAILY, T0, "", Metric.VOLUME)
    assert daily_volume == 600
    hourly = MetricValue.objects.filter(
        version=profiled, granularity=Granularity.HOURLY, feature="", metric=Metric.VOLUME
    )
    assert sum(m.value for m in hourly) == 600
    assert metric(profiled, Granularity.DAILY, T0, "age", Metric.PSI) < 0.1
