"""The floor under the inventory page: a WSGI app serving the portal with one extra URL,
``/bench-floor/``, a ``login_required`` view answering "ok" with no query and no template.

Served by the same gunicorn, settings, session store and middleware as the portal, it shows
what any session-authenticated Django page costs on this machine before it does anything,
so the page's own figures can be read against it. Used only by ``bench/inventory.py``.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mlops_portal.settings")

from django.conf import settings  # noqa: E402
from django.contrib.auth.decorators import login_required  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.urls import include, path  # noqa: E402

application = get_wsgi_application()


@login_required
def floor(request):
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [path("bench-floor/", floor), path("", include("mlops_portal.urls"))]
settings.ROOT_URLCONF = __name__
