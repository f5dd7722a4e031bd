"""Packed window counts (``PackedBinCounts``): the rollups read one packed row per window and
must give exactly what summing the per-feature ``WindowBinCounts`` rows gave."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from monitoring import stats as metrics
from monitoring.choices import Granularity
from monitoring.models import PackedBinCounts, WindowBinCounts
from monitoring.services.ingestion import predictions_ingest, reference_upload
from monitoring.services.packed_counts import pack_counts
from monitoring.services.windows import _store_counts, stored_counts, window_compute
from registry.services.audit import CLI
from tests.monitoring.helpers import T0, as_json, csv_bytes, prediction_records, reference_frame

pytestmark = pytest.mark.django_db

DAY = (T0, T0 + timedelta(days=1))


def summed_per_feature_rows(version, start, end) -> dict[str, metrics.FeatureCounts]:
    """What ``stored_counts`` returned before the packed rows: the per-feature rows summed
    per feature (zero-padded when the widths differ)."""
    out: dict[str, metrics.FeatureCounts] = {}
    for row in WindowBinCounts.objects.filter(
        version=version, granularity=Granularity.HOURLY, window_start__gte=start, window_start__lt=end
    ):
        counts = np.asarray(row.counts, dtype=np.int64)
        have = out.get(row.feature)
        if have is None:
            out[row.feature] = metrics.FeatureCounts(counts, row.missing, row.out_of_range, row.unseen)
            continue
        total = np.zeros(max(len(have.counts), len(counts)), dtype=np.int64)
        total[: len(have.counts)] += have.counts
        total[: len(counts)] += counts
        out[row.feature] = metrics.FeatureCounts(
            total, have.missing + row.missing, have.out_of_range + row.out_of_range, have.unseen + row.unseen
        )
    return out


def assert_same_counts(got: dict, expected: dict) -> None:
    assert set(got) == set(expected)
    for name, fc in expected.items():
        g = got[name]
        assert g.counts.dtype == np.int64, name
        assert g.counts.tolist() == fc.counts.tolist(), name
        assert (g.missing, g.out_of_range, g.unseen) == (fc.missing, fc.out_of_range, fc.unseen), name
        assert all(type(v) is int for v in (g.missing, g.out_of_range, g.unseen)), name


def fc(counts, missing=0, out_of_range=0, unseen=0) -> metrics.FeatureCounts:
    return metrics.FeatureCounts(np.asarray(counts, dtype=np.int64), missing, out_of_range, unseen)


@pytest.mark.parametrize(
    ("top", "dtype"),
    [(0, "|u1"), (255, "|u1"), (256, "<u2"), (65535, "<u2"), (65536, "<u4"), (2**32 - 1, "<u4"), (2**32, "<i8")],
)
def test_counts_are_packed_in_the_narrowest_type_and_read_back_exactly(churn_v1, top, dtype):
    window = {"a": fc([top, 0, 1], missing=3, out_of_range=2), "b": fc([1, 2], unseen=4), "c": fc([7])}
    layout, packed_dtype, counts, quality = pack_counts(window)
    assert packed_dtype == dtype
    assert layout == {"features": ["a", "b", "c"], "widths": [3, 2, 1]}
    assert np.frombuffer(counts, dtype=dtype).tolist() == [top, 0, 1, 1, 2, 7]
    assert np.frombuffer(quality, dtype="<i8").reshape(-1, 3).tolist() == [[3, 2, 0], [0, 0, 4], [0, 0, 0]]
    if top >= 2**31 - 8:
        return  # beyond the per-feature rows' n (a PostgreSQL integer); no hour holds that many rows
    _store_counts(churn_v1.pk, T0, Granularity.HOURLY, window)
    assert_same_counts(stored_counts(churn_v1.pk, *DAY), window)


def test_a_day_is_the_exact_sum_of_its_hours_even_when_features_and_bins_change(churn_v1):
    hours = [
        {"a": fc([1, 2, 3], missing=1), "b": fc([5, 0], unseen=2)},
        {"a": fc([1, 1], out_of_range=4), "c": fc([7, 7])},  # a re-binned, b gone, c new
        {"a": fc([10, 20, 30]), "b": fc([300, 1])},  # wider dtype in this hour only
        {},
    ]
    for i, window in enumerate(hours):
        _store_counts(churn_v1.pk, T0 + timedelta(hours=i), Granularity.HOURLY, window)
    _store_counts(churn_v1.pk, T0 + timedelta(days=1), Granularity.HOURLY, {"a": fc([9, 9, 9])})  # next day
    got = stored_counts(churn_v1.pk, *DAY)
    assert_same_counts(
        got,
        {
            "a": fc([12, 23, 33], missing=1, out_of_range=4),
            "b": fc([305, 1], unseen=2),
            "c": fc([7, 7]),
        },
    )
    assert_same_counts(got, summed_per_feature_rows(churn_v1, *DAY))
    assert stored_counts(churn_v1.pk, T0 + timedelta(days=2), T0 + timedelta(days=3)) == {}


def test_recomputing_an_hour_overwrites_its_packed_row(churn_v1):
    _store_counts(churn_v1.pk, T0, Granularity.HOURLY, {"a": fc([1, 2]), "b": fc([3])})
    _store_counts(churn_v1.pk, T0, Granularity.HOURLY, {"a": fc([4, 5], missing=1)})
    assert PackedBinCounts.objects.filter(version=churn_v1).count() == 1
    assert_same_counts(stored_counts(churn_v1.pk, *DAY), {"a": fc([4, 5], missing=1)})


def test_an_hour_computed_without_rows_drops_its_packed_counts(churn_v1):
    _store_counts(churn_v1.pk, T0, Granularity.HOURLY, {"a": fc([1, 2])})
    window_compute(version_id=churn_v1.pk, window_start=T0, granularity=Granularity.HOURLY)
    assert not PackedBinCounts.objects.filter(version=churn_v1).exists()
    assert not WindowBinCounts.objects.filter(version=churn_v1).exists()
    assert stored_counts(churn_v1.pk, *DAY) == {}


def test_ingested_hours_store_packed_counts_equal_to_their_per_feature_rows(
    churn_v1, owner, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        reference_upload(
            version=churn_v1, body=csv_bytes(reference_frame(3000)), content_type="text/csv", actor=owner, context=CLI
        )
    records = prediction_records(700, spread_hours=5, age_shift=2.0)
    for r in records[:40]:
        r["features"]["age"] = None  # missing
    for r in records[40:60]:
        r["features"]["plan"] = "enterprise"  # unseen category
    for r in records[60:70]:
        r["features"]["income"] = 1e12  # out of the reference range
    with django_capture_on_commit_callbacks(execute=True):
        predictions_ingest(
            version=churn_v1, body=as_json(records), content_type="application/json", actor=owner, context=CLI
        )
    assert PackedBinCounts.objects.filter(version=churn_v1, granularity=Granularity.HOURLY).count() == 5
    got = stored_counts(churn_v1.pk, *DAY)
    expected = summed_per_feature_rows(churn_v1, *DAY)
    assert_same_counts(got, expected)
    assert got["age"].missing == 40 and got["plan"].unseen == 20 and got["income"].out_of_range >= 10
    assert sum(got["age"].counts) + got["age"].missing == 700
