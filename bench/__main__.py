"""``make bench`` / ``python -m bench [module ...]`` (modules: see ``MODULES``; ``monitoring`` = ingest + drift).

Runs each selected benchmark module's ``run()`` against the PostgreSQL database
``mlops_bench`` (never the development database) and prints one table:
figure, value, unit, peer/limit, peer value, ratio, target, PASS/FAIL.
``BENCH_QUICK=1`` uses smaller sizes and shorter load runs (a smoke test, not a result).
Results are also written to ``bench/results/<timestamp>.json``.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import platform
import sys
import time
import traceback

from bench.common import QUICK, ROOT, Figure, bench_db_url, ensure_database, fmt, log

MODULES = [
    "inventory",
    "audit",
    "pages",
    "monitoring_ingest",
    "json_decode",
    "monitoring_drift",
    "fairness",
    "live_estimation",
    "retention",
    "label_join",
    "live_window",
    "scale",
    "freshness",
]
ALIASES = {"monitoring": ["monitoring_ingest", "json_decode", "monitoring_drift"]}


def setup_django() -> None:
    url = bench_db_url()
    ensure_database(url)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DEBUG", "false")  # no connection.queries growing during long runs
    # Persistent connections, as a production deployment sets (in-process renders and servers).
    os.environ.setdefault("CONN_MAX_AGE", "600")
    # One key for this process and the servers it starts: sessions made here must be valid there.
    os.environ.setdefault("SECRET_KEY", "bench-not-secret-" + "k" * 50)
    os.environ.setdefault("SUBJECT_KEY", "bench-subject-key-not-secret-" + "k" * 10)  # servers run as production
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mlops_portal.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    log(f"migrating {url.rsplit('/', 1)[-1]}")
    call_command("migrate", verbosity=0, interactive=False)


def print_table(figures: list[Figure]) -> None:
    header = ["figure", "value", "unit", "peer / limit", "peer value", "ratio", "target", "result"]
    rows = [
        [
            f.name,
            fmt(f.value),
            f.unit,
            f.peer or "-",
            fmt(f.peer_value),
            (fmt(f.ratio) + "x") if f.ratio is not None else "-",
            f.target or "-",
            f.verdict(),
        ]
        for f in figures
    ]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    print()
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print(line)
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    notes = [f for f in figures if f.note]
    if notes:
        print()
        for f in notes:
            print(f"  * {f.name}: {f.note}")
    print()


def main(argv: list[str]) -> int:
    selected = [m for a in argv if not a.startswith("-") for m in ALIASES.get(a, [a])] or MODULES
    unknown = sorted(set(selected) - set(MODULES))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(MODULES)}", file=sys.stderr)
        return 2
    setup_django()
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    load_start = os.getloadavg()[0]
    log(f"{'QUICK ' if QUICK else ''}run of {', '.join(selected)} on {os.cpu_count()} CPUs")
    figures: list[Figure] = []
    failed_modules = []
    for name in selected:
        log(f"== {name}")
        try:
            module = importlib.import_module(f"bench.{name}")
            figures.extend(module.run())
        except Exception as exc:  # one broken benchmark must not hide the others' figures
            traceback.print_exc()
            failed_modules.append(name)
            figures.append(Figure(f"{name}: did not complete", None, "", note=f"{type(exc).__name__}: {exc}"))
    load_end = os.getloadavg()[0]
    print(
        f"MLOps Portal benchmarks, {started}, {platform.node()}, {os.cpu_count()} CPUs{', QUICK' if QUICK else ''}; "
        f"1-min load average {load_start:.1f} at start, {load_end:.1f} at end (other work on the machine)"
    )
    print_table(figures)
    results_dir = ROOT / "bench" / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    out = results_dir / f"{started.replace(':', '')}{'-quick' if QUICK else ''}.json"
    out.write_text(
        json.dumps(
            {
                "started": started,
                "quick": QUICK,
                "cpus": os.cpu_count(),
                "loadavg": [load_start, load_end],
                "figures": [dataclasses.asdict(f) for f in figures],
            },
            indent=2,
        )
    )
    log(f"results written to {out.relative_to(ROOT)}")
    return 1 if failed_modules else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
