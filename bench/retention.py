"""Retention at scale (issue 21, benchmarks a and c), on PostgreSQL ``mlops_bench``
(``BENCH_DB_NAME`` to change it).

1. An empty baseline: ingestion rate (the product's ``predictions_ingest``, JSON batches of
   10,000 rows, in-process) and the model dashboard's median render time.
2. ``DAYS`` x ``ROWS_PER_DAY`` predictions with 20 features and a subject id each, loaded by
   ``COPY`` (the product's own COPY text, ``ingest_storage.copy_chunks``) into the daily
   partitions. Full size: 30 x 1,000,000 = 30 M rows (about 25 GB with indexes: the disk is
   checked first).
3. The same ingestion rate and dashboard render with the rows in place (target: within 10 %).
4. Erasure of one subject across all rows (the product's ``erasure_request_create``; target < 1 s).
5. Purge of the 10 oldest days: a ``DELETE`` of exactly those rows, timed and rolled back,
   then the product's ``retention_purge`` (receipts + DETACH CONCURRENTLY + one DROP per day,
   each dropped day recorded for the keys sweep) on the same rows (target: >= 100x faster);
   then the keys sweep that follows it (``prediction_keys_sweep``: the dropped days' keys in
   the keys table, in batches), timed apart and added to the purge in a "purge + keys sweep"
   line; then, as a second peer, a committed ``DELETE`` of the next 10 days' rows followed by
   ``VACUUM`` of their partitions (what a table without partitions pays before the space is
   reusable).

The database holds at least ``BENCH_RETENTION_INVENTORY`` models (10,000, the inventory
bench's size; topped up with idle models), so the purge meets a real inventory.

Sizes: ``BENCH_QUICK=1`` → 30 x 20,000; ``BENCH_RETENTION_ROWS_PER_DAY`` and
``BENCH_RETENTION_DAYS`` override. ``BENCH_RETENTION_TRACE=1`` logs the purge's and the
sweep's statements.
``python -m bench retention`` runs this one alone.
"""

from __future__ import annotations

import os
import shutil
import statistics
import time
from datetime import UTC, datetime, timedelta

import numpy as np

from bench.common import QUICK, ROOT, Figure, log, run_alone

DAYS = int(os.environ.get("BENCH_RETENTION_DAYS", "30"))
ROWS_PER_DAY = int(os.environ.get("BENCH_RETENTION_ROWS_PER_DAY", "20000" if QUICK else "1000000"))
PURGE_DAYS = 10
FEATURES = 20
COPY_BATCH = 100_000
INGEST_BATCHES = 5 if QUICK else 20
INGEST_ROWS = 10_000
RENDERS = 5 if QUICK else 15
SUBJECTS = 100_000
BYTES_PER_ROW = 850  # measured here: heap + 4 indexes, 20 features
MODEL = "bench-retention"
INVENTORY = int(os.environ.get("BENCH_RETENTION_INVENTORY", "1000" if QUICK else "10000"))


def _model():
    from django.contrib.auth import get_user_model

    from monitoring.management.commands.seed_dashboard_bench import seed_dashboard
    from registry.models import RegisteredModel

    admin, _ = get_user_model().objects.get_or_create(
        username="bench-retention-admin", defaults={"is_staff": True, "is_superuser": True}
    )
    model = seed_dashboard(name=MODEL, days=DAYS, features=FEATURES)
    RegisteredModel.objects.filter(pk=model.pk).update(risk_tier="medium")
    model.refresh_from_db()
    return admin, model, model.versions.get(version=1)


