"""The measured simulation behind docs/scale.md: one and two ingestion processes, then one and
two window workers, against one PostgreSQL (``mlops_bench``; ``BENCH_DB_NAME`` to change it).

* Ingestion: each process calls the product's ``predictions_ingest`` (JSON, 10,000-row batches,
  20 numeric features; validation, COPY, digests, dirty marks, audit event) for a version of its
  own. Reported: rows/s of all processes together, and CPU per row in the processes and in their
  PostgreSQL backends (Linux ``/proc``), from which the cores per tier at 1 B/day follow.
* Workers: each process takes dirty hourly windows (``dirty_windows_sweep``) and computes them
  (``window_compute``: reads the raw rows, bins them on the reference profile, stores counts and
  metrics), as a Celery worker does. Reported: raw rows per second turned into aggregates.

The HTTP layer (gunicorn) is left out here; ``bench.monitoring_ingest`` measures it.
``BENCH_QUICK=1``: fewer batches.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from datetime import UTC, datetime, timedelta

import numpy as np

from bench.common import QUICK, Figure, log, run_alone

FEATURES = 20
BATCH = 10_000
BATCHES = 4 if QUICK else 20  # per ingestion process
MODEL = "bench-scale"
TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def _versions(n: int):
    import io

    import pandas as pd
    from django.contrib.auth import get_user_model

    from monitoring.services.ingestion import reference_upload
    from monitoring.services.reference_profiles import reference_profile_compute
    from registry.models import RegisteredModel, Team
    from registry.services.audit import CLI
    from registry.services.inventory import model_create, version_create

    user, _ = get_user_model().objects.get_or_create(username="bench-scale", defaults={"is_staff": True})
    team, _ = Team.objects.get_or_create(slug="bench-scale", defaults={"name": "Bench scale"})
    team.members.add(user)
    model = RegisteredModel.objects.filter(name=MODEL).first() or model_create(
        actor=user, context=CLI, name=MODEL, team=team, description="Scale simulation."
    )
    schema = [{"name": f"f{i:02d}", "type": "numeric"} for i in range(FEATURES)]
    rng = np.random.default_rng(0)
    versions = []
    for _ in range(n):
        version = version_create(model=model, actor=user, context=CLI, feature_schema=schema, task_type="binary")
        frame = pd.DataFrame(rng.normal(size=(20_000, FEATURES)), columns=[f["name"] for f in schema])
        frame["prediction"] = rng.integers(0, 2, len(frame))
        frame["score"] = rng.random(len(frame))
        body = io.BytesIO()
        frame.to_csv(body, index=False)
        profile = reference_upload(
            version=version, body=body.getvalue(), content_type="text/csv", actor=user, context=CLI
        )
        reference_profile_compute(profile_id=profile.pk)
        versions.append(version.pk)
    return user.pk, versions


def _bodies(tag: str, start: datetime) -> list[bytes]:
    import orjson

    rng = np.random.default_rng(hash(tag) % 2**32)
    names = [f"f{i:02d}" for i in range(FEATURES)]
    bodies = []
    for b in range(BATCHES):
        values = rng.normal(size=(BATCH, FEATURES)).round(4)
        seconds = rng.integers(0, 24 * 3600, BATCH)
        bodies.append(
            orjson.dumps(
                [
                    {
                        "prediction_id": f"{tag}-{b}-{i}",
                        "timestamp": (start + timedelta(seconds=int(seconds[i]))).isoformat(),
                        "features": dict(zip(names, row.tolist(), strict=True)),
                        "prediction": int(i % 2),
                        "score": 0.5,
                    }
                    for i, row in enumerate(values)
                ]
            )
        )
    return bodies


def _ingest_child(user_id: int, version_id: int, tag: str, start: datetime, queue) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection

    from monitoring.services.ingestion import predictions_ingest
    from registry.models import ModelVersion
    from registry.services.audit import CLI

    user = get_user_model().objects.get(pk=user_id)
    version = ModelVersion.objects.get(pk=version_id)
    bodies = _bodies(tag, start)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    own, db = _cpu_seconds(os.getpid()), _cpu_seconds(backend)
    began = time.perf_counter()
    for body in bodies:
        predictions_ingest(version=version, body=body, content_type="application/json", actor=user, context=CLI)
    queue.put(
        (BATCHES * BATCH, began, time.perf_counter(), _cpu_seconds(os.getpid()) - own, _cpu_seconds(backend) - db)
    )


def _worker_child(queue) -> None:
    from django.db import connection

    from monitoring.services.window_marks import dirty_windows_sweep
    from monitoring.services.windows import window_compute

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    own, db = _cpu_seconds(os.getpid()), _cpu_seconds(backend)
    began, done = time.perf_counter(), []
    while True:
        claimed = dirty_windows_sweep(limit=1)
        if not claimed:
            break
        for version_id, start, granularity in claimed:
            window_compute(version_id=version_id, window_start=start, granularity=granularity)
            if granularity == "hourly":
                done.append((version_id, start))
    queue.put((done, began, time.perf_counter(), _cpu_seconds(os.getpid()) - own, _cpu_seconds(backend) - db))


def _run(target, args_list) -> list[tuple]:
    from django.db import connections

    connections.close_all()
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args, queue)) for args in args_list]
    for p in procs:
        p.start()
    results = []
    while len(results) < len(procs):
        results.append(queue.get(timeout=3600))
    for p in procs:
        p.join()
    return results


def _summary(results: list[tuple]) -> tuple[float, float, float, float]:
    """(total units, wall seconds, process CPU s, backend CPU s)."""
    total = sum(r[0] for r in results)
    wall = max(r[2] for r in results) - min(r[1] for r in results)
    return total, wall, sum(r[3] for r in results), sum(r[4] for r in results)


def run() -> list[Figure]:
    from django.db.models import Count
    from django.db.models.functions import TruncHour

    from monitoring.models import DirtyWindow, Prediction

    user_id, versions = _versions(2)
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    figures = []
    rates = {}
    for n in (1, 2):
        tag = f"{datetime.now(UTC):%H%M%S}-{n}"
        log(f"scale: {n} ingestion process(es) x {BATCHES} batches of {BATCH:,}")
        rows, wall, cpu, db = _summary(
            _run(_ingest_child, [(user_id, versions[i], f"{tag}-{i}", day) for i in range(n)])
        )
        rates[n] = rows / wall
        figures.append(
            Figure(
                f"ingestion, {n} process(es) against one PostgreSQL",
                rows / wall,
                "rows/s",
                peer="1 process" if n == 2 else "",
                peer_value=rates[1] if n == 2 else None,
                ratio=rates[n] / rates[1] if n == 2 else None,
                note=f"CPU per row: ingestion {cpu / rows * 1e6:.1f} µs, PostgreSQL backend {db / rows * 1e6:.1f} µs",
            )
        )
    counts = {
        (v, hour): n
        for v, hour, n in Prediction.objects.filter(version_id__in=versions)
        .annotate(hour=TruncHour("timestamp"))
        .values_list("version_id", "hour")
        .annotate(n=Count("pk"))
    }
    hourly = list(DirtyWindow.objects.filter(version_id__in=versions, granularity="hourly").order_by("pk"))
    log(f"scale: {len(hourly)} dirty hourly windows, {sum(counts.values()):,} rows")
    worker_rates = {}
    for n in (1, 2):  # one worker computes the first half of the windows, two workers the rest
        later = datetime.now(UTC) + timedelta(days=1)
        if n == 1:
            DirtyWindow.objects.filter(pk__in=[w.pk for w in hourly[len(hourly) // 2 :]]).update(enqueued_at=later)
        else:
            DirtyWindow.objects.filter(granularity="hourly").update(enqueued_at=None, claimed_at=None, lease_until=None)
        DirtyWindow.objects.filter(granularity="daily").update(enqueued_at=later)  # daily sums: not measured
        log(f"scale: {n} worker(s)")
        results = _run(_worker_child, [() for _ in range(n)])
        done = [w for r in results for w in r[0]]
        rows = sum(counts.get(w, 0) for w in done)
        _, wall, cpu, db = _summary([(0, *r[1:]) for r in results])
        worker_rates[n] = rows / wall
        figures.append(
            Figure(
                f"window workers, {n} process(es): raw rows aggregated",
                worker_rates[n],
                "rows/s",
                peer="1 worker" if n == 2 else "",
                peer_value=worker_rates[1] if n == 2 else None,
                ratio=worker_rates[n] / worker_rates[1] if n == 2 else None,
                note=f"{len(done)} hourly windows, {rows:,} rows; CPU per raw row: worker {cpu / rows * 1e6:.1f} µs, "
                f"PostgreSQL backend {db / rows * 1e6:.1f} µs",
            )
        )
    return figures


if __name__ == "__main__":
    raise SystemExit(run_alone(run))
