"""An HTTP load generator for the benchmarks: ``wrk`` when installed, else a Python
generator in its own process. Nothing here imports Django."""

from __future__ import annotations

import dataclasses
import http.client
import multiprocessing
import os
import random
import re
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Sequence

from bench.common import percentile


@dataclasses.dataclass
class LoadResult:
    """What a fixed-duration load run measured."""

    tool: str
    connections: int
    seconds: float
    requests: int
    errors: int  # non-2xx responses and socket errors
    rps: float
    p50_ms: float
    p99_ms: float

    def summary(self) -> str:
        return (
            f"{self.rps:,.0f} req/s, p50 {self.p50_ms:.1f} ms, p99 {self.p99_ms:.1f} ms, "
            f"{self.requests} requests, {self.errors} errors ({self.tool}, {self.connections} connections, "
            f"{self.seconds:.0f} s)"
        )


def load(
    base_url: str,
    paths: Sequence[str],
    *,
    headers: dict | None = None,
    connections: int = 32,
    duration: float = 15.0,
    tool: str | None = None,
) -> LoadResult:
    """Drive ``connections`` concurrent keep-alive connections for ``duration`` seconds,
    each request to a random path from ``paths``, from a second process."""
    tool = tool or os.environ.get("BENCH_LOADGEN") or ("wrk" if shutil.which("wrk") else "python")
    if tool == "wrk":
        return _load_wrk(base_url, paths, headers or {}, connections, duration)
    return _load_python(base_url, paths, headers or {}, connections, duration)


_WRK_SCRIPT = """
local paths = {%s}
local errors = 0
local counter = 0
math.randomseed(os.time())
request = function()
  return wrk.format("GET", paths[math.random(#paths)])
end
done = function(summary, latency, requests)
  io.write(string.format("BENCH p50=%%d p99=%%d requests=%%d non2xx=%%d sockerr=%%d\\n",
    latency:percentile(50), latency:percentile(99), summary.requests,
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout))
end
"""


def _load_wrk(base_url, paths, headers, connections, duration) -> LoadResult:
    lua_paths = ",".join('"' + p.replace("\\", "\\\\").replace('"', '\\"') + '"' for p in paths)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_WRK_SCRIPT % lua_paths)
    threads = max(1, min(2, connections))
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{int(duration)}s", "--timeout", "10s"]
    cmd += ["-s", script.name]
    for key, value in headers.items():
        cmd += ["-H", f"{key}: {value}"]
    cmd.append(base_url)
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(script.name)
    match = re.search(r"BENCH p50=(\d+) p99=(\d+) requests=(\d+) non2xx=(\d+) sockerr=(\d+)", out)
    if not match:
        raise RuntimeError(f"could not parse wrk output:\n{out}")
    p50, p99, requests, non2xx, sockerr = (int(x) for x in match.groups())
    rps_match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    rps = float(rps_match.group(1)) if rps_match else requests / duration
    return LoadResult("wrk", connections, duration, requests, non2xx + sockerr, rps, p50 / 1000, p99 / 1000)


def _worker(base_url, paths, headers, deadline, latencies, counters, lock, seed):
    parts = urllib.parse.urlsplit(base_url)
    rnd = random.Random(seed)
    conn = None
    local_lat: list[float] = []
    errors = 0
    while time.perf_counter() < deadline:
        path = paths[rnd.randrange(len(paths))]
        start = time.perf_counter()
        try:
            if conn is None:
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            resp.read()
            if resp.status >= 400 or resp.status < 200:
                errors += 1
            if resp.getheader("Connection", "").lower() == "close" or resp.will_close:
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException):
            errors += 1
            if conn is not None:
                conn.close()
            conn = None
            continue
        end = time.perf_counter()
        if end <= deadline:
            local_lat.append(end - start)
    if conn is not None:
        conn.close()
    with lock:
        latencies.extend(local_lat)
        counters["errors"] += errors


def _python_loadgen_process(base_url, paths, headers, connections, duration, queue):
    latencies: list[float] = []
    counters = {"errors": 0}
    lock = threading.Lock()
    start = time.perf_counter()
    deadline = start + duration
    threads = [
        threading.Thread(target=_worker, args=(base_url, paths, headers, deadline, latencies, counters, lock, i))
        for i in range(connections)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = max(duration, time.perf_counter() - start)
    queue.put(
        (
            len(latencies),
            counters["errors"],
            elapsed,
            percentile(latencies, 50) * 1000,
            percentile(latencies, 99) * 1000,
        )
    )


def _load_python(base_url, paths, headers, connections, duration) -> LoadResult:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(
        target=_python_loadgen_process, args=(base_url, list(paths), headers, connections, duration, queue)
    )
    proc.start()
    requests, errors, elapsed, p50, p99 = queue.get(timeout=duration + 120)
    proc.join()
    return LoadResult("python", connections, elapsed, requests, errors, requests / elapsed, p50, p99)
