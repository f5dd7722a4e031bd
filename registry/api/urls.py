"""Registry API routes under /api/v1/ (namespace ``api``); each area keeps its own list."""

from . import audit, inventory, promotions

urlpatterns = [*inventory.urlpatterns, *promotions.urlpatterns, *audit.urlpatterns]
