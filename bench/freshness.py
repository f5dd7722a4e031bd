"""Freshness (issue 21, benchmark d): under steady ingestion, the time from the batch that pushes
a feature over its drift threshold to the drift alert being open (p50 and p95; target p95 < 60 s).

Everything runs as real processes, as in production, against a database of its own
(``<BENCH_DB_NAME>_freshness``: dropped and created at the start, dropped at the end unless
``BENCH_KEEP_DB=1``), so no other benchmark's models or dirty windows reach the worker:

* gunicorn with ``DJANGO_ENV=production`` (``bench.inventory.portal_env``/``portal_cmd``:
  ``BENCH_WORKERS`` sync workers, default 4);
* one Celery worker as the README's production command starts it (``celery -A mlops_portal
  worker --concurrency 4``: prefork, four processes; ``BENCH_CELERY_CONCURRENCY`` to change it)
  and beat (django-celery-beat, the schedules the migrations create: dirty-window sweep every
  60 s, health every 15 min), over Redis ``BENCH_BROKER_URL`` (default
  ``redis://127.0.0.1:6379/4``; emptied at the start: it is the benchmark's own). Celery runs
  with settings.py's production settings (late acks, prefetch 1, visibility timeout 3600 s, the
  tasks' time limits).

Setup (a child process on that database): a model whose production version has 20 numeric
features, a reference profile of 50,000 rows drawn from N(0, 1), and a monitoring config with
hourly windows, the PSI rule (warning 0.1, critical 0.25) and a drifted-feature share of 0.05 for
both warning and critical (one drifted feature of 20 is critical).

Load: a client process POSTs CSV batches of 10,000 rows drawn from the reference's distribution,
stamped now, to ``POST /api/v1/models/{name}/versions/{v}/predictions/``, paced at
``BENCH_FRESHNESS_RATE`` rows/s (50,000) over ``BENCH_FRESHNESS_CONNECTIONS`` (4) keep-alive
connections. When the server cannot keep up, batches go out as fast as answers come back: the
rate held is what was accepted, printed with its ratio to the target. It passes at 98 % of the
target or more: the client sends on a schedule of exactly the target and never gets ahead of
it, so the first answer's latency and the batches still in flight when the load stops count
against it (a server keeping up held 49,752 and 49,966 rows/s of 50,000 here, 2026-12-07).

Injections: at ``INJECTIONS`` moments spread evenly over the run the bench POSTs one batch of
2,000 rows stamped in an hour of its own after the live hours (injection k: k + 2 hours ahead,
within ``INGEST_MAX_FUTURE``), in which features f00..f{k} are shifted by 2 standard deviations
(PSI 3.2-3.8 measured, far over 0.25) and the others drawn from the reference (PSI 0.01 or
less). Health reads the latest hourly window with enough rows, so that window is decided by
this batch alone, and f{k} appears
in the drift alert for the first time because of injection k (a later injection still names it,
so a slow alert is not lost, it is counted when f{k} first shows). Freshness = the first poll
(every 0.25 s, on the database) that finds the open drift alert naming f{k}, minus the moment the
injection's POST returned 201. The live hours' drift share is read after the run: normal traffic
must not drift.

Duration 300 s, 10 injections (``BENCH_QUICK=1``: 60 s, 3); the load continues after it until the
last injection's alert is open, for at most ``WAIT`` seconds after the last injection (an
injection not seen by then counts as a failure). The worker's log is kept in
``bench/data/freshness-worker.log`` (each task's duration: where the time went).

    python -m bench freshness
"""

from __future__ import annotations

import contextlib
import http.client
import json
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import numpy as np

from bench.common import BENCH_DB_NAME, QUICK, ROOT, Figure, bench_db_url, free_port, log, percentile, pg_connect
from bench.common import server as process

