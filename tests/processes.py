"""A server started as a real process for the tests (the MLflow server, the OpenID Connect
provider): its output in a log file, ready when a URL answers 200, stopped at the end."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests


@contextlib.contextmanager
def serving(
    cmd: list[str], *, log_path: Path, ready_url: str, ready_seconds: float, stop_seconds: float, **popen
) -> Iterator[subprocess.Popen]:
    """Run ``cmd`` until the block ends (terminated, killed after ``stop_seconds``); the block
    starts once ``ready_url`` answers 200. Fails the test, with the log's tail, if the process
    exits first or is not ready within ``ready_seconds``."""
    log = open(log_path, "w")  # noqa: SIM115 - closed when the block ends
    process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, **popen)
    try:
        deadline = time.monotonic() + ready_seconds
        while True:
            try:
                if requests.get(ready_url, timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                state = f"exited with {process.returncode}" if process.poll() is not None else "did not answer"
                pytest.fail(f"{Path(cmd[0]).name} {state} ({ready_url}): {log_path.read_text()[-2000:]}")
            time.sleep(0.2)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=stop_seconds)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
