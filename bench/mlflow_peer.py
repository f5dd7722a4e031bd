"""The MLflow peer: its own server, in its own virtual environment (``bench/.venv-mlflow``,
``make bench-mlflow-venv``), never in the project's dependencies.

Two halves:
- run from the project (``mlflow_server()``): populate a SQLite backend store and
  serve it with ``mlflow server``;
- run inside the MLflow venv (``bench/.venv-mlflow/bin/python -m bench.mlflow_peer
  populate DB MODELS VERSIONS``): create the schema with MLflow's own SQLAlchemy
  store, then bulk-insert registered models, their tags and versions through
  MLflow's own SQLAlchemy table models (a 50,000-call REST population would take
  longer than the benchmark itself).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / "bench" / ".venv-mlflow"
MLFLOW_VERSION = "3.17.2"
STAGES = ["Archived", "Archived", "Archived", "Production", "Staging"]  # versions 1..5


def model_name(i: int) -> str:
    return f"bench-model-{i:05d}"


def venv_python() -> Path:
    return VENV / "bin" / "python"


def available() -> bool:
    return (VENV / "bin" / "mlflow").exists()


def populate(db_path: Path, models: int, versions: int) -> None:
    """Create (or reuse, when already complete) an MLflow SQLite store with the bench counts."""
    if not available():
        raise RuntimeError(f"MLflow venv missing: run `make bench-mlflow-venv` (creates {VENV})")
    db_path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [str(venv_python()), "-m", "bench.mlflow_peer", "populate", str(db_path), str(models), str(versions)],
        cwd=ROOT,
        check=True,
    )


@contextlib.contextmanager
def mlflow_server(db_path: Path, *, workers: int) -> Iterator[str]:
    """Serve the store with MLflow's own server (uvicorn, ``workers`` processes); yields the base URL."""
    from bench.common import DATA_DIR, free_port, server

    port = free_port()
    artifacts = DATA_DIR / "mlflow-artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    cmd = [
        str(VENV / "bin" / "mlflow"),
        "server",
        "--backend-store-uri",
        f"sqlite:///{db_path}",
        "--default-artifact-root",
        artifacts.as_uri(),
        "--no-serve-artifacts",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        # uvicorn kills a worker that does not answer its supervisor's ping within 5 s; on a
        # busy 2-core machine under 32 connections that is load, not a hang: allow 60 s.
        "--uvicorn-opts",
        "--timeout-worker-healthcheck 60",
    ]
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{VENV / 'bin'}:{env.get('PATH', '')}"
    base = f"http://127.0.0.1:{port}"
    with server(cmd, env=env, ready_url=f"{base}/health", log_name="mlflow-server", cwd=DATA_DIR):
        yield base


# --------------------------------------------------------------------------- inside the MLflow venv


def _populate_inside_venv(db_path: str, models: int, versions: int) -> None:
    import time

    import sqlalchemy as sa
    from mlflow.store.model_registry.dbmodels.models import (
        SqlModelVersion,
        SqlRegisteredModel,
        SqlRegisteredModelTag,
    )
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore

    uri = f"sqlite:///{db_path}"
    if Path(db_path).exists():
        engine = sa.create_engine(uri)
        with engine.connect() as conn:
            try:
                have_models = conn.execute(sa.text("SELECT count(*) FROM registered_models")).scalar()
                have_versions = conn.execute(sa.text("SELECT count(*) FROM model_versions")).scalar()
            except sa.exc.OperationalError:
                have_models = have_versions = -1
        engine.dispose()
        if have_models == models and have_versions == models * versions:
            print(f"MLflow store already holds {models} models x {versions} versions", file=sys.stderr)
            return
        os.unlink(db_path)
    start = time.perf_counter()
    store = SqlAlchemyStore(uri)  # runs MLflow's own schema migrations
    now = int(time.time() * 1000)
    with store.ManagedSessionMaker() as session:
        batch = 2000
        for lo in range(0, models, batch):
            idx = range(lo, min(models, lo + batch))
            session.execute(
                sa.insert(SqlRegisteredModel),
                [
                    {
                        "name": model_name(i),
                        "creation_time": now,
                        "last_updated_time": now,
                        "description": f"Benchmark model {i}: predicts churn for segment {i % 97}.",
                    }
                    for i in idx
                ],
            )
            session.execute(
                sa.insert(SqlRegisteredModelTag),
                [
                    {"name": model_name(i), "key": key, "value": value}
                    for i in idx
                    for key, value in (("team", f"team-{i % 20:02d}"), ("risk_tier", ("low", "medium", "high")[i % 3]))
                ],
            )
            session.execute(
                sa.insert(SqlModelVersion),
                [
                    {
                        "name": model_name(i),
                        "version": v,
                        "creation_time": now,
                        "last_updated_time": now,
                        "description": f"v{v} retrained on data through week {v}",
                        "user_id": f"owner-{i % 100:03d}",
                        "current_stage": STAGES[(v - 1) % len(STAGES)],
                        "source": f"s3://models/{model_name(i)}/{v}/model.pkl",
                        "storage_location": f"s3://models/{model_name(i)}/{v}/model.pkl",
                        "run_id": f"{i:016x}{v:016x}",
                        "status": "READY",
                    }
                    for i in idx
                    for v in range(1, versions + 1)
                ],
            )
    print(
        f"MLflow store populated: {models} models x {versions} versions in {time.perf_counter() - start:.1f} s",
        file=sys.stderr,
    )


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "populate":
        _populate_inside_venv(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        sys.exit("usage: python -m bench.mlflow_peer populate DB_PATH MODELS VERSIONS")
