"""Audit log benchmark (issue 4 item 8), on PostgreSQL ``mlops_bench_audit`` (its own database).

1. Load 1,000,000 chained events fast: the chain is computed in Python with the
   server's own hash rule (``registry.verify_export.event_hash``) and the rows go in
   with ``COPY``. The table is reset with TRUNCATE, in a transaction that sets the switch
   the audit table's TRUNCATE trigger honours (``mlops.allow_audit_truncate``; the portal
   never sets it).
2. Verify the 1,000,000 events with ``registry.services.audit.audit_verify`` (what
   ``manage.py verify_audit`` runs). Target: < 10 s.
3. Export them as CSV through the real code path, ``GET /api/v1/audit/export?format=csv``
   (Bearer token, DRF view, ``audit_export`` service, streamed response) in a child
   process reading the stream to the end: time and that process's peak RSS, against
   PostgreSQL's own ``COPY (SELECT … same columns, same rows …) TO STDOUT`` (psql) as
   the physical limit. Targets: within 3x of COPY, peak RSS < 200 MB.
4. Append throughput: 4 writer processes calling ``audit_record`` in their own
   transactions for a fixed time on top of the 1M events; then the whole chain is
   verified again (no forks under concurrency).
"""

from __future__ import annotations

import contextlib
import csv
import json
import multiprocessing
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from bench.common import (
    QUICK,
    ROOT,
    Figure,
    bench_db_url,
    ensure_database,
    log,
    percentile,
    pg_connect,
    ratio,
    run_measured,
    timer,
)

EVENTS = 100_000 if QUICK else 1_000_000
# Its own database (BENCH_AUDIT_DB overrides the name, e.g. to keep a private copy while others benchmark).
AUDIT_DB = os.environ.get("BENCH_AUDIT_DB", "mlops_bench_audit")
WRITERS = 4
APPEND_SECONDS = 5 if QUICK else 15
VERIFY_LIMIT_S = 10.0
EXPORT_RATIO_LIMIT = 3.0
RSS_LIMIT_MB = 200.0
AUDITOR = "bench-auditor"
ACTIONS = ["model.created", "version.registered", "promotion.requested", "promotion.approved", "stage.changed"]


# --------------------------------------------------------------------------- data


def _db_url() -> str:
    return os.environ["DATABASE_URL"]  # own_database() points it at mlops_bench_audit


@contextlib.contextmanager
def own_database() -> Iterator[str]:
    """Switch the default connection (and children, via DATABASE_URL) to ``mlops_bench_audit``.

    The audit table is reset with TRUNCATE, which locks it: in a database of its own, that
    never blocks another benchmark's writes, and nobody else's events join the chain.
    """
    from django.core.management import call_command
    from django.db import connections

    url = bench_db_url(AUDIT_DB)
    ensure_database(url)
    conn = connections["default"]
    conn.close()
    old_name, old_url = conn.settings_dict["NAME"], os.environ["DATABASE_URL"]
    conn.settings_dict["NAME"], os.environ["DATABASE_URL"] = AUDIT_DB, url
    try:
        call_command("migrate", verbosity=0, interactive=False)
        yield url
    finally:
        conn.close()
        conn.settings_dict["NAME"], os.environ["DATABASE_URL"] = old_name, old_url


def auditor_token() -> str:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from registry.choices import TokenScope
    from registry.rules import AUDITOR_GROUP
    from registry.services.audit import CLI
    from registry.services.tokens import token_create

    user, _ = get_user_model().objects.get_or_create(username=AUDITOR)
    user.groups.add(Group.objects.get_or_create(name=AUDITOR_GROUP)[0])
    _, raw = token_create(
        user=user, name="bench export", scopes=[TokenScope.AUDIT_READ], expires_at=None, actor=user, context=CLI
    )
    return raw


