"""Monitoring reads, already restricted to what the user may see
(``RegisteredModel.objects.visible_to(user)``, the one permission filter for models).

- ``metrics``: metric series, stored health, retrain triggers (the API);
- ``alerts``: the alert list shared by the page and the API;
- ``fleet``: the fleet overview and its portfolio roll-up;
- ``dashboard``: the per-model dashboard, assembled from ``dashboard_scope`` (the model and
  its metric rows as ``series`` on one window axis) and ``dashboard_charts`` (one read per
  chart; distributions from ``bins``: stored bin counts and reference profiles).
"""

from .alerts import alert_get, alert_list, alert_page_list, alert_recently_resolved
from .bins import WindowCounts, window_bin_counts
from .fleet import TierRollup, fleet_health_counts, fleet_models, fleet_rollup
from .metrics import health_get, metric_series, retrain_trigger_list

__all__ = [
    "TierRollup",
    "WindowCounts",
    "alert_get",
    "alert_list",
    "alert_page_list",
    "alert_recently_resolved",
    "fleet_health_counts",
    "fleet_models",
    "fleet_rollup",
    "health_get",
    "metric_series",
    "retrain_trigger_list",
    "window_bin_counts",
]
