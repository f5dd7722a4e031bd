"""The retrain URL crosses the outbound policy: refused when saved, checked again when the
trigger is sent, and the pipeline's answer is never stored or shown (only status and error class)."""

from __future__ import annotations

import pytest
from django.utils import timezone

from monitoring.choices import RetrainStatus
from monitoring.models import MonitoringConfig, RetrainTrigger
from monitoring.services.alerts import retrain_trigger_send
from tests.loopback import LoopbackServer, QuietHandler

SECRET = "internal-secret-hunter2"


class InternalService(LoopbackServer):
    """A real HTTP service on 127.0.0.1 that answers every POST with a secret."""

    def __init__(self, status: int):
        self.hits = 0
        service = self

        class Handler(QuietHandler):
            def do_POST(self):  # noqa: N802 (http.server API)
                service.hits += 1
                self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
                self.send_response(status)
                self.end_headers()
                self.wfile.write(SECRET.encode())

        super().__init__(Handler, "/internal-admin")


@pytest.fixture
def internal():
    service = InternalService(status=500)
    yield service
    service.close()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8250/internal-admin",
        "http://localhost:8250/",
        "http://2130706433/",
        "http://0.0.0.0:8250/",
        "http://[::ffff:127.0.0.1]:8250/",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.1.2.3/retrain",
    ],
)
def test_patching_an_internal_retrain_url_answers_400_and_changes_nothing(
    url, churn, owner, api_client_for, last_seq, settings
):
    settings.OUTBOUND_ALLOWED_HOSTS = []
    client = api_client_for(owner)
    seq = last_seq()
    response = client.patch("/api/v1/models/churn/monitoring/", {"retrain_url": url}, format="json")
    assert response.status_code == 400, response.content
    body = response.json()
    assert "retrain_url" in body["error"]["details"]
    assert not MonitoringConfig.objects.filter(model=churn).exclude(retrain_url="").exists()
    assert last_seq() == seq


def test_an_allow_listed_or_public_retrain_url_is_saved(churn, owner, api_client_for, settings):
    settings.OUTBOUND_ALLOWED_HOSTS = ["10.0.0.0/8"]
    client = api_client_for(owner)
    for url in ("http://10.1.2.3/retrain", "https://8.8.8.8/retrain", ""):
        response = client.patch("/api/v1/models/churn/monitoring/", {"retrain_url": url}, format="json")
        assert response.status_code == 200, response.content
        assert response.json()["retrain_url"] == url


def _trigger(model, url: str) -> RetrainTrigger:
    return RetrainTrigger.objects.create(
        model=model, reason="drift", url=url, status=RetrainStatus.PENDING, fired_at=timezone.now()
    )


def test_a_saved_trigger_to_loopback_is_refused_when_sent(churn, internal, settings):
    """A URL saved before the policy existed (or a name that now resolves inside) is checked again."""
    settings.OUTBOUND_ALLOWED_HOSTS = []
    trigger = retrain_trigger_send(trigger_id=_trigger(churn, internal.url).pk)
    assert internal.hits == 0
    assert (trigger.status, trigger.response_code, trigger.error_class) == (RetrainStatus.FAILED, None, "refused")


def test_the_pipelines_answer_is_never_stored_or_shown(churn, owner, internal, api_client_for, settings):
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    trigger = retrain_trigger_send(trigger_id=_trigger(churn, internal.url).pk)
    assert internal.hits == 1
    assert (trigger.status, trigger.response_code, trigger.error_class) == (RetrainStatus.FAILED, 500, "http_500")
    response = api_client_for(owner).get("/api/v1/models/churn/retrain-triggers/")
    assert response.status_code == 200
    assert SECRET not in response.content.decode()
    row = response.json()["results"][0] if "results" in response.json() else response.json()[0]
    assert (row["response_code"], row["error_class"]) == (500, "http_500")
    assert "error" not in row
