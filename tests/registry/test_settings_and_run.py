"""The installable portal: production settings pass Django's deploy checks, the embedded
default (SQLite + kombu filesystem://) really runs web, worker and beat from the Procfile,
and `make run` loads the demo (the demo itself: tests/monitoring/test_demo.py)."""

from __future__ import annotations

import http.client
import http.server
import json
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
BIN = Path(PYTHON).parent


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A clean environment: none of the caller's database/broker settings leak in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "CELERY_", "DJANGO_", "TEST_"))}
    env.pop("SECRET_KEY", None)
    env.pop("SUBJECT_KEY", None)
    env.update({"MLOPS_VAR_DIR": str(tmp_path / "var"), "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "INFO"})
    env.update(extra)
    return env


def _manage(env: dict[str, str], *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


# ------------------------------------------------------------------------------------ settings


def test_production_settings_pass_check_deploy_with_no_issues(tmp_path):
    env = _env(
        tmp_path,
        DJANGO_ENV="production",
        SECRET_KEY=secrets.token_urlsafe(50),
        SUBJECT_KEY=secrets.token_urlsafe(32),
        ALLOWED_HOSTS="mlops.example.com",
        CSRF_TRUSTED_ORIGINS="https://mlops.example.com",
    )
    result = _manage(env, "check", "--deploy", "--fail-level", "WARNING")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues" in output, output


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    env = _env(tmp_path, DJANGO_ENV="production", ALLOWED_HOSTS="mlops.example.com")
    result = _manage(env, "check")
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


@pytest.mark.parametrize(
    ("subject_key", "debug"),
    [
        (None, "false"),
        ("", "false"),
        ("too-short-a-key", "false"),
        ("dev-subject-key-not-for-production", "false"),  # the development default, long as it is
        (None, "true"),  # DEBUG turned on by hand does not bring the development default back
    ],
)
def test_production_refuses_to_start_without_a_strong_subject_key(tmp_path, subject_key, debug):
    extra = {} if subject_key is None else {"SUBJECT_KEY": subject_key}
    env = _env(tmp_path, DJANGO_ENV="production", SECRET_KEY=secrets.token_urlsafe(50), DEBUG=debug, **extra)
    result = _manage(env, "check", "--deploy")
    assert result.returncode != 0
    assert "SUBJECT_KEY" in result.stderr, result.stderr
    if subject_key:
        assert subject_key not in result.stderr  # the refusal does not print the key


def _settings_of(env: dict[str, str], expressions: str) -> list:
    """The values of ``expressions`` (on ``s``, the settings) in a fresh ``manage.py shell`` under ``env``."""
    code = f"import json; from django.conf import settings as s; print(json.dumps([{expressions}]))"
    result = _manage(env, "shell", "-c", code)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_turns_debug_off_and_cookies_secure(tmp_path):
    env = _env(
        tmp_path, DJANGO_ENV="production", SECRET_KEY=secrets.token_urlsafe(50), SUBJECT_KEY=secrets.token_urlsafe(32)
    )
    debug, session_secure, csrf_secure, ssl_redirect, hsts = _settings_of(
        env, "s.DEBUG, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS"
    )
    assert (debug, session_secure, csrf_secure, ssl_redirect) == (False, True, True, True)
    assert hsts >= 31536000


def test_default_settings_are_the_embedded_sqlite_and_filesystem_broker(tmp_path):
    env = _env(tmp_path)
    engine, name, broker, options, debug = _settings_of(
        env,
        "s.DATABASES['default']['ENGINE'], str(s.DATABASES['default']['NAME']), s.CELERY_BROKER_URL,"
        " s.CELERY_BROKER_TRANSPORT_OPTIONS, s.DEBUG",
    )
    assert engine == "django.db.backends.sqlite3"
    assert name == str(tmp_path / "var" / "db.sqlite3")
    assert broker == "filesystem://"
    # kombu's filesystem transport only works when producers and consumers share one folder
    assert options["data_folder_in"] == options["data_folder_out"]
    assert Path(options["data_folder_in"]).is_dir()
    assert debug is True


# ------------------------------------------------------------------------------------ make run


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Receiver(http.server.BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).received.append({"path": self.path, "body": json.loads(body), "headers": dict(self.headers)})
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def _wait_for(predicate, timeout: float, what: str, log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; honcho log:\n{log.read_text()[-4000:]}")


def _http_status(url: str) -> int | None:
    """The status of a GET (redirects not followed), or None while nothing listens."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    try:
        connection.request("GET", parts.path)
        return connection.getresponse().status
    except OSError:
        return None
    finally:
        connection.close()


@pytest.mark.integration
def test_procfile_runs_web_worker_and_beat_and_the_worker_executes_a_task_sent_from_another_process(tmp_path):
    """What `make run` starts, on the embedded default: the web answers, beat schedules, and a
    webhook enqueued by another process over kombu's filesystem:// transport is delivered by
    the worker."""
    env = _env(tmp_path, HOST="127.0.0.1", PORT=str(_free_port()), PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    env["OUTBOUND_ALLOWED_HOSTS"] = "127.0.0.1"  # the receiver below is on loopback, refused by default
    migrate = _manage(env, "migrate", "--noinput")
    assert migrate.returncode == 0, migrate.stderr

    _Receiver.received = []
    receiver = http.server.HTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    hook_url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"

    # The Procfile uses .venv/bin/...; run its commands with this interpreter's environment.
    procfile = tmp_path / "Procfile"
    lines = (ROOT / "Procfile").read_text().splitlines()
    assert {line.split(":", 1)[0] for line in lines if ":" in line} >= {"web", "worker", "beat"}
    procfile.write_text("\n".join(line.replace(".venv/bin/", f"{BIN}/") for line in lines) + "\n")
    log = tmp_path / "honcho.log"
    with log.open("w") as out:
        honcho = subprocess.Popen(
            [str(BIN / "honcho"), "start", "-f", str(procfile), "-d", str(ROOT)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        base = f"http://127.0.0.1:{env['PORT']}"
        assert _wait_for(lambda: _http_status(base + "/") == 302, 90, "the web server", log)
        assert _http_status(base + "/login/") == 200
        _wait_for(lambda: "ready." in log.read_text(), 90, "the Celery worker", log)
        _wait_for(lambda: "beat: Starting" in log.read_text(), 60, "Celery beat", log)

        send = (
            "from django.db import transaction\n"
            "from registry.models import Webhook\n"
            "from registry.services.webhooks import webhook_dispatch\n"
            f"Webhook.objects.create(name='ci', url={hook_url!r}, secret='s' * 32, events=[])\n"
            "with transaction.atomic():\n"
            "    webhook_dispatch(event='stage.changed', model=None, payload={'check': 'embedded run'})\n"
        )
        sent = _manage(env, "shell", "-c", send)
        assert sent.returncode == 0, sent.stderr
        _wait_for(lambda: _Receiver.received, 60, "the worker to deliver the webhook", log)
        delivered = _Receiver.received[0]
        assert delivered["path"] == "/hook"
        assert delivered["body"]["event"] == "stage.changed"
        assert delivered["body"]["data"] == {"check": "embedded run"}
        _wait_for(lambda: "webhook_deliver" in log.read_text() and "succeeded" in log.read_text(), 30, "log", log)
    finally:
        os.killpg(honcho.pid, signal.SIGINT)
        try:
            honcho.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(honcho.pid, signal.SIGKILL)
            honcho.wait(timeout=10)
        receiver.shutdown()
    assert honcho.returncode is not None


def test_make_run_prints_the_url_and_the_demo_logins():
    result = subprocess.run(
        ["make", "-n", "run", "PYTHON=" + shlex.quote(PYTHON)], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    text = result.stdout
    for expected in ("migrate", "load_demo", "honcho start", "http://", "demo-pass-123"):
        assert expected in text
    # the demo's health, alerts and incident are computed inline, on the days they happened
    # (with the worker, they would open at start-up time: back-dated history, alerts of today)
    assert "load_demo --sync" in text
    for login in ("owner", "reviewer", "reviewer2", "auditor", "privacy", "admin"):
        assert login in text


def test_make_run_on_another_port_writes_links_to_that_port():
    """With PORT=8791 the portal's e-mails and audit events linked to http://127.0.0.1:8000."""
    result = subprocess.run(
        ["make", "-n", "run", "PORT=8791", "PYTHON=" + shlex.quote(PYTHON)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if "load_demo" in line or "honcho start" in line]
    assert len(lines) == 2 and all("PORTAL_BASE_URL=http://127.0.0.1:8791" in line for line in lines), lines
