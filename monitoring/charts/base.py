"""Shared pieces of the monitoring figures: colours, the base layout, the figure and trace
builders, marker and threshold lines, and the JSON that carries figures into a page."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import datetime

import numpy as np
import plotly.graph_objects as go
from django.core.serializers.json import DjangoJSONEncoder
from django.utils.html import json_script

from ..selectors.dashboard import Marker
from .markers import ROW_PX, MarkerGroup, group_markers, time_span

OK = "#15803d"
WARNING = "#d97706"
CRITICAL = "#b91c1c"
NO_DATA = "#d1d5db"
BRAND = "#2f5bea"
MUTED = "#6b7280"

STATUS_CODES = {"ok": 0, "warning": 1, "critical": 2}
MARKER_COLOURS = {"promotion": OK, "rollback": "#7c3aed", "alert": CRITICAL, "acknowledged": WARNING}

BASE_LAYOUT = {
    "font": {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12, "color": "#1d2330"},
    "margin": {"l": 60, "r": 20, "t": 70, "b": 40},
    "paper_bgcolor": "#ffffff",
    "plot_bgcolor": "#ffffff",
    "hovermode": "closest",
    "legend": {"orientation": "h", "y": -0.18},
    "xaxis": {"automargin": True, "gridcolor": "#eef0f3"},
    "yaxis": {"automargin": True, "gridcolor": "#eef0f3", "zerolinecolor": "#d1d5db"},
}


def iso(values: Sequence[datetime]) -> list[str]:
    return [v.isoformat() for v in values]


def floats(values) -> np.ndarray:
    """A float64 array with None turned into NaN (a gap in the chart)."""
    return np.array(values, dtype="float64")  # numpy turns None into NaN


# The "Blues" scale as plotly.py expands a named colour scale (validated once, at import).
BLUES = go.Heatmap(colorscale="Blues").to_plotly_json()["colorscale"]


def trace(kind: str, **props) -> dict:
    """A trace dict of plotly.js type ``kind`` (validated in the tests, see the module doc)."""
    return {**props, "type": kind}


def line_trace(x: list[str], y: np.ndarray, *, name: str, colour: str, hover: str, width: float = 1.5, **props) -> dict:
    """A series over the time axis drawn as a line of ``colour`` (``props``: mode, axes, fill)."""
    props.setdefault("mode", "lines")
    line = {"color": colour, "width": width}
    return trace("scatter", x=x, y=y.astype("float64"), name=name, line=line, hovertemplate=hover, **props)


def figure(traces: Sequence[dict], *, title: str, height: int = 340, **layout) -> dict:
    """A figure dict: the traces and ``BASE_LAYOUT`` overlaid with ``layout`` (one level deep;
    empty lists, such as no shapes, are left out as plotly.py leaves them out)."""
    merged = {**BASE_LAYOUT, "title": {"text": title, "x": 0, "font": {"size": 14}}, "height": height}
    for key, value in layout.items():
        if isinstance(value, list) and not value:
            continue
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return {"data": list(traces), "layout": merged}


def marker_lines(
    markers: Sequence[Marker], *, windows: Sequence[datetime] = (), xref: str = "x"
) -> tuple[list[dict], list[dict]]:
    """Vertical lines across the whole plot height, one per marker, and labels at the top that
    never overlap: markers close together share one label listing them all in its hover
    (``markers.group_markers``). ``windows`` are the chart's time axis. (shapes, annotations)"""
    groups = group_markers(markers, time_span(windows, markers))
    shapes, annotations = [], []
    for group in groups:
        for m in group.markers:
            x = m.at.isoformat()
            shapes.append(
                {
                    "type": "line",
                    "xref": xref,
                    "yref": "paper",
                    "x0": x,
                    "x1": x,
                    "y0": 0,
                    "y1": 1,
                    "line": {
                        "color": MARKER_COLOURS.get(m.kind, MUTED),
                        "width": 1.5,
                        "dash": "dot" if m.kind == "alert" else "dash",
                    },
                    "name": f"marker-{m.kind}",
                }
            )
        annotations.append(marker_label(group, xref=xref))
    return shapes, annotations


def marker_label(group: MarkerGroup, *, xref: str = "x") -> dict:
    """The label of one marker group above the plot, in its row, with the events in its hover."""
    return {
        "x": group.at.isoformat(),
        "y": 1,
        "xref": xref,
        "yref": "paper",
        "yanchor": "bottom",
        "xanchor": group.anchor,
        "yshift": group.row * ROW_PX,
        "text": group.label,
        "showarrow": False,
        "font": {"size": 10, "color": MARKER_COLOURS.get(group.kind, MUTED)},
        "hovertext": group.hovertext,
        "name": f"marker-label-{len(group.markers)}",
    }


