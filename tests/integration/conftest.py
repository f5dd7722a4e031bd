"""Real services for the integration tests: a Celery worker (and beat) subprocess on Redis
and the pytest-django PostgreSQL test database, plus a private redis-server that a test may
stop and restart. Nothing is mocked and no task runs eagerly.

Tests here use ``@pytest.mark.django_db(transaction=True)`` so the worker, a separate
process, sees the rows the test committed.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote, urlparse

import pytest
import redis
from django.db import connection
from kombu import pools as kombu_pools

from mlops_portal.celery import app as celery_app
from tests.integration.mlflow_fixtures import (  # noqa: F401 - the MLflow tests' fixtures, for every file here
    governed_server,
    mlflow_admin,
    mlflow_server,
    prefix,
    registered,
)
from tests.redis_db import per_worker

ROOT = Path(__file__).resolve().parents[2]
CELERY_BIN = str(Path(sys.executable).with_name("celery"))
DEFAULT_TEST_REDIS_URL = "redis://127.0.0.1:6379/12"
# Fault tests run with the production default: a task whose worker died is handed out again
# only after Redis' visibility timeout (an hour), so nothing here may rely on redelivery.
PRODUCTION_VISIBILITY_TIMEOUT = 3600


def wait_until(
    predicate: Callable[[], object], *, timeout: float = 30, interval: float = 0.2, what: str = ""
) -> object:
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def worker_database_url() -> str:
    """The DATABASE_URL of the database this test is using (the pytest-django test database)."""
    s = connection.settings_dict
    assert s["ENGINE"] == "django.db.backends.postgresql", "integration tests need DATABASE_URL=postgres://…"
    user = quote(s.get("USER") or "", safe="")
    password = quote(s.get("PASSWORD") or "", safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    return f"postgres://{auth}{s.get('HOST') or '127.0.0.1'}:{s.get('PORT') or 5432}/{s['NAME']}"


class Broker:
    """Points this process's Celery app (the one views and services publish with) at a Redis URL."""

    def __init__(self, url: str):
        self.url = url
        self._saved = (celery_app.conf.broker_url, celery_app.conf.broker_transport_options)
        self._saved_env = os.environ.get("CELERY_BROKER_URL")

    def activate(self) -> None:
        self._switch(self.url, {"visibility_timeout": PRODUCTION_VISIBILITY_TIMEOUT})

    def restore(self) -> None:
        self._switch(*self._saved)
        if self._saved_env is None:
            os.environ.pop("CELERY_BROKER_URL", None)
        else:
            os.environ["CELERY_BROKER_URL"] = self._saved_env

    @staticmethod
    def _switch(url, options) -> None:
        # Celery reads CELERY_BROKER_URL from the environment before its own config
        # (make test sets it), so the variable must follow the switch too.
        os.environ["CELERY_BROKER_URL"] = url
        kombu_pools.reset()  # close and forget every cached connection/producer pool
        celery_app.conf.broker_url = url
        celery_app.conf.broker_write_url = None
        celery_app.conf.broker_read_url = None
        celery_app.conf.broker_transport_options = options
        celery_app._after_fork()  # drops the cached connection and producer pools

    def flush(self) -> None:
        redis.Redis.from_url(self.url).flushdb()

    def queue_length(self, queues: tuple[str, ...] = ("alerts", "celery")) -> int:
        """Messages waiting in these queues (default: both of settings.CELERY_TASK_QUEUES)."""
        client = redis.Redis.from_url(self.url)
        return sum(client.llen(queue) for queue in queues)


class ServiceProcess:
    """A subprocess with its output in a log file, killed at teardown."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path):
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> ServiceProcess:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.argv, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the process group (the worker and anything it forked) and reap it."""
        if not self.running:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        """Warm shutdown (SIGTERM), SIGKILL if it does not exit in time."""
        self.kill(signal.SIGTERM)


class CeleryWorker(ServiceProcess):
    """``celery -A mlops_portal worker --pool=solo`` (every queue, "alerts" first) against the test database."""

    def wait_ready(self, timeout: float = 60) -> CeleryWorker:
        def ready():
            if not self.running:
                pytest.fail(f"{self.name} exited early:\n{self.log()[-4000:]}")
            return " ready." in self.log()

        wait_until(ready, timeout=timeout, what=f"{self.name} to be ready")
        node = self.argv[self.argv.index("-n") + 1]
        wait_until(
            lambda: celery_app.control.ping(destination=[node], timeout=1.0),
            timeout=timeout,
            what=f"{node} to answer a ping",
        )
        return self


