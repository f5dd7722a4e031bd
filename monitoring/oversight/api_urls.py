"""Oversight API routes, included by ``monitoring.api.urls`` (namespace ``monitoring_api``)."""

from django.urls import path

from . import api

urlpatterns = [
    path("incidents/", api.IncidentListView.as_view(), name="incidents"),
    path("incidents/<int:pk>/", api.IncidentDetailView.as_view(), name="incident"),
    path("incidents/<int:pk>/note/", api.IncidentNoteView.as_view(), name="incident-note"),
    path("incidents/<int:pk>/suspend/", api.IncidentSuspendView.as_view(), name="incident-suspend"),
    path("incidents/<int:pk>/report/", api.IncidentReportView.as_view(), name="incident-report"),
    path("incidents/<int:pk>/resolve/", api.IncidentResolveView.as_view(), name="incident-resolve"),
    path("incidents/<int:pk>/close/", api.IncidentCloseView.as_view(), name="incident-close"),
    path("models/<str:name>/monitoring-plan/", api.MonitoringPlanView.as_view(), name="monitoring-plan"),
    path("models/<str:name>/reviews/", api.ReviewListView.as_view(), name="reviews"),
    path("models/<str:name>/findings/", api.FindingListView.as_view(), name="findings"),
    path("reviews/<int:pk>/attest/", api.ReviewAttestView.as_view(), name="review-attest"),
    path("reviews/<int:pk>/validate/", api.ReviewValidateView.as_view(), name="review-validate"),
    path("findings/<int:pk>/remediate/", api.FindingRemediateView.as_view(), name="finding-remediate"),
    path("findings/<int:pk>/retest/", api.FindingRetestView.as_view(), name="finding-retest"),
]
