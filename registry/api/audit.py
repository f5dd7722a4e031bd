"""API: audit endpoints (serializers and views). Routes in `urlpatterns` are mounted under /api/v1/."""

urlpatterns: list = []