DURATION = 60 if QUICK else 300
INJECTIONS = 3 if QUICK else 10
WAIT = 240 if QUICK else 600
TARGET_RATE = 50_000
RATE = int(os.environ.get("BENCH_FRESHNESS_RATE", str(TARGET_RATE)))
CONNECTIONS = int(os.environ.get("BENCH_FRESHNESS_CONNECTIONS", "4"))
CONCURRENCY = int(os.environ.get("BENCH_CELERY_CONCURRENCY", "4"))  # README: production worker command
BROKER_URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/4")
BATCH = 10_000
INJECT_ROWS = 2_000
SHIFT = 2.0
FEATURES = 20
NAMES = [f"f{i:02d}" for i in range(FEATURES)]
MODEL = "bench-freshness"
DB_NAME = f"{BENCH_DB_NAME}_freshness"
TARGET_SECONDS = 60.0
HEADER = ",".join(["prediction_id", "timestamp", *NAMES, "prediction", "score"]) + "\n"


# --------------------------------------------------------------------------- data


def _frame(rows: int, seed: int):
    import pandas as pd

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(rows, FEATURES)).round(4), columns=NAMES)
    frame["prediction"] = rng.integers(0, 2, rows)
    frame["score"] = rng.random(rows).round(4)
    return frame


def _tails(blocks: int = 8) -> list[list[str]]:
    """Rendered ``features,prediction,score`` text of ``blocks`` batches of live rows."""
    return [_frame(BATCH, 100 + b).to_csv(header=False, index=False).splitlines() for b in range(blocks)]


def _live_body(tag: str, tails: list[str]) -> bytes:
    stamp = datetime.now(UTC).isoformat()
    return (HEADER + "".join(f"{tag}{i},{stamp},{tail}\n" for i, tail in enumerate(tails))).encode()


def _injection_body(k: int, hour: datetime) -> bytes:
    """Features f00..f{k} shifted by SHIFT standard deviations, stamped inside ``hour``."""
    frame = _frame(INJECT_ROWS, 1000 + k)
    for name in NAMES[: k + 1]:
        frame[name] += SHIFT
    frame.insert(0, "timestamp", [(hour + timedelta(seconds=i)).isoformat() for i in range(INJECT_ROWS)])
    frame.insert(0, "prediction_id", [f"inject{k}-{i}" for i in range(INJECT_ROWS)])
    return frame.to_csv(index=False).encode()


# --------------------------------------------------------------------------- setup (child process)


def _setup() -> dict:
    """The model, its production version, reference profile, config and a token (Django set up)."""
    from bench.monitoring_ingest import bench_version
    from monitoring.services.config import monitoring_config_update
    from monitoring.services.ingestion import reference_upload
    from monitoring.services.reference_profiles import reference_profile_compute
    from registry.choices import Stage, TokenScope
    from registry.models import ModelVersion
    from registry.services.audit import CLI
    from registry.services.tokens import token_create

    user, model, version = bench_version(name=MODEL, features=NAMES)
    ModelVersion.objects.filter(pk=version.pk).update(stage=Stage.PRODUCTION, stage_changed_at=datetime.now(UTC))
    body = _frame(50_000, 1).to_csv(index=False).encode()
    profile = reference_upload(version=version, body=body, content_type="text/csv", actor=user, context=CLI)
    reference_profile_compute(profile_id=profile.pk)
    changes = {
        "granularity": "hourly",
        "drift_rule": "psi",
        "psi_warning": 0.1,
        "psi_critical": 0.25,
        "drift_share_warning": 0.05,
        "drift_share_critical": 0.05,
        "min_window_rows": 100,
    }
    monitoring_config_update(model=model, actor=user, context=CLI, changes=changes)
    scopes = [TokenScope.MONITORING_WRITE, TokenScope.MONITORING_READ]
    _, raw = token_create(user=user, name="bench freshness", scopes=scopes, expires_at=None, actor=user, context=CLI)
    ids = {"token": raw, "model": model.name, "model_id": model.pk}
    return ids | {"version": version.version, "version_id": version.pk}


def _recreate_database(url: str) -> None:
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with pg_connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')


def _drop_database(url: str) -> None:
    if os.environ.get("BENCH_KEEP_DB", "") in ("", "0"):
        with pg_connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')