def load_events(n: int) -> float:
    """TRUNCATE the audit table and COPY ``n`` chained events into it. Returns seconds."""
    from registry.models import AuditEvent
    from registry.verify_export import (
        EXPORT_COLUMNS,
        GENESIS_HASH,
        HASHED_FIELDS,
        canonical_json,
        event_hash,
        with_token,
    )

    columns = [f.column for f in AuditEvent._meta.concrete_fields]
    if sorted(columns) != sorted(EXPORT_COLUMNS):
        raise RuntimeError(f"AuditEvent columns changed: {columns}; update bench/audit.py")
    base = datetime(2025, 1, 1, tzinfo=UTC)
    prev = GENESIS_HASH
    start = time.perf_counter()
    with pg_connect(_db_url()) as conn:
        conn.execute("SET LOCAL mlops.allow_audit_truncate = 'on'")  # this transaction only
        conn.execute("TRUNCATE registry_auditevent")
        with conn.cursor().copy(f"COPY registry_auditevent ({', '.join(EXPORT_COLUMNS)}) FROM STDIN") as copy:
            for seq in range(1, n + 1):
                model_id = seq % 10_000 + 1
                action = ACTIONS[seq % len(ACTIONS)]
                payload = {
                    "seq": seq,
                    "timestamp": (base + timedelta(microseconds=seq * 29_771)).isoformat(),
                    "actor_id": seq % 100 + 1,
                    "actor_name": f"bench-owner-{seq % 100:03d}",
                    "action": action,
                    "object_type": "registry.modelversion",
                    "object_id": str(seq),
                    "object_repr": f"bench-model-{model_id:05d} v{seq % 5 + 1}",
                    "model_id": model_id,
                    "model_name": f"bench-model-{model_id:05d}",
                    "before": {"stage": "staging", "note": None} if seq % 3 else None,
                    "after": {"stage": "production", "version": seq % 5 + 1, "metrics": {"roc_auc": seq % 1000}},
                    "request_id": f"{seq:032x}",
                    "source": "api" if seq % 2 else "ui",
                    "ip": f"10.0.{seq % 250}.{seq % 200 + 1}" if seq % 4 else None,
                    "prev_hash": prev,
                }
                token = f"mlp_bench{seq % 10}#{seq % 10 + 1}" if seq % 2 else ""  # API events name their token
                digest = event_hash(prev, with_token(payload, token))
                row = [payload[name] for name in HASHED_FIELDS]
                row[HASHED_FIELDS.index("before")] = (
                    None if payload["before"] is None else canonical_json(payload["before"])
                )
                row[HASHED_FIELDS.index("after")] = canonical_json(payload["after"])
                row += [token, digest]
                copy.write_row(row)
                prev = digest
        conn.commit()
        conn.execute("ANALYZE registry_auditevent")
    return time.perf_counter() - start


# --------------------------------------------------------------------------- export


def export_child(token: str, params: str = "{}") -> None:
    """Run inside a fresh process: GET the export through the Django stack and read it all."""
    import django

    django.setup()
    from django.test import Client

    start = time.perf_counter()
    query = {"format": "csv", **json.loads(params)}
    response = Client().get("/api/v1/audit/export", query, HTTP_AUTHORIZATION=f"Bearer {token}")
    if response.status_code != 200:
        raise SystemExit(f"export answered {response.status_code}: {response.content[:500]!r}")
    size = 0
    lines = 0
    tail = b""
    for chunk in response.streaming_content:
        data = chunk if isinstance(chunk, bytes) else chunk.encode()
        size += len(data)
        lines += data.count(b"\n")
        tail = (tail + data)[-4000:]
    seconds = time.perf_counter() - start
    manifest_line = tail.rstrip(b"\n").rsplit(b"\n", 1)[-1].decode()
    print(json.dumps({"seconds": seconds, "bytes": size, "lines": lines, "manifest": manifest_line}))


def measure_export(token: str, params: dict | None = None) -> dict:
    out_path = ROOT / "bench" / "data" / "audit-export-child.json"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "bench.audit", "export-child", token, json.dumps(params or {})]
    with open(out_path, "w") as out:
        wall, rss = run_measured(cmd, env=dict(os.environ), stdout=out, cwd=ROOT)
    result = json.loads(out_path.read_text())
    result.update(wall=wall, rss=rss)
    return result


def measure_copy(head_seq: int) -> dict:
    from registry.verify_export import EXPORT_COLUMNS

    cols = ", ".join(f'"{c}"' for c in EXPORT_COLUMNS)
    sql = (
        f"COPY (SELECT {cols} FROM registry_auditevent WHERE seq <= {int(head_seq)} ORDER BY seq) "
        "TO STDOUT WITH (FORMAT csv, HEADER)"
    )
    wall, rss = run_measured(["psql", "-X", "-q", _db_url(), "-c", sql], stdout=subprocess.DEVNULL)
    return {"seconds": wall, "rss": rss}


# --------------------------------------------------------------------------- append


def _append_worker(index: int, seconds: float, ready, go, queue) -> None:
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from registry.services.audit import AuditContext, audit_record

    user = get_user_model().objects.get(username=AUDITOR)
    context = AuditContext(source="worker", request_id=f"bench-writer-{index}")
    connection.ensure_connection()
    ready.release()
    go.wait()
    latencies = []
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        with transaction.atomic():
            audit_record(
                actor=user,
                action="bench.appended",
                context=context,
                object_type="bench.writer",
                object_id=str(index),
                object_repr=f"writer {index} event {n}",
                after={"writer": index, "n": n},
            )
        latencies.append(time.perf_counter() - t0)
        n += 1
    queue.put((n, latencies))


