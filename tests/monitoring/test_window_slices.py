"""An hour's raw rows read a minute at a time (monitoring/services/window_slices.py): a
recomputation reads only the minutes whose rows changed, and its figures equal a fresh read
of the whole hour, for drift, volume, fairness counts and estimated performance; a batch
committed during the read keeps its minute dirty; a new basis, a recomputation asked for, or
an hour past the slices kept is read whole."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from monitoring import tasks
from monitoring.choices import Granularity
from monitoring.fairness_data import FAIRNESS_SCHEMA, applicants, biased_decisions
from monitoring.models import DirtySlice, MetricValue, WindowBinCounts, WindowGroupCounts, WindowSlice
from monitoring.services import window_slices
from monitoring.services.ingestion import labels_ingest, predictions_ingest, reference_upload
from monitoring.services.windows import window_compute, windows_mark_dirty
from registry.choices import Stage, TaskType
from registry.models import ModelVersion
from registry.services.audit import CLI
from tests.factories import ModelVersionFactory
from tests.monitoring.helpers import T0, as_json, csv_bytes, prediction_records, reference_frame

pytestmark = pytest.mark.django_db
HOUR = (T0, T0 + timedelta(hours=1))
EVERY_HOUR = 24 * 366 * 50  # T0 is months ago: its hours keep their slices as live hours do


@pytest.fixture(autouse=True)
def _slices_kept(settings):
    settings.WINDOW_SLICES_KEPT_HOURS = EVERY_HOUR
    settings.WINDOW_SLICE_SECONDS = 60  # minutes: the spans below; ten seconds (the default) further down
    settings.WINDOW_SLICE_MIN_ROWS = 1  # a slice per minute with rows; merged slices further down


@pytest.fixture
def reads(monkeypatch):
    """The [start, end) spans of raw rows the hour's computations read."""
    spans = []
    real = window_slices.load_window_columns

    def recorded(version, start, end, profile):
        spans.append((start, end))
        return real(version, start, end, profile)

    monkeypatch.setattr(window_slices, "load_window_columns", recorded)
    return spans


def ingest(version, owner, records, capture, *, body=None, content_type="application/json"):
    with capture(execute=True):
        return predictions_ingest(
            version=version, body=body or as_json(records), content_type=content_type, actor=owner, context=CLI
        )


def in_minute(records, minute: int):
    """The records moved into one minute of the hour T0 (seconds kept within it)."""
    for i, r in enumerate(records):
        r["timestamp"] = (T0 + timedelta(minutes=minute, seconds=i % 60)).isoformat()
    return records


def hour_figures(version):
    metrics = {
        (m.feature, m.metric): m.value
        for m in MetricValue.objects.filter(version=version, granularity=Granularity.HOURLY, window_start=T0)
    }
    bins = {
        b.feature: (b.counts, b.missing, b.out_of_range, b.unseen)
        for b in WindowBinCounts.objects.filter(version=version, granularity=Granularity.HOURLY, window_start=T0)
    }
    groups = {
        g.attribute: (g.groups, g.counts)
        for g in WindowGroupCounts.objects.filter(version=version, granularity=Granularity.HOURLY, window_start=T0)
    }
    return metrics, bins, groups


def fresh(version):
    """The hour's figures from a whole read of its rows: slices forgotten, computed again."""
    windows_mark_dirty(version_id=version.pk, hours=[T0], slices=None)
    assert not WindowSlice.objects.filter(version=version).exists()
    window_compute(version_id=version.pk, window_start=T0, granularity=Granularity.HOURLY)
    return hour_figures(version)


