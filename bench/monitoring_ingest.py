"""Benchmark: ingestion of 1,000,000 predictions with 20 numeric features through the API
(``POST /api/v1/models/{name}/versions/{v}/predictions/``, batches of 10,000 rows, Bearer
token, gunicorn on 127.0.0.1) into PostgreSQL, once as CSV and once as JSON arrays, against
PostgreSQL's own ``COPY`` of the same rows into a table of the same shape (same columns,
indexes, unique constraint and foreign key) in the same run, over as many parallel
connections as the API client uses. Targets: CSV ≥ 50,000 rows/s and ≥ 1/4 of COPY's rate;
JSON ≥ 0.8× the CSV rate.

The request bodies (CSV and JSON) and the COPY text are generated once per day (same values,
same float text; timestamps within the last days, inside the accepted ingestion range) and
cached under ``bench/data/monitoring/``; the client runs in its own process with
``BENCH_INGEST_CONNECTIONS`` (default 2) concurrent connections against
``BENCH_INGEST_WORKERS`` (default: CPU count) gunicorn workers.

    python -m bench.monitoring_ingest             # 1,000,000 rows
    BENCH_QUICK=1 python -m bench.monitoring_ingest   # 100,000 rows
"""

from __future__ import annotations

import http.client
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.common import DATA_DIR, QUICK, Figure, bench_db_url, free_port, log, pg_connect, server

ROWS = 100_000 if QUICK else 1_000_000
BATCH = 10_000
FEATURES = 20
CONNECTIONS = int(os.environ.get("BENCH_INGEST_CONNECTIONS", "2"))
WORKERS = int(os.environ.get("BENCH_INGEST_WORKERS", str(os.cpu_count() or 2)))
MODEL_NAME = "bench-ingest"
# two days back: inside INGEST_MAX_AGE_DAYS / INGEST_MAX_FUTURE whenever the bench runs
DAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=2)
SEED = 7
COPY_TABLE = "bench_copy_prediction"
COLUMNS = "version_id, prediction_id, timestamp, features, prediction, score, received_at"


def feature_names() -> list[str]:
    return [f"f{i:02d}" for i in range(FEATURES)]


# --------------------------------------------------------------------------- data


def _folder() -> Path:
    return DATA_DIR / "monitoring" / f"ingest-{ROWS}x{FEATURES}-{BATCH}-{SEED}-{DAY:%Y%m%d}"


def write_batches() -> list[Path]:
    """One CSV body, one JSON body and one COPY-text file per batch, with identical values (cached).

    COPY text carries ``{version_id}`` and ``{received_at}`` placeholders filled at run time."""
    folder = _folder()
    n_batches = ROWS // BATCH
    paths = [folder / f"batch-{b:04d}.csv" for b in range(n_batches)]
    if all(p.exists() and p.with_suffix(".copy").exists() and p.with_suffix(".json").exists() for p in paths):
        return paths
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    names = feature_names()
    header = ",".join(["prediction_id", "timestamp", *names, "prediction", "score"]) + "\n"
    step = 86_400 / ROWS
    for b, path in enumerate(paths):
        values = rng.normal(size=(BATCH, FEATURES)).round(6)
        scores = rng.random(BATCH).round(6)
        csv_lines = [header]
        copy_lines, json_records = [], []
        for j in range(BATCH):
            i = b * BATCH + j
            pid = f"p{i:08d}"
            ts = (DAY + timedelta(seconds=i * step)).isoformat()
            texts = [repr(float(v)) for v in values[j]]
            score = repr(float(scores[j]))
            pred = "1" if scores[j] >= 0.5 else "0"
            csv_lines.append(f"{pid},{ts},{','.join(texts)},{pred},{score}\n")
            features = "{" + ", ".join(f'"{n}": {t}' for n, t in zip(names, texts, strict=True)) + "}"
            copy_lines.append(f'{{version_id}}\t{pid}\t{ts}\t{features}\t"{pred}"\t{score}\t{{received_at}}\n')
            json_records.append(
                f'{{"prediction_id": "{pid}", "timestamp": "{ts}", "features": {features}, '
                f'"prediction": "{pred}", "score": {score}}}'
            )
        path.with_suffix(".copy").write_text("".join(copy_lines))
        path.with_suffix(".json").write_text("[" + ",\n".join(json_records) + "]")
        path.write_text("".join(csv_lines))
    log(f"wrote {n_batches} batches of {BATCH:,} rows to {folder.relative_to(DATA_DIR.parent.parent)}")
    return paths


