"""Registry pages (namespace ``registry``)."""

from django.urls import path

from .views import inventory

app_name = "registry"
urlpatterns = [
    path("", inventory.home, name="home"),
    path("models/", inventory.model_list_view, name="model_list"),
    path("models/<str:name>/", inventory.model_detail, name="model_detail"),
    path("models/<str:name>/versions/<int:version>/", inventory.version_detail, name="version_detail"),
    path("promotions/<int:pk>/", inventory.placeholder, name="promotion_detail"),
]
