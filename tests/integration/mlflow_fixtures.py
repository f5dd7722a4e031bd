"""A real MLflow tracking server (SQLite backend, 127.0.0.1) for the registry-sync tests.

MLflow runs from its own virtual environment ``.venv-mlflow`` (created by ``make mlflow-venv``,
which ``make test`` runs), so its dependencies never meet ours. Missing venv = loud failure.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from pathlib import Path

import pytest
import requests

from tests.processes import serving

ROOT = Path(__file__).resolve().parents[2]
MLFLOW_BIN = ROOT / ".venv-mlflow" / "bin" / "mlflow"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MlflowAdmin:
    """What a team's pipeline does to its MLflow registry, over MLflow's REST API."""

    def __init__(self, url: str):
        self.url = url
        self.api = url + "/api/2.0/mlflow/"
        self.experiment_id = None

    def call(self, method: str, path: str, **kwargs) -> dict:
        response = requests.request(method, self.api + path, timeout=30, **kwargs)
        assert response.status_code < 400, f"{method} {path}: {response.status_code} {response.text}"
        return response.json() if response.content else {}

    def log_run(self, *, metrics: dict[str, float], params: dict[str, str], commit: str) -> str:
        if self.experiment_id is None:
            name = f"exp-{time.monotonic_ns()}"
            self.experiment_id = self.call("POST", "experiments/create", json={"name": name})["experiment_id"]
        run = self.call(
            "POST",
            "runs/create",
            json={"experiment_id": self.experiment_id, "tags": [{"key": "mlflow.source.git.commit", "value": commit}]},
        )["run"]
        run_id = run["info"]["run_id"]
        self.call(
            "POST",
            "runs/log-batch",
            json={
                "run_id": run_id,
                "metrics": [{"key": k, "value": v, "timestamp": 0, "step": 0} for k, v in metrics.items()],
                "params": [{"key": k, "value": v} for k, v in params.items()],
            },
        )
        return run_id

    def create_model(self, name: str, description: str = "", tags: dict[str, str] | None = None) -> None:
        tags = [{"key": k, "value": v} for k, v in (tags or {}).items()]
        self.call("POST", "registered-models/create", json={"name": name, "description": description, "tags": tags})

    def update_model(self, name: str, description: str) -> None:
        self.call("PATCH", "registered-models/update", json={"name": name, "description": description})

    def set_model_tag(self, name: str, key: str, value: str) -> None:
        self.call("POST", "registered-models/set-tag", json={"name": name, "key": key, "value": value})

    def create_version(self, name: str, run_id: str) -> str:
        body = {"name": name, "source": f"runs:/{run_id}/model", "run_id": run_id}
        return self.call("POST", "model-versions/create", json=body)["model_version"]["version"]

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self.call("POST", "registered-models/alias", json={"name": name, "alias": alias, "version": version})

    def alias(self, name: str, alias: str) -> str | None:
        response = requests.get(self.api + "registered-models/alias", params={"name": name, "alias": alias}, timeout=30)
        if response.status_code == 404:
            return None
        assert response.status_code == 200, response.text
        return response.json()["model_version"]["version"]


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory) -> str:
    """Start ``mlflow server`` once per session; yields its base URL."""
    if not MLFLOW_BIN.exists():
        pytest.fail(f"{MLFLOW_BIN} is missing: run `make mlflow-venv` (make test does) to install the MLflow peer.")
    workdir = tmp_path_factory.mktemp("mlflow")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [str(MLFLOW_BIN), "server", "--backend-store-uri", f"sqlite:///{workdir}/mlflow.db",
           "--artifacts-destination", str(workdir / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
           "--workers", "1"]  # fmt: skip
    with serving(
        cmd,
        log_path=workdir / "server.log",
        ready_url=url + "/health",
        ready_seconds=180,
        stop_seconds=15,
        cwd=workdir,
        env={**os.environ, "MLFLOW_HOME": str(workdir)},
    ):
        yield url


@pytest.fixture
def mlflow_admin(mlflow_server) -> MlflowAdmin:
    return MlflowAdmin(mlflow_server)


@pytest.fixture
def prefix() -> str:
    """Each test governs only its own MLflow models (the server outlives the tests)."""
    return f"t{uuid.uuid4().hex[:8]}"


@pytest.fixture
def governed_server(db, mlflow_server, team, owner, prefix, settings):
    """The portal's record of the MLflow server, governing this test's models. The server runs
    on 127.0.0.1, which the outbound policy refuses unless allow-listed (as here)."""
    from registry.models import MlflowServer

    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    return MlflowServer.objects.create(
        name="team-mlflow",
        tracking_url=mlflow_server,
        team=team,
        default_owner=owner,
        search_filter=f"name LIKE '{prefix}%'",
    )


@pytest.fixture
def registered(mlflow_admin, prefix) -> str:
    """A model with two versions in MLflow, version 1 carrying the champion alias."""
    name = f"{prefix} Churn Classifier"
    mlflow_admin.create_model(name, description="Predicts churn", tags={"domain": "retention", "pii": ""})
    run1 = mlflow_admin.log_run(
        metrics={"roc_auc": 0.81, "accuracy": 0.77},
        params={"training_data": "s3://d/churn-1.parquet"},
        commit="a1" * 20,
    )
    run2 = mlflow_admin.log_run(
        metrics={"roc_auc": 0.86, "accuracy": 0.8}, params={"training_data": "s3://d/churn-2.parquet"}, commit="b2" * 20
    )
    mlflow_admin.create_version(name, run1)
    mlflow_admin.create_version(name, run2)
    mlflow_admin.set_alias(name, "champion", "1")
    return name