# --------------------------------------------------------------------------- setup in the bench database


def bench_version(*, name: str, features: list[str], task_type: str = "binary"):
    """A fresh version (numeric features) of the bench model ``name``, its owner and team."""
    from django.contrib.auth import get_user_model

    from registry.models import RegisteredModel, Team
    from registry.services.audit import CLI
    from registry.services.inventory import model_create, version_create

    user, _ = get_user_model().objects.get_or_create(username="bench-monitoring", defaults={"is_staff": True})
    team, _ = Team.objects.get_or_create(slug="bench-monitoring", defaults={"name": "Bench monitoring"})
    team.members.add(user)
    model = RegisteredModel.objects.filter(name=name).first()
    if model is None:
        model = model_create(actor=user, context=CLI, name=name, team=team, description="Benchmark model.")
    schema = [{"name": f, "type": "numeric"} for f in features]
    version = version_create(model=model, actor=user, context=CLI, feature_schema=schema, task_type=task_type)
    return user, model, version


def _token(user) -> str:
    from registry.choices import TokenScope
    from registry.services.audit import CLI
    from registry.services.tokens import token_create

    _, raw = token_create(
        user=user, name="bench ingest", scopes=[TokenScope.MONITORING_WRITE], expires_at=None, actor=user, context=CLI
    )
    return raw


def _purge_predictions(model_name: str) -> None:
    """Drop earlier runs' rows (bench database only) so every run starts from the same size."""
    with pg_connect(bench_db_url(), autocommit=True) as conn:
        conn.execute(
            "DELETE FROM monitoring_prediction WHERE version_id IN (SELECT v.id FROM registry_modelversion v "
            "JOIN registry_registeredmodel m ON m.id = v.model_id WHERE m.name = %s)",
            [model_name],
        )
        conn.execute(
            "DELETE FROM monitoring_dirtywindow WHERE version_id IN (SELECT v.id FROM registry_modelversion v "
            "JOIN registry_registeredmodel m ON m.id = v.model_id WHERE m.name = %s)",
            [model_name],
        )
        conn.execute("VACUUM ANALYZE monitoring_prediction")
        conn.execute("VACUUM ANALYZE monitoring_predictionkey")  # the DELETE's trigger removed their keys


# --------------------------------------------------------------------------- CPU accounting (Linux /proc)


def _proc_cpu(pid: int) -> float | None:
    """User + system CPU seconds of one process (None when /proc cannot tell)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        return []


def _backend_pids(conn, database: str) -> list[int]:
    """PostgreSQL backends connected to ``database`` other than ``conn``'s own."""
    rows = conn.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [database]
    ).fetchall()
    return [r[0] for r in rows]


def _cpu_sum(pids: list[int]) -> float | None:
    values = [_proc_cpu(p) for p in pids]
    return None if not values or None in values else sum(values)


