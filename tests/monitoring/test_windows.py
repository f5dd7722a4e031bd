"""Window computation: reference profiles, hourly/daily metrics, rollups, idempotence, late labels."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring import stats, tasks
from monitoring.choices import Granularity, Metric, ProfileStatus
from monitoring.models import (
    DirtyWindow,
    MetricValue,
    Prediction,
    ReferenceProfile,
    WindowBinCounts,
    WindowFailure,
)
from monitoring.services.ingestion import labels_ingest, predictions_ingest, reference_upload
from monitoring.services.window_slices import load_window_columns
from monitoring.services.windows import window_compute
from registry.services.audit import CLI
from tests.monitoring.helpers import T0, as_json, csv_bytes, prediction_records, reference_frame

pytestmark = pytest.mark.django_db


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


def test_windows_count_their_rows_once_an_hour_from_its_column_read_a_day_from_its_hours(
    profiled, owner, django_capture_on_commit_callbacks
):
    """An hour counts its rows in the read of its columns only (here an hour past the slices
    kept, read whole; a live hour reads its changed slices only: test_window_slices.py); a day
    sums its hours' volumes instead of counting its raw rows (under ingestion the live day is
    recomputed about once a minute, and two counts of 10 M rows cost seconds each time)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    ingest(profiled, owner, prediction_records(600, spread_hours=3), django_capture_on_commit_callbacks)
    for granularity, counts in ((Granularity.HOURLY, 1), (Granularity.DAILY, 0)):
        with CaptureQueriesContext(connection) as queries:
            window_compute(version_id=profiled.pk, window_start=T0, granularity=granularity)
        counting = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
        assert len([sql for sql in counting if "monitoring_prediction" in sql]) == counts, granularity
    assert metric(profiled, Granularity.DAILY, T0, "", Metric.VOLUME) == 600
    assert metric(profiled, Granularity.HOURLY, T0, "", Metric.VOLUME) == len(
        [r for r in prediction_records(600, spread_hours=3) if r["timestamp"] < (T0 + timedelta(hours=1)).isoformat()]
    )