def measure_append() -> dict:
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Semaphore(0)
    go = ctx.Event()
    queue = ctx.Queue()
    procs = [ctx.Process(target=_append_worker, args=(i, APPEND_SECONDS, ready, go, queue)) for i in range(WRITERS)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.acquire(timeout=300)
    go.set()
    results = [queue.get(timeout=APPEND_SECONDS + 300) for _ in procs]
    for p in procs:
        p.join()
    total = sum(n for n, _ in results)
    latencies = [x for _, lat in results for x in lat]
    return {
        "events": total,
        "rate": total / APPEND_SECONDS,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
    }


# --------------------------------------------------------------------------- run


def run() -> list[Figure]:
    with own_database():
        return _run()


def _run() -> list[Figure]:
    from registry.services.audit import audit_verify

    token = auditor_token()
    log(f"loading {EVENTS:,} chained audit events with COPY")
    load_seconds = load_events(EVENTS)
    log(f"loaded in {load_seconds:.1f} s")

    with timer() as t:
        verified = audit_verify()
    log(f"verify: {verified.message} in {t['seconds']:.2f} s")
    if not verified.ok or verified.count < EVENTS:
        raise RuntimeError(f"the loaded chain did not verify: {verified.message}")
    verify_seconds = t["seconds"]

    log("export through GET /api/v1/audit/export?format=csv (child process)")
    export = measure_export(token)
    manifest = json.loads(next(csv.reader([export["manifest"]]))[1])
    if (manifest.get("count") or 0) < EVENTS:
        raise RuntimeError(f"export manifest counts {manifest.get('count')} events, expected {EVENTS}")
    log(f"export: {export['seconds']:.2f} s, {export['bytes'] / 1e6:.0f} MB, peak RSS {export['rss'] / 1e6:.0f} MB")
    # The same process and code path exporting a handful of events: the memory any export starts from.
    try:
        baseline = measure_export(token, {"from_seq": 1, "to_seq": 10})
        log(f"export of {baseline['lines'] - 2} events (baseline): peak RSS {baseline['rss'] / 1e6:.0f} MB")
    except (RuntimeError, ValueError) as exc:  # the baseline is context, not the figure
        log(f"baseline export failed: {exc}")
        baseline = {"rss": float("nan")}
    copy = measure_copy(EVENTS)
    log(f"COPY TO STDOUT: {copy['seconds']:.2f} s")

    log(f"append: {WRITERS} writer processes for {APPEND_SECONDS} s")
    append = measure_append()
    log(f"append: {append['rate']:.0f} events/s, p50 {append['p50_ms']:.1f} ms, p99 {append['p99_ms']:.1f} ms")
    with timer() as t2:
        after = audit_verify()
    log(f"verify after concurrent appends: {after.message} in {t2['seconds']:.2f} s")

    return _figures(
        verify_seconds=verify_seconds,
        load_seconds=load_seconds,
        export=export,
        manifest=manifest,
        baseline=baseline,
        copy=copy,
        append=append,
        after=after,
        after_seconds=t2["seconds"],
    )


def _figures(*, verify_seconds, load_seconds, export, manifest, baseline, copy, append, after, after_seconds):
    export_ratio = ratio(export["seconds"], copy["seconds"])
    rss_mb = export["rss"] / 1e6
    n = f"{EVENTS:,}"
    return [
        Figure(
            f"audit verify {n} events",
            verify_seconds,
            "s",
            "",
            None,
            None,
            f"< {VERIFY_LIMIT_S:g} s",
            verify_seconds < VERIFY_LIMIT_S,
            note=f"registry.services.audit.audit_verify (manage.py verify_audit); COPY load took {load_seconds:.0f} s",
        ),
        Figure(
            f"audit export {n} events CSV: time",
            export["seconds"],
            "s",
            "PostgreSQL COPY TO STDOUT (psql)",
            copy["seconds"],
            export_ratio,
            f"<= {EXPORT_RATIO_LIMIT:g}x COPY",
            export_ratio is not None and export_ratio <= EXPORT_RATIO_LIMIT,
            note=(
                f"GET /api/v1/audit/export?format=csv via Django's handler in a child process, "
                f"{export['bytes'] / 1e6:.0f} MB streamed, manifest count {manifest.get('count'):,}"
            ),
        ),
        Figure(
            "audit export: peak RSS of the exporting process",
            rss_mb,
            "MB",
            "same export of a few events (baseline)",
            baseline["rss"] / 1e6,
            None,
            f"< {RSS_LIMIT_MB:g} MB",
            rss_mb < RSS_LIMIT_MB,
            note=f"psql's COPY peaked at {copy['rss'] / 1e6:.0f} MB",
        ),
        Figure(
            f"audit append, {WRITERS} concurrent writers",
            append["rate"],
            "events/s",
            "",
            None,
            None,
            "chain intact after",
            after.ok,
            note=(
                f"{append['events']:,} events in {APPEND_SECONDS} s on top of {n}; per append p50 "
                f"{append['p50_ms']:.1f} ms, p99 {append['p99_ms']:.1f} ms; chain re-verified after: "
                f"{'OK' if after.ok else 'BROKEN'} ({after.count:,} events, {after_seconds:.1f} s)"
            ),
        ),
    ]


if __name__ == "__main__":
    if len(sys.argv) in (3, 4) and sys.argv[1] == "export-child":
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mlops_portal.settings")
        export_child(*sys.argv[2:])
    else:
        sys.exit("usage: python -m bench.audit export-child TOKEN (run the benchmark with `python -m bench audit`)")