def _client(port: int, path: str, token: str, files: list[str], content_type: str, connections: int, queue) -> None:
    """Own process: POST the bodies over ``connections`` keep-alive connections (each body is
    read from the page cache just before it is sent)."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": content_type}
    next_index = iter(range(len(files)))
    lock = threading.Lock()
    errors: list[str] = []

    def send() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        while True:
            with lock:
                i = next(next_index, None)
            if i is None:
                break
            conn.request("POST", path, body=Path(files[i]).read_bytes(), headers=headers)
            resp = conn.getresponse()
            body = resp.read()
            if resp.status != 201:
                errors.append(f"batch {i}: HTTP {resp.status} {body[:300]!r}")
        conn.close()

    threads = [threading.Thread(target=send) for _ in range(connections)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    queue.put((time.perf_counter() - start, errors, time.process_time()))


def _gunicorn_cmd(port: int) -> list[str]:
    return [
        str(Path(sys.executable).with_name("gunicorn")),
        "mlops_portal.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(WORKERS),
        "--timeout",
        "600",
        "--log-level",
        "warning",
    ]


def _ingest_over_api(version, token: str, files: list[Path], content_type: str) -> tuple[float, dict]:
    """Wall seconds of the client's run, and CPU seconds: the gunicorn workers (all their
    requests, start-up excluded), their PostgreSQL backends and the client process."""
    from bench.common import ROOT

    port = free_port()
    env = dict(
        os.environ,
        DATABASE_URL=bench_db_url(),
        DEBUG="false",
        LOG_LEVEL="WARNING",
        MLOPS_VAR_DIR=tempfile.mkdtemp(prefix="bench-ingest-"),
        CELERY_BROKER_URL="filesystem://",
        DJANGO_SETTINGS_MODULE="mlops_portal.settings",
    )
    path = f"/api/v1/models/{version.model.name}/versions/{version.version}/predictions/"
    cpu: dict = {}
    with (
        server(
            _gunicorn_cmd(port),
            env=env,
            ready_url=f"http://127.0.0.1:{port}/api/schema/",
            log_name="ingest-gunicorn",
            cwd=ROOT,
        ) as gunicorn,
        pg_connect(bench_db_url(), autocommit=True) as watch,
    ):
        database = bench_db_url().rsplit("/", 1)[-1]
        workers = _children(gunicorn.pid)
        workers_before = _cpu_sum(workers)
        # a backend the readiness check opened (persistent connections) serves requests too
        backends_before = {pid: _proc_cpu(pid) or 0.0 for pid in _backend_pids(watch, database)}
        ctx = multiprocessing.get_context("spawn")
        queue = ctx.Queue()
        args = (port, path, token, [str(f) for f in files], content_type, CONNECTIONS, queue)
        proc = ctx.Process(target=_client, args=args)
        proc.start()
        seconds, errors, client_cpu = queue.get(timeout=3600)
        proc.join()
        workers_after = _cpu_sum(workers)
        if workers_before is not None and workers_after is not None:
            cpu["workers"] = workers_after - workers_before
        backends = _backend_pids(watch, database)
        backends_after = _cpu_sum(backends)
        if backends_after is not None:
            cpu["backends"] = backends_after - sum(backends_before.get(pid, 0.0) for pid in backends)
        cpu["client"] = client_cpu
    if errors:
        raise RuntimeError(f"{len(errors)} batches failed, first: {errors[0]}")
    return seconds, cpu


def _copy_peer(version_id: int, files: list[Path], connections: int) -> tuple[float, float | None]:
    """PostgreSQL COPY FROM STDIN of the same rows, batch by batch, one commit per batch, over
    ``connections`` parallel connections (as many as the API client uses) → (wall seconds, the
    backends' CPU seconds)."""
    received_at = datetime.now(UTC).isoformat()
    blocks = [
        f.with_suffix(".copy")
        .read_text()
        .replace("{version_id}", str(version_id))
        .replace("{received_at}", received_at)
        .encode()
        for f in files
    ]
    with pg_connect(bench_db_url(), autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {COPY_TABLE}")
        conn.execute(f"CREATE TABLE {COPY_TABLE} (LIKE monitoring_prediction INCLUDING ALL)")
        conn.execute(
            f"ALTER TABLE {COPY_TABLE} ADD FOREIGN KEY (version_id) REFERENCES registry_modelversion (id) "
            "DEFERRABLE INITIALLY DEFERRED"
        )
    streams = [pg_connect(bench_db_url(), autocommit=True) for _ in range(connections)]
    next_block = iter(blocks)
    lock = threading.Lock()

    def stream(conn) -> None:
        while True:
            with lock:
                block = next(next_block, None)
            if block is None:
                return
            with conn.transaction(), conn.cursor().copy(f"COPY {COPY_TABLE} ({COLUMNS}) FROM STDIN") as copy:
                copy.write(block)

    try:
        pids = [c.info.backend_pid for c in streams]
        cpu_before = _cpu_sum(pids)
        threads = [threading.Thread(target=stream, args=(c,)) for c in streams]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.perf_counter() - start
        cpu_after = _cpu_sum(pids)
    finally:
        for c in streams:
            c.close()
    with pg_connect(bench_db_url(), autocommit=True) as conn:
        copied = conn.execute(f"SELECT count(*) FROM {COPY_TABLE}").fetchone()[0]
        conn.execute(f"DROP TABLE {COPY_TABLE}")
    assert copied == ROWS, f"COPY stored {copied} rows, expected {ROWS}"
    return seconds, (None if cpu_before is None or cpu_after is None else cpu_after - cpu_before)


def _cpu_text(cpu: dict) -> str:
    """'workers 5.1 s (5.1 us/row), backends …' for the CPU seconds that were measured."""
    parts = [
        f"{name} {value:.1f} s ({value / ROWS * 1e6:.1f} us/row)" for name, value in cpu.items() if value is not None
    ]
    return ", ".join(parts) or "not measured"


def _api_run(fmt: str, files: list[Path], token: str) -> dict:
    """One format through the API into a fresh version → rate, seconds, CPU text, load."""
    from monitoring.models import Prediction

    content_type = {"csv": "text/csv", "json": "application/json"}[fmt]
    bodies = [f.with_suffix(f".{fmt}") for f in files]
    _purge_predictions(MODEL_NAME)  # each format into the same empty day, not the other's rows
    _, _, version = bench_version(name=MODEL_NAME, features=feature_names())
    log(f"ingest {ROWS:,} rows over the API as {fmt.upper()} ({len(bodies)} batches, {CONNECTIONS} connections)")
    load = os.getloadavg()[0]
    seconds, cpu = _ingest_over_api(version, token, bodies, content_type)
    stored = Prediction.objects.filter(version=version).count()
    assert stored == ROWS, f"the API stored {stored} rows from {fmt}, expected {ROWS}"
    result = {
        "rate": ROWS / seconds,
        "seconds": seconds,
        "cpu": _cpu_text(cpu),
        "load": max(load, os.getloadavg()[0]),
        "bytes": sum(b.stat().st_size for b in bodies),
        "version": version,
    }
    log(f"  API {fmt.upper()}: {seconds:.1f} s, {result['rate']:,.0f} rows/s; CPU: {result['cpu']}")
    return result


def run() -> list[Figure]:
    files = write_batches()
    user, _, _ = bench_version(name=MODEL_NAME, features=feature_names())
    token = _token(user)
    api = {fmt: _api_run(fmt, files, token) for fmt in ("csv", "json")}

    log(f"PostgreSQL COPY of the same {ROWS:,} rows into {COPY_TABLE} over {CONNECTIONS} connections")
    load_copy = os.getloadavg()[0]
    copy_seconds, copy_cpu = _copy_peer(api["csv"]["version"].pk, files, CONNECTIONS)
    load_copy = max(load_copy, os.getloadavg()[0])
    copy_rate = ROWS / copy_seconds
    copy_cpu_text = _cpu_text({"backends": copy_cpu})
    log(f"  COPY: {copy_seconds:.1f} s, {copy_rate:,.0f} rows/s; CPU: {copy_cpu_text}")
    _purge_predictions(MODEL_NAME)

    csv, json_ = api["csv"], api["json"]
    setup = (
        f"{ROWS // BATCH} POSTs of {BATCH:,} rows, {CONNECTIONS} client connections, gunicorn {WORKERS} workers, "
        f"validation + COPY + dirty windows + audit event per batch"
    )
    copy_note = (
        f"COPY: COPY FROM STDIN of pre-rendered text into a table with the same columns, indexes and FK, "
        f"one commit per {BATCH:,} rows, over {CONNECTIONS} parallel connections ({copy_seconds:.1f} s; "
        f"CPU {copy_cpu_text}); 1-min load {load_copy:.1f}"
    )
    figures = []
    for fmt, result in (("CSV", csv), ("JSON", json_)):
        share = result["rate"] / copy_rate
        figures.append(
            Figure(
                f"ingest {ROWS:,} predictions × {FEATURES} features via API, {fmt}",
                result["rate"],
                "rows/s",
                peer=f"PostgreSQL COPY, same rows, {CONNECTIONS} connections",
                peer_value=copy_rate,
                ratio=share,
                target=">= 50,000 rows/s and >= 0.25x COPY" if fmt == "CSV" else "(JSON vs CSV below)",
                passed=(result["rate"] >= 50_000 and share >= 0.25) if fmt == "CSV" else None,
                note=(
                    f"ratio = API rate / COPY rate. API {fmt}: {setup} ({result['seconds']:.1f} s, "
                    f"{result['bytes'] / 1e6:.0f} MB of bodies; CPU {result['cpu']}; 1-min load "
                    f"{result['load']:.1f} on {os.cpu_count()} CPUs). {copy_note}."
                ),
            )
        )
    figures.append(
        Figure(
            "JSON ingestion rate relative to CSV, via API",
            json_["rate"],
            "rows/s",
            peer="the same rows as CSV via API",
            peer_value=csv["rate"],
            ratio=json_["rate"] / csv["rate"],
            target=">= 0.8x CSV",
            passed=json_["rate"] >= 0.8 * csv["rate"],
            note="ratio = JSON rows/s / CSV rows/s; JSON is decoded column-wise by the feature schema (msgspec).",
        )
    )
    return figures


def main() -> int:
    from bench.__main__ import setup_django

    setup_django()
    for figure in run():
        print(
            f"{figure.name}: {figure.value:,.0f} {figure.unit} | {figure.peer}: {figure.peer_value:,.0f} | "
            f"ratio {figure.ratio:.3g}x | target {figure.target} | {figure.verdict()}\n    {figure.note}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
