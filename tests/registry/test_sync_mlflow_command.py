"""``manage.py sync_mlflow`` against a server that is down prints the error only, and fails."""

from __future__ import annotations

import io
import socket

import pytest
from django.core.management import CommandError, call_command

from registry.models import MlflowServer, RegisteredModel


def _closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def down(db, team, owner, settings):
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    return MlflowServer.objects.create(
        name="down", tracking_url=f"http://127.0.0.1:{_closed_port()}", team=team, default_owner=owner
    )


def test_a_server_that_is_down_prints_only_the_error_and_exits_non_zero(down):
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match="could not be synced"):
        call_command("sync_mlflow", stdout=out, stderr=err)
    assert "imported" not in out.getvalue() + err.getvalue()
    assert err.getvalue().startswith("down: GET registered-models/search: connection_error")  # no progress bar
    assert not RegisteredModel.objects.exists()
