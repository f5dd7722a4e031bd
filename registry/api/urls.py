"""Registry API routes under /api/v1/ (namespace ``api``)."""

urlpatterns: list = []
