"""Inventory benchmark (issue 2 item 7).

10,000 models x 5 versions in PostgreSQL ``mlops_bench``, served by gunicorn with
production settings (DEBUG off, persistent connections, the Redis cache of CACHE_URL for
sessions and cached inventory HTML/details, as the README's production mode), loaded from a
second process (wrk) at 32 connections for a fixed time:

- the inventory page ``/models/`` (logged-in session; a reviewer, who sees every model),
- ``GET /api/v1/models/{name}/`` (Bearer token with ``models:read``; random model per request),

against MLflow's own server (same counts, SQLite backend store, same number of
worker processes) in the same run: ``registered-models/search`` (the list, same
page size) and ``registered-models/get?name=`` (random model per request).
Target: >= 3x MLflow's requests/s, and our p99 < 100 ms.
"""

from __future__ import annotations

import http.client
import os
import random
import statistics
import sys
import time
from pathlib import Path

from bench import mlflow_peer
from bench.common import (
    DATA_DIR,
    QUICK,
    ROOT,
    Figure,
    free_port,
    http_get,
    log,
    ratio,
    server,
)
from bench.loadgen import LoadResult, load

MODELS = 1_000 if QUICK else 10_000
VERSIONS = 5
CONNECTIONS = 32
DURATION = 8 if QUICK else 15
ROUNDS = 1 if QUICK else 3
WARMUP = 3 if QUICK else 5
WORKERS = int(os.environ.get("BENCH_WORKERS", "4"))
PAGE_SIZE = 50  # MLflow search max_results, to match one page of our inventory
BENCH_USER = "bench-viewer"
P99_LIMIT_MS = 100.0
RATIO_TARGET = 3.0


# --------------------------------------------------------------------------- data


def seed() -> tuple[str, str]:
    """Load MODELS x VERSIONS into the bench database (skipped when already there).

    Returns (session key, API token) for the bench user.
    """
    from django.db import connection, transaction

    from registry.models import ModelVersion, RegisteredModel

    have = RegisteredModel.objects.filter(name__startswith="bench-model-").count()
    have_versions = ModelVersion.objects.filter(model__name__startswith="bench-model-").count()
    if have != MODELS or have_versions != MODELS * VERSIONS:
        log(f"seeding {MODELS:,} models x {VERSIONS} versions (found {have:,} models, {have_versions:,} versions)")
        with transaction.atomic():
            _seed_inventory()
        log("seeded")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return _bench_credentials()


def _seed_inventory() -> None:
    """Replace the bench models with MODELS fresh ones, VERSIONS versions each."""
    from registry.models import ModelVersion, RegisteredModel

    ModelVersion.objects.filter(model__name__startswith="bench-model-").delete()
    RegisteredModel.tags.through.objects.filter(registeredmodel__name__startswith="bench-model-").delete()
    RegisteredModel.objects.filter(name__startswith="bench-model-").delete()
    teams, owners = _teams_and_owners()
    models = _seed_models(teams, owners)
    _seed_versions(models, owners)


def _teams_and_owners() -> tuple[list, list]:
    from django.contrib.auth import get_user_model

    from registry.models import Team

    teams = [
        Team.objects.get_or_create(slug=f"bench-team-{t:02d}", defaults={"name": f"Bench team {t:02d}"})[0]
        for t in range(20)
    ]
    owners = []
    for o in range(100):
        user, created = get_user_model().objects.get_or_create(username=f"bench-owner-{o:03d}")
        if created:
            user.set_unusable_password()
            user.save()
            user.teams.add(teams[o % 20])
        owners.append(user)
    return teams, owners


