"""One truth per dashboard (issue 20 item 3): every panel of the model dashboard says which
version and which granularity it shows, and the first view shows performance when the model
has any (late labels included)."""

from __future__ import annotations

import re
from datetime import timedelta

import numpy as np
import pytest
from django.urls import reverse
from django.utils import timezone

from monitoring.choices import Granularity, Metric
from monitoring.forms import dashboard_query_parse
from monitoring.management.commands.seed_dashboard_bench import seed_dashboard
from monitoring.models import MetricValue
from monitoring.selectors.dashboard import model_dashboard_data
from registry.choices import Stage
from registry.models import ModelVersion, StageTransition
from tests.factories import ModelVersionFactory
from tests.monitoring.helpers import figures_of, metric_row

pytestmark = pytest.mark.django_db


def _url(name="fraud"):
    return reverse("monitoring:model_dashboard", args=[name])


def _promote(model, version, *, at, actor):
    t = StageTransition.objects.create(
        version=version, model=model, from_stage=Stage.STAGING, to_stage=Stage.PRODUCTION, actor=actor
    )
    StageTransition.objects.filter(pk=t.pk).update(created_at=at)


@pytest.fixture
def promoted_without_data(owner, team):
    """fraud: v2 reported for three days; v3 was promoted half an hour ago and has no data
    and no reference profile yet."""
    model = seed_dashboard(name="fraud", days=3, features=3, owner=owner, team=team)
    v2 = ModelVersion.objects.get(model=model, version=2)
    ModelVersion.objects.filter(pk=v2.pk).update(stage=Stage.ARCHIVED)
    v3 = ModelVersionFactory(model=model, version=3, stage=Stage.PRODUCTION, feature_schema=v2.feature_schema)
    _promote(model, v3, at=timezone.now() - timedelta(minutes=30), actor=owner)
    return model, v2, v3


def _summary(html: str) -> str:
    section = html[html.index('<section id="dashboard-charts"') :]
    return re.sub(r"\s+", " ", section[: section.index("</p>")])


# --------------------------------------------------------------------------- live distributions


def test_live_distributions_fall_back_to_the_last_version_with_data_and_say_so(
    client_for, owner, promoted_without_data
):
    model, v2, v3 = promoted_without_data
    response = client_for(owner).get(_url(), {"range": "24h"})
    d = response.context["d"]
    assert d.current_version == v3  # production now
    assert d.distribution_version == v2  # the version that reported in the range
    assert len(d.reference_labels) == 10 and sum(d.current_counts) > 0
    assert d.prediction_shares.shape[0] > 0 and not np.all(np.isnan(d.prediction_shares))
    assert float(np.nansum(d.series["volume"])) > 0
    html = response.content.decode()
    note = html[html.index('id="distribution-version"') :]
    note = re.sub(r"\s+", " ", note[: note.index("</p>")])
    assert "v2" in note and "last version with data" in note


