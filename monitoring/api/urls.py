"""Monitoring API routes under /api/v1/ (namespace ``monitoring_api``)."""

from django.urls import include, path

from . import costs, evaluations, llm, retention, views

urlpatterns = [
    path(
        "models/<str:name>/versions/<int:version>/predictions/",
        views.PredictionIngestView.as_view(),
        name="predictions",
    ),
    path(
        "models/<str:name>/versions/<int:version>/reference/",
        views.ReferenceUploadView.as_view(),
        name="reference",
    ),
    path(
        "models/<str:name>/versions/<int:version>/evaluations/",
        evaluations.EvaluationUploadView.as_view(),
        name="evaluations",
    ),
    path("models/<str:name>/versions/<int:version>/fairness/", evaluations.FairnessView.as_view(), name="fairness"),
    path(
        "models/<str:name>/versions/<int:version>/requests/",
        llm.LLMRequestIngestView.as_view(),
        name="llm-requests",
    ),
    path("prices/", llm.PriceListView.as_view(), name="prices"),
    path("models/<str:name>/ground-truth/", views.LabelIngestView.as_view(), name="ground-truth"),
    path("models/<str:name>/metrics/", views.MetricListView.as_view(), name="metrics"),
    path("models/<str:name>/health/", views.HealthView.as_view(), name="health"),
    path("models/<str:name>/monitoring/", views.MonitoringConfigView.as_view(), name="config"),
    path("models/<str:name>/retrain-triggers/", views.RetrainTriggerListView.as_view(), name="retrain-triggers"),
    path("models/<str:name>/costs/", costs.CostListView.as_view(), name="costs"),
    path("models/<str:name>/budget/", costs.BudgetView.as_view(), name="budget"),
    path("models/<str:name>/retention/", retention.RetentionView.as_view(), name="retention"),
    path("erasure-requests/", retention.ErasureRequestListView.as_view(), name="erasure-requests"),
    path("erasure-requests/<int:pk>/", retention.ErasureRequestDetailView.as_view(), name="erasure-request"),
    path("records-of-processing/", retention.RecordsOfProcessingView.as_view(), name="records-of-processing"),
    path("alerts/", views.AlertListView.as_view(), name="alerts"),
    path("alerts/<int:pk>/acknowledge/", views.AlertAcknowledgeView.as_view(), name="alert-acknowledge"),
    path("", include("monitoring.oversight.api_urls")),  # incidents, plans, reviews, findings
]