def _inventory(model) -> int:
    """At least INVENTORY models in the database (the inventory bench's size), topped up with
    idle ones (a version each, no rows): the purge visits every model's policy → the count."""
    from registry.models import ModelVersion, RegisteredModel

    have = RegisteredModel.objects.count()
    if have < INVENTORY:
        first = RegisteredModel.objects.filter(name__startswith=f"{MODEL}-idle-").count()
        idle = RegisteredModel.objects.bulk_create(
            [
                RegisteredModel(name=f"{MODEL}-idle-{first + i:05d}", owner=model.owner, team=model.team)
                for i in range(INVENTORY - have)
            ],
            batch_size=2000,
        )
        ModelVersion.objects.bulk_create([ModelVersion(model=m, version=1) for m in idle], batch_size=2000)
    return RegisteredModel.objects.count()


def _clear(model, admin) -> None:
    """Remove earlier runs' raw rows of this model by dropping their partitions (fast)."""
    from monitoring.services.prediction_keys import prediction_keys_sweep
    from monitoring.services.retention import retention_policy_update, retention_purge
    from registry.services.audit import CLI

    retention_policy_update(model=model, actor=admin, context=CLI, changes={"raw_days": 1, "legal_hold": False})
    retention_purge(now=datetime.now(UTC) + timedelta(days=2))
    prediction_keys_sweep()  # the dropped days' keys, or the ids loaded next would be refused


def _ingest_rate(version, admin, *, tag: str) -> float:
    """rows/s of the product's ingestion service (JSON, 10,000 rows a batch), today's timestamps,
    after one batch not timed (the first pays for imports, caches and today's partition)."""
    import orjson
    from django.db import connection

    from bench.scale import _cpu_seconds
    from monitoring.services.ingestion import predictions_ingest
    from registry.services.audit import CLI

    rng = np.random.default_rng(3)
    now = datetime.now(UTC) - timedelta(minutes=30)
    names = [f"feature_{i:02d}" for i in range(FEATURES)]
    bodies = []
    for b in range(INGEST_BATCHES + 1):
        values = rng.normal(size=(INGEST_ROWS, FEATURES)).round(4)
        stamp = (now + timedelta(seconds=b)).isoformat()
        bodies.append(
            orjson.dumps(
                [
                    {
                        "prediction_id": f"{tag}-{b}-{i}",
                        "timestamp": stamp,
                        "features": dict(zip(names, row.tolist(), strict=True)),
                        "prediction": int(i % 2),
                        "score": 0.5,
                    }
                    for i, row in enumerate(values)
                ]
            )
        )
    predictions_ingest(version=version, body=bodies.pop(), content_type="application/json", actor=admin, context=CLI)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    load, start = os.getloadavg()[0], time.perf_counter()
    own, db = _cpu_seconds(os.getpid()), _cpu_seconds(backend)
    for body in bodies:
        predictions_ingest(version=version, body=body, content_type="application/json", actor=admin, context=CLI)
    seconds, rows = time.perf_counter() - start, INGEST_BATCHES * INGEST_ROWS
    own, db = (_cpu_seconds(os.getpid()) - own) / rows * 1e6, (_cpu_seconds(backend) - db) / rows * 1e6
    log(
        f"  ingestion ({tag}): {rows / seconds:,.0f} rows/s, CPU a row {own:.0f} µs process / {db:.0f} µs"
        f" backend, load {load:.1f}"
    )
    return rows / seconds


def _render_ms(admin) -> float:
    from django.test import Client

    client = Client()
    client.force_login(admin)
    times = []
    for _ in range(RENDERS):
        start = time.perf_counter()
        response = client.get(f"/monitoring/models/{MODEL}/?range=30d")
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200
    return statistics.median(times)