def _setup_in_child(url: str) -> dict:
    """Migrate the private database and create the fixtures, in a child process bound to it."""
    env = dict(os.environ, BENCH_DB_NAME=DB_NAME, DATABASE_URL=url, CELERY_BROKER_URL=BROKER_URL)
    out = subprocess.run(
        [sys.executable, "-m", "bench.freshness", "setup"], env=env, cwd=ROOT, stdout=subprocess.PIPE, check=True
    )
    return json.loads(out.stdout.decode().strip().splitlines()[-1])


# --------------------------------------------------------------------------- processes


@contextlib.contextmanager
def _services(url: str):
    """gunicorn, one Celery worker and beat on the private database; yields gunicorn's port."""
    import redis

    from bench.inventory import portal_cmd, portal_env

    redis.Redis.from_url(BROKER_URL).flushdb()  # the benchmark's own broker database
    env = dict(portal_env(), DATABASE_URL=url, CELERY_BROKER_URL=BROKER_URL)
    celery = [sys.executable, "-m", "celery", "-A", "mlops_portal"]
    worker = [*celery, "worker", "--loglevel=INFO", "--concurrency", str(CONCURRENCY)]
    port = free_port()
    ready = f"http://127.0.0.1:{port}/api/schema/"
    with (
        process(portal_cmd(port), env=env, ready_url=ready, log_name="freshness-gunicorn", cwd=ROOT),
        process(worker, env=env, ready_url=None, log_name="freshness-worker", cwd=ROOT),
        process([*celery, "beat", "--loglevel=INFO"], env=env, ready_url=None, log_name="freshness-beat", cwd=ROOT),
    ):
        yield port


