"""Fleet overview and model dashboard: content, permissions per role, bad input, constant query
counts (the alerts page: test_alert_pages.py)."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from monitoring.choices import AlertKind, AlertSeverity, AlertStatus, HealthState
from monitoring.management.commands.seed_dashboard_bench import seed_dashboard
from monitoring.models import Alert, HealthStatus, ReferenceProfile
from registry.selectors import model_list
from tests.factories import AlertFactory, RegisteredModelFactory, UserFactory
from tests.monitoring.helpers import DASHBOARD_CHART_IDS, assert_form_error, figures_of, metric_row

pytestmark = pytest.mark.django_db

CHART_IDS = DASHBOARD_CHART_IDS
COST_CHART_IDS = [
    "chart-cost-daily",
    "chart-cost-per-thousand",
    "chart-cost-budget",
]  # tests/monitoring/test_cost_pages.py


# --------------------------------------------------------------------------- fleet


def test_home_redirects_to_the_fleet_overview(client_for, owner):
    response = client_for(owner).get("/")
    assert response.status_code == 302
    assert response["Location"] == reverse("monitoring:fleet")


def test_fleet_lists_only_the_models_the_owner_may_see_with_health_and_production(
    client_for, owner, seeded, other_model
):
    response = client_for(owner).get(reverse("monitoring:fleet"))
    assert response.status_code == 200
    rows = {m.name: m for m in response.context["models"]}
    assert set(rows) == {"fraud"}
    fraud = rows["fraud"]
    assert fraud.health_state == HealthState.CRITICAL
    assert fraud.production_version == 2
    assert fraud.open_alerts == 2  # open + acknowledged (not yet resolved)
    # the column said "Open alerts" while the alerts page's status Open leaves acknowledged ones out;
    # the dashboard calls them active, as the fleet now does
    assert b"<th>Active alerts</th>" in response.content and b"Open alerts" not in response.content
    assert fraud.last_window is not None
    assert response.context["health_counts"]["critical"] == 1
    assert b'data-health="critical"' in response.content
    assert set(figures_of(response)) == {"chart-fleet-health"}
    # the tier table's health counts are today's; only its times span the last 30 days
    assert b"Health now: OK / warn / crit / no data" in response.content


def test_fleet_alert_count_is_red_only_when_an_active_alert_is_critical(client_for, owner, churn):
    # the count was a red badge whatever the alerts' severity: three warnings read as critical
    now = timezone.now()
    for kind in ("drift", "quality"):
        Alert.objects.create(model=churn, kind=kind, severity="warning", title="x", opened_at=now, updated_at=now)
    row = client_for(owner).get(reverse("monitoring:fleet")).content.decode()
    assert 'class="badge badge-warning alert-count"' in row
    Alert.objects.create(model=churn, kind="performance", severity="critical", title="y", opened_at=now, updated_at=now)
    row = client_for(owner).get(reverse("monitoring:fleet")).content.decode()
    assert 'class="badge badge-critical alert-count"' in row


@pytest.mark.parametrize("role", ["reviewer", "auditor", "admin"])
def test_fleet_shows_every_model_to_roles_that_see_all(client_for, roles, role, seeded, other_model):
    response = client_for(roles[role]).get(reverse("monitoring:fleet"))
    assert response.status_code == 200
    names = {m.name for m in response.context["models"]}
    assert names == {"fraud", "pricing"}
    # a model without health yet counts as no_data
    assert response.context["health_counts"]["no_data"] == 1


def test_outsider_sees_an_empty_fleet(client_for, outsider, seeded, other_model):
    response = client_for(outsider).get(reverse("monitoring:fleet"))
    assert response.status_code == 200
    assert response.context["models"] == []
    assert b"fraud" not in response.content and b"pricing" not in response.content
    assert all(r.models == 0 for r in response.context["rollup"])


def test_anonymous_user_is_sent_to_login(client, seeded):
    for url in (
        reverse("monitoring:fleet"),
        reverse("monitoring:fleet_live"),
        reverse("monitoring:model_dashboard", args=["fraud"]),
        reverse("monitoring:alert_list"),
        reverse("monitoring:scorecard"),
    ):
        response = client.get(url)
        assert response.status_code == 302 and "/login/" in response["Location"]


def test_fleet_filters_and_sorting(client_for, admin_user, seeded, other_model):
    c = client_for(admin_user)
    assert [m.name for m in c.get(reverse("monitoring:fleet"), {"health": "critical"}).context["models"]] == ["fraud"]
    assert [m.name for m in c.get(reverse("monitoring:fleet"), {"health": "no_data"}).context["models"]] == ["pricing"]
    assert [m.name for m in c.get(reverse("monitoring:fleet"), {"risk_tier": "high"}).context["models"]] == ["fraud"]
    assert [m.name for m in c.get(reverse("monitoring:fleet"), {"q": "pric"}).context["models"]] == ["pricing"]
    assert [m.name for m in c.get(reverse("monitoring:fleet"), {"owner": "stranger"}).context["models"]] == ["pricing"]
    assert [m.name for m in c.get(reverse("monitoring:fleet"), {"ordering": "name"}).context["models"]] == [
        "fraud",
        "pricing",
    ]
    assert [m.name for m in c.get(reverse("monitoring:fleet"), {"ordering": "-name"}).context["models"]] == [
        "pricing",
        "fraud",
    ]
    assert [m.name for m in c.get(reverse("monitoring:fleet"), {"ordering": "-alerts"}).context["models"]][0] == "fraud"


def test_fleet_orders_risk_as_the_inventory_does_high_risk_highest(client_for, admin_user, owner, team):
    for name, tier in [("m-low", "low"), ("m-high", "high"), ("m-medium", "medium")]:
        RegisteredModelFactory(name=name, owner=owner, team=team, risk_tier=tier)
    c = client_for(admin_user)
    fleet = [m.name for m in c.get(reverse("monitoring:fleet"), {"ordering": "-risk"}).context["models"]]
    inventory = [m.name for m in model_list(user=admin_user, filters={"ordering": "-risk"})]
    assert fleet == inventory == ["m-high", "m-medium", "m-low"]
    ascending = [m.name for m in c.get(reverse("monitoring:fleet"), {"ordering": "risk"}).context["models"]]
    assert ascending == ["m-low", "m-medium", "m-high"]


def test_fleet_page_offers_the_filtersets_choices(client_for, owner, seeded):
    html = client_for(owner).get(reverse("monitoring:fleet"), {"ordering": "-risk", "health": "critical"}).content
    assert b'<option value="-risk" selected>' in html and b'<option value="critical" selected>' in html


@pytest.mark.parametrize(
    "params", [{"health": "purple"}, {"ordering": "drop table"}, {"risk_tier": "extreme"}, {"team": "not a slug!"}]
)
def test_fleet_rejects_bad_filters_with_a_form_error(client_for, owner, params):
    assert_form_error(client_for(owner).get(reverse("monitoring:fleet"), params), *params)
    fragment = client_for(owner).get(reverse("monitoring:fleet_live"), params, HTTP_HX_REQUEST="true")
    assert fragment.status_code == 400 and fragment.json()["error"]["code"] == "invalid"


def test_fleet_live_fragment_refreshes_badges(client_for, owner, seeded):
    c = client_for(owner)
    HealthStatus.objects.filter(model=seeded).update(status=HealthState.OK)
    response = c.get(reverse("monitoring:fleet_live"), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="fleet-live"') and 'hx-trigger="every 30s"' in html
    assert 'data-health="ok"' in html and "<html" not in html


def test_fleet_rollup_reports_time_in_red_and_mean_times(client_for, admin_user, seeded):
    now = timezone.now()
    Alert.objects.filter(model=seeded).delete()
    # The second overlaps the first: red time is the union (10 h - 4 h + ...).
    for kind, opened, acknowledged, resolved in ((AlertKind.DRIFT, 10, 8, 4), (AlertKind.PERFORMANCE, 6, 5, 2)):
        AlertFactory(
            model=seeded,
            kind=kind,
            severity=AlertSeverity.CRITICAL,
            status=AlertStatus.RESOLVED,
            updated_at=now,
            opened_at=now - timedelta(hours=opened),
            acknowledged_at=now - timedelta(hours=acknowledged),
            resolved_at=now - timedelta(hours=resolved),
        )
    rollup = {r.tier: r for r in client_for(admin_user).get(reverse("monitoring:fleet")).context["rollup"]}
    high = rollup["high"]
    assert high.models == 1 and high.by_health["critical"] == 1
    assert high.red_hours == pytest.approx(8.0, abs=0.01)  # union of [-10h,-4h] and [-6h,-2h]
    assert high.mtta_hours == pytest.approx((2 + 1) / 2, abs=0.01)
    assert high.mttr_hours == pytest.approx((6 + 4) / 2, abs=0.01)


# --------------------------------------------------------------------------- model dashboard


def test_owner_sees_every_chart_of_the_model_dashboard(client_for, owner, seeded):
    response = client_for(owner).get(reverse("monitoring:model_dashboard", args=["fraud"]))
    assert response.status_code == 200
    figures = figures_of(response)
    assert set(figures) == set(CHART_IDS + COST_CHART_IDS)
    for chart_id in CHART_IDS:
        assert f'id="{chart_id}"' in response.content.decode()
        assert figures[chart_id]["data"], f"{chart_id} has no traces"
    heat = figures["chart-drift-heatmap"]["data"][0]
    assert heat["type"] == "heatmap"
    assert heat["y"] == ["feature_00", "feature_01", "feature_02", "feature_03"]
    assert len(heat["x"]) == 72  # 3 days of hourly windows, default range 7 d
    assert "PSI" in heat["hovertemplate"] and "p-value" in heat["hovertemplate"]
    # markers: the promotion of v2 (day 1) and the alerts, on every time axis
    shapes = figures["chart-performance"]["layout"]["shapes"]
    assert any(s.get("name") == "marker-promotion" for s in shapes)
    assert any(s.get("name") == "marker-alert" for s in figures["chart-drift-heatmap"]["layout"]["shapes"])
    # provisional windows are a separate trace
    names = [t["name"] for t in figures["chart-performance"]["data"]]
    assert "roc_auc" in names and "roc_auc (provisional)" in names and "label coverage" in names
    # thresholds drawn as lines
    share_shapes = figures["chart-drift-share"]["layout"]["shapes"]
    assert {s["name"] for s in share_shapes} >= {"warning 20%", "critical 50%"}


def test_dashboard_range_picker_changes_the_windows(client_for, owner, seeded):
    c = client_for(owner)
    url = reverse("monitoring:model_dashboard", args=["fraud"])
    day = figures_of(c.get(url, {"range": "24h"}))["chart-drift-heatmap"]["data"][0]
    assert len(day["x"]) == 24
    daily = figures_of(c.get(url, {"range": "30d"}))["chart-drift-heatmap"]["data"][0]
    assert len(daily["x"]) == 3  # three stored daily windows
    hourly_forced = c.get(url, {"range": "30d", "granularity": "hourly"})
    assert hourly_forced.context["query"].granularity == "daily"
    assert "14 days" in hourly_forced.context["query"].notice
    now = timezone.now()
    custom = c.get(
        url,
        {
            "range": "custom",
            "start": (now - timedelta(hours=36)).strftime("%Y-%m-%dT%H:%M"),
            "end": (now - timedelta(hours=12)).strftime("%Y-%m-%dT%H:%M"),
            "granularity": "hourly",
        },
    )
    assert custom.status_code == 200
    assert 23 <= len(figures_of(custom)["chart-drift-heatmap"]["data"][0]["x"]) <= 25


def test_dashboard_daily_view_rolls_hourly_windows_up_when_no_daily_windows_exist(client_for, owner, team):
    seed_dashboard(name="hourly-only", days=3, features=2, owner=owner, team=team, daily=False)
    response = client_for(owner).get(reverse("monitoring:model_dashboard", args=["hourly-only"]), {"range": "30d"})
    assert response.status_code == 200
    assert response.context["d"].source == "rollup"
    fig = figures_of(response)
    assert 3 <= len(fig["chart-drift-heatmap"]["data"][0]["x"]) <= 4  # calendar days touched
    volume = response.context["d"].series["volume"]
    assert volume.sum() > 24 * 800 * 2  # daily volume is the sum of the hours


def test_dashboard_htmx_request_returns_only_the_charts(client_for, owner, seeded):
    response = client_for(owner).get(
        reverse("monitoring:model_dashboard", args=["fraud"]),
        {"range": "24h"},
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="dashboard-charts",
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<section id="dashboard-charts"') and "<html" not in html
    assert '<script id="figures" type="application/json">' in html


def test_feature_distribution_compares_reference_and_current_bins(client_for, owner, seeded):
    response = client_for(owner).get(
        reverse("monitoring:model_dashboard", args=["fraud"]), {"feature": "feature_02", "range": "24h"}
    )
    d = response.context["d"]
    assert d.feature == "feature_02"
    assert len(d.reference_labels) == 10 and len(d.reference_counts) == 10
    assert sum(d.current_counts) == 24 * 1000  # 24 hourly windows x 1000 rows, on the same bins
    fig = figures_of(response)["chart-feature-distribution"]
    assert [t["name"] for t in fig["data"]] == ["reference", "selected range"]


@pytest.mark.parametrize("role", ["owner", "reviewer", "auditor", "admin"])
def test_roles_that_may_see_the_model_get_its_dashboard(client_for, roles, role, seeded):
    assert client_for(roles[role]).get(reverse("monitoring:model_dashboard", args=["fraud"])).status_code == 200


def test_outsider_gets_404_for_a_model_dashboard(client_for, outsider, seeded):
    response = client_for(outsider).get(reverse("monitoring:model_dashboard", args=["fraud"]))
    assert response.status_code == 404
    assert b"feature_00" not in response.content


def test_team_member_who_is_not_the_owner_sees_the_dashboard(client_for, team, seeded):
    colleague = UserFactory(username="colleague")
    team.members.add(colleague)
    assert client_for(colleague).get(reverse("monitoring:model_dashboard", args=["fraud"])).status_code == 200


def test_dashboard_of_a_model_without_data_draws_empty_charts(client_for, owner, churn_v1):
    response = client_for(owner).get(reverse("monitoring:model_dashboard", args=["churn"]))
    assert response.status_code == 200
    figures = figures_of(response)
    assert set(figures) == set(CHART_IDS + COST_CHART_IDS)
    # the version has no reference profile yet: the drift charts say what they need first
    assert "No reference profile for this version" in json.dumps(figures["chart-drift-heatmap"]["layout"])
    assert "No computed windows" in json.dumps(figures["chart-volume-quality"]["layout"])


def test_a_version_without_reference_profile_is_named_instead_of_no_predictions(client_for, owner, seeded):
    """Volume drawn but "No predictions in this range yet" under the prediction distribution: the
    version had no reference profile to bin against, and the page did not say so."""
    url = reverse("monitoring:model_dashboard", args=["fraud"])
    with_profile = client_for(owner).get(url, {"range": "7d"})
    assert 'id="reference-missing"' not in with_profile.content.decode()
    assert figures_of(with_profile)["chart-prediction-distribution"]["data"]
    ReferenceProfile.objects.filter(version__model__name="fraud").delete()
    without = client_for(owner).get(url, {"range": "7d"})
    notice = re.search(r'<p id="reference-missing"[^>]*>(.*?)</p>', without.content.decode(), re.S).group(1)
    assert "has no reference profile" in notice and "/reference/" in notice, notice
    for chart in ("chart-drift-heatmap", "chart-top-drifted", "chart-drift-share", "chart-prediction-distribution"):
        layout = json.dumps(figures_of(without)[chart]["layout"])
        assert "No reference profile for this version" in layout, chart
        assert "No predictions in this range" not in layout and "No computed windows" not in layout, chart
    assert figures_of(without)["chart-volume-quality"]["data"]


@pytest.mark.parametrize(
    "params",
    [
        {"range": "1y"},
        {"granularity": "minutely"},
        {"range": "custom"},
        {"range": "custom", "start": "2026-01-02T00:00", "end": "2026-01-01T00:00"},
        {"range": "custom", "start": "2020-01-01T00:00", "end": "2026-01-01T00:00"},
        {"range": "custom", "start": "yesterday", "end": "today"},
        {"version": "0"},
        {"version": "abc"},
        {"version": "99"},  # no such version: it drew nothing and said "no versions yet"
        {"version": "99", "range": "1y"},
    ],
)
def test_dashboard_rejects_bad_range_parameters_with_a_form_error(client_for, owner, seeded, params):
    url = reverse("monitoring:model_dashboard", args=["fraud"])
    assert_form_error(client_for(owner).get(url, params))
    fragment = client_for(owner).get(url, params, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="dashboard-charts")
    assert fragment.status_code == 400 and fragment.json()["error"]["code"] == "invalid"


@pytest.mark.parametrize(
    "start,end",
    [
        ("0001-01-01T00:00:00+05:00", "0001-01-02T00:00:00+05:00"),
        ("9999-12-30T23:59:59-05:00", "9999-12-31T23:59:59-05:00"),
    ],
)
def test_dashboard_range_at_the_ends_of_the_calendar_is_a_form_error(client_for, owner, seeded, start, end):
    params = {"range": "custom", "start": start, "end": end}
    assert_form_error(client_for(owner).get(reverse("monitoring:model_dashboard", args=["fraud"]), params))


@pytest.mark.parametrize("offset", ["+16:00", "-23:59"])
def test_dashboard_range_with_an_extreme_offset_is_read_as_that_instant(client_for, owner, seeded, offset):
    now = timezone.now()
    start, end = (now - timedelta(days=2)).strftime("%Y-%m-%dT%H:00:00"), now.strftime("%Y-%m-%dT%H:00:00")
    params = {"range": "custom", "start": start + offset, "end": end + offset}
    response = client_for(owner).get(reverse("monitoring:model_dashboard", args=["fraud"]), params)
    assert response.status_code == 200
    assert response.context["query"].start.utcoffset() == timedelta(0)


def test_unknown_feature_falls_back_to_the_most_drifted_one(client_for, owner, seeded):
    response = client_for(owner).get(reverse("monitoring:model_dashboard", args=["fraud"]), {"feature": "nope"})
    assert response.status_code == 200
    assert response.context["d"].feature in {"feature_00", "feature_01", "feature_02"}


# --------------------------------------------------------------------------- query counts


def _count_queries(client, url, params=None) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, params or {})
    assert response.status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize(
    "page,params",
    [
        ("monitoring:fleet", {}),
        ("monitoring:alert_list", {}),
        ("monitoring:scorecard", {}),
        ("monitoring:model_dashboard", {}),
        ("monitoring:model_dashboard", {"range": "30d"}),
    ],
)
def test_pages_make_a_constant_number_of_queries(client_for, owner, team, page, params, django_assert_max_num_queries):
    c = client_for(owner)
    seed_dashboard(name="fraud", days=2, features=3, owner=owner, team=team)
    args = ["fraud"] if page == "monitoring:model_dashboard" else []
    url = reverse(page, args=args)
    small = _count_queries(c, url, params)
    seed_dashboard(name="fraud", days=6, features=3, owner=owner, team=team, seed=1)
    for i in range(5):
        seed_dashboard(name=f"fraud-{i}", days=1, features=2, owner=owner, team=team, daily=False)
    large = _count_queries(c, url, params)
    assert large == small
    with django_assert_max_num_queries(25):  # the dashboard: + the newest window with performance, + cost (3)
        c.get(url, params)


# --------------------------------------------------------------------------- which version is shown


def test_dashboard_shows_the_version_that_was_live_in_each_window(client_for, owner, churn):
    """v1 and v2 both report (v2 in shadow first); v2 is promoted half-way: the default view
    follows production, and ?version= pins one version."""
    from monitoring.choices import Metric
    from monitoring.models import MetricValue
    from registry.choices import Stage
    from registry.models import StageTransition
    from tests.factories import ModelVersionFactory

    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    v1 = ModelVersionFactory(model=churn, stage=Stage.ARCHIVED)
    v2 = ModelVersionFactory(model=churn, stage=Stage.PRODUCTION)
    windows = [now - timedelta(hours=h) for h in range(10, 0, -1)]
    promoted_at = windows[5] - timedelta(minutes=30)
    for version, when in ((v1, now - timedelta(days=3)), (v2, promoted_at)):
        t = StageTransition.objects.create(
            version=version, model=churn, from_stage=Stage.STAGING, to_stage=Stage.PRODUCTION, actor=owner
        )
        StageTransition.objects.filter(pk=t.pk).update(created_at=when)
    rows = []
    for version, psi in ((v1, 0.01), (v2, 0.3)):
        for w in windows:
            rows.append(metric_row(version, w, Metric.PSI, psi, feature="age", computed_at=now))
            rows.append(metric_row(version, w, Metric.VOLUME, 100 * version.version, computed_at=now))
    MetricValue.objects.bulk_create(rows)

    c = client_for(owner)
    url = reverse("monitoring:model_dashboard", args=["churn"])
    d = c.get(url, {"range": "24h"}).context["d"]
    assert len(d.windows) == 10
    np.testing.assert_allclose(d.drift.psi[0], [0.01] * 5 + [0.3] * 5)
    np.testing.assert_allclose(d.series["volume"], [100] * 5 + [200] * 5)
    assert [m.kind for m in d.markers] == ["promotion"]
    pinned = c.get(url, {"range": "24h", "version": "1"}).context["d"]
    np.testing.assert_allclose(pinned.drift.psi[0], [0.01] * 10)
    assert pinned.current_version == v1


def test_the_dashboard_shows_windows_that_failed_for_a_data_reason(client_for, owner, seeded):
    from monitoring.choices import Granularity
    from monitoring.models import WindowFailure

    version = seeded.versions.order_by("-version").first()
    start = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=5)
    WindowFailure.objects.create(
        version=version,
        window_start=start,
        granularity=Granularity.HOURLY,
        reason="OverflowError: date value out of range",
        failed_at=timezone.now(),
    )
    page = client_for(owner).get(reverse("monitoring:model_dashboard", args=["fraud"])).content.decode()
    assert 'id="window-failures"' in page
    assert "1 window could not be computed" in page
    assert "OverflowError: date value out of range" in page


def test_the_dashboard_shows_no_failure_panel_when_every_window_computed(client_for, owner, seeded):
    page = client_for(owner).get(reverse("monitoring:model_dashboard", args=["fraud"])).content.decode()
    assert 'id="window-failures"' not in page


@pytest.mark.parametrize(
    "path",
    [
        "/monitoring/fleet/",
        "/monitoring/fleet/live/",
        "/monitoring/models/fraud/",
        "/monitoring/alerts/",
        "/monitoring/scorecard/",
        "/monitoring/privacy/",
    ],
)
def test_a_post_to_a_read_only_monitoring_page_is_a_405(client_for, admin_user, seeded, path, last_seq):
    # POST /monitoring/fleet/ answered 200 with the page
    client = client_for(admin_user)
    seq = last_seq()
    response = client.post(path, {"name": "x"})
    assert response.status_code == 405 and response["Allow"] == "GET"
    assert last_seq() == seq
    assert client.get(path).status_code == 200
