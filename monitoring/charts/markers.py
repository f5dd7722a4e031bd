"""Marker labels that can be read: events close together on the time axis share one label.

Every promotion, rollback and alert keeps its own vertical line, but the labels at the top of
the plot are laid out so they never overlap: markers closer together than ``CLOSE`` of the
plotted span form one group, labelled "3 events" with a hover that lists each event in time
order. Groups are then stacked in up to ``ROWS`` rows above the plot; a group whose label fits
in no row is merged into the group before it. Label widths are estimated from their length at
the marker font size against ``PLOT_PX``, the plot width of the narrowest (half-width) chart,
so the layout holds on every chart of the dashboard.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime

from ..selectors.dashboard import Marker

CLOSE = 0.03  # markers nearer than this share of the plotted span are one event group
ROWS = 2  # label rows above the plot
ROW_PX = 15  # height of one label row (font size 10)
PLOT_PX = 340  # plot width the layout is computed for: the half-width charts', a lower bound
CHAR_PX = 6.5  # width of one character at font size 10, generous for system-ui
PAD_PX = 10  # gap kept between two labels of one row
# which colour a mixed group takes: the most serious kind it holds
SEVERITY = ("alert", "rollback", "acknowledged", "promotion")


@dataclasses.dataclass(frozen=True)
class MarkerGroup:
    """Markers drawn under one label; ``row`` 0 sits on the plot, higher rows above it;
    ``anchor`` is the side of the label at the group's first marker ("left" or "right")."""

    markers: tuple[Marker, ...]
    row: int = 0
    anchor: str = "left"

    @property
    def at(self) -> datetime:
        return self.markers[0].at

    @property
    def kind(self) -> str:
        kinds = {m.kind for m in self.markers}
        return next((k for k in SEVERITY if k in kinds), self.markers[0].kind)

    @property
    def label(self) -> str:
        return self.markers[0].label if len(self.markers) == 1 else f"{len(self.markers)} events"

    @property
    def hovertext(self) -> str:
        lines = [f"{m.kind}: {m.label} at {m.at:%Y-%m-%d %H:%M} UTC" for m in self.markers]
        if len(self.markers) == 1:
            return lines[0]
        summary = f"{len(self.markers)} events: " + ", ".join(m.label for m in self.markers)
        return "<br>".join([summary, *lines])


def time_span(windows: Sequence[datetime], markers: Sequence[Marker]) -> tuple[datetime, datetime] | None:
    """The plotted time range: the windows' and the markers' (the axis autoranges over both)."""
    times = [*windows, *(m.at for m in markers)]
    return (min(times), max(times)) if times else None


def _position(at: datetime, span: tuple[datetime, datetime]) -> float:
    """Where ``at`` falls in the span, 0 (left edge) to 1 (right edge)."""
    lo, hi = span
    width = (hi - lo).total_seconds()
    return (at - lo).total_seconds() / width if width > 0 else 0.0


def _clusters(markers: Sequence[Marker], span: tuple[datetime, datetime], close: float) -> list[list[Marker]]:
    """Markers in time order, a new cluster wherever the gap to the previous one is ``close`` or more."""
    inside = sorted((m for m in markers if span[0] <= m.at <= span[1]), key=lambda m: m.at)
    clusters: list[list[Marker]] = []
    for m in inside:
        if clusters and _position(m.at, span) - _position(clusters[-1][-1].at, span) < close:
            clusters[-1].append(m)
        else:
            clusters.append([m])
    return clusters


def _extent(group: MarkerGroup, span: tuple[datetime, datetime], plot_px: float) -> tuple[float, float, str]:
    """The label's left and right edge in pixels, and its anchor: left of the line when it
    would run past the plot's right edge."""
    x = _position(group.at, span) * plot_px
    width = len(group.label) * CHAR_PX
    if x + width > plot_px and x - width >= 0:
        return x - width, x, "right"
    return x, x + width, "left"


def _place(clusters: list[list[Marker]], span, plot_px: float, rows: int) -> list[MarkerGroup] | int:
    """Groups with a row each, or the index of the first cluster that fits in no row."""
    row_ends = [float("-inf")] * rows
    placed = []
    for i, cluster in enumerate(clusters):
        group = MarkerGroup(tuple(cluster))
        left, right, anchor = _extent(group, span, plot_px)
        row = next((r for r, end in enumerate(row_ends) if end + PAD_PX <= left), None)
        if row is None:
            return i
        row_ends[row] = right
        placed.append(dataclasses.replace(group, row=row, anchor=anchor))
    return placed


def group_markers(
    markers: Sequence[Marker],
    span: tuple[datetime, datetime] | None,
    *,
    close: float = CLOSE,
    plot_px: float = PLOT_PX,
    rows: int = ROWS,
) -> list[MarkerGroup]:
    """The markers inside ``span`` as labelled groups whose labels do not overlap (in time order;
    markers outside the span are not drawn)."""
    if span is None:
        return []
    clusters = _clusters(markers, span, close)
    while True:
        placed = _place(clusters, span, plot_px, rows)
        if isinstance(placed, list):
            return placed
        clusters[placed - 1 : placed + 1] = [clusters[placed - 1] + clusters[placed]]