def assert_same(got, expected):
    (metrics, bins, groups), (want_metrics, want_bins, want_groups) = got, expected
    assert metrics.keys() == want_metrics.keys()
    for key, value in want_metrics.items():
        assert metrics[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
    assert bins == want_bins
    assert groups.keys() == want_groups.keys()
    for attribute, (names, counts) in want_groups.items():
        assert groups[attribute][0] == names
        np.testing.assert_allclose(groups[attribute][1], counts, rtol=1e-12)


def test_a_recomputation_reads_only_the_changed_minute_and_equals_a_fresh_read_of_the_hour(
    profiled, owner, django_capture_on_commit_callbacks, reads
):
    ingest(profiled, owner, prediction_records(600), django_capture_on_commit_callbacks)
    assert reads == [HOUR], "the hour's first computation reads it whole"
    assert WindowSlice.objects.filter(version=profiled).count() == 60
    assert sum(WindowSlice.objects.filter(version=profiled).values_list("rows", flat=True)) == 600
    reads.clear()
    late = in_minute(prediction_records(40, seed=7, age_shift=15.0, prefix="late"), 45)
    ingest(profiled, owner, late, django_capture_on_commit_callbacks)
    assert reads == [(T0 + timedelta(minutes=45), T0 + timedelta(minutes=46))]
    assert not DirtySlice.objects.filter(version=profiled).exists()
    sliced = hour_figures(profiled)
    assert sliced[0][("", "volume")] == 640
    assert_same(sliced, fresh(profiled))


def test_minutes_changed_apart_are_read_apart_and_the_hour_with_nothing_changed_reads_nothing(
    profiled, owner, django_capture_on_commit_callbacks, reads, monkeypatch
):
    ingest(profiled, owner, prediction_records(300), django_capture_on_commit_callbacks)
    monkeypatch.setattr(tasks.monitoring_sweep_dirty_windows, "delay", lambda *a, **k: None)
    ingest(profiled, owner, in_minute(prediction_records(5, prefix="a"), 3), django_capture_on_commit_callbacks)
    ingest(profiled, owner, in_minute(prediction_records(5, prefix="b"), 4), django_capture_on_commit_callbacks)
    ingest(profiled, owner, in_minute(prediction_records(5, prefix="c"), 50), django_capture_on_commit_callbacks)
    reads.clear()
    window_compute(version_id=profiled.pk, window_start=T0, granularity=Granularity.HOURLY)
    minute = timedelta(minutes=1)
    assert reads == [(T0 + 3 * minute, T0 + 5 * minute), (T0 + 50 * minute, T0 + 51 * minute)]
    reads.clear()
    window_compute(version_id=profiled.pk, window_start=T0, granularity=Granularity.HOURLY)
    assert reads == []
    assert hour_figures(profiled)[0][("", "volume")] == 315
    assert_same(hour_figures(profiled), fresh(profiled))


def test_a_batch_committed_during_the_read_keeps_its_minute_dirty(
    profiled, owner, django_capture_on_commit_callbacks, monkeypatch
):
    ingest(profiled, owner, prediction_records(300), django_capture_on_commit_callbacks)
    monkeypatch.setattr(tasks.monitoring_sweep_dirty_windows, "delay", lambda *a, **k: None)
    ingest(profiled, owner, in_minute(prediction_records(10, prefix="a"), 20), django_capture_on_commit_callbacks)
    real = window_slices.load_window_columns

    def then_a_batch(version, start, end, profile):
        out = real(version, start, end, profile)
        more = in_minute(prediction_records(7, seed=9, prefix="meanwhile"), 20)
        ingest(profiled, owner, more, django_capture_on_commit_callbacks)
        return out

    monkeypatch.setattr(window_slices, "load_window_columns", then_a_batch)
    window_compute(version_id=profiled.pk, window_start=T0, granularity=Granularity.HOURLY)
    monkeypatch.undo()
    assert DirtySlice.objects.filter(version=profiled, slice_start=T0 + timedelta(minutes=20)).exists()
    assert hour_figures(profiled)[0][("", "volume")] == 310, "the batch read before the other arrived"
    window_compute(version_id=profiled.pk, window_start=T0, granularity=Granularity.HOURLY)
    assert not DirtySlice.objects.filter(version=profiled).exists()
    assert hour_figures(profiled)[0][("", "volume")] == 317
    assert_same(hour_figures(profiled), fresh(profiled))


def test_slices_of_another_basis_make_the_hour_read_whole(profiled, owner, django_capture_on_commit_callbacks, reads):
    ingest(profiled, owner, prediction_records(300), django_capture_on_commit_callbacks)
    reads.clear()
    ModelVersion.objects.filter(pk=profiled.pk).update(reference_profile_at=T0 + timedelta(days=400))
    window_compute(version_id=profiled.pk, window_start=T0, granularity=Granularity.HOURLY)
    assert reads == [HOUR]
    reads.clear()
    window_compute(version_id=profiled.pk, window_start=T0, granularity=Granularity.HOURLY)
    assert reads == [], "read whole once, on the new basis"


def test_a_new_reference_profile_re_bins_the_hour_from_all_its_rows(
    profiled, owner, django_capture_on_commit_callbacks
):
    ingest(profiled, owner, prediction_records(600), django_capture_on_commit_callbacks)
    before = hour_figures(profiled)
    shifted = reference_frame(3000, seed=5).assign(age=lambda df: df.age + 20)
    with django_capture_on_commit_callbacks(execute=True):
        reference_upload(version=profiled, body=csv_bytes(shifted), content_type="text/csv", actor=owner, context=CLI)
    after = hour_figures(profiled)
    assert after[0][("age", "psi")] > before[0][("age", "psi")] + 1
    assert after[0][("", "volume")] == 600
    assert_same(after, fresh(profiled))


def test_hours_past_the_slices_kept_are_read_whole_with_the_same_figures(
    profiled, owner, django_capture_on_commit_callbacks, settings, reads
):
    ingest(profiled, owner, prediction_records(600), django_capture_on_commit_callbacks)
    sliced = hour_figures(profiled)
    settings.WINDOW_SLICES_KEPT_HOURS = 6  # T0 is months ago
    assert window_slices.slices_prune() == 60
    reads.clear()
    ingest(profiled, owner, in_minute(prediction_records(40, prefix="late"), 45), django_capture_on_commit_callbacks)
    assert reads == [HOUR] and not WindowSlice.objects.exists() and not DirtySlice.objects.exists()
    whole = hour_figures(profiled)
    assert whole[0][("", "volume")] == 640
    settings.WINDOW_SLICES_KEPT_HOURS = EVERY_HOUR
    assert_same(whole, fresh(profiled))
    assert sliced[0][("", "volume")] == 600


def test_a_batch_spanning_minutes_and_hours_marks_each_of_its_minutes(
    profiled, owner, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr(tasks.monitoring_sweep_dirty_windows, "delay", lambda *a, **k: None)
    records = prediction_records(3)
    stamps = [T0 + timedelta(minutes=59, seconds=59), T0 + timedelta(hours=1), T0 + timedelta(minutes=7, seconds=1)]
    for r, ts in zip(records, stamps, strict=True):
        r["timestamp"] = ts.isoformat()
    ingest(profiled, owner, records, django_capture_on_commit_callbacks)
    marked = set(DirtySlice.objects.filter(version=profiled).values_list("slice_start", flat=True))
    assert marked == {T0 + timedelta(minutes=59), T0 + timedelta(hours=1), T0 + timedelta(minutes=7)}


@pytest.fixture
def credit(churn, owner):
    return ModelVersionFactory(model=churn, version=2, feature_schema=FAIRNESS_SCHEMA, task_type=TaskType.BINARY,
                               stage=Stage.STAGING)  # fmt: skip


def test_late_labels_mark_their_minutes_where_fairness_counts_them_and_equal_a_fresh_read(
    credit, churn_v1, owner, django_capture_on_commit_callbacks, reads, monkeypatch
):
    data = applicants(400, seed=4)
    prediction, score = biased_decisions(data, female_factor=0.6, seed=4)
    frame = pd.DataFrame({
        "prediction_id": [f"c{i}" for i in range(400)],
        "timestamp": [(T0 + timedelta(seconds=9 * i)).isoformat() for i in range(400)],
        "income": data["income"].round(2), "debt_ratio": data["debt_ratio"].round(4),
        "years_employed": data["years_employed"].round(2), "age_band": data["age_band"], "sex": data["sex"],
        "prediction": prediction, "score": score.round(5),
    })  # fmt: skip
    ingest(credit, owner, None, django_capture_on_commit_callbacks, body=csv_bytes(frame), content_type="text/csv")
    ingest(churn_v1, owner, prediction_records(50, prefix="c"), django_capture_on_commit_callbacks)
    monkeypatch.setattr(tasks.monitoring_sweep_dirty_windows, "delay", lambda *a, **k: None)
    labels = pd.DataFrame({"prediction_id": [f"c{i}" for i in range(0, 40)], "label": [i % 2 for i in range(40)]})
    with django_capture_on_commit_callbacks(execute=True):
        labels_ingest(model=credit.model, body=csv_bytes(labels), content_type="text/csv", actor=owner, context=CLI)
    marked = set(DirtySlice.objects.values_list("version_id", "slice_start"))
    assert marked == {(credit.pk, T0 + timedelta(minutes=m)) for m in range(6)}, "40 rows 9 s apart: minutes 0-5"
    reads.clear()
    window_compute(version_id=credit.pk, window_start=T0, granularity=Granularity.HOURLY)
    window_compute(version_id=churn_v1.pk, window_start=T0, granularity=Granularity.HOURLY)
    assert reads == [(T0, T0 + timedelta(minutes=6))], "churn v1 has no sensitive attributes: nothing re-read"
    counts = WindowGroupCounts.objects.get(version=credit, window_start=T0, attribute="sex").counts
    assert sum(c[2] + c[3] + c[4] + c[5] for c in counts) == 40, "every label counted once"
    assert_same(hour_figures(credit), fresh(credit))


def test_estimated_regression_errors_sum_from_minutes_to_a_fresh_read(
    churn, owner, django_capture_on_commit_callbacks, reads, churn_v1
):
    version = ModelVersionFactory(model=churn, version=3, feature_schema=churn_v1.feature_schema,
                                  task_type=TaskType.REGRESSION, stage=Stage.STAGING)  # fmt: skip
    ref = reference_frame(2000, seed=2)
    ref = ref.assign(prediction=ref.age * 2.0, label=ref.age * 2.0 + np.random.default_rng(2).normal(0, 3, len(ref)))
    with django_capture_on_commit_callbacks(execute=True):
        reference_upload(version=version, body=csv_bytes(ref.drop(columns="score")), content_type="text/csv",
                         actor=owner, context=CLI)  # fmt: skip
    version.refresh_from_db()
    records = prediction_records(500)
    for r in records:
        r["prediction"] = r["features"]["age"] * 2.0
    ingest(version, owner, records, django_capture_on_commit_callbacks)
    more = in_minute(prediction_records(30, seed=3, prefix="late"), 30)
    for r in more:
        r["prediction"] = r["features"]["age"] * 2.0
    ingest(version, owner, more, django_capture_on_commit_callbacks)
    sliced = hour_figures(version)
    assert sliced[0][("", "estimated.mae")] > 0
    assert_same(sliced, fresh(version))


def test_slices_of_ten_seconds_are_read_apart_and_a_row_just_before_a_boundary_stays_in_its_slice(
    profiled, owner, django_capture_on_commit_callbacks, reads, settings
):
    settings.WINDOW_SLICE_SECONDS = 10
    edge = prediction_records(2, prefix="edge")
    edge[0]["timestamp"] = (T0 + timedelta(seconds=9, microseconds=999_999)).isoformat()
    edge[1]["timestamp"] = (T0 + timedelta(minutes=59, seconds=59, microseconds=999_999)).isoformat()
    ingest(profiled, owner, prediction_records(300) + edge, django_capture_on_commit_callbacks)
    starts = set(WindowSlice.objects.filter(version=profiled).values_list("slice_start", flat=True))
    assert T0 in starts and T0 + timedelta(minutes=59, seconds=50) in starts
    assert starts <= {T0 + timedelta(seconds=10 * k) for k in range(360)}, "none past the hour's last slice"
    expected = Counter(
        T0 + timedelta(seconds=(datetime.fromisoformat(r["timestamp"]) - T0).seconds // 10 * 10)
        for r in prediction_records(300) + edge
    )
    assert dict(WindowSlice.objects.filter(version=profiled).values_list("slice_start", "rows")) == expected
    reads.clear()
    late = prediction_records(12, prefix="late")
    for i, r in enumerate(late):
        r["timestamp"] = (T0 + timedelta(minutes=30, seconds=41 + i)).isoformat()  # 30:41 .. 30:52
    ingest(profiled, owner, late, django_capture_on_commit_callbacks)
    assert reads == [(T0 + timedelta(minutes=30, seconds=40), T0 + timedelta(minutes=31))]
    assert hour_figures(profiled)[0][("", "volume")] == 314
    assert_same(hour_figures(profiled), fresh(profiled))


def every_minute(n_per_minute: int, *, prefix: str = "m", minutes=range(60)) -> list[dict]:
    records = prediction_records(n_per_minute * len(minutes), prefix=prefix)
    for i, r in enumerate(records):
        into = timedelta(seconds=60 * (i % n_per_minute) / n_per_minute)
        r["timestamp"] = (T0 + timedelta(minutes=minutes[i // n_per_minute]) + into).isoformat()
    return records


def test_sparse_minutes_are_merged_into_slices_of_the_least_rows_and_a_mark_re_reads_its_slice(
    profiled, owner, django_capture_on_commit_callbacks, reads, settings
):
    settings.WINDOW_SLICE_MIN_ROWS = 100
    ingest(profiled, owner, every_minute(10), django_capture_on_commit_callbacks)
    stored = list(WindowSlice.objects.filter(version=profiled).values_list("slice_start", "seconds", "rows"))
    minute = timedelta(minutes=1)
    assert stored == [(T0 + 10 * k * minute, 600, 100) for k in range(6)], "ten minutes of 10 rows make a slice"
    reads.clear()
    ingest(profiled, owner, every_minute(3, prefix="late", minutes=[45, 46]), django_capture_on_commit_callbacks)
    assert reads == [(T0 + 40 * minute, T0 + 50 * minute)], "the slice holding minutes 45 and 46, whole"
    after = list(WindowSlice.objects.filter(version=profiled).values_list("slice_start", "seconds", "rows"))
    assert after == [*stored[:4], (T0 + 40 * minute, 600, 106), stored[5]]
    reads.clear()
    ingest(profiled, owner, every_minute(200, prefix="burst", minutes=[45]), django_capture_on_commit_callbacks)
    assert reads == [(T0 + 40 * minute, T0 + 50 * minute)]
    after = list(WindowSlice.objects.filter(version=profiled).values_list("slice_start", "seconds", "rows"))
    assert after[4:] == [(T0 + 40 * minute, 360, 263), (T0 + 46 * minute, 240, 43), stored[5]], "split once full"
    assert_same(hour_figures(profiled), fresh(profiled))


def test_a_sparse_hour_is_one_slice_and_a_mark_in_a_span_without_rows_re_reads_it(
    profiled, owner, django_capture_on_commit_callbacks, reads, settings
):
    settings.WINDOW_SLICE_MIN_ROWS = 5000
    settings.WINDOW_SLICE_SECONDS = 10
    ingest(profiled, owner, every_minute(1, minutes=range(10, 50)), django_capture_on_commit_callbacks)
    assert list(WindowSlice.objects.filter(version=profiled).values_list("slice_start", "seconds", "rows")) == [
        (T0, 3600, 40)
    ], "the hour tiled from its start to its end by the one slice"
    reads.clear()
    late = every_minute(1, prefix="late", minutes=[58])
    late[0]["timestamp"] = (T0 + timedelta(minutes=58, seconds=33)).isoformat()
    ingest(profiled, owner, late, django_capture_on_commit_callbacks)
    assert reads == [HOUR]
    assert hour_figures(profiled)[0][("", "volume")] == 41
    assert_same(hour_figures(profiled), fresh(profiled))


def test_a_mark_past_a_full_slice_reads_its_minute_alone_and_one_inside_it_the_slice(
    profiled, owner, django_capture_on_commit_callbacks, reads, settings
):
    settings.WINDOW_SLICE_MIN_ROWS = 50
    ingest(profiled, owner, every_minute(60, minutes=[10]), django_capture_on_commit_callbacks)
    minute = timedelta(minutes=1)
    assert list(WindowSlice.objects.values_list("slice_start", "seconds", "rows")) == [(T0, 660, 60)]
    reads.clear()
    ingest(profiled, owner, every_minute(5, prefix="next", minutes=[11]), django_capture_on_commit_callbacks)
    assert reads == [(T0 + 11 * minute, T0 + 12 * minute)], "the live edge past a full slice: its minute alone"
    reads.clear()
    ingest(profiled, owner, every_minute(5, prefix="early", minutes=[4]), django_capture_on_commit_callbacks)
    assert reads == [(T0, T0 + 11 * minute)]
    assert list(WindowSlice.objects.values_list("slice_start", "seconds", "rows")) == [
        (T0, 660, 65),
        (T0 + 11 * minute, 60, 5),
    ]
    assert_same(hour_figures(profiled), fresh(profiled))


def test_a_slice_width_that_does_not_divide_an_hour_is_refused():
    import os
    import subprocess
    import sys

    env = {**os.environ, "WINDOW_SLICE_SECONDS": "7", "DJANGO_SETTINGS_MODULE": "mlops_portal.settings"}
    done = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode != 0 and "WINDOW_SLICE_SECONDS must divide 3600" in done.stderr
