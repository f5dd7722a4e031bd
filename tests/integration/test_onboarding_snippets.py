"""The "Connect a pipeline" page's snippets, copied from the page served by the running portal
(live_server) and run as a reader would: the Python client snippet in its own interpreter, the
curl snippets with the real ``curl``, the command line in a shell. Each must land in the database."""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from monitoring.models import IngestBatch, Prediction
from registry.models import ApiToken, AuditEvent, ModelVersion
from registry.services.tokens import hash_token
from tests.factories import ModelVersionFactory

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "pass-1234-word"  # tests/factories.py UserFactory
SCHEMA = [
    {"name": "tenure_months", "type": "numeric"},
    {"name": "monthly charges", "type": "numeric"},
    {"name": "contract's type", "type": "categorical"},
]


def signed_in(live_server, user) -> requests.Session:
    """A browser-like session signed in through the login form."""
    session = requests.Session()
    page = session.get(f"{live_server.url}/login/", timeout=30)
    answer = session.post(
        f"{live_server.url}/login/",
        data={"username": user.username, "password": PASSWORD, "csrfmiddlewaretoken": csrf_of(page.text)},
        headers={"Referer": f"{live_server.url}/login/"},
        timeout=30,
    )
    assert answer.ok and "sessionid" in session.cookies, answer.text[:500]
    return session


def csrf_of(page: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)


def snippet(page: str, snippet_id: str) -> str:
    return html.unescape(re.search(rf'<code id="{snippet_id}">(.*?)</code>', page, re.S).group(1))


def run(argv: list[str], cwd: Path, script: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])  # `python` is this venv's
    for name in ("MLOPS_PORTAL_URL", "MLOPS_PORTAL_TOKEN"):
        env.pop(name, None)  # the snippets set what they need
    done = subprocess.run(argv, input=script, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{argv}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    return done


def test_the_pages_snippets_register_a_version_and_send_batches(live_server, churn, owner, tmp_path):
    ModelVersionFactory(model=churn, feature_schema=SCHEMA, task_type="binary")
    session = signed_in(live_server, owner)
    url = f"{live_server.url}/models/churn/connect/"
    opened = session.get(url, timeout=30)
    assert opened.status_code == 200
    created = session.post(
        url,
        data={"name": "nightly pipeline", "expires_days": 30, "csrfmiddlewaretoken": csrf_of(opened.text)},
        headers={"Referer": url},
        timeout=30,
    )
    assert created.status_code == 200, created.text[:500]
    page = created.text
    raw = html.unescape(re.search(r'<code id="raw-token">(.*?)</code>', page).group(1))
    token = ApiToken.objects.get(token_hash=hash_token(raw))
    assert token.user == owner and AuditEvent.objects.filter(action="token.created", object_id=str(token.pk)).exists()
    assert live_server.url in snippet(page, "snippet-curl-batch")

    # the Python client snippet registers version 2 and sends its example prediction to it
    out = run([sys.executable, "-"], tmp_path, snippet(page, "snippet-python")).stdout
    assert "registered version 2" in out and "sent 1 prediction(s)" in out
    v2 = ModelVersion.objects.get(model=churn, version=2)
    assert v2.feature_schema == SCHEMA and v2.created_by == owner and v2.source_commit
    python_row = Prediction.objects.get(version=v2, prediction_id="python-example-1")
    assert python_row.features["contract's type"] == "a"

    # the curl snippet sends a batch to the version the page named (2)
    out = run(["bash", "-e", "-c", snippet(page, "snippet-curl-batch")], tmp_path).stdout
    assert json.loads(out)["rows"] == 1
    curl_row = Prediction.objects.get(version=v2, prediction_id="curl-example-1")
    assert curl_row.features == {"tenure_months": 1.0, "monthly charges": 1.0, "contract's type": "a"}
    assert curl_row.score == 0.8
    assert IngestBatch.objects.filter(version=v2).count() == 2

    # the curl registration and the command line work too
    run(["bash", "-e", "-c", snippet(page, "snippet-curl-register")], tmp_path)
    assert ModelVersion.objects.get(model=churn, version=3).feature_schema == SCHEMA
    run(["bash", "-e", "-c", snippet(page, "snippet-cli")], tmp_path)
    assert ModelVersion.objects.filter(model=churn, version=4).exists()
    assert Prediction.objects.filter(version=v2, prediction_id="cli-example-1").exists()

    # the page's check button (the URL it polls) shows the first batch since the page was opened
    check_url = html.unescape(re.search(r'hx-get="([^"]+batches-since[^"]+)"', page).group(1))
    check = session.get(f"{live_server.url}{check_url}", timeout=30)
    assert check.status_code == 200
    assert "1 row for version 2" in check.text and "3 batches, 3 rows" in check.text
