"""Plotly figures for the monitoring pages, built from selector data.

Every function takes plain data (lists, numpy arrays, datetimes) that the monitoring
selectors produce, and returns a figure as a plain dict (``{"data": [...], "layout": {...}}``,
the shape of plotly.js's ``Plotly.newPlot`` arguments). The view writes the figures into the
page with Django's ``json_script`` and ``FigureJSONEncoder``; ``static/js/charts.js`` draws
them. No HTML, no inline script (strict CSP).

The dict builder is ours, on purpose: plotly.py's ``graph_objects`` validate every property
as they are set, which cost more than the rest of a 90-day page's Python. The dicts use only
attributes of plotly.js's published schema, and ``tests/monitoring/test_charts.py`` passes
every figure through ``plotly.graph_objects.Figure`` (Plotly's public validators) and compares
the JSON with ``plotly.io.to_json``'s.

Numeric arrays stay numpy arrays until the encoder writes them as plotly.js typed arrays
(``{"dtype", "bdata", "shape"}``, base64; what plotly.py writes too): a 90-day hourly
heatmap of 50 features stays a few hundred kilobytes. Missing values are NaN in those arrays
(gaps in the chart).

Time axes carry the same vertical markers everywhere: promotions, rollbacks and
alerts (``Marker``), so a reader sees which version was live when a metric moved. Each
marker keeps its own line; their labels never overlap: markers close together share one
label ("3 events") whose hover lists every event, and labels are staggered in two rows
(``markers.group_markers``).
"""

from .base import CRITICAL, WARNING, FigureJSONEncoder, figures_json_script, typed_array
from .figures import (
    drift_heatmap,
    drift_share_over_time,
    feature_distribution,
    health_by_tier,
    performance_over_time,
    prediction_distribution,
    top_drifted_features,
    volume_and_quality,
)
from .pages import fleet_figures, model_dashboard_figures

__all__ = [
    "CRITICAL",
    "WARNING",
    "FigureJSONEncoder",
    "drift_heatmap",
    "drift_share_over_time",
    "feature_distribution",
    "figures_json_script",
    "fleet_figures",
    "health_by_tier",
    "model_dashboard_figures",
    "performance_over_time",
    "prediction_distribution",
    "top_drifted_features",
    "typed_array",
    "volume_and_quality",
]