def test_a_window_reads_its_models_config_with_its_version(profiled, owner, django_capture_on_commit_callbacks):
    """One statement fewer per window: the config comes with the version (1,078 windows in the
    demo's load). Its thresholds still apply: with a coverage threshold below the hour's half
    coverage its performance is final (the default, 0.8, would make it provisional)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from monitoring.services.config import monitoring_config_update

    ingest(profiled, owner, prediction_records(60), django_capture_on_commit_callbacks)
    body = as_json([{"prediction_id": f"p{i}", "label": i % 2} for i in range(30)])
    labels_ingest(model=profiled.model, body=body, content_type="application/json", actor=owner, context=CLI)
    changes = {"label_coverage_threshold": 0.4}
    monitoring_config_update(model=profiled.model, actor=owner, context=CLI, changes=changes)
    with CaptureQueriesContext(connection) as queries:
        window_compute(version_id=profiled.pk, window_start=T0, granularity=Granularity.HOURLY)
    reads = [q["sql"] for q in queries.captured_queries if "monitoring_monitoringconfig" in q["sql"]]
    assert len(reads) == 1 and "registry_modelversion" in reads[0], reads
    performance = MetricValue.objects.filter(version=profiled, granularity=Granularity.HOURLY, metric="accuracy")
    assert performance.get().provisional is False


def test_daily_metrics_from_summed_hourly_counts_equal_recomputation_from_raw_rows(
    profiled, owner, django_capture_on_commit_callbacks
):
    records = prediction_records(900, spread_hours=6, age_shift=3.0)
    ingest(profiled, owner, records, django_capture_on_commit_callbacks)
    assert WindowBinCounts.objects.filter(version=profiled, granularity=Granularity.HOURLY, feature="age").count() == 6
    ref = ReferenceProfile.objects.get(version=profiled).profile
    columns, _, n = load_window_columns(profiled, T0, T0 + timedelta(days=1), ref)
    assert n == 900
    expected = {(r["feature"], r["metric"]): r["value"] for r in stats.compute_window_drift(ref, columns)}
    stored = {
        (m.feature, m.metric): m.value
        for m in MetricValue.objects.filter(version=profiled, granularity=Granularity.DAILY, window_start=T0)
    }
    for key, value in expected.items():
        assert stored[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


def test_recomputing_a_window_twice_leaves_the_same_rows_and_no_duplicates(
    profiled, owner, django_capture_on_commit_callbacks
):
    ingest(profiled, owner, prediction_records(300), django_capture_on_commit_callbacks)
    before = sorted(
        MetricValue.objects.filter(version=profiled).values_list(
            "window_start", "window_end", "feature", "metric", "value"
        )
    )
    counts_before = WindowBinCounts.objects.count()
    for granularity in (Granularity.HOURLY, Granularity.DAILY):
        window_compute(version_id=profiled.pk, window_start=T0, granularity=granularity)
        window_compute(version_id=profiled.pk, window_start=T0, granularity=granularity)
    after = sorted(
        MetricValue.objects.filter(version=profiled).values_list(
            "window_start", "window_end", "feature", "metric", "value"
        )
    )
    assert after == before
    assert WindowBinCounts.objects.count() == counts_before


def test_a_metric_no_longer_produced_for_a_window_goes_and_only_that_windows(
    profiled, owner, django_capture_on_commit_callbacks
):
    ingest(profiled, owner, prediction_records(300, spread_hours=2), django_capture_on_commit_callbacks)
    kept = set(MetricValue.objects.filter(version=profiled).values_list("pk", flat=True))
    hourly = MetricValue.objects.filter(version=profiled, granularity=Granularity.HOURLY)
    hour = hourly.earliest("window_start")
    other = hourly.filter(window_start__gt=hour.window_start).earliest("window_start")
    # e.g. a feature that left the schema: its rows stay in the windows not recomputed
    for window in (hour, other):
        MetricValue.objects.create(
            model_id=profiled.model_id, version=profiled, granularity=Granularity.HOURLY,
            window_start=window.window_start, window_end=window.window_end, feature="gone", metric=Metric.PSI,
            value=0.5, computed_at=window.computed_at - timedelta(hours=1),
        )  # fmt: skip
    window_compute(version_id=profiled.pk, window_start=hour.window_start, granularity=Granularity.HOURLY)
    gone = MetricValue.objects.filter(version=profiled, feature="gone")
    assert list(gone.values_list("window_start", flat=True)) == [other.window_start]
    assert kept <= set(MetricValue.objects.filter(version=profiled).values_list("pk", flat=True))


def test_late_labels_update_their_windows_without_double_counting(
    profiled, owner, django_capture_on_commit_callbacks, last_seq, audit_actions
):
    records = prediction_records(200)
    ingest(profiled, owner, records, django_capture_on_commit_callbacks)
    assert not MetricValue.objects.filter(version=profiled, metric=Metric.ACCURACY).exists()
    labels = [{"prediction_id": r["prediction_id"], "label": r["prediction"]} for r in records[:100]]
    seq = last_seq()
    with django_capture_on_commit_callbacks(execute=True):
        summary = labels_ingest(
            model=profiled.model, body=as_json(labels), content_type="application/json", actor=owner, context=CLI
        )
    assert summary == {
        "rows": 100,
        "new": 100,
        "updated": 0,
        "unchanged": 0,
        "matched_predictions": 100,
        "dirty_windows": 2,
    }
    assert audit_actions(seq)[0] == "labels.ingested"
    daily = MetricValue.objects.get(
        version=profiled, granularity=Granularity.DAILY, window_start=T0, metric=Metric.ACCURACY
    )
    assert daily.value == 1.0 and daily.provisional is True  # 50% coverage < 80%
    assert metric(profiled, Granularity.DAILY, T0, "", Metric.LABEL_COVERAGE) == pytest.approx(0.5)
    # the same labels again, one corrected, plus the rest: counted once each
    flipped = [dict(lab) for lab in labels]
    flipped[0]["label"] = 1 - int(flipped[0]["label"])
    rest = [{"prediction_id": r["prediction_id"], "label": r["prediction"]} for r in records[100:]]
    with django_capture_on_commit_callbacks(execute=True):
        summary = labels_ingest(
            model=profiled.model,
            body=as_json(flipped + rest),
            content_type="application/json",
            actor=owner,
            context=CLI,
        )
    assert (summary["new"], summary["updated"], summary["unchanged"]) == (100, 1, 99)
    assert metric(profiled, Granularity.DAILY, T0, "", Metric.LABELLED) == 200
    assert metric(profiled, Granularity.DAILY, T0, "", Metric.LABEL_COVERAGE) == 1.0
    daily.refresh_from_db()
    assert daily.value == pytest.approx(199 / 200) and daily.provisional is False


def test_predictions_sent_before_the_reference_get_drift_once_the_profile_exists(
    churn_v1, owner, django_capture_on_commit_callbacks
):
    ingest(churn_v1, owner, prediction_records(100), django_capture_on_commit_callbacks)
    assert metric(churn_v1, Granularity.DAILY, T0, "", Metric.VOLUME) == 100
    assert not MetricValue.objects.filter(version=churn_v1, metric=Metric.PSI).exists()
    with django_capture_on_commit_callbacks(execute=True):
        reference_upload(
            version=churn_v1, body=csv_bytes(reference_frame(1000)), content_type="text/csv", actor=owner, context=CLI
        )
    assert MetricValue.objects.filter(version=churn_v1, granularity=Granularity.DAILY, metric=Metric.PSI).count() == 5


def test_ingestion_is_stored_when_the_broker_is_down_and_the_sweep_computes_it_later(
    profiled, owner, django_capture_on_commit_callbacks, monkeypatch
):
    from monitoring import tasks

    def broker_down(*args, **kwargs):
        raise OSError("Connection refused (broker)")

    monkeypatch.setattr(tasks.monitoring_sweep_dirty_windows, "delay", broker_down)
    ingest(profiled, owner, prediction_records(120), django_capture_on_commit_callbacks)
    assert Prediction.objects.filter(version=profiled).count() == 120
    assert DirtyWindow.objects.filter(version=profiled).count() == 2
    assert not MetricValue.objects.filter(version=profiled).exists()
    monkeypatch.undo()
    assert tasks.monitoring_sweep_dirty_windows.apply().get() == 2
    assert not DirtyWindow.objects.filter(version=profiled).exists()
    assert metric(profiled, Granularity.DAILY, T0, "", Metric.VOLUME) == 120


def test_a_poisoned_window_does_not_stop_the_compute_command_and_is_reported(profiled, monkeypatch):
    """A prediction dated 9999-12-31 23:30 (stored before ingestion refused such dates): its
    hour ends in year 10000, which no datetime can hold."""
    from io import StringIO

    from django.core.management import call_command

    monkeypatch.setattr(tasks.monitoring_sweep_dirty_windows, "delay", lambda *a, **k: None)
    poisoned = T0.replace(year=9999, month=12, day=31, hour=23, minute=30)
    for i, ts in enumerate([T0 + timedelta(minutes=5), poisoned]):
        Prediction.objects.create(
            version=profiled,
            prediction_id=f"x{i}",
            timestamp=ts,
            features={"age": 40.0, "income": 1000.0, "plan": "basic"},
            prediction=1,
            score=0.7,
            received_at=timezone.now(),
        )
    out = StringIO()
    call_command("monitoring_compute", "--model", "churn", stdout=out)
    assert "FAILED" in out.getvalue() and "OverflowError" in out.getvalue()
    failed = set(WindowFailure.objects.values_list("window_start", "granularity"))
    assert failed == {
        (poisoned.replace(minute=0), Granularity.HOURLY),
        (poisoned.replace(hour=0, minute=0), Granularity.DAILY),
    }
    assert metric(profiled, Granularity.DAILY, T0, "", Metric.VOLUME) == 1
    assert not DirtyWindow.objects.exists()
    out = StringIO()
    call_command("monitoring_compute", stdout=out)
    assert "Computed 0 windows" in out.getvalue(), "the poisoned window is not retried"


def test_the_compute_command_recomputes_a_model_without_a_worker(profiled, owner, monkeypatch):
    from django.core.management import call_command

    from monitoring import tasks

    monkeypatch.setattr(tasks.monitoring_sweep_dirty_windows, "delay", lambda *a, **k: None)
    predictions_ingest(
        version=profiled,
        body=as_json(prediction_records(150)),
        content_type="application/json",
        actor=owner,
        context=CLI,
    )
    MetricValue.objects.all().delete()
    call_command("monitoring_compute", "--model", "churn")
    assert not DirtyWindow.objects.exists()
    assert metric(profiled, Granularity.DAILY, T0, "", Metric.VOLUME) == 150


def test_a_recomputed_hour_marks_its_day_for_summing_again(profiled, owner, django_capture_on_commit_callbacks):
    ingest(profiled, owner, prediction_records(120), django_capture_on_commit_callbacks)
    assert not DirtyWindow.objects.exists()
    window_compute(version_id=profiled.pk, window_start=T0, granularity=Granularity.HOURLY)
    assert list(DirtyWindow.objects.values_list("granularity", "window_start")) == [(Granularity.DAILY, T0)]
    window_compute(version_id=profiled.pk, window_start=T0, granularity=Granularity.DAILY)
    assert not DirtyWindow.objects.exists()


def test_window_columns_come_back_bit_for_bit_so_values_on_bin_edges_stay_in_their_bin(churn_v1):
    """SQLite's json_extract prints reals with 15 digits; the loader must not lose precision."""
    import numpy as np
    from django.utils import timezone

    awkward = [-0.04464163650698914, 0.1 + 0.2, 1 / 3, 123456.78901234567, 5e-324, None]
    Prediction.objects.bulk_create(
        Prediction(
            version=churn_v1,
            prediction_id=f"p{i}",
            timestamp=T0 + timedelta(minutes=i),
            features={"age": value, "income": 1.0, "plan": "pro"},
            prediction=1,
            score=value,
            received_at=timezone.now(),
        )
        for i, value in enumerate(awkward)
    )
    columns, _, n = load_window_columns(churn_v1, T0, T0 + timedelta(hours=1), None)
    expected = np.array([np.nan if v is None else v for v in awkward])
    assert n == len(awkward)
    np.testing.assert_array_equal(columns["age"], expected)
    np.testing.assert_array_equal(columns["__score__"], expected)
