"""The Python client's retries (urllib3's Retry on the requests adapter) against a real HTTP
server on 127.0.0.1 that answers scripted statuses or drops the connection."""

from __future__ import annotations

import json
import socket
import time

import pytest

from mlops_portal_client import PortalClient, PortalError
from tests.loopback import LoopbackServer, QuietHandler

DROP = 0  # close the connection after reading the request: the answer is lost


class FlakyPortal(LoopbackServer):
    """Answers each request with the next scripted status (then 200 with ``{}``)."""

    def __init__(self, script: list[int], retry_after: str | None = None):
        self.script = list(script)
        self.requests: list[tuple[str, str, bytes]] = []
        portal = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
                portal.requests.append((self.command, self.path, body))
                status = portal.script.pop(0) if portal.script else 200
                if status == DROP:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                payload = b"{}" if status < 400 else json.dumps({"error": {"code": "busy", "message": "busy"}}).encode()
                self.send_response(status)
                if retry_after and status == 503:
                    self.send_header("Retry-After", retry_after)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _answer  # noqa: N815 (http.server API)

        super().__init__(Handler)


@pytest.fixture
def flaky(request):
    servers = []

    def make(script, retry_after=None):
        server = FlakyPortal(script, retry_after)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


ROW = {"prediction_id": "p-1", "timestamp": "2026-11-20T10:00:00Z", "features": {"x": 1.0}, "prediction": 1}


def test_a_read_is_retried_on_503_and_waits_for_retry_after(flaky):
    portal_server = flaky([503], retry_after="1")
    portal = PortalClient(portal_server.url, "t", backoff=0)
    started = time.monotonic()
    assert portal.get_model("churn") == {}
    assert time.monotonic() - started >= 0.9
    assert [r[0] for r in portal_server.requests] == ["GET", "GET"]


def test_a_read_gives_up_after_the_retries_with_the_apis_error(flaky):
    portal_server = flaky([502] * 10)
    portal = PortalClient(portal_server.url, "t", retries=2, backoff=0)
    with pytest.raises(PortalError) as caught:
        portal.get_model("churn")
    assert caught.value.status == 502
    assert len(portal_server.requests) == 3


@pytest.mark.parametrize("failure", [503, DROP])
def test_a_promotion_request_is_never_sent_twice(flaky, failure):
    portal_server = flaky([failure])
    portal = PortalClient(portal_server.url, "t", backoff=0)
    with pytest.raises(PortalError):
        portal.request_promotion("churn", 2, reason="Better AUC")
    assert len(portal_server.requests) == 1


@pytest.mark.parametrize("failure", [503, DROP])
def test_an_ingestion_batch_is_resent_identically_after_a_lost_or_refused_answer(flaky, failure):
    """The portal acknowledges an identical batch as already stored, so resending is safe."""
    portal_server = flaky([failure])
    portal = PortalClient(portal_server.url, "t", backoff=0)
    assert portal.log_predictions("churn", 1, [ROW]) == 1
    assert len(portal_server.requests) == 2
    assert portal_server.requests[0] == portal_server.requests[1]


def test_an_unreachable_portal_is_a_connection_error_after_the_retries():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    portal = PortalClient(f"http://127.0.0.1:{port}", "t", retries=1, backoff=0)
    with pytest.raises(PortalError) as caught:
        portal.get_model("churn")
    assert caught.value.is_connection_error