def two_rows(top: float = 0.7, gap: float = 0.06) -> dict:
    """Layout of two stacked plots sharing the time axis (what make_subplots would build)."""
    return {
        "xaxis": {"anchor": "y", "domain": [0, 1], "matches": "x2", "showticklabels": False},
        "xaxis2": {"anchor": "y2", "domain": [0, 1], "automargin": True, "gridcolor": "#eef0f3"},
        "yaxis": {"anchor": "x", "domain": [1 - top + gap / 2, 1]},
        "yaxis2": {"anchor": "x2", "domain": [0, 1 - top - gap / 2], "automargin": True, "gridcolor": "#eef0f3"},
    }


def threshold_line(y: float, *, colour: str, label: str, yref: str = "y") -> dict:
    return {
        "type": "line",
        "xref": "paper",
        "yref": yref,
        "x0": 0,
        "x1": 1,
        "y0": y,
        "y1": y,
        "line": {"color": colour, "width": 1, "dash": "dash"},
        "name": label,
        "label": {"text": label, "textposition": "end", "font": {"size": 10, "color": colour}},
    }


def warning_and_critical(warning: float | None, critical: float | None, *, label: str) -> list[dict]:
    """The warning and critical threshold lines (none for a threshold that is not set);
    ``label`` is formatted with ``kind`` and ``value``, e.g. ``"{kind} {value:.0%}"``."""
    levels = (("warning", warning, WARNING), ("critical", critical, CRITICAL))
    return [
        threshold_line(value, colour=colour, label=label.format(kind=kind, value=value))
        for kind, value, colour in levels
        if value is not None
    ]


def vertical_threshold(x: float, *, colour: str, label: str, row: int = 0) -> dict:
    """A vertical threshold line whose label sits above the plot area (never over a bar), right
    of the line; ``row`` lifts it one label height per step, so two close thresholds stack."""
    return {
        "type": "line",
        "xref": "x",
        "yref": "paper",
        "x0": x,
        "x1": x,
        "y0": 0,
        "y1": 1,
        "line": {"color": colour, "width": 1, "dash": "dash"},
        "name": label,
        "label": {
            "text": label,
            "textposition": "end",
            "textangle": 0,
            "xanchor": "left",
            "yanchor": "bottom",
            "padding": 3 + 14 * row,
            "font": {"size": 10, "color": colour},
        },
    }


def empty_figure(title: str, message: str) -> dict:
    """A blank chart that says why it is blank (no windows yet, no labels yet)."""
    return figure(
        [],
        title=title,
        height=220,
        xaxis={"visible": False},
        yaxis={"visible": False},
        annotations=[{"text": message, "showarrow": False, "font": {"size": 13, "color": MUTED}}],
    )


# --------------------------------------------------------------------------- JSON for the page

# numpy dtypes that plotly.js reads as typed arrays, by its short names
_TYPED_ARRAY_DTYPES = {
    "int8": "i1",
    "uint8": "u1",
    "int16": "i2",
    "uint16": "u2",
    "int32": "i4",
    "uint32": "u4",
    "float32": "f4",
    "float64": "f8",
}


def typed_array(values: np.ndarray) -> dict | list:
    """A numpy array as a plotly.js typed array (``{"dtype", "bdata", "shape"}``, base64 of the
    little-endian buffer), the form plotly.py writes too. 64-bit integers, which plotly.js does
    not read, become the narrowest integer type that holds them (as plotly.py does); other
    dtypes, and empty arrays, become plain lists."""
    if not values.size:
        return []
    if values.dtype == np.int64:
        lo, hi = values.min(), values.max()
        narrow = next(
            (t for t in (np.int8, np.int16, np.int32) if np.iinfo(t).min <= lo and hi <= np.iinfo(t).max), None
        )
        values = values.astype(narrow) if narrow else values
    short = _TYPED_ARRAY_DTYPES.get(str(values.dtype))
    if short is None:
        return values.tolist()
    little = np.ascontiguousarray(values, dtype=values.dtype.newbyteorder("<"))
    spec = {"dtype": short, "bdata": base64.b64encode(little).decode("ascii")}
    if values.ndim > 1:
        spec["shape"] = ", ".join(str(n) for n in values.shape)
    return spec


class FigureJSONEncoder(DjangoJSONEncoder):
    """Django's encoder (dates, decimals) plus numpy: arrays as typed arrays, scalars as numbers."""

    def default(self, o):
        if isinstance(o, np.ndarray):
            return typed_array(o)
        if isinstance(o, np.generic):
            return o.item()
        return super().default(o)


def figures_json_script(figures: dict[str, dict], element_id: str = "figures") -> str:
    """The figures in a ``<script type="application/json">`` tag (Django's ``json_script``)."""
    return json_script(figures, element_id, encoder=FigureJSONEncoder)