def _load(version, first_day: datetime) -> tuple[float, str]:
    """COPY DAYS x ROWS_PER_DAY rows → (rows/s, the subject id erased later)."""
    from django.db import connection, transaction

    from monitoring.services import partitions
    from monitoring.services.ingest_storage import copy_chunks
    from monitoring.services.ingest_validation import PredictionBatch
    from monitoring.services.raw_digests import digests_add
    from monitoring.services.subjects import subject_hash

    partitions.partitions_ensure(
        table="monitoring_prediction", days=[(first_day + i * partitions.DAY).date() for i in range(DAYS)]
    )
    pool = np.array([subject_hash(f"subject-{i}") for i in range(SUBJECTS)], dtype=object)
    rng = np.random.default_rng(11)
    names = [f"feature_{i:02d}" for i in range(FEATURES)]
    received = datetime.now(UTC).isoformat()
    columns = "version_id, prediction_id, timestamp, features, prediction, score, subject_hash, received_at"
    start, total = time.perf_counter(), 0
    with connection.cursor() as cursor:
        for day in range(DAYS):
            base = int((first_day + timedelta(days=day)).timestamp() * 1_000_000)
            for offset in range(0, ROWS_PER_DAY, COPY_BATCH):
                n = min(COPY_BATCH, ROWS_PER_DAY - offset)
                values = rng.normal(size=(n, FEATURES)).round(4)
                batch = PredictionBatch(
                    fmt="json",
                    ids=[f"d{day}-{offset + i}" for i in range(n)],
                    ts_us=base + np.sort(rng.integers(0, 86_400_000_000, n)),
                    numeric={name: values[:, j] for j, name in enumerate(names)},
                    categorical={},
                    prediction=[str(v) for v in rng.integers(0, 2, n)],
                    score=rng.random(n),
                    subjects=pool[(np.arange(n) + day * ROWS_PER_DAY + offset) % SUBJECTS].tolist(),
                )
                with transaction.atomic():  # as ingestion stores a batch: rows and their days' digests
                    with cursor.cursor.copy(f"COPY monitoring_prediction ({columns}) FROM STDIN") as copy:
                        for text in copy_chunks(batch, f"{version.pk}\t", f"\t{received}\n"):
                            copy.write(text)
                    digests_add(version_id=version.pk, ids=batch.ids, ts_us=batch.ts_us)
                total += n
            log(f"  day {day + 1}/{DAYS}: {total:,} rows, {total / (time.perf_counter() - start):,.0f} rows/s")
        cursor.execute("ANALYZE monitoring_prediction")
    return total / (time.perf_counter() - start), "subject-7"


