"""Registry pages (namespace ``registry``). Each area's views live in its own module."""

from django.urls import path

from .views import audit, inventory, onboarding, promotions, tokens

app_name = "registry"
urlpatterns = [
    # inventory
    path("", inventory.home, name="home"),
    path("models/", inventory.model_list_view, name="model_list"),
    path("models/new/", inventory.model_create_view, name="model_create"),
    path("models/<str:name>/", inventory.model_detail, name="model_detail"),
    path("models/<str:name>/edit/", inventory.model_edit, name="model_edit"),
    path("models/<str:name>/connect/", onboarding.model_connect, name="model_connect"),
    path("models/<str:name>/versions/new/", inventory.version_create_view, name="version_create"),
    path("models/<str:name>/versions/<int:version>/", inventory.version_detail, name="version_detail"),
    path("models/<str:name>/versions/<int:version>/edit/", inventory.version_edit, name="version_edit"),
    # tokens
    path("tokens/", tokens.token_list, name="token_list"),
    path("tokens/<int:pk>/revoke/", tokens.token_revoke_view, name="token_revoke"),
    # promotions
    path("reviews/", promotions.review_queue, name="review_queue"),
    path(
        "models/<str:name>/versions/<int:version>/promote/", promotions.promotion_create_view, name="promotion_create"
    ),
    path("promotions/<int:pk>/", promotions.promotion_detail, name="promotion_detail"),
    path("promotions/<int:pk>/approve/", promotions.promotion_approve_view, name="promotion_approve"),
    path("promotions/<int:pk>/reject/", promotions.promotion_reject_view, name="promotion_reject"),
    path("promotions/<int:pk>/cancel/", promotions.promotion_cancel_view, name="promotion_cancel"),
    path("models/<str:name>/timeline/", promotions.model_timeline, name="model_timeline"),
    path("models/<str:name>/rollback/", promotions.model_rollback_view, name="model_rollback"),
    # audit
    path("audit/", audit.audit_log, name="audit_log"),
    path("audit/export/", audit.audit_export_view, name="audit_export"),
    path("models/<str:name>/history/", audit.model_history, name="model_history"),
    path("inventory/as-of/", audit.as_of_view, name="as_of"),
    path("models/<str:name>/report/", audit.compliance_report, name="compliance_report"),
    path("models/<str:name>/report.pdf", audit.compliance_report_pdf, name="compliance_report_pdf"),
]
