"""Shared helpers for the benchmarks: figures, timing, percentiles, peak RSS of a
child process and servers started as subprocesses (the HTTP load generator is in
``bench.loadgen``).

Nothing here imports Django, so the MLflow peer can reuse these helpers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "bench" / "data"
QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0", "false", "no")
BENCH_DB_NAME = os.environ.get("BENCH_DB_NAME", "mlops_bench")
DEFAULT_PG_URL = "postgres://postgres@127.0.0.1:5432/mlops_portal"


# --------------------------------------------------------------------------- figures


@dataclasses.dataclass
class Figure:
    """One line of the result table: our value, optionally a peer's, and the target."""

    name: str
    value: float | None
    unit: str
    peer: str = ""
    peer_value: float | None = None
    ratio: float | None = None
    target: str = ""
    passed: bool | None = None
    note: str = ""

    def verdict(self) -> str:
        if self.passed is None:
            return "-" if not self.target else "n/a"
        return "PASS" if self.passed else "FAIL"


MB = 1024 * 1024


def speedup_figure(name: str, ours: dict, peer: dict, *, peer_name: str, at_least: float, note: str) -> Figure:
    """Our compute time against a peer's, both results of ``measure_child``: ratio = the peer's
    time / ours (x faster), passed at ``at_least`` or more."""
    speedup = peer["compute_seconds"] / ours["compute_seconds"]
    return Figure(
        name,
        ours["compute_seconds"],
        "s",
        peer=peer_name,
        peer_value=peer["compute_seconds"],
        ratio=speedup,
        target=f">= {at_least:g}x faster",
        passed=speedup >= at_least,
        note=note,
    )


def peak_rss_figure(name: str, ours: dict, peer: dict, *, peer_name: str, note: str, limit_mb: float = 500) -> Figure:
    """Our child's peak RSS against a peer's, both results of ``measure_child``: ratio = the
    peer's / ours, passed under ``limit_mb``."""
    ours_mb, peer_mb = ours["peak_rss_bytes"] / MB, peer["peak_rss_bytes"] / MB
    return Figure(
        name,
        ours_mb,
        "MB",
        peer=peer_name,
        peer_value=peer_mb,
        ratio=peer_mb / ours_mb,
        target=f"< {limit_mb:g} MB",
        passed=ours_mb < limit_mb,
        note=note,
    )


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def ratio(ours: float | None, theirs: float | None) -> float | None:
    if ours is None or theirs in (None, 0):
        return None
    return ours / theirs


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run_alone(run) -> int:
    """``python -m bench.<name>``: one benchmark module's ``run()`` on its own, its table printed."""
    from bench.__main__ import print_table, setup_django

    setup_django()
    print_table(run())
    return 0


def cached_pair(folder: str, reference_name: str, window_name: str, write) -> tuple[Path, Path]:
    """A reference file and a window file under ``DATA_DIR/folder``, written once by
    ``write(reference_tmp, window_tmp)`` and reused while both exist (name them by size and seed)."""
    directory = DATA_DIR / folder
    directory.mkdir(parents=True, exist_ok=True)
    paths = directory / reference_name, directory / window_name
    if all(path.exists() for path in paths):
        return paths
    temporaries = [path.with_suffix(".tmp") for path in paths]
    write(*temporaries)
    for tmp, path in zip(temporaries, paths, strict=True):
        tmp.rename(path)
    log(f"wrote {paths[0].name} and {paths[1].name}")
    return paths


# --------------------------------------------------------------------------- timing


@contextlib.contextmanager
def timer() -> Iterator[dict]:
    """``with timer() as t: …`` then ``t["seconds"]``."""
    out: dict = {}
    start = time.perf_counter()
    try:
        yield out
    finally:
        out["seconds"] = time.perf_counter() - start


def percentile(values: Sequence[float], p: float) -> float:
    """Linear-interpolated percentile (p in 0..100) of unsorted values."""
    if not values:
        return float("nan")
    data = sorted(values)
    k = (len(data) - 1) * p / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    if lo == hi:
        return data[lo]
    return data[lo] + (data[hi] - data[lo]) * (k - lo)