def _seed_models(teams: list, owners: list) -> list:
    from registry.choices import RiskTier
    from registry.models import RegisteredModel, Tag

    tags = [Tag.objects.get_or_create(name=n)[0] for n in ("fraud", "pii", "customer-facing", "churn", "credit")]
    tiers = [RiskTier.LOW, RiskTier.MEDIUM, RiskTier.HIGH]
    models = RegisteredModel.objects.bulk_create(
        [
            RegisteredModel(
                name=mlflow_peer.model_name(i),
                description=f"Benchmark model {i}: predicts churn for segment {i % 97}.",
                owner=owners[i % 100],
                team=teams[i % 20],
                risk_tier=tiers[i % 3],
                intended_use="Retention campaigns.",
                limitations="Not for credit decisions.",
                retrain_cadence_days=30,
                primary_metric="roc_auc",
            )
            for i in range(MODELS)
        ],
        batch_size=2000,
    )
    RegisteredModel.tags.through.objects.bulk_create(
        [
            RegisteredModel.tags.through(registeredmodel_id=m.pk, tag_id=tags[(i + k) % len(tags)].pk)
            for i, m in enumerate(models)
            for k in range(2)
        ],
        batch_size=5000,
    )
    return models


def _seed_versions(models: list, owners: list) -> None:
    from registry.choices import Stage, TaskType
    from registry.models import ModelVersion

    stages = [Stage.ARCHIVED, Stage.ARCHIVED, Stage.ARCHIVED, Stage.PRODUCTION, Stage.STAGING]
    schema = [{"name": f"f{j}", "type": "numeric" if j % 3 else "categorical"} for j in range(10)]
    ModelVersion.objects.bulk_create(
        [
            ModelVersion(
                model=m,
                version=v,
                stage=stages[v - 1],
                description=f"v{v} retrained on data through week {v}",
                artifact_uri=f"s3://models/{m.name}/{v}/model.pkl",
                source_commit=f"{i:020x}{v:020x}",
                training_run_id=f"run-{i}-{v}",
                training_data_ref=f"s3://data/{m.name}/{v}.parquet",
                training_data_hash=f"{i * 7 + v:064x}",
                metrics={"roc_auc": 0.8 + v / 100, "log_loss": 0.4 - v / 100},
                feature_schema=schema,
                task_type=TaskType.BINARY,
                created_by=owners[i % 100],
            )
            for i, m in enumerate(models)
            for v in range(1, VERSIONS + 1)
        ],
        batch_size=5000,
    )


def _bench_credentials() -> tuple[str, str]:
    """The bench user's session key and a read token."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.auth.models import Group
    from django.contrib.sessions.backends.db import SessionStore

    from registry.choices import TokenScope
    from registry.rules import REVIEWER_GROUP
    from registry.services.audit import CLI
    from registry.services.tokens import token_create

    # Saved only when new: a save or a group change bumps the inventory revisions, which would
    # leave every cached page and detail of the previous run stale (each run would start cold).
    user, created = get_user_model().objects.get_or_create(username=BENCH_USER)
    if created:
        user.set_unusable_password()
        user.save()
    reviewers = Group.objects.get_or_create(name=REVIEWER_GROUP)[0]
    if not user.groups.filter(pk=reviewers.pk).exists():
        user.groups.add(reviewers)
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "registry.auth.RolesModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    _, raw = token_create(
        user=user, name="bench", scopes=[TokenScope.MODELS_READ], expires_at=None, actor=user, context=CLI
    )
    return session.session_key, raw


# --------------------------------------------------------------------------- servers


def portal_env() -> dict:
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_ENV": "production",
            "DEBUG": "false",
            "SECURE_SSL_REDIRECT": "false",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "CONN_MAX_AGE": "600",  # persistent connections, as a production deployment sets
            # The cache shared by the workers (README, production): sessions and cached inventory.
            "CACHE_URL": os.environ.get("BENCH_CACHE_URL", "redis://127.0.0.1:6379/3"),
            "STATIC_ROOT": str(DATA_DIR / "static"),
            "LOG_LEVEL": "WARNING",
        }
    )
    return env


def collectstatic(env: dict) -> None:
    """Production static files (hashed names, compressed); skipped when nothing changed."""
    import hashlib
    import subprocess

    digest = hashlib.sha256()
    for path in sorted(p for p in (ROOT / "static").rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    stamp = Path(env["STATIC_ROOT"]) / ".bench-sources"
    if (Path(env["STATIC_ROOT"]) / "staticfiles.json").exists() and stamp.exists():
        if stamp.read_text() == digest.hexdigest():
            return
    log("collectstatic (production storage)")
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True
    )
    stamp.write_text(digest.hexdigest())


def portal_cmd(port: int, app: str = "mlops_portal.wsgi:application") -> list[str]:
    return [
        sys.executable,
        "-m",
        "gunicorn",
        app,
        "--workers",
        str(WORKERS),
        "--bind",
        f"127.0.0.1:{port}",
        "--backlog",
        "2048",
        "--log-level",
        "warning",
    ]


def prime(base: str, paths: list[str], headers: dict) -> None:
    """Request every path once (8 threads), so the rounds measure the steady state of a server
    whose cache holds what it serves, as in production between writes; the first read of each
    name after a write is a miss (its cost: docs/performance.md, "uncached detail")."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        statuses = set(pool.map(lambda path: http_get(base + path, headers, timeout=120)[0], paths))
    if statuses != {200}:
        raise RuntimeError(f"priming {base}: answers {sorted(statuses)}")


