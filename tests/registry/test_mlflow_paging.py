"""The MLflow client follows ``next_page_token`` until the server stops sending one; a server that
sends the same token again (a bug, or a hostile server) must not keep a worker paging forever."""

from __future__ import annotations

import json

import pytest

from registry.mlflow_client import MlflowRest, MlflowUnavailable
from tests.loopback import LoopbackServer, QuietHandler

CALLS: list[str] = []


class SameTokenForever(QuietHandler):
    """Every page names one model and the same next page; after 20 pages it fails (test bound)."""

    def do_GET(self):
        CALLS.append(self.path)
        if len(CALLS) > 20:
            self.send_response(500)
            self.end_headers()
            return
        body = json.dumps({"registered_models": [{"name": "churn"}], "next_page_token": "again"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_a_page_token_sent_twice_stops_the_listing_with_an_error(settings):
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    CALLS.clear()
    with LoopbackServer(SameTokenForever) as server:
        with pytest.raises(MlflowUnavailable) as failed:
            MlflowRest(server.url).registered_models()
    assert len(CALLS) == 2, CALLS
    assert "page token" in str(failed.value) and "again" not in str(failed.value)  # no answer text kept