# A tiny launcher between us and the measured child. On Linux, exec() folds the
# pre-exec memory high-water mark (a fork of *this* big process) into the child's
# ru_maxrss; launching from a small ``python -S`` keeps that floor at a few MB.
_LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[1], sys.argv[1:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
sys.stderr.write("\\nBENCH_MAXRSS_KB=%d\\n" % usage.ru_maxrss)
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
"""


def run_measured(cmd: list[str], *, env: dict | None = None, stdout=subprocess.DEVNULL, cwd=None) -> tuple[float, int]:
    """Run ``cmd`` to completion: (wall seconds, peak RSS in bytes of that child).

    The figure is the child's own ``ru_maxrss`` (from ``os.wait4`` in a small
    launcher process), not the maximum over every child this process ever had.
    """
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-S", "-c", _LAUNCHER, *cmd], env=env, stdout=stdout, stderr=subprocess.PIPE, cwd=cwd
    )
    seconds = time.perf_counter() - start
    err = proc.stderr.decode(errors="replace")
    match = re.search(r"BENCH_MAXRSS_KB=(\d+)\s*$", err)
    if proc.returncode != 0 or not match:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {err[-2000:]}")
    return seconds, int(match.group(1)) * 1024  # Linux reports KiB


def measure_child(cmd: list[str], out: Path, env: dict | None = None) -> dict:
    """Run a contender that writes its JSON result to ``out``: that result, with the child's
    wall time, its own peak RSS and the 1-minute load average (other work on the machine)."""
    load_before = os.getloadavg()[0]
    seconds, rss = run_measured(cmd, env=env, cwd=ROOT)
    result = json.loads(out.read_text())
    result["wall_seconds"] = seconds
    result["peak_rss_bytes"] = rss  # the child's own ru_maxrss from wait4
    result["load"] = max(load_before, os.getloadavg()[0])
    return result


def measure_our_child(module: str, *args, out: Path) -> dict:
    """``measure_child`` of ``python -m bench.<module> child ARGS… OUT``: our code in its own
    process, with the project on the path and its Django settings."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), DJANGO_SETTINGS_MODULE="mlops_portal.settings")
    return measure_child([sys.executable, "-m", f"bench.{module}", "child", *map(str, args), str(out)], out, env)


def measure_peer(name: str, *args, out: Path, **env: str) -> dict:
    """``measure_child`` of ``bench/<name>_peer.py ARGS… OUT`` in the peer's own venv
    (``bench/.venv-<name>``, made by ``make bench-<name>-venv``), with ``env`` added."""
    python = peer_python(f".venv-{name}", f"bench-{name}-venv")
    cmd = [str(python), str(ROOT / "bench" / f"{name}_peer.py"), *map(str, args), str(out)]
    return measure_child(cmd, out, dict(os.environ, **env))


def peer_python(venv: str, make_target: str) -> Path:
    """The Python of a peer's own venv under bench/ (``make <make_target>`` creates it)."""
    python = ROOT / "bench" / venv / "bin" / "python"
    if not python.exists() or not (python.parent.parent / ".installed").exists():
        log(f"creating bench/{venv} (make {make_target})")
        subprocess.run(["make", "--no-print-directory", make_target], cwd=ROOT, check=True)
    return python


# --------------------------------------------------------------------------- databases


def pg_url() -> str:
    return os.environ.get("DATABASE_URL") or DEFAULT_PG_URL


def bench_db_url(name: str = BENCH_DB_NAME) -> str:
    """DATABASE_URL with the database name replaced: benchmarks never touch the dev database."""
    parts = urllib.parse.urlsplit(pg_url())
    if not parts.scheme.startswith("postgres"):
        raise SystemExit("make bench needs PostgreSQL: set DATABASE_URL=postgres://…")
    return urllib.parse.urlunsplit(parts._replace(path="/" + name))


def pg_connect(url: str, **kwargs):
    import psycopg

    parts = urllib.parse.urlsplit(url)
    return psycopg.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        user=urllib.parse.unquote(parts.username or "postgres"),
        password=urllib.parse.unquote(parts.password) if parts.password else None,
        dbname=parts.path.lstrip("/"),
        **kwargs,
    )


def ensure_database(url: str) -> None:
    """CREATE DATABASE if it does not exist (connecting to the maintenance db)."""
    parts = urllib.parse.urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urllib.parse.urlunsplit(parts._replace(path="/postgres"))
    with pg_connect(admin, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{name}"')


# --------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(url: str, *, timeout: float = 120.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    parts = urllib.parse.urlsplit(url)
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}")
        try:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
            conn.request("GET", parts.path or "/")
            conn.getresponse().read()
            conn.close()
            return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def _exited_within(proc: subprocess.Popen, seconds: float) -> bool:
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        return False
    return True


@contextlib.contextmanager
def server(cmd: list[str], *, env: dict, ready_url: str | None, log_name: str, cwd=None) -> Iterator[subprocess.Popen]:
    """Start a server in its own process group; stop that group (and only it) on exit.

    ``ready_url``: wait for it to answer; None for a process without HTTP (a Celery worker or
    beat), which only has to be still running a moment after it starts."""
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    log_path = DATA_DIR / f"{log_name}.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            cmd, env=env, stdout=log_file, stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True
        )
        try:
            if ready_url is not None:
                wait_for_http(ready_url, proc=proc)
            elif _exited_within(proc, 1.0):
                raise RuntimeError(f"{cmd[0]} exited with {proc.returncode} on start")
            yield proc
        except Exception:
            log(f"server log tail ({log_path}):\n" + log_path.read_text(errors="replace")[-3000:])
            raise
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def http_get(url: str, headers: dict | None = None, timeout: float = 30.0) -> tuple[int, bytes]:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    path = parts.path + (("?" + parts.query) if parts.query else "")
    conn.request("GET", path, headers=headers or {})
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, body
