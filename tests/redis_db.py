"""One Redis database per test process: under pytest-xdist, worker ``gwN`` takes the given
database number plus N (mod 16), so two processes never flush or consume each other's Celery
queues (their PostgreSQL test databases are apart already: pytest-django suffixes them)."""

from __future__ import annotations

import os
from urllib.parse import urlparse, urlunparse


def per_worker(url: str) -> str:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    parsed = urlparse(url)
    if parsed.scheme != "redis" or not worker.startswith("gw"):
        return url
    base = int(parsed.path.strip("/") or 0)
    return urlunparse(parsed._replace(path=f"/{(base + int(worker[2:])) % 16}"))


def use_own_broker() -> None:
    """Point this process's Celery app (and the processes it starts) at its own Redis database."""
    url = os.environ.get("CELERY_BROKER_URL", "")
    own = per_worker(url)
    if own == url:
        return
    from django.conf import settings

    from mlops_portal.celery import app

    os.environ["CELERY_BROKER_URL"] = own  # Celery reads it before its own settings
    settings.CELERY_BROKER_URL = own
    app.conf.broker_url = own
