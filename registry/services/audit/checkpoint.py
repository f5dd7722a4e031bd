"""Chain checkpoints: the head (seq, hash, time) written outside the audit table, so that a
wiped or rebuilt chain no longer matches what was seen before (``verify_audit`` compares).

Sinks, both optional and configured in settings:

* ``AUDIT_CHECKPOINT_FILE``: one JSON object per line, appended (default under the var dir);
* ``AUDIT_CHECKPOINT_URL``: each checkpoint POSTed as JSON, for a system the portal's
  operators do not control (as Certificate Transparency's signed tree heads are kept by
  others). Only the status code is kept, never the response body.

Written by the beat schedule (registry migration ``audit_checkpoint_schedule``) and by
``manage.py audit_checkpoint``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path

from django.conf import settings

from mlops_portal import clock

from .writer import audit_head

log = logging.getLogger(__name__)

CHECKPOINT_TIMEOUT_SECONDS = 10


class CheckpointError(Exception):
    """A checkpoint file that cannot be read, or a sink that refused a checkpoint."""


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """The chain's head as seen at ``time``: its seq and hash (seq 0 is the empty chain)."""

    seq: int
    head_hash: str
    time: str

    def as_json(self) -> str:
        return json.dumps(
            {"seq": self.seq, "head_hash": self.head_hash, "time": self.time}, sort_keys=True, separators=(",", ":")
        )

    @classmethod
    def from_json(cls, text: str) -> Checkpoint:
        try:
            data = json.loads(text)
            seq, head_hash, time = data["seq"], data["head_hash"], data["time"]
        except (ValueError, TypeError, KeyError) as exc:
            raise CheckpointError(f"not a checkpoint: {text[:120]!r}") from exc
        valid_hash = isinstance(head_hash, str) and len(head_hash) == 64
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0 or not valid_hash:
            raise CheckpointError(f"not a checkpoint: {text[:120]!r}")
        return cls(seq=seq, head_hash=head_hash, time=str(time))


@dataclasses.dataclass(frozen=True)
class CheckpointWritten:
    """Where a checkpoint went: the file it was appended to, and the URL's HTTP status."""

    checkpoint: Checkpoint
    file: Path | None
    url_status: int | None = None
    url_error: str = ""


def checkpoint_current() -> Checkpoint:
    seq, head_hash = audit_head()
    return Checkpoint(seq=seq, head_hash=head_hash, time=clock.now().isoformat())


def checkpoint_file_path() -> Path | None:
    """The configured checkpoint file, or None when ``AUDIT_CHECKPOINT_FILE`` is empty."""
    configured = getattr(settings, "AUDIT_CHECKPOINT_FILE", "")
    return Path(configured) if configured else None


def checkpoint_append(path: Path, checkpoint: Checkpoint) -> None:
    """Append one line and fsync it: a checkpoint that was reported written is on disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(checkpoint.as_json() + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def checkpoint_last(path: Path) -> Checkpoint | None:
    """The last checkpoint in a file (None when the file is empty). Raises CheckpointError
    when the file is missing or its last line is not a checkpoint."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 4096))
            tail = handle.read().decode("utf-8", errors="replace")
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint file {path}: {exc.strerror or exc}") from exc
    lines = [line for line in tail.splitlines() if line.strip()]
    return Checkpoint.from_json(lines[-1]) if lines else None


def post_checkpoint(url: str, body: str) -> int:
    """POST one checkpoint through the outbound-URL policy (``mlops_portal.outbound``); returns
    the HTTP status. Redirects are not followed and the response body is never read."""
    from mlops_portal import outbound

    response = outbound.request(
        "POST",
        url,
        body=body.encode("utf-8"),
        headers={"Content-Type": "application/json"},
        timeout=CHECKPOINT_TIMEOUT_SECONDS,
    )
    return response.status


def checkpoint_write(*, file: Path | None = None, url: str | None = None) -> CheckpointWritten:
    """Record the current head in the configured sinks (or the ``file``/``url`` given).
    A URL that fails is logged and reported (``url_error``); the file is written first."""
    checkpoint = checkpoint_current()
    path = file if file is not None else checkpoint_file_path()
    url = url if url is not None else getattr(settings, "AUDIT_CHECKPOINT_URL", "")
    if path is not None:
        checkpoint_append(path, checkpoint)
    status, error = None, ""
    if url:
        try:
            status = post_checkpoint(url, checkpoint.as_json())
        except Exception as exc:  # any failure to deliver is reported, never fatal to the file sink
            error = getattr(exc, "error_class", "") or type(exc).__name__
        else:
            error = "" if 200 <= status < 300 else f"HTTP {status}"
        if error:
            log.warning("audit checkpoint seq %s not delivered to the checkpoint URL: %s", checkpoint.seq, error)
    return CheckpointWritten(checkpoint=checkpoint, file=path, url_status=status, url_error=error)
