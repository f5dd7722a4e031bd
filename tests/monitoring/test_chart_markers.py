"""Marker labels on the time axes: markers close together share one label whose hover lists
every event, and the labels of one chart never overlap (estimated at the narrowest plot width)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from monitoring import charts
from monitoring.charts.markers import CHAR_PX, PAD_PX, PLOT_PX, MarkerGroup, group_markers, time_span
from monitoring.selectors.dashboard import Marker

T0 = datetime(2026, 11, 1, tzinfo=UTC)
SPAN = (T0, T0 + timedelta(days=5))  # 5 days: 3% is 3.6 hours


def promotion(hours: float, version: int = 2) -> Marker:
    return Marker(at=T0 + timedelta(hours=hours), kind="promotion", label=f"v{version} → production")


def alert(hours: float, label: str = "critical performance") -> Marker:
    return Marker(at=T0 + timedelta(hours=hours), kind="alert", label=label)


def extents(groups: list[MarkerGroup], span=SPAN, plot_px=PLOT_PX) -> list[tuple[int, float, float]]:
    """(row, left px, right px) of every label, as the layout estimates them."""
    width = (span[1] - span[0]).total_seconds()
    out = []
    for g in groups:
        x = (g.at - span[0]).total_seconds() / width * plot_px
        w = len(g.label) * CHAR_PX
        out.append((g.row, x - w, x) if g.anchor == "right" else (g.row, x, x + w))
    return out


def assert_no_overlap(groups: list[MarkerGroup]) -> None:
    boxes = extents(groups)
    for i, (row, left, right) in enumerate(boxes):
        for other_row, other_left, other_right in boxes[i + 1 :]:
            if row == other_row:
                assert right + PAD_PX <= other_left or other_right + PAD_PX <= left, boxes


def test_no_markers_or_no_span_give_no_groups():
    assert group_markers([], SPAN) == []
    assert group_markers([promotion(1)], None) == []
    assert time_span([], []) is None


def test_one_marker_is_its_own_group_with_its_label_and_hover():
    [group] = group_markers([promotion(30)], SPAN)
    assert group.label == "v2 → production" and group.kind == "promotion" and group.row == 0
    assert group.anchor == "left"
    assert group.hovertext == "promotion: v2 → production at 2026-11-02 06:00 UTC"


def test_markers_at_the_same_moment_share_one_label_that_lists_each_event_in_order():
    markers = [alert(40, "critical drift"), promotion(40), alert(40, "warning volume")]
    [group] = group_markers(markers, SPAN)
    assert group.label == "3 events"
    assert group.hovertext.startswith("3 events: critical drift, v2 → production, warning volume<br>")
    assert group.hovertext.count("<br>") == 3  # the summary, then one line per event
    assert group.kind == "alert"  # a mixed group takes the colour of its most serious kind


def test_two_clusters_far_apart_make_two_groups_in_time_order():
    markers = [alert(100), promotion(10), alert(11, "warning drift"), promotion(101, 3)]
    groups = group_markers(markers, SPAN)
    assert [g.label for g in groups] == ["2 events", "2 events"]
    assert [[m.label for m in g.markers] for g in groups] == [
        ["v2 → production", "warning drift"],
        ["critical performance", "v3 → production"],
    ]
    assert groups[0].kind == groups[1].kind == "alert"
    assert_no_overlap(groups)


def test_markers_outside_the_span_are_not_drawn():
    groups = group_markers([promotion(-5), promotion(60), alert(200)], SPAN)
    assert [[m.at for m in g.markers] for g in groups] == [[T0 + timedelta(hours=60)]]


def test_time_span_covers_the_windows_and_the_markers():
    windows = [T0 + timedelta(hours=h) for h in range(24)]
    assert time_span(windows, []) == (windows[0], windows[-1])
    assert time_span(windows, [promotion(30)]) == (T0, T0 + timedelta(hours=30))
    assert time_span([], [promotion(3), alert(1)]) == (T0 + timedelta(hours=1), T0 + timedelta(hours=3))


def test_nearby_labels_that_would_touch_are_staggered_into_rows():
    # 10 hours apart is past the grouping distance, but closer than a label's width
    groups = group_markers([promotion(0), alert(10)], SPAN)
    assert [len(g.markers) for g in groups] == [1, 1]
    assert [g.row for g in groups] == [0, 1]
    assert_no_overlap(groups)


def test_a_label_that_fits_no_row_joins_the_group_before_it():
    groups = group_markers([promotion(0), alert(10), alert(20, "warning drift")], SPAN)
    assert [[m.label for m in g.markers] for g in groups] == [
        ["v2 → production"],
        ["critical performance", "warning drift"],
    ]
    assert_no_overlap(groups)


def test_labels_at_the_right_edge_open_to_the_left():
    [group] = group_markers([promotion(120)], SPAN)
    assert group.anchor == "right"


def test_many_events_across_the_range_never_overlap_and_none_is_lost():
    rng = np.random.default_rng(7)
    hours = sorted(rng.uniform(0, 120, size=40))
    markers = [alert(h) if i % 3 else promotion(h, i) for i, h in enumerate(hours)]
    groups = group_markers(markers, SPAN)
    assert sum(len(g.markers) for g in groups) == 40
    assert all(g.row in (0, 1) for g in groups)
    assert_no_overlap(groups)


def test_all_events_at_the_right_edge_become_one_label_on_the_chart():
    windows = [T0 + timedelta(hours=h) for h in range(120)]
    markers = [promotion(119.5, 3), alert(119.6), alert(119.7, "warning drift"), promotion(119.8, 4)]
    fig = charts.drift_share_over_time(windows=windows, share=np.zeros(120), warning=0.2, critical=0.5, markers=markers)
    labels = [a for a in fig["layout"]["annotations"] if a["name"].startswith("marker-label")]
    assert len(labels) == 1
    assert labels[0]["text"] == "4 events" and labels[0]["xanchor"] == "right"
    assert labels[0]["hovertext"].startswith(
        "4 events: v3 → production, critical performance, warning drift, v4 → production"
    )
    assert labels[0]["font"]["color"] == charts.CRITICAL
    lines = [s for s in fig["layout"]["shapes"] if s["name"].startswith("marker-")]
    assert len(lines) == 4  # every event keeps its own line


def test_the_fairness_chart_labels_its_markers_like_the_other_time_axes():
    from monitoring.fairness_charts import group_rates_over_time

    xs = [T0 + timedelta(hours=h) for h in range(120)]
    markers = [promotion(119, 3), alert(119.5, "warning fairness")]
    fig = group_rates_over_time({"sex=F": (xs, [0.5] * 120), "sex": (xs, [0.9] * 120)}, threshold=0.8, markers=markers)
    labels = [a for a in fig["layout"]["annotations"] if a.get("name", "").startswith("marker-label")]
    assert [a["text"] for a in labels] == ["2 events"]
    assert labels[0]["hovertext"].startswith("2 events: v3 → production, warning fairness")
    assert len([s for s in fig["layout"]["shapes"] if s.get("name", "").startswith("marker-")]) == 2