class Services:
    """Factory for the worker/beat processes of one test; everything is killed at teardown."""

    def __init__(self, broker: Broker, log_dir: Path):
        self.broker = broker
        self.log_dir = log_dir
        self.processes: list[ServiceProcess] = []
        self.var_dir = log_dir / "var"
        self.var_dir.mkdir(exist_ok=True)

    def env(self, broker_url: str | None = None) -> dict[str, str]:
        env = dict(os.environ)  # PYTHONPATH included: the worker imports this checkout's code
        env.pop("TEST_DATABASE_NAME", None)
        env.pop("CELERY_VISIBILITY_TIMEOUT", None)  # the production default (settings.py)
        env.update(
            DJANGO_SETTINGS_MODULE="mlops_portal.settings",
            DATABASE_URL=worker_database_url(),
            CELERY_BROKER_URL=broker_url or self.broker.url,
            MLOPS_VAR_DIR=str(self.var_dir),
            PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p),
            PYTHONUNBUFFERED="1",
        )
        return env

    def worker(self, *, name: str | None = None, broker_url: str | None = None, ready: bool = True) -> CeleryWorker:
        name = name or f"worker{len(self.processes) + 1}"
        node = f"monbench-{name}-{uuid.uuid4().hex[:8]}@{socket.gethostname()}"
        argv = [CELERY_BIN, "-A", "mlops_portal", "worker", "--pool=solo"]
        argv += ["--loglevel=INFO", "-n", node, "--without-gossip", "--without-mingle"]
        process = CeleryWorker(name, argv, self.env(broker_url), self.log_dir)
        self.processes.append(process.start())
        return process.wait_ready() if ready else process

    def beat(self, *, broker_url: str | None = None) -> ServiceProcess:
        argv = [CELERY_BIN, "-A", "mlops_portal", "beat", "--loglevel=INFO", "--max-interval=1"]
        argv += ["--pidfile=", f"--schedule={self.log_dir / 'beat-schedule'}"]
        process = ServiceProcess("beat", argv, self.env(broker_url), self.log_dir)
        self.processes.append(process.start())
        return process

    def logs(self) -> str:
        return "\n".join(f"----- {p.name} -----\n{p.log()[-6000:]}" for p in self.processes)

    def close(self) -> None:
        for process in reversed(self.processes):
            process.kill()


class RedisServer(ServiceProcess):
    """A private redis-server (no persistence) that a test may stop and start again."""

    def __init__(self, log_dir: Path):
        self.port = free_port()
        redis_bin = shutil.which("redis-server")
        assert redis_bin, "redis-server is not installed (apt-get install redis-server)"
        argv = [redis_bin, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no"]
        argv += ["--daemonize", "no", "--dir", str(log_dir)]
        super().__init__(f"redis-{self.port}", argv, dict(os.environ), log_dir)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        super().start()
        wait_until(self._pong, timeout=20, what=f"redis-server on port {self.port}")
        return self

    def _pong(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=0.5).ping())
        except redis.ConnectionError:
            return False


@pytest.fixture(scope="session")
def test_redis_url() -> str:
    """TEST_REDIS_URL's database (under pytest-xdist, this process's own: ``tests.redis_db``)."""
    url = os.environ.get("TEST_REDIS_URL") or DEFAULT_TEST_REDIS_URL
    assert urlparse(url).scheme == "redis", f"TEST_REDIS_URL must be a redis:// URL, got {url}"
    return per_worker(url)


@pytest.fixture
def broker(test_redis_url) -> Iterator[Broker]:
    """The shared test Redis database, flushed, and this process's Celery app publishing to it."""
    broker = Broker(test_redis_url)
    broker.flush()
    broker.activate()
    yield broker
    broker.restore()


@pytest.fixture
def services(transactional_db, broker, tmp_path, request) -> Iterator[Services]:
    """services.worker() / services.beat(): real Celery processes on the test database.

    Depends on ``transactional_db`` so they are killed before the database is flushed."""
    services = Services(broker, tmp_path)
    yield services
    services.close()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(services.logs())


@pytest.fixture
def private_redis(tmp_path) -> Iterator[RedisServer]:
    """Our own redis-server on a free port (never the shared one), so a test can stop it."""
    server = RedisServer(tmp_path).start()
    yield server
    server.kill()


@pytest.fixture
def worker_on_private_redis(services, private_redis) -> Iterator[RedisServer]:
    """A worker consuming from the private Redis, and this process's Celery app publishing to it
    with the production visibility timeout, until the test ends."""
    broker = Broker(private_redis.url)
    broker.activate()
    try:
        services.worker(name="worker", broker_url=private_redis.url)
        yield private_redis
    finally:
        broker.restore()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.rep_call = report
    return report