def test_live_distributions_follow_the_version_live_at_the_end_of_the_range(client_for, owner, promoted_without_data):
    model, v2, v3 = promoted_without_data
    now = timezone.now()
    params = {
        "range": "custom",
        "start": (now - timedelta(hours=30)).strftime("%Y-%m-%dT%H:%M"),
        "end": (now - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
    }
    d = model_dashboard_data(user=owner, name="fraud", query=dashboard_query_parse(params))
    assert d.distribution_version == v2
    assert "live at the end of the range" in d.distribution_note


def test_a_pinned_version_shows_its_own_distributions_without_a_note(client_for, owner, promoted_without_data):
    model, v2, v3 = promoted_without_data
    response = client_for(owner).get(_url(), {"range": "24h", "version": "3"})
    d = response.context["d"]
    assert d.distribution_version == v3 and d.distribution_note == ""
    assert 'id="distribution-version"' not in response.content.decode()


# --------------------------------------------------------------------------- header


def test_the_header_names_the_pinned_version_and_follows_an_htmx_redraw(client_for, owner, promoted_without_data):
    c = client_for(owner)
    page = c.get(_url(), {"range": "24h", "version": "2"}).content.decode()
    assert page.count('id="dashboard-version"') == 1
    header = page[page.index('id="dashboard-version"') :]
    assert "showing v2 (archived)" in header[: header.index("</span>")]
    redraw = c.get(
        _url(), {"range": "24h", "version": "2"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="dashboard-charts"
    ).content.decode()
    assert redraw.lstrip().startswith('<section id="dashboard-charts"')
    oob = redraw[redraw.index('id="dashboard-version"') :]
    assert 'hx-swap-oob="true"' in oob[: oob.index(">")]
    assert "showing v2 (archived)" in oob[: oob.index("</span>")]


def test_the_live_header_says_it_follows_production_per_window(client_for, owner, promoted_without_data):
    redraw = (
        client_for(owner)
        .get(_url(), {"range": "24h"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="dashboard-charts")
        .content.decode()
    )
    header = redraw[redraw.index('id="dashboard-version"') :]
    header = re.sub(r"\s+", " ", header[: header.index("</span>")])
    assert "version live in each window" in header and "v3 in production now" in header
    assert "showing v3 (production)" not in redraw


# --------------------------------------------------------------------------- granularity


@pytest.fixture
def daily_batches(owner, churn):
    """churn v1 scores once a day (one hourly window per day, as the demo's 06:00 run), and
    the engine's daily windows exist too."""
    v1 = ModelVersionFactory(model=churn, stage=Stage.PRODUCTION)
    today = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    rows = []
    for back in range(1, 7):
        day = today - timedelta(days=back)
        for granularity, start in ((Granularity.HOURLY, day + timedelta(hours=6)), (Granularity.DAILY, day)):
            rows.append(metric_row(v1, start, Metric.VOLUME, 400, granularity=granularity))
    MetricValue.objects.bulk_create(rows)
    return churn


def test_a_once_a_day_model_is_drawn_daily_and_the_summary_says_daily(client_for, owner, daily_batches):
    response = client_for(owner).get(_url("churn"))
    d = response.context["d"]
    assert d.query.granularity == Granularity.DAILY
    assert len(d.windows) == 6 and all(w.hour == 0 for w in d.windows)
    summary = _summary(response.content.decode())
    assert "6 daily windows" in summary and "hourly" not in summary.split("(")[0]
    assert 'data-granularity="daily"' in response.content.decode()
    assert "At most one hour a day has data" in d.query.notice
    assert d.distribution_note == "Distributions show v1, the version live at the end of the range."


def test_asking_for_hourly_windows_of_a_once_a_day_model_draws_and_names_hourly(client_for, owner, daily_batches):
    response = client_for(owner).get(_url("churn"), {"granularity": "hourly"})
    d = response.context["d"]
    assert d.query.granularity == Granularity.HOURLY
    assert len(d.windows) == 6 and all(w.hour == 6 for w in d.windows)
    assert "6 hourly windows" in _summary(response.content.decode())


def test_a_dense_hourly_model_keeps_hourly_windows(client_for, owner, team):
    seed_dashboard(name="fraud", days=2, features=2, owner=owner, team=team)
    response = client_for(owner).get(_url())
    assert response.context["d"].query.granularity == Granularity.HOURLY
    assert "48 hourly windows" in _summary(response.content.decode())


# --------------------------------------------------------------------------- default range


def _performance_rows(version, days_back, metric=Metric.ROC_AUC, volume=True):
    today = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    rows = []
    for back in days_back:
        start = today - timedelta(days=back)
        if volume:
            rows.append(metric_row(version, start, Metric.VOLUME, 400, granularity=Granularity.DAILY))
        if metric:
            rows.append(metric_row(version, start, metric, 0.8, granularity=Granularity.DAILY))
    MetricValue.objects.bulk_create(rows)


@pytest.fixture
def late_labels(owner, churn):
    """churn v1: predictions every day for 20 days, labels only for days 10 to 20 back."""
    v1 = ModelVersionFactory(model=churn, stage=Stage.PRODUCTION)
    _performance_rows(v1, range(10, 21))
    _performance_rows(v1, range(1, 10), metric=None)
    return churn, v1


def test_the_default_range_reaches_back_to_the_newest_labelled_window(client_for, owner, late_labels):
    response = client_for(owner).get(_url("churn"))
    d = response.context["d"]
    assert d.query.range_key == "30d"
    assert "roc_auc" in d.performance_metrics
    assert 'value="30d" selected' in response.content.decode()


def test_estimated_performance_in_the_last_week_keeps_the_week(client_for, owner, late_labels):
    churn, v1 = late_labels
    _performance_rows(v1, range(1, 7), metric=f"estimated.{Metric.ROC_AUC}", volume=False)
    d = client_for(owner).get(_url("churn")).context["d"]
    assert d.query.range_key == "7d"


def test_an_explicit_range_is_kept_and_the_empty_chart_links_to_the_newest_labels(client_for, owner, late_labels):
    response = client_for(owner).get(_url("churn"), {"range": "7d", "feature": "x"})
    d = response.context["d"]
    assert d.query.range_key == "7d" and d.performance_metrics == []
    newest = (timezone.now() - timedelta(days=10)).date().isoformat()
    html = response.content.decode()
    note = html[html.index('id="newest-labelled"') :]
    note = note[: note.index("</p>")]
    assert newest in note
    links = re.findall(r'href="([^"]+)"', note)
    assert len(links) == 1 and "range=30d" in links[0]


def test_labels_older_than_every_preset_link_to_a_custom_range(client_for, owner, churn):
    v1 = ModelVersionFactory(model=churn, stage=Stage.PRODUCTION)
    _performance_rows(v1, [200])
    _performance_rows(v1, [1, 2], metric=None)
    response = client_for(owner).get(_url("churn"))
    assert response.context["d"].query.range_key == "7d"
    html = response.content.decode().replace("&amp;", "&")
    note = html[html.index('id="newest-labelled"') :]
    note = note[: note.index("</p>")]
    assert (timezone.now() - timedelta(days=200)).date().isoformat() in note
    (link,) = re.findall(r'href="([^"]+)"', note)
    assert "range=custom" in link
    followed = client_for(owner).get(_url("churn") + link[link.index("?") :])
    assert followed.status_code == 200 and "roc_auc" in followed.context["d"].performance_metrics


def test_a_model_with_labels_in_range_shows_no_newest_labelled_note(client_for, owner, team):
    seed_dashboard(name="fraud", days=2, features=2, owner=owner, team=team)
    html = client_for(owner).get(_url()).content.decode()
    assert 'id="newest-labelled"' not in html


def test_live_mode_holds_each_window_to_the_offline_value_of_the_version_live_then(client_for, owner, churn):
    """v1 (offline roc_auc 0.90) then v2 (0.80), promoted half-way: in live mode the warning and
    critical lines step from v1's value to v2's at the promotion; pinned to v2 they are one line."""
    from monitoring.charts.pages import model_dashboard_figures

    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    v1 = ModelVersionFactory(model=churn, stage=Stage.ARCHIVED, metrics={"roc_auc": 0.90})
    v2 = ModelVersionFactory(model=churn, stage=Stage.PRODUCTION, metrics={"roc_auc": 0.80})
    windows = [now - timedelta(hours=h) for h in range(10, 0, -1)]
    _promote(churn, v1, at=now - timedelta(days=3), actor=owner)
    _promote(churn, v2, at=windows[5] - timedelta(minutes=30), actor=owner)
    MetricValue.objects.bulk_create(
        metric_row(version, w, "roc_auc", 0.79, computed_at=now) for version in (v1, v2) for w in windows
    )
    live = model_dashboard_data(user=owner, name="churn", query=dashboard_query_parse({"range": "24h"}))
    traces = {t["name"]: t for t in model_dashboard_figures(live)["chart-performance"]["data"]}
    np.testing.assert_allclose(traces["roc_auc warning"]["y"], [0.85] * 5 + [0.75] * 5)
    np.testing.assert_allclose(traces["roc_auc critical"]["y"], [0.80] * 5 + [0.70] * 5)
    query = dashboard_query_parse({"range": "24h", "version": "2"})
    pinned = model_dashboard_data(user=owner, name="churn", query=query)
    figure = model_dashboard_figures(pinned)["chart-performance"]
    assert "roc_auc warning" not in {t["name"] for t in figure["data"]}
    lines = {s["name"]: s["y0"] for s in figure["layout"]["shapes"] if s.get("name", "").startswith("roc_auc")}
    assert lines == pytest.approx({"roc_auc warning 0.75": 0.75, "roc_auc critical 0.7": 0.70})


def test_estimates_alone_are_one_plot_with_its_dates(client_for, owner, late_labels):
    """With no labelled window the estimated chart kept the two-row layout of the realized one:
    its dates sat on the empty lower axis (hidden) and a gap stood above the legend."""
    churn, v1 = late_labels
    _performance_rows(v1, range(1, 7), metric=f"estimated.{Metric.ROC_AUC}", volume=False)
    figure = figures_of(client_for(owner).get(_url("churn"), {"range": "7d"}))["chart-performance"]
    assert figure["layout"]["title"]["text"] == "Performance over time: estimated (no labels yet)"
    assert "xaxis2" not in figure["layout"] and figure["layout"].get("xaxis", {}).get("showticklabels", True)
