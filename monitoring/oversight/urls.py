"""Oversight pages, included by ``monitoring.urls`` (namespace ``monitoring``)."""

from django.urls import path

from . import views

urlpatterns = [
    path("incidents/", views.incident_list_view, name="incident_list"),
    path("incidents/new/", views.incident_open_view, name="incident_open"),
    path("incidents/<int:pk>/", views.incident_detail_view, name="incident_detail"),
    path("incidents/<int:pk>/report/<str:kind>.pdf", views.incident_report_pdf_view, name="incident_report_pdf"),
    path("incidents/<int:pk>/<str:action>/", views.object_action_view, {"kind": "incident"}, name="incident_action"),
    path("oversight/", views.oversight_overview, name="oversight"),
    path("oversight/badges/", views.oversight_badges_view, name="oversight_badges"),
    path("oversight/overdue/", views.oversight_overdue_view, name="oversight_overdue"),
    path("models/<str:name>/plan/", views.plan_view, name="plan"),
    path("models/<str:name>/oversight/", views.model_oversight_view, name="model_oversight"),
    path("models/<str:name>/oversight/<str:action>/", views.model_oversight_action, name="model_oversight_action"),
    path("models/<str:name>/post-market/", views.post_market_view, name="post_market"),
    path("reviews/<int:pk>/", views.review_detail_view, name="review_detail"),
    path("reviews/<int:pk>/<str:action>/", views.object_action_view, {"kind": "review"}, name="review_action"),
    path("findings/<int:pk>/", views.finding_detail_view, name="finding_detail"),
    path("findings/<int:pk>/<str:action>/", views.object_action_view, {"kind": "finding"}, name="finding_action"),
]