def check(base: str, paths: list[str], headers: dict, label: str) -> None:
    """One correct answer, every path once (``prime``), then a warm-up run so every worker has
    loaded its code."""
    for attempt in range(5):  # the first request to a cold worker may be refused while it boots
        try:
            status, body = http_get(base + paths[0], headers, timeout=120)
            break
        except (OSError, http.client.HTTPException):
            if attempt == 4:
                raise
            time.sleep(2)
    if status != 200:
        raise RuntimeError(f"{label}: {paths[0]} answered {status}: {body[:300]!r}")
    prime(base, paths, headers)
    load(base, paths, headers=headers, connections=CONNECTIONS, duration=WARMUP)


def combine(results: list[LoadResult]) -> LoadResult:
    """Median over the interleaved rounds (the machine's background load drifts between rounds)."""
    med = statistics.median
    return LoadResult(
        tool=results[0].tool,
        connections=results[0].connections,
        seconds=sum(r.seconds for r in results),
        requests=sum(r.requests for r in results),
        errors=sum(r.errors for r in results),
        rps=med(r.rps for r in results),
        p50_ms=med(r.p50_ms for r in results),
        p99_ms=med(r.p99_ms for r in results),
    )


def figures_for(what: str, ours: LoadResult, peer_name: str, theirs: LoadResult) -> list[Figure]:
    r = ratio(ours.rps, theirs.rps)
    return [
        Figure(
            f"{what}: requests/s @{CONNECTIONS} conn",
            ours.rps,
            "req/s",
            peer_name,
            theirs.rps,
            r,
            f">= {RATIO_TARGET:g}x peer",
            r is not None and r >= RATIO_TARGET,
        ),
        Figure(f"{what}: p50 latency", ours.p50_ms, "ms", peer_name, theirs.p50_ms, None, "", None),
        Figure(
            f"{what}: p99 latency",
            ours.p99_ms,
            "ms",
            peer_name,
            theirs.p99_ms,
            None,
            f"< {P99_LIMIT_MS:g} ms",
            ours.p99_ms < P99_LIMIT_MS,
        ),
    ]


