"""Operations endpoints.

- ``GET /healthz`` (no authentication): ``{"status", "database", "broker", "worker"}``, each
  entry ``{"ok": bool, ...}``; 200 when all are fine, else 503. The worker is alive when its
  heartbeat (``worker_heartbeat``, queued by beat every minute and run by a worker) is at most
  ``WORKER_HEARTBEAT_MAX_AGE`` seconds old.
- ``GET /metrics``: Prometheus text (django-prometheus's request, database and model metrics,
  plus the product's gauges below) for clients in ``METRICS_ALLOWED_NETWORKS`` or sending
  ``Authorization: Bearer <METRICS_TOKEN>``; 401 without credentials, 403 with wrong ones.
"""

from __future__ import annotations

import hmac
import logging
import threading

from celery import shared_task
from django.conf import settings
from django.db.models import Count
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily

from mlops_portal.db import ping
from mlops_portal.net import client_ip, in_networks

log = logging.getLogger(__name__)
WORKER = "worker"


@shared_task(name="mlops_portal.health.worker_heartbeat", ignore_result=True)
def worker_heartbeat() -> None:
    """Run by a worker every minute (beat): proves that tasks are being consumed."""
    from registry.models import Heartbeat

    Heartbeat.objects.update_or_create(name=WORKER, defaults={"beat_at": timezone.now()})


def _database() -> dict:
    try:
        return {"ok": True, "vendor": ping()}
    except Exception as exc:  # any failure is what the probe reports
        return {"ok": False, "error": type(exc).__name__}


def _broker() -> dict:
    from mlops_portal.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return {"ok": True, "transport": app.conf.broker_url.split("://", 1)[0]}
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}


def _worker() -> dict:
    from registry.models import Heartbeat

    try:
        beat = Heartbeat.objects.filter(name=WORKER).values_list("beat_at", flat=True).first()
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}
    if beat is None:
        return {"ok": False, "error": "no heartbeat yet"}
    age = (timezone.now() - beat).total_seconds()
    return {"ok": age <= settings.WORKER_HEARTBEAT_MAX_AGE, "heartbeat_age_seconds": round(age, 1)}


@never_cache
@require_GET
def healthz(request):
    checks = {"database": _database()}
    checks["broker"] = _broker()
    checks["worker"] = _worker() if checks["database"]["ok"] else {"ok": False, "error": "database down"}
    healthy = all(c["ok"] for c in checks.values())
    return JsonResponse({"status": "ok" if healthy else "failing", **checks}, status=200 if healthy else 503)


# --- /metrics ---------------------------------------------------------------------------------


class ProductCollector:
    """The product's gauges, read from the database at each scrape (a handful of aggregates)."""

    def collect(self):
        from monitoring.choices import AlertStatus
        from monitoring.models import Alert, DirtyWindow, GroundTruth, HealthStatus, Prediction
        from registry.choices import PromotionStatus
        from registry.models import PromotionRequest, RegisteredModel

        health = GaugeMetricFamily("mlops_models_by_health", "Registered models by health status.", labels=["status"])
        counts = dict(
            HealthStatus.objects.order_by().values("status").annotate(n=Count("pk")).values_list("status", "n")
        )
        counts["no_data"] = counts.get("no_data", 0) + RegisteredModel.objects.filter(health__isnull=True).count()
        for status, count in sorted(counts.items()):
            health.add_metric([status], count)
        yield health
        yield GaugeMetricFamily(
            "mlops_open_alerts",
            "Alerts not resolved.",
            value=Alert.objects.exclude(status=AlertStatus.RESOLVED).count(),
        )
        yield GaugeMetricFamily(
            "mlops_pending_reviews",
            "Promotion requests waiting for review.",
            value=PromotionRequest.objects.filter(status=PromotionStatus.PENDING).count(),
        )
        rows = GaugeMetricFamily(
            "mlops_ingestion_rows", "Rows ingested (highest row id; ids are never reused).", labels=["kind"]
        )
        for kind, model in (("predictions", Prediction), ("ground_truth", GroundTruth)):
            rows.add_metric([kind], model.objects.order_by("-pk").values_list("pk", flat=True).first() or 0)
        yield rows
        oldest = DirtyWindow.objects.order_by("marked_at").values_list("marked_at", flat=True).first()
        lag = (timezone.now() - oldest).total_seconds() if oldest else 0.0
        yield GaugeMetricFamily(
            "mlops_window_computation_lag_seconds", "Age of the oldest window waiting for computation.", value=lag
        )
        yield GaugeMetricFamily(
            "mlops_window_computation_backlog", "Windows waiting for computation.", value=DirtyWindow.objects.count()
        )


_registered = threading.Lock()
_collector: ProductCollector | None = None


def _register_collector() -> None:
    global _collector
    with _registered:
        if _collector is None:
            _collector = ProductCollector()
            REGISTRY.register(_collector)


def metrics_access(request) -> int:
    """200 for an allowed client, 401 without credentials, 403 with wrong ones or from elsewhere."""
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, secret = header.partition(" ")
        token = settings.METRICS_TOKEN
        ok = scheme.lower() == "bearer" and bool(token) and hmac.compare_digest(secret.strip(), token)
        return 200 if ok else 403
    if in_networks(client_ip(request), settings.METRICS_ALLOWED_NETWORKS):
        return 200
    return 401


@never_cache
@require_GET
def metrics(request):
    status = metrics_access(request)
    if status != 200:
        message = "Metrics need an allowed network or a metrics token." if status == 401 else "Not allowed."
        response = HttpResponse(message + "\n", status=status, content_type="text/plain")
        if status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    from django_prometheus.exports import ExportToDjangoView

    _register_collector()
    return ExportToDjangoView(request)
