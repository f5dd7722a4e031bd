"""The model dashboard's bin-count reads (``monitoring.selectors.window_bin_counts``) and the
distributions built from them, checked against a plain computation over the stored rows:
the PostgreSQL fast path (one aggregated string per feature) and the row path give the same
numbers as summing ``WindowBinCounts`` rows one by one."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from django.http import QueryDict
from django.urls import reverse

from monitoring.charts import FigureJSONEncoder
from monitoring.choices import SCORE_FEATURE, Granularity
from monitoring.forms import dashboard_query_parse
from monitoring.management.commands.seed_dashboard_bench import seed_dashboard
from monitoring.models import ReferenceProfile, WindowBinCounts
from monitoring.selectors import window_bin_counts
from monitoring.selectors.dashboard import model_dashboard_data
from registry.models import ModelVersion

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 13, 0, tzinfo=UTC)


@pytest.fixture(params=["own", "rows"])
def path(request, monkeypatch):
    """Run each test on the database's own path (on PostgreSQL the fast one) and on the
    row-by-row path (SQLite's). On SQLite both are the row path: nothing is skipped."""
    if request.param == "rows":
        monkeypatch.setattr("monitoring.selectors.bins.is_postgresql", lambda: False)
    return request.param


@pytest.fixture
def hourly_only(owner, team):
    model = seed_dashboard(name="fraud", days=3, features=3, owner=owner, team=team, now=NOW, daily=False)
    version = ModelVersion.objects.get(model=model, version=2)
    # a few rows counted on other bins (a re-uploaded reference): left out everywhere
    for feature in ("feature_01", SCORE_FEATURE):
        ids = WindowBinCounts.objects.filter(version=version, feature=feature).order_by("window_start")
        WindowBinCounts.objects.filter(pk__in=list(ids.values_list("pk", flat=True)[30:33])).update(counts=[1, 2, 3])
    return model, version


def _rows(version, feature, start, end, granularity):
    return list(
        WindowBinCounts.objects.filter(
            version=version, feature=feature, granularity=granularity, window_start__gte=start, window_start__lt=end
        )
        .order_by("window_start")
        .values_list("window_start", "counts")
    )


def test_window_bin_counts_are_the_stored_rows_of_the_right_width(path, hourly_only):
    _model, version = hourly_only
    start, end = NOW - timedelta(days=2, hours=5), NOW - timedelta(hours=3)
    widths = {"feature_01": 50, "feature_02": 50, SCORE_FEATURE: 50, "__prediction__": 0, "nope": 50}
    for granularity in (Granularity.HOURLY, Granularity.DAILY):  # no daily rows: hourly rows either way
        got = window_bin_counts(version=version, features=widths, start=start, end=end, granularity=granularity)
        assert set(got) == {"feature_01", "feature_02", SCORE_FEATURE}
        for feature, counts in got.items():
            rows = [(w, c) for w, c in _rows(version, feature, start, end, Granularity.HOURLY) if len(c) == 50]
            assert counts.granularity == Granularity.HOURLY
            assert counts.starts.tolist() == [w.timestamp() for w, _ in rows]
            assert counts.counts.dtype == np.float64 and counts.counts.shape == (len(rows), 50)
            np.testing.assert_array_equal(counts.counts, np.array([c for _, c in rows], dtype="float64"))
        assert len(got["feature_01"].starts) == len(got["feature_02"].starts) - 3  # the re-binned rows
    narrow = window_bin_counts(version=version, features={"feature_01": 3}, start=start, end=end, granularity="hourly")
    np.testing.assert_array_equal(narrow["feature_01"].counts, [[1, 2, 3]] * 3)


def test_stored_daily_counts_are_preferred_for_a_daily_view(path, hourly_only):
    _model, version = hourly_only
    day = NOW.replace(hour=0) - timedelta(days=1)
    WindowBinCounts.objects.create(
        version=version, window_start=day, granularity=Granularity.DAILY, feature=SCORE_FEATURE, counts=[7] * 50
    )
    widths = {"feature_01": 50, SCORE_FEATURE: 50}
    start, end = NOW - timedelta(days=3), NOW
    daily = window_bin_counts(version=version, features=widths, start=start, end=end, granularity=Granularity.DAILY)
    # daily rows exist for one of the features: only daily rows are read (as the page always did)
    assert set(daily) == {SCORE_FEATURE}
    assert daily[SCORE_FEATURE].granularity == Granularity.DAILY
    assert daily[SCORE_FEATURE].starts.tolist() == [day.timestamp()]
    hourly = window_bin_counts(version=version, features=widths, start=start, end=end, granularity="hourly")
    assert set(hourly) == {"feature_01", SCORE_FEATURE} and len(hourly[SCORE_FEATURE].starts) > 24


def _display(counts, coarse_map, width):
    return np.bincount(np.asarray(coarse_map), weights=np.asarray(counts, dtype="float64"), minlength=width)


@pytest.mark.parametrize("params", ["range=24h&feature=feature_01", "range=30d&feature=feature_01", "range=7d"])
def test_distributions_equal_the_sum_of_the_stored_rows(path, hourly_only, params):
    model, version = hourly_only
    query = dashboard_query_parse(QueryDict(params), now=NOW + timedelta(minutes=20))
    d = model_dashboard_data(user=model.owner, name=model.name, query=query)
    columns = ReferenceProfile.objects.get(version=version).profile["features"]
    start, end = query.start, query.end

    feature_map = columns[d.feature]["coarse_map"]
    expected = np.zeros(10)
    for _w, counts in _rows(version, d.feature, start, end, Granularity.HOURLY):
        if len(counts) == len(feature_map):
            expected += _display(counts, feature_map, 10)
    assert d.current_counts == expected.tolist() and expected.sum() > 0

    score_map = columns[SCORE_FEATURE]["coarse_map"]
    buckets: dict[datetime, np.ndarray] = {}
    for w, counts in _rows(version, SCORE_FEATURE, start, end, Granularity.HOURLY):
        if len(counts) == len(score_map):
            key = w.replace(hour=0) if query.granularity == Granularity.DAILY else w
            buckets[key] = buckets.get(key, np.zeros(10)) + _display(counts, score_map, 10)
    matrix = np.stack([buckets.get(w, np.zeros(10)) for w in d.windows], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = matrix / matrix.sum(axis=0)
    assert d.prediction_shares.shape == (10, len(d.windows))
    np.testing.assert_array_equal(d.prediction_shares, shares)
    assert not np.isnan(d.prediction_shares).all()


def test_dashboard_page_carries_the_figures_it_built(client_for, hourly_only):
    model, _version = hourly_only
    response = client_for(model.owner).get(reverse("monitoring:model_dashboard", args=[model.name]), {"range": "7d"})
    html = response.content.decode()
    tag = '<script id="figures" type="application/json">'
    start = html.index(tag) + len(tag)
    sent = json.loads(html[start : html.index("</script>", start)])
    assert sent == json.loads(json.dumps(response.context["figures"], cls=FigureJSONEncoder))


@pytest.mark.postgres
def test_the_newest_performance_reads_only_the_performance_rows_through_the_metric_index(churn, churn_v1):
    """The dashboard's newest-performance query names its metrics in the WHERE, so the (model,
    metric, window_start) index serves it; with them only in the aggregates' FILTERs it scanned
    every metric row of the model (178 ms of a 384 ms 7-day render at a million rows)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from mlops_portal.db import analyze
    from monitoring.models import MetricValue
    from monitoring.selectors.dashboard_scope import newest_performance

    hours = [NOW - timedelta(hours=h) for h in range(48)]
    drift = [(f"feature_{f:02d}", "psi") for f in range(40)]  # what most metric rows are
    MetricValue.objects.bulk_create(
        MetricValue(
            model=churn,
            version=churn_v1,
            granularity=Granularity.HOURLY,
            window_start=t,
            window_end=t + timedelta(hours=1),
            feature=feature,
            metric=metric,
            value=0.1,
            computed_at=NOW,
        )
        for t in hours
        for feature, metric in [*drift, ("", "roc_auc")]
    )
    analyze([MetricValue._meta.db_table])
    rows = MetricValue.objects.filter(model=churn, version_id__in=[churn_v1.pk])
    with CaptureQueriesContext(connection) as queries:
        assert newest_performance(rows) == (hours[0], None)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a small table: compare the index plans only
        cursor.execute("EXPLAIN " + queries.captured_queries[-1]["sql"])
        plan = "\n".join(row[0] for row in cursor.fetchall())
    index_conditions = [line for line in plan.splitlines() if "Index Cond" in line]
    assert any("metric" in line and "roc_auc" in line for line in index_conditions), plan
