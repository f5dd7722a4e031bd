"""The Celery app. Periodic schedules live in django-celery-beat (see registry/monitoring migrations)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mlops_portal.settings")

app = Celery("mlops_portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
