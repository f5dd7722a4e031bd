"""Monitoring pages (namespace ``monitoring``): fleet overview, model dashboard, alerts, scorecard."""

from django.urls import include, path

from . import views, views_privacy

app_name = "monitoring"
urlpatterns = [
    path("fleet/", views.fleet_overview, name="fleet"),
    path("fleet/live/", views.fleet_live, name="fleet_live"),
    path("models/<str:name>/", views.model_dashboard, name="model_dashboard"),
    path("models/<str:name>/batches-since/", views.batches_since_check, name="batches_since"),
    path("alerts/", views.alert_list, name="alert_list"),
    path("alerts/<int:pk>/acknowledge/", views.alert_acknowledge_view, name="alert_acknowledge"),
    path("scorecard/", views.scorecard, name="scorecard"),
    path("privacy/", views_privacy.privacy_overview, name="privacy"),
    path("privacy/erasure/", views_privacy.erasure_request_view, name="erasure_request"),
    path("privacy/retention/<str:name>/", views_privacy.retention_update_view, name="retention_update"),
    path("", include("monitoring.oversight.urls")),  # incidents, plans, reviews, findings
]
