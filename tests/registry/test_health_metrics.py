"""/healthz (no authentication, 200 or 503 with database, broker and worker entries) and
/metrics (Prometheus text for an allowed network or the metrics token; 401/403 for others)."""

from datetime import timedelta

from django.utils import timezone

from mlops_portal.health import worker_heartbeat
from registry.models import Heartbeat


def test_healthz_answers_200_when_database_broker_and_worker_are_fine(db, client):
    worker_heartbeat()
    response = client.get("/healthz", REMOTE_ADDR="203.0.113.9")
    body = response.json()
    assert response.status_code == 200 and body["status"] == "ok"
    assert body["database"]["ok"] and body["broker"]["ok"] and body["worker"]["ok"]


def test_healthz_answers_503_when_the_worker_heartbeat_is_stale_or_missing(db, client, settings):
    body = client.get("/healthz").json()
    assert body["worker"] == {"ok": False, "error": "no heartbeat yet"}
    Heartbeat.objects.create(
        name="worker", beat_at=timezone.now() - timedelta(seconds=settings.WORKER_HEARTBEAT_MAX_AGE + 5)
    )
    response = client.get("/healthz")
    assert response.status_code == 503 and response.json()["worker"]["ok"] is False


def test_healthz_answers_503_when_the_broker_is_unreachable(db, client, monkeypatch):
    from mlops_portal.celery import app

    worker_heartbeat()
    unreachable = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    monkeypatch.setenv("CELERY_BROKER_URL", unreachable)  # Celery reads it before its own settings
    monkeypatch.setattr(app.conf, "broker_url", unreachable)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["broker"]["ok"] is False and response.json()["database"]["ok"] is True


def test_metrics_serve_prometheus_text_with_the_products_gauges_to_an_allowed_network(db, client, churn_v1):
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    text = response.content.decode()
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    assert 'mlops_models_by_health{status="no_data"} 1.0' in text
    for name in (
        "mlops_open_alerts",
        "mlops_pending_reviews",
        "mlops_ingestion_rows",
        "mlops_window_computation_lag_seconds",
    ):
        assert f"\n{name}" in text
    assert "django_http_requests_total_by_method_total" in text  # django-prometheus's own


def test_metrics_refuse_a_stranger_and_a_wrong_token(db, client, settings):
    settings.METRICS_TOKEN = "scrape-secret-123"
    stranger = client.get("/metrics", REMOTE_ADDR="203.0.113.9")
    assert stranger.status_code == 401 and "mlops_" not in stranger.content.decode()
    assert stranger["WWW-Authenticate"].startswith("Bearer")
    wrong = client.get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer guess")
    assert wrong.status_code == 403
    forged = client.get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="127.0.0.1")
    assert forged.status_code == 401  # a forged header does not make a stranger local
    right = client.get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer scrape-secret-123")
    assert right.status_code == 200 and "mlops_pending_reviews" in right.content.decode()
