"""Dashboard page render times (issue 6 item 5), on PostgreSQL ``mlops_bench``.

One model with 90 days of hourly windows x 50 features, seeded by the dashboards'
own helper (``monitoring.management.commands.seed_dashboard_bench.seed_dashboard``) and
vacuumed, then every monitoring page is rendered N times through Django's full request
stack (middleware, view, selectors, charts, template) with the test client, logged
in as the model's owner: median and p95 server-side time, and the SQL query count
of one render. Target: each page < 300 ms.
"""

from __future__ import annotations

import os
import time

from bench.common import QUICK, Figure, log, percentile

DAYS = 90
FEATURES = 50
RENDERS = 10 if QUICK else 30
MIN_RENDERS = 5
BUDGET_S = 20 if QUICK else 60  # per page: stop early (after MIN_RENDERS) on a slow page
LIMIT_MS = 300.0
MODEL = "bench-dashboard"


class QueryCounter(list):
    """``connection.execute_wrapper`` that records each statement."""

    def __call__(self, execute, sql, params, many, context):
        self.append(sql)
        return execute(sql, params, many, context)


def pages() -> list[tuple[str, str]]:
    dash = f"/monitoring/models/{MODEL}/"
    return [
        ("model dashboard, last 24 h (hourly)", dash + "?range=24h"),
        ("model dashboard, last 7 d (hourly)", dash + "?range=7d&granularity=hourly"),
        ("model dashboard, last 30 d (daily)", dash + "?range=30d"),
        ("model dashboard, last 90 d (daily)", dash + "?range=90d"),
        ("model dashboard, 90 d charts fragment (htmx)", dash + "?range=90d"),
        ("fleet overview", "/monitoring/fleet/"),
        ("alerts", "/monitoring/alerts/"),
        ("governance scorecard", "/monitoring/scorecard/"),
    ]


def run() -> list[Figure]:
    from django.db import connection
    from django.test import Client

    from monitoring.management.commands.seed_dashboard_bench import seed_dashboard
    from monitoring.models import MetricValue, WindowBinCounts

    log(f"seeding {MODEL}: {DAYS} days of hourly windows x {FEATURES} features")
    start = time.perf_counter()
    model = seed_dashboard(name=MODEL, days=DAYS, features=FEATURES)
    seed_seconds = time.perf_counter() - start
    log(f"seeded in {seed_seconds:.0f} s")
    # The seeding replaced the model's ~1M metric rows: VACUUM, as autovacuum would have done in
    # a running deployment, so that the renders do not wade through the dead rows of the last
    # run (up to 1.5x slower until autovacuum happens to pass), then ANALYZE for the planner.
    with connection.cursor() as cursor:
        for table in (MetricValue._meta.db_table, WindowBinCounts._meta.db_table):
            cursor.execute(f"VACUUM {connection.ops.quote_name(table)}")
        cursor.execute("ANALYZE")

    client = Client()
    client.force_login(model.owner)
    figures = []
    for label, url in pages():
        headers = {}
        if "htmx" in label:
            headers = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "dashboard-charts"}
        response = client.get(url, **headers)  # warm caches (templates, plans) and check it works
        if response.status_code != 200:
            raise RuntimeError(f"{url} answered {response.status_code}: {response.content[:300]!r}")
        # Counted with an execute wrapper: the request_started signal resets connection.queries.
        queries = QueryCounter()
        with connection.execute_wrapper(queries):
            client.get(url, **headers)
        times, cpu = [], []
        budget_end = time.perf_counter() + BUDGET_S
        while len(times) < RENDERS and (len(times) < MIN_RENDERS or time.perf_counter() < budget_end):
            t0, c0 = time.perf_counter(), time.process_time()
            response = client.get(url, **headers)
            times.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)  # this process only: not the database's time
            assert response.status_code == 200
        median, p95, cpu_median = percentile(times, 50), percentile(times, 95), percentile(cpu, 50)
        log(
            f"{label}: median {median:.0f} ms, p95 {p95:.0f} ms (Python CPU median {cpu_median:.0f} ms), "
            f"{len(queries)} queries, {len(response.content):,} B"
        )
        figures.append(
            Figure(
                f"page: {label}",
                median,
                "ms",
                "p95",
                p95,
                None,
                f"< {LIMIT_MS:g} ms",
                p95 < LIMIT_MS,
                note=(
                    f"GET {url}: {len(times)} renders, {len(queries)} SQL queries, "
                    f"Python CPU median {cpu_median:.0f} ms, "
                    f"{len(response.content) / 1024:.0f} KiB HTML"
                ),
            )
        )
    figures[0].note += (
        f"; up to {RENDERS} renders each ({MIN_RENDERS} at least, {BUDGET_S} s budget) after a warm-up, "
        f"Django test client in-process (full middleware + view + template), {os.cpu_count()} CPUs; "
        f"seeding {DAYS} d x {FEATURES} features took {seed_seconds:.0f} s"
    )
    return figures
