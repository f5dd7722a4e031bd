"""Marker labels in real Chromium: promotions, a rollback and alerts a few hours apart at the
right edge of the range are drawn with labels whose bounding boxes never overlap, and the
combined label's hover lists every event."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring.choices import AlertKind, AlertSeverity, AlertStatus, Granularity
from monitoring.fairness_charts import CHART_ID
from monitoring.fairness_monitoring import DI, PREFIX
from monitoring.management.commands.seed_dashboard_bench import seed_dashboard
from monitoring.models import Alert, MetricValue
from registry.models import ModelVersion, Stage, StageTransition
from tests.browser.conftest import login, screenshot
from tests.browser.test_dashboards import DASHBOARD_CHARTS, wait_for_charts

pytestmark = [pytest.mark.browser, pytest.mark.postgres]

# the charts with a time axis, and so with markers
TIME_AXIS_CHARTS = [
    *(c for c in DASHBOARD_CHARTS if c not in ("chart-top-drifted", "chart-feature-distribution")),
    CHART_ID,
]

# every .annotation group of the chart: its text, its hover text and its box on the page
ANNOTATION_BOXES = """(id) => Array.from(document.querySelectorAll('#' + id + ' .annotation')).map((el) => {
    const r = el.getBoundingClientRect();
    return {text: el.textContent, left: r.left, right: r.right, top: r.top, bottom: r.bottom};
})"""


def overlap(a: dict, b: dict) -> bool:
    return a["left"] < b["right"] and b["left"] < a["right"] and a["top"] < b["bottom"] and b["top"] < a["bottom"]


def transition(model, version, when, *, kind=StageTransition.Kind.PROMOTION, actor=None):
    t = StageTransition.objects.create(
        version=version, model=model, from_stage=Stage.STAGING, to_stage=Stage.PRODUCTION, kind=kind, actor=actor
    )
    StageTransition.objects.filter(pk=t.pk).update(created_at=when)


def fairness_figures(model, version, now):
    """Hourly selection rate of one group and the attribute's disparate impact (the fairness chart)."""
    hours = [now - timedelta(hours=h) for h in range(1, 5 * 24)]
    series = [("sex=F", PREFIX + "selection_rate", 0.4), ("sex", DI, 0.85)]
    one_hour = {"granularity": Granularity.HOURLY, "computed_at": now, "model": model, "version": version}
    MetricValue.objects.bulk_create(
        MetricValue(**one_hour, window_start=t, window_end=t + timedelta(hours=1), feature=f, metric=m, value=v)
        for t in hours
        for f, m, v in series
    )


def alert(model, kind, severity, when):
    Alert.objects.create(
        model=model,
        kind=kind,
        severity=severity,
        status=AlertStatus.OPEN,
        title=f"{severity} {kind} on {model.name}",
        reasons=[{"message": "synthetic"}],
        opened_at=when,
        updated_at=when,
    )


@pytest.fixture
def crowded(owner, team, reviewer):
    """The dashboard bench model with six events in the last six hours of its range."""
    model = seed_dashboard(name="fraud", days=5, features=8, owner=owner, team=team)
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    v2 = ModelVersion.objects.get(model=model, version=2)
    v3 = ModelVersion.objects.create(model=model, version=3, stage=Stage.STAGING, feature_schema=v2.feature_schema)
    transition(model, v3, now - timedelta(hours=6), actor=owner)
    alert(model, AlertKind.PREDICTION_DRIFT, AlertSeverity.CRITICAL, now - timedelta(hours=5))
    transition(model, v2, now - timedelta(hours=4), kind=StageTransition.Kind.ROLLBACK, actor=owner)
    alert(model, AlertKind.DATA_QUALITY, AlertSeverity.WARNING, now - timedelta(hours=3, minutes=30))
    transition(model, v3, now - timedelta(hours=2), actor=owner)
    alert(model, AlertKind.FAIRNESS, AlertSeverity.WARNING, now - timedelta(hours=1))
    fairness_figures(model, v2, now)
    return model


def test_marker_labels_do_not_overlap_and_the_combined_hover_lists_every_event(page, live_server, owner, crowded):
    login(page, live_server, owner)
    page.goto(live_server.url + "/monitoring/models/fraud/?range=7d")
    wait_for_charts(page, [*DASHBOARD_CHARTS, CHART_ID])
    expected = [
        "v3 → production",
        "critical prediction drift",
        "rollback → v2",
        "warning data quality",
        "warning fairness",
    ]
    for chart_id in TIME_AXIS_CHARTS:
        boxes = page.evaluate(ANNOTATION_BOXES, chart_id)
        for i, a in enumerate(boxes):
            assert a["right"] > a["left"] and a["bottom"] > a["top"], (chart_id, a)
            for b in boxes[i + 1 :]:
                assert not overlap(a, b), f"{chart_id}: {a['text']!r} overlaps {b['text']!r}"
        assert any("events" in b["text"] for b in boxes), (chart_id, boxes)
    screenshot(page, "dashboard_markers")

    # hovering the combined label shows one hover label that lists each event
    label = page.locator("#chart-drift-share .annotation", has_text="events").last
    label.hover()
    hover = page.locator("#chart-drift-share .hoverlayer .hovertext")
    hover.wait_for()
    text = hover.text_content()
    assert "events:" in text
    for event in expected:
        assert event in text, (event, text)
    assert text.count("v3 → production") >= 2  # both promotions of v3 are listed