def _drive(port: int, path: str, token: str, rate: float, connections: int, stop, queue) -> None:
    """Own process: POST live batches paced at ``rate`` rows/s until ``stop`` is set; puts
    (start, [accept times], errors, first error) on ``queue``."""
    tails = _tails()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "text/csv"}
    lock = threading.Lock()
    slots = iter(range(10**9))
    accepted: list[float] = []
    errors: list[str] = []
    start = time.time()

    def send() -> None:
        conn = None
        while not stop.is_set():
            with lock:
                i = next(slots)
            delay = start + i * BATCH / rate - time.time()
            if delay > 0 and stop.wait(delay):
                break
            try:
                conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=600)
                conn.request("POST", path, body=_live_body(f"live{i}-", tails[i % len(tails)]), headers=headers)
                resp = conn.getresponse()
                text = resp.read()
            except (OSError, http.client.HTTPException) as exc:
                errors.append(f"batch {i}: {exc!r}")
                conn = None
                continue
            if resp.status in (201, 202):
                accepted.append(time.time())
            else:
                errors.append(f"batch {i}: HTTP {resp.status} {text[:300]!r}")

    threads = [threading.Thread(target=send) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    queue.put((start, time.time(), accepted, len(errors), errors[:1]))


def _inject(port: int, path: str, token: str, k: int, hour: datetime) -> float:
    """POST injection k; returns the moment its 201 came back."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "text/csv"}
    conn.request("POST", path, body=_injection_body(k, hour), headers=headers)
    resp = conn.getresponse()
    text = resp.read()
    accepted = time.time()
    conn.close()
    if resp.status not in (201, 202):
        raise RuntimeError(f"injection {k}: HTTP {resp.status} {text[:500]!r}")
    return accepted


# --------------------------------------------------------------------------- observation


def _poll(conn, ids: dict, first_hour: datetime, state: dict) -> None:
    """One look at the database: injection windows queued and computed, drift alert features."""
    now = time.time()
    version = ids["version_id"]
    for start, at in conn.execute(
        "SELECT window_start, enqueued_at FROM monitoring_dirtywindow WHERE version_id = %s AND granularity = "
        "'hourly' AND window_start >= %s AND enqueued_at IS NOT NULL",
        [version, first_hour],
    ):
        state["queued"].setdefault(start, at.timestamp())
    for start, at in conn.execute(
        "SELECT window_start, computed_at FROM monitoring_metricvalue WHERE version_id = %s AND granularity = "
        "'hourly' AND feature = '' AND metric = 'drift_share' AND window_start >= %s",
        [version, first_hour],
    ):
        state["computed"].setdefault(start, at.timestamp())
    for reasons, updated in conn.execute(
        "SELECT reasons, updated_at FROM monitoring_alert WHERE model_id = %s AND kind = 'drift' AND status = 'open'",
        [ids["model_id"]],
    ):
        for feature in {f for r in reasons for f in r.get("features", [])}:
            state["alert"].setdefault(feature, (now, updated.timestamp()))


def _observe(port: int, path: str, ids: dict, url: str, began: float) -> list[dict]:
    """Send the injections on schedule and poll until each one's feature is in the open drift alert."""
    live_hour = datetime.fromtimestamp(began, UTC).replace(minute=0, second=0, microsecond=0)
    hours = [live_hour + timedelta(hours=k + 2) for k in range(INJECTIONS)]
    state: dict = {"queued": {}, "computed": {}, "alert": {}}
    sent: list[dict] = []
    with pg_connect(url, autocommit=True) as conn:
        while True:
            now = time.time()
            k = len(sent)
            if k < INJECTIONS and now >= began + (k + 0.5) * DURATION / INJECTIONS:
                _poll(conn, ids, hours[0], state)
                before = sorted(state["alert"])  # features in a drift alert before this injection
                sent.append({"k": k, "hour": hours[k], "accepted": _inject(port, path, ids["token"], k, hours[k])})
                sent[-1]["before"] = before
                log(f"freshness: injection {k} (f{k:02d}, window {hours[k]:%H:%M}) accepted")
            _poll(conn, ids, hours[0], state)
            seen = sum(NAMES[s["k"]] in state["alert"] for s in sent)
            if seen == INJECTIONS and now >= began + DURATION:
                break
            if len(sent) == INJECTIONS and now > sent[-1]["accepted"] + WAIT:
                break
            time.sleep(0.25)
    for s in sent:
        s["queued"] = state["queued"].get(s["hour"])
        s["computed"] = state["computed"].get(s["hour"])
        s["alert"], s["alert_db"] = state["alert"].get(NAMES[s["k"]], (None, None))
        seconds = None if s["alert"] is None else s["alert"] - s["accepted"]
        s["seconds"] = seconds
        steps = ", ".join(
            f"{name} {s[key] - s['accepted']:+.1f} s" if s[key] else f"{name} not seen"
            for name, key in (("queued", "queued"), ("computed", "computed"), ("alert (db)", "alert_db"))
        )
        log(f"freshness: injection {s['k']}: {'not seen' if seconds is None else f'{seconds:.1f} s'} ({steps})")
    return sent


def _noise(url: str, ids: dict, began: float) -> tuple[float | None, int]:
    """The live hours' highest drift share and how many live windows were computed."""
    live_hour = datetime.fromtimestamp(began, UTC).replace(minute=0, second=0, microsecond=0)
    with pg_connect(url, autocommit=True) as conn:
        return conn.execute(
            "SELECT max(value), count(*) FROM monitoring_metricvalue WHERE version_id = %s AND granularity = "
            "'hourly' AND feature = '' AND metric = 'drift_share' AND window_start < %s",
            [ids["version_id"], live_hour + timedelta(hours=2)],
        ).fetchone()


def _measure(port: int, ids: dict, url: str) -> tuple[list[dict], tuple, tuple]:
    path = f"/api/v1/models/{ids['model']}/versions/{ids['version']}/predictions/"
    ctx = multiprocessing.get_context("spawn")
    stop, queue = ctx.Event(), ctx.Queue()
    loader = ctx.Process(target=_drive, args=(port, path, ids["token"], RATE, CONNECTIONS, stop, queue))
    log(f"freshness: {DURATION} s at {RATE:,} rows/s target, {CONNECTIONS} connections, {INJECTIONS} injections")
    loader.start()
    try:
        began = time.time()
        injections = _observe(port, path, ids, url, began)
        stop.set()
        load = queue.get(timeout=900)
        loader.join(timeout=60)
    finally:
        stop.set()
        if loader.is_alive():
            loader.terminate()
            loader.join()
    return injections, load, _noise(url, ids, began)


# --------------------------------------------------------------------------- figures


def _rate(load: tuple) -> tuple[float, float, float, float, int, list]:
    """(rows/s over the load, lowest and highest 10-s rate, seconds, errors, first error)."""
    start, end, accepted, n_errors, first_error = load
    seconds = end - start
    buckets = [0] * max(1, int(seconds // 10))
    for t in accepted:
        if int((t - start) // 10) < len(buckets):
            buckets[int((t - start) // 10)] += 1
    per_10s = [b * BATCH / 10 for b in buckets]
    return len(accepted) * BATCH / seconds, min(per_10s), max(per_10s), seconds, n_errors, first_error


def _median(values: list) -> str:
    values = [v for v in values if v is not None]
    return f"{percentile(values, 50):.1f} s" if values else "not seen"


def _figures(injections: list[dict], load: tuple, noise: tuple) -> list[Figure]:
    seconds = [s["seconds"] for s in injections if s["seconds"] is not None]
    missing = len(injections) - len(seconds)
    p50, p95 = percentile(seconds, 50), percentile(seconds, 95)
    rate, low, high, load_s, n_errors, first_error = _rate(load)
    noise_max, noise_windows = noise
    clean = all(NAMES[s["k"]] not in s["before"] for s in injections) and (noise_max or 0.0) == 0.0
    queued = _median([s["queued"] - s["accepted"] if s["queued"] else None for s in injections])
    computed = _median([s["computed"] - s["accepted"] if s["computed"] else None for s in injections])
    alerted = _median([s["alert_db"] - s["computed"] if s["alert_db"] and s["computed"] else None for s in injections])
    where = (
        f"medians from the 201: window queued by a sweep {queued}, window computed {computed}; "
        f"then the health evaluation that opened the alert {alerted} after the computation"
    )
    setup = (
        f"{len(injections)} injections over {load_s:.0f} s of load ({len(seconds)} seen, {missing} not within "
        f"{WAIT} s); gunicorn + 1 Celery worker (concurrency {CONCURRENCY}) + beat, production settings; "
        f"{os.cpu_count()} CPUs, "
        f"1-min load {os.getloadavg()[0]:.1f} at the end"
    )
    noise_text = (
        f"live hours' drift share max {noise_max} over {noise_windows} computed windows; "
        f"{'no' if clean else 'A'} drift alert named an injected feature before its injection"
    )
    all_values = ", ".join("-" if v["seconds"] is None else f"{v['seconds']:.1f}" for v in injections)
    return [
        Figure(
            "freshness: injected batch accepted -> drift alert open, p95",
            p95 if seconds else None,
            "s",
            peer="limit",
            peer_value=TARGET_SECONDS,
            ratio=p95 / TARGET_SECONDS if seconds else None,
            target="< 60 s",
            passed=bool(seconds) and missing == 0 and clean and p95 < TARGET_SECONDS,
            note=f"{setup}; each (s): {all_values}; {where}; {noise_text}",
        ),
        Figure("freshness: injected batch accepted -> drift alert open, p50", p50 if seconds else None, "s"),
        Figure(
            "ingestion rate held during the freshness run",
            rate,
            "rows/s",
            peer="target",
            peer_value=float(TARGET_RATE),
            ratio=rate / TARGET_RATE,
            target=">= 50,000 rows/s",
            passed=rate >= 0.98 * TARGET_RATE,
            note=(
                f"CSV batches of {BATCH:,} rows over {CONNECTIONS} connections, paced at {RATE:,} rows/s; "
                f"10-s rates {low:,.0f}..{high:,.0f} rows/s; {n_errors} errors {first_error}"
            ),
        ),
    ]


def run() -> list[Figure]:
    url = bench_db_url(DB_NAME)
    log(f"freshness: private database {DB_NAME}")
    _recreate_database(url)
    try:
        ids = _setup_in_child(url)
        with _services(url) as port:
            injections, load, noise = _measure(port, ids, url)
    finally:
        _drop_database(url)
    return _figures(injections, load, noise)


def main(argv: list[str]) -> int:
    from bench.__main__ import print_table, setup_django

    setup_django()
    if argv[:1] == ["setup"]:  # the child of _setup_in_child, on the private database
        print(json.dumps(_setup()))
        return 0
    print_table(run())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
