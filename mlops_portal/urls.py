"""Root URLs: the browser UI, the admin and the versioned REST API."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.staticfiles.storage import staticfiles_storage
from django.http import HttpResponsePermanentRedirect
from django.urls import Resolver404, include, path, re_path, resolve
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from mlops_portal import health
from registry import oidc
from registry.admin_accounts import audited_password_change
from registry.views import access


@csrf_exempt  # a token client's POST gets the 404, not a CSRF page; it changes nothing
def api_not_found(request):
    """The API's JSON 404 for a path under /api/ that no endpoint answers. A route of its own,
    so it answers in DEBUG too (where Django shows its HTML page instead of ``handler404``);
    a path that lacks only its trailing slash is named in the message."""
    from mlops_portal.api.errors import json_error

    message = f"No API endpoint at {request.path}."
    if not request.path.endswith("/"):
        try:
            if resolve(request.path_info + "/", urlconf=getattr(request, "urlconf", None)).func is not api_not_found:
                message += f" Did you mean {request.path}/?"
        except Resolver404:
            pass
    return json_error(404, message)


@require_safe
def favicon(request):
    """The icon at the address browsers ask for on pages that name none (the admin site, a PDF)."""
    return HttpResponsePermanentRedirect(staticfiles_storage.url("favicon.svg"))


urlpatterns = [
    path("favicon.ico", favicon),
    path("login/", access.LoginView.as_view(), name="login"),
    path("login/step-up/", access.step_up, name="step_up"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("oidc/authenticate/", oidc.OidcRequestView.as_view(), name="oidc_authentication_init"),
    path("oidc/callback/", oidc.OidcCallbackView.as_view(), name="oidc_authentication_callback"),
    path("healthz", health.healthz, name="healthz"),
    path("metrics", health.metrics, name="metrics"),
    path("admin/password_change/", admin.site.admin_view(audited_password_change), name="admin_password_change"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include(("registry.api.urls", "api"), namespace="api")),
    path("api/v1/", include(("monitoring.api.urls", "monitoring_api"), namespace="monitoring_api")),
    re_path(r"^api/", api_not_found),  # after every API route
    path("monitoring/", include("monitoring.urls")),
    path("", include("registry.urls")),
]


def handler404(request, exception=None):
    """JSON 404 under /api/ (the API's error format), Django's HTML page elsewhere."""
    from django.views.defaults import page_not_found

    if request.path.startswith("/api/"):
        return api_not_found(request)
    return page_not_found(request, exception)


def handler500(request):
    """JSON 500 under /api/ (the exception is logged by Django first), Django's HTML page elsewhere."""
    from django.views.defaults import server_error as html_server_error

    from mlops_portal.api.errors import server_error

    if request.path.startswith("/api/"):
        return server_error(request)
    return html_server_error(request)


def handler400(request, exception=None):
    """JSON 400 under /api/ (e.g. a request Django refuses before any view), HTML elsewhere."""
    from django.views.defaults import bad_request

    from mlops_portal.api.errors import json_error

    if request.path.startswith("/api/"):
        return json_error(400, str(exception) or "Bad request.")
    return bad_request(request, exception)
