"""The benchmark harness's own helpers: percentiles, peak RSS of a child, the load generator, the table."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from bench import common
from bench.__main__ import print_table
from bench.common import Figure, percentile, ratio, run_measured, server
from bench.loadgen import load
from tests.loopback import LoopbackServer, QuietHandler


def test_percentile_interpolates_between_sorted_values():
    values = [5.0, 1.0, 3.0, 2.0, 4.0]
    assert percentile(values, 50) == 3.0
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 5.0
    assert percentile(values, 75) == 4.0
    assert percentile([1.0, 2.0], 50) == 1.5


def test_ratio_is_none_without_a_peer_value():
    assert ratio(3.0, 1.5) == 2.0
    assert ratio(3.0, None) is None
    assert ratio(3.0, 0) is None


def test_peak_rss_is_the_childs_own_not_the_parents():
    _, small = run_measured([sys.executable, "-S", "-c", "pass"])
    _, big = run_measured([sys.executable, "-S", "-c", "x = bytearray(150_000_000); x[::4096] = b'1' * len(x[::4096])"])
    assert small < 60_000_000
    assert big >= 150_000_000


def test_a_contenders_result_carries_its_wall_time_peak_rss_and_the_load(tmp_path):
    out = tmp_path / "result.json"
    code = f"import json; json.dump({{'compute_seconds': 0.5}}, open({str(out)!r}, 'w'))"
    result = common.measure_child([sys.executable, "-c", code], out)
    assert result["compute_seconds"] == 0.5
    assert result["wall_seconds"] > 0 and result["peak_rss_bytes"] > 1_000_000 and result["load"] >= 0


def test_figures_against_a_peer_compare_compute_time_and_peak_rss():
    ours = {"compute_seconds": 0.5, "peak_rss_bytes": 100 * common.MB}
    peer = {"compute_seconds": 12.0, "peak_rss_bytes": 800 * common.MB}
    speed = common.speedup_figure("t", ours, peer, peer_name="P", at_least=20, note="n")
    assert (speed.value, speed.unit, speed.peer_value, speed.ratio) == (0.5, "s", 12.0, 24.0)
    assert (speed.target, speed.passed, speed.peer, speed.note) == (">= 20x faster", True, "P", "n")
    assert not common.speedup_figure("t", ours, peer, peer_name="P", at_least=50, note="").passed
    rss = common.peak_rss_figure("m", ours, peer, peer_name="P", note="")
    assert (rss.value, rss.unit, rss.peer_value, rss.ratio) == (100.0, "MB", 800.0, 8.0)
    assert (rss.target, rss.passed) == ("< 500 MB", True)
    assert not common.peak_rss_figure("m", peer, ours, peer_name="P", note="").passed


def test_python_load_generator_counts_requests_and_errors():
    class Handler(QuietHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            status = 404 if self.path == "/missing" else 200
            body = b"ok"
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    with LoopbackServer(Handler) as httpd:
        good = load(httpd.url, ["/a", "/b"], connections=4, duration=1.5, tool="python")
        bad = load(httpd.url, ["/missing"], connections=2, duration=1.0, tool="python")
    assert good.requests > 10
    assert good.errors == 0
    assert good.rps > 0 and good.p50_ms <= good.p99_ms
    assert bad.errors > 0


def test_a_data_pair_is_written_once_then_reused(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "DATA_DIR", tmp_path)
    calls = []

    def write(reference, window):
        calls.append((reference.name, window.name))
        reference.write_text("r")
        window.write_text("w")

    paths = common.cached_pair("demo", "reference-10.txt", "window-20.txt", write)
    assert paths == (tmp_path / "demo" / "reference-10.txt", tmp_path / "demo" / "window-20.txt")
    assert [p.read_text() for p in paths] == ["r", "w"]
    assert common.cached_pair("demo", "reference-10.txt", "window-20.txt", write) == paths
    assert calls == [("reference-10.tmp", "window-20.tmp")]  # written once, under a temporary name
    assert sorted(p.name for p in (tmp_path / "demo").iterdir()) == ["reference-10.txt", "window-20.txt"]


def test_table_prints_pass_fail_and_notes(capsys):
    print_table(
        [
            Figure("fast thing", 4.0, "x", "peer", 1.0, 4.0, ">= 3x", True, note="a note"),
            Figure("slow thing", 2.0, "s", "", None, None, "< 1 s", False),
        ]
    )
    out = capsys.readouterr().out
    assert "PASS" in out and "FAIL" in out
    assert "4.00x" in out
    assert "* fast thing: a note" in out


def _gone(pid: int) -> bool:
    """The process has exited (a zombie waiting for a reaper counts as exited)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


def test_a_process_without_http_runs_until_the_block_ends_with_its_children(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "DATA_DIR", tmp_path)
    script = (
        "import subprocess, sys, time; "
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        "print(p.pid, flush=True); time.sleep(60)"
    )
    with server([sys.executable, "-c", script], env=dict(os.environ), ready_url=None, log_name="child") as proc:
        assert proc.poll() is None  # still running after the start-up check
        deadline = time.monotonic() + 10
        while not (tmp_path / "child.log").read_text().strip() and time.monotonic() < deadline:
            time.sleep(0.05)
        grandchild = int((tmp_path / "child.log").read_text().split()[0])
        assert not _gone(grandchild)
    assert proc.returncode is not None
    deadline = time.monotonic() + 10
    while not _gone(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(grandchild)  # the whole process group was stopped, not just the leader


def test_a_process_without_http_that_dies_on_start_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "DATA_DIR", tmp_path)
    with pytest.raises(RuntimeError, match="exited with 3"):
        with server([sys.executable, "-c", "raise SystemExit(3)"], env=dict(os.environ), ready_url=None, log_name="x"):
            pass