def run() -> list[Figure]:
    from django.utils.crypto import get_random_string  # what Django makes its CSRF secrets with

    session_key, token = seed()
    rnd = random.Random(7)
    names = [mlflow_peer.model_name(rnd.randrange(MODELS)) for _ in range(2000)]

    log(f"populating the MLflow {mlflow_peer.MLFLOW_VERSION} store")
    mlflow_db = DATA_DIR / f"mlflow-{MODELS}x{VERSIONS}.db"
    mlflow_peer.populate(mlflow_db, MODELS, VERSIONS)

    env = portal_env()
    collectstatic(env)
    port, floor_port = free_port(), free_port()
    base, floor_base = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{floor_port}"
    # A returning browser: its session cookie and the CSRF cookie the first page gave it.
    cookie = {"Cookie": f"sessionid={session_key}; csrftoken={get_random_string(32)}"}
    bearer = {"Authorization": f"Bearer {token}"}
    with (
        server(portal_cmd(port), env=env, ready_url=f"{base}/login/", log_name="portal-gunicorn", cwd=ROOT),
        server(
            portal_cmd(floor_port, "bench.django_floor:application"),
            env=env,
            ready_url=f"{floor_base}/login/",
            log_name="floor-gunicorn",
            cwd=ROOT,
        ),
        mlflow_peer.mlflow_server(mlflow_db, workers=WORKERS) as mbase,
    ):
        # Both servers are up (the idle one costs nothing); rounds alternate between them so
        # that drifting background load on the machine hits both sides alike.
        runs = {
            "page": (base, ["/models/"], cookie, "portal inventory page /models/"),
            "search": (
                mbase,
                [f"/api/2.0/mlflow/registered-models/search?max_results={PAGE_SIZE}"],
                {},
                "mlflow registered-models/search",
            ),
            # Any session-authenticated Django page on this machine, before it does anything.
            "floor": (floor_base, ["/bench-floor/"], cookie, "floor: login_required view answering 'ok'"),
            "api": (base, [f"/api/v1/models/{n}/" for n in names], bearer, "portal GET /api/v1/models/{name}/"),
            "get": (
                mbase,
                [f"/api/2.0/mlflow/registered-models/get?name={n}" for n in names],
                {},
                "mlflow registered-models/get",
            ),
        }
        combined = measure(runs)
    return inventory_figures(combined)


def measure(runs: dict[str, tuple]) -> dict[str, LoadResult]:
    """Check each endpoint, then ROUNDS interleaved load runs of each; the rounds combined."""
    for args in runs.values():
        check(*args)
    results: dict[str, list[LoadResult]] = {key: [] for key in runs}
    for round_no in range(1, ROUNDS + 1):
        for key, (url, paths, headers, label) in runs.items():
            result = load(url, paths, headers=headers, connections=CONNECTIONS, duration=DURATION)
            log(f"round {round_no}/{ROUNDS} {label}: {result.summary()}")
            results[key].append(result)
    combined = {key: combine(rounds) for key, rounds in results.items()}
    for key, result in combined.items():
        if result.errors:
            raise RuntimeError(f"{runs[key][3]}: {result.errors} error responses during the runs")
    return combined


def inventory_figures(combined: dict[str, LoadResult]) -> list[Figure]:
    page, search, floor, api, get = (combined[k] for k in ("page", "search", "floor", "api", "get"))
    peer = f"MLflow {mlflow_peer.MLFLOW_VERSION}"
    figures = figures_for("inventory page /models/", page, f"{peer} registered-models/search", search)
    figures += [
        Figure(
            "floor: any logged-in Django view (login_required 'ok'): requests/s",
            floor.rps,
            "req/s",
            note="the same gunicorn, settings, sessions and middleware with no query and no template: "
            "what every session page costs here before doing anything (bench/django_floor.py)",
        ),
        Figure("floor: p99 latency", floor.p99_ms, "ms", "p99 limit", P99_LIMIT_MS),
    ]
    figures += figures_for("API GET /api/v1/models/{name}/", api, f"{peer} registered-models/get", get)
    figures[0].note = (
        f"{MODELS:,} models x {VERSIONS} versions; gunicorn {WORKERS} sync workers "
        f"vs mlflow server --workers {WORKERS}; "
        f"{ours_tool(page)}, {ROUNDS} interleaved rounds of {DURATION} s per endpoint (medians) "
        f"after a {WARMUP} s warm-up"
    )
    return figures


def ours_tool(result: LoadResult) -> str:
    return "wrk" if result.tool == "wrk" else "Python load generator (threads, keep-alive)"
