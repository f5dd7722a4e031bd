"""Make sure PostgreSQL and Redis are up for the test suite: start them if they are
installed but stopped, fail loudly if they are missing. Never skip.

Usage: python tests/services.py --postgres URL --redis URL
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import socket
import subprocess
import sys
import time
from urllib.parse import urlparse


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _wait(host: str, port: int, seconds: float = 20) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _port_open(host, port):
            return True
        time.sleep(0.3)
    return False


def ensure_postgres(url: str) -> None:
    parsed = urlparse(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 5432
    if not _port_open(host, port):
        versions = sorted(os.path.basename(p) for p in glob.glob("/etc/postgresql/*"))
        if not versions or not shutil.which("pg_ctlcluster"):
            sys.exit(
                f"ERROR: PostgreSQL is not reachable at {host}:{port} and is not installed here. "
                "Install it (apt-get install postgresql) or set PG_URL."
            )
        print(f"Starting PostgreSQL {versions[-1]} ...", flush=True)
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"], check=False)
        if not _wait(host, port):
            sys.exit(f"ERROR: PostgreSQL did not come up on {host}:{port}.")
    import psycopg

    dbname = parsed.path.lstrip("/") or "mlops_portal"
    admin = url.replace(parsed.path, "/postgres") if parsed.path else url + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [dbname]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{dbname}"')
    print(f"PostgreSQL ok at {host}:{port} (database {dbname})")


def ensure_redis(url: str) -> None:
    parsed = urlparse(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 6379
    if not _port_open(host, port):
        if not shutil.which("redis-server"):
            sys.exit(
                f"ERROR: Redis is not reachable at {host}:{port} and redis-server is not installed. "
                "Install it (apt-get install redis-server) or set REDIS_URL."
            )
        print("Starting Redis ...", flush=True)
        os.makedirs("/tmp/redis-test", exist_ok=True)
        subprocess.run(
            [
                "redis-server",
                "--daemonize",
                "yes",
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                "/tmp/redis-test",
            ],
            check=False,
        )
        if not _wait(host, port):
            sys.exit(f"ERROR: Redis did not come up on {host}:{port}.")
    print(f"Redis ok at {host}:{port}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--postgres", required=True)
    parser.add_argument("--redis", required=True)
    args = parser.parse_args()
    ensure_postgres(args.postgres)
    ensure_redis(args.redis)


if __name__ == "__main__":
    main()