def _delete_seconds(version, cutoff: datetime) -> tuple[float, int]:
    """DELETE of the rows the purge will drop, timed, then rolled back (the same rows stay)."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        start = time.perf_counter()
        cursor.execute(
            "DELETE FROM monitoring_prediction WHERE version_id = %s AND timestamp < %s", [version.pk, cutoff]
        )
        rows = cursor.rowcount
        seconds = time.perf_counter() - start
        transaction.set_rollback(True)
    return seconds, rows


def _delete_vacuum_seconds(version, start: datetime) -> tuple[float, int]:
    """DELETE of the next PURGE_DAYS days' rows, committed, then VACUUM of their partitions:
    what removing them costs without partitions before their space can be used again."""
    from django.db import connection, transaction

    from monitoring.services import partitions

    end = start + PURGE_DAYS * partitions.DAY
    days = [(start + i * partitions.DAY).date() for i in range(PURGE_DAYS)]
    with connection.cursor() as cursor:
        begin = time.perf_counter()
        with transaction.atomic():
            cursor.execute(
                "DELETE FROM monitoring_prediction WHERE version_id = %s AND timestamp >= %s AND timestamp < %s",
                [version.pk, start, end],
            )
            rows = cursor.rowcount
        for day in days:
            cursor.execute(f'VACUUM "{partitions.partition_name("monitoring_prediction", day)}"')
        return time.perf_counter() - begin, rows


def _traced(label: str, call):
    """``call()``; with ``BENCH_RETENTION_TRACE=1`` each kind of statement's time is logged
    (what is left of the total is commits and Python)."""
    import re
    from collections import defaultdict

    from django.db import connection

    if not os.environ.get("BENCH_RETENTION_TRACE"):
        return call()
    spent: dict[str, list] = defaultdict(lambda: [0, 0.0])

    def timed(execute, sql, params, many, context):
        begin = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            entry = spent[re.sub(r"_p\d{8}", "_pX", " ".join(sql.split()))[:90]]
            entry[0] += 1
            entry[1] += time.perf_counter() - begin

    begin = time.perf_counter()
    with connection.execute_wrapper(timed):
        result = call()
    total = time.perf_counter() - begin
    log(f"  {label} {total:.3f} s, of which statements {sum(t for _, t in spent.values()):.3f} s:")
    for sql, (n, seconds) in sorted(spent.items(), key=lambda kv: -kv[1][1])[:8]:
        log(f"    {seconds:.3f} s  {n:3d} x  {sql}")
    return result


def _purge_and_sweep(version, cutoff: datetime, today: datetime) -> tuple[list[dict], float, int, float]:
    """The product's purge as of ``today`` (receipts, DETACH, DROP, the dropped days recorded),
    then the keys sweep that follows it (``prediction_keys_sweep``, which the purge queues once
    it is done; run here in-process right after) → (receipts, purge s, keys deleted, sweep s).
    As of ``today``, not the clock: a run that crosses midnight purges the days it loaded for."""
    from django.db import connection

    from monitoring.services.partitions import PREDICTION_KEYS
    from monitoring.services.prediction_keys import prediction_keys_sweep
    from monitoring.services.retention import retention_purge

    start = time.perf_counter()
    receipts = _traced("purge", lambda: retention_purge(now=today))
    purge_s = time.perf_counter() - start
    start = time.perf_counter()
    keys = _traced("keys sweep", prediction_keys_sweep)
    sweep_s = time.perf_counter() - start
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM {PREDICTION_KEYS} WHERE version_id = %s AND timestamp < %s", [version.pk, cutoff]
        )
        assert cursor.fetchone()[0] == 0, "keys of dropped days left after the sweep"
    log(f"  keys sweep: {keys:,} keys in {sweep_s:.2f} s, {keys / max(sweep_s, 1e-9):,.0f} keys/s")
    return receipts, purge_s, keys, sweep_s


def _purge_figures(version, model, admin, today: datetime, *, models: int) -> list[Figure]:
    """The product's purge of the PURGE_DAYS oldest days against a DELETE of the same rows
    (rolled back; its trigger deletes their keys too), the keys sweep that follows the purge,
    purge + sweep against the same DELETE, and the purge against a committed DELETE + VACUUM
    of the next PURGE_DAYS days."""
    from monitoring.models import Prediction
    from monitoring.services.prediction_keys import KEYS_SWEEP_BATCH
    from monitoring.services.retention import retention_policy_update
    from registry.services.audit import CLI

    retention_policy_update(model=model, actor=admin, context=CLI, changes={"raw_days": DAYS - PURGE_DAYS})
    cutoff = today - timedelta(days=DAYS - PURGE_DAYS)
    delete_s, deleted = _delete_seconds(version, cutoff)
    receipts, purge_s, keys, sweep_s = _purge_and_sweep(version, cutoff, today)
    dropped = sum(r["rows"] for r in receipts if r["model"] == MODEL and r["table"] == "monitoring_prediction")
    left = Prediction.objects.filter(version=version, timestamp__lt=cutoff).count()
    vacuum_s, vacuumed = _delete_vacuum_seconds(version, cutoff)
    total_s = purge_s + sweep_s
    return [
        Figure(
            "purge of 10 days: partition drop",
            purge_s,
            "s",
            peer="DELETE of the same rows (rolled back)",
            peer_value=delete_s,
            ratio=delete_s / purge_s,
            target=">= 100x faster",
            passed=delete_s / purge_s >= 100 and dropped == deleted and left == 0,
            note=f"{deleted:,} rows; the purge includes its {len(receipts)} receipts (day digests kept at ingestion)"
            f" and records the dropped days, with {models:,} models in the inventory; their keys go in the sweep below",
        ),
        Figure(
            "keys sweep after the purge",
            sweep_s,
            "s",
            note=f"{keys:,} keys of the dropped days, {keys / max(sweep_s, 1e-9):,.0f} keys/s,"
            f" {KEYS_SWEEP_BATCH:,} a transaction (the task the purge queues on commit)",
        ),
        Figure(
            "purge + keys sweep",
            total_s,
            "s",
            peer="DELETE of the same rows (rolled back)",
            peer_value=delete_s,
            ratio=delete_s / total_s,
            note="everything the removal costs the database, the sweep outside the purge's transaction",
        ),
        Figure(
            "purge of 10 days: partition drop",
            purge_s,
            "s",
            peer="DELETE + VACUUM of the next 10 days",
            peer_value=vacuum_s,
            ratio=vacuum_s / purge_s,
            note=f"{vacuumed:,} rows deleted and committed, then VACUUM of their 10 partitions (space reusable)",
        ),
    ]


def run() -> list[Figure]:
    from django.conf import settings
    from django.db import connection

    from monitoring.services.erasure import erasure_request_create
    from registry.services.audit import CLI

    if connection.vendor != "postgresql":
        raise SystemExit("the retention benchmark needs PostgreSQL")
    if not settings.SUBJECT_KEY:  # the bench runs with DEBUG off: a key of its own
        settings.SUBJECT_KEY = "bench-subject-key"
    rows = DAYS * ROWS_PER_DAY
    free = shutil.disk_usage(ROOT).free
    need = rows * BYTES_PER_ROW * 1.2
    if need > free:
        raise SystemExit(f"{rows:,} rows need about {need / 1e9:.0f} GB; {free / 1e9:.0f} GB free")
    log(f"retention: {DAYS} days x {ROWS_PER_DAY:,} rows = {rows:,} ({need / 1e9:.1f} GB of {free / 1e9:.0f} GB free)")
    admin, model, version = _model()
    models = _inventory(model)
    _clear(model, admin)
    empty_rate = _ingest_rate(version, admin, tag="empty")
    empty_ms = _render_ms(admin)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    first_day = today - timedelta(days=DAYS)
    load_rate, subject = _load(version, first_day)
    full_rate = _ingest_rate(version, admin, tag="full")
    full_ms = _render_ms(admin)
    start = time.perf_counter()
    erasure = erasure_request_create(subject_id=subject, actor=admin, context=CLI)
    erase_s = time.perf_counter() - start
    erased = sum(o.predictions for o in erasure.outcomes.all())
    purge = _purge_figures(version, model, admin, today, models=models)
    ingest_ratio = full_rate / empty_rate
    render_ratio = full_ms / empty_ms
    size = f"{DAYS} d x {ROWS_PER_DAY:,} = {rows:,} rows"
    return [
        Figure(
            f"COPY load ({size})",
            load_rate,
            "rows/s",
            note="the product's COPY text in 100,000-row COPY statements, plus the days' id digests",
        ),
        *purge,
        Figure(
            "ingestion with all rows in place",
            full_rate,
            "rows/s",
            peer="empty table",
            peer_value=empty_rate,
            ratio=ingest_ratio,
            target="within 10%",
            passed=ingest_ratio >= 0.9,
            note="predictions_ingest, JSON, 10,000-row batches, ids refused twice by the keys table's primary key",
        ),
        Figure(
            "dashboard render (30 d) with all rows in place",
            full_ms,
            "ms",
            peer="empty table",
            peer_value=empty_ms,
            ratio=render_ratio,
            target="within 10%",
            passed=render_ratio <= 1.1,
        ),
        Figure(
            "erasure of one subject",
            erase_s,
            "s",
            peer="limit",
            peer_value=1.0,
            ratio=erase_s / 1.0,
            target="< 1 s",
            passed=erase_s < 1.0 and erased > 0,
            note=f"{erased} rows of the subject among {rows:,}; index on the HMAC in every partition",
        ),
    ]


if __name__ == "__main__":
    raise SystemExit(run_alone(run))
