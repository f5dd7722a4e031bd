"""Chain verification: recompute every hash and link from the genesis hash, in seq order, and
compare the chain with the last checkpoint kept outside the table (``checkpoint.py``)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Callable, Iterator

import orjson

from mlops_portal.db import is_postgresql
from registry.models import AuditEvent
from registry.verify_export import GENESIS_HASH, canonical_json

from .checkpoint import Checkpoint
from .rows import HASHED, ChainRow, canonical_row_text, verify_rows_orm, verify_rows_pg


@dataclasses.dataclass
class VerifyResult:
    """Outcome of recomputing the chain: ok, how far it got, and the first broken link."""

    ok: bool
    count: int
    head_seq: int
    head_hash: str
    broken_seq: int | None = None
    message: str = ""


def _exact_row_hash(row: ChainRow, json_text: bool) -> str:
    """The hash of a verify row by the reference rule: the standard library's canonical JSON
    (``registry.verify_export.canonical_json``), exactly what the writer hashed."""

    def canonical(value) -> str:
        return "null" if value is None else canonical_json(json.loads(value) if json_text else value)

    row = row._replace(before=canonical(row.before), after=canonical(row.after))
    return hashlib.sha256((row.prev_hash + canonical_row_text(row)).encode("utf-8")).hexdigest()


_loads, _dumps, _SORT_KEYS, _sha256 = orjson.loads, orjson.dumps, orjson.OPT_SORT_KEYS, hashlib.sha256
_has_exponent = re.compile(rb"e\+").search  # half the time of ``b"e+" in text`` on a row's text


def _fast_text(row: ChainRow, json_text: bool) -> bytes:
    """The row's canonical JSON as written by orjson (sorted keys, compact, UTF-8 in one C
    call), or ``b"e+"`` when orjson cannot write it (an integer beyond 64 bits)."""
    fields = dict(zip(HASHED, row, strict=False))  # the 16 hashed fields, not the token or the hash
    if row.token:
        fields["token"] = row.token
    try:
        if json_text:
            if row.before is not None:
                fields["before"] = _loads(row.before)
            if row.after is not None:
                fields["after"] = _loads(row.after)
        return _dumps(fields, option=_SORT_KEYS)
    except (TypeError, ValueError):
        return b"e+"


def _check_rows(rows: Iterator[ChainRow], json_text: bool, progress, every: int):
    """Walk the rows from the genesis hash. Returns (count, last good hash, broken or None),
    where broken is (seq, message) of the first broken link.

    Fast path: orjson writes every string exactly as the standard library does, but not
    every number (``1e-05`` is ``0.00001``, ``1e-07`` is ``1e-7``; integers beyond 64 bits are
    parsed as floats). So the fast text only ever CONFIRMS a row: when its hash matches the
    stored hash the row is intact (equal text means equal values; an ``e+`` anywhere, where a
    lossy big integer would show, sends the row to the exact path too). Any other row is
    recomputed with the reference encoder (``_exact_row_hash``), and only that decides a
    break: no false alarm, no missed tamper."""
    expected_seq, expected_prev = 1, GENESIS_HASH
    count = pending = 0
    for row in rows:
        if row.seq != expected_seq:
            return count, expected_prev, (expected_seq, f"seq {expected_seq} is missing (next is {row.seq})")
        if row.prev_hash != expected_prev:
            return count, expected_prev, (row.seq, f"prev_hash does not match the hash of seq {row.seq - 1}")
        text = _fast_text(row, json_text)
        confirmed = not _has_exponent(text) and _sha256(row.prev_hash.encode("utf-8") + text).hexdigest() == row.hash
        if not confirmed and _exact_row_hash(row, json_text) != row.hash:
            return count, expected_prev, (row.seq, "hash mismatch, the event was altered")
        expected_prev = row.hash
        expected_seq = row.seq + 1
        count += 1
        pending += 1
        if progress is not None and pending >= every:
            progress(pending)
            pending = 0
    if progress is not None and pending:
        progress(pending)
    return count, expected_prev, None


def _verify_chain(up_to_seq: int | None, chunk_size: int, progress=None) -> VerifyResult:
    """Recompute hashes and links from the genesis hash, in one pass in seq order."""
    json_text = is_postgresql()
    rows = verify_rows_pg(up_to_seq, chunk_size) if json_text else verify_rows_orm(up_to_seq, chunk_size)
    try:
        count, head_hash, broken = _check_rows(rows, json_text, progress, chunk_size)
    finally:
        rows.close()
    if broken is None and up_to_seq is not None and count < up_to_seq:
        broken = count + 1, f"seq {count + 1} is missing (the chain ends early)"
    if broken is not None:
        return _broken(count, head_hash, *broken)
    return VerifyResult(
        ok=True,
        count=count,
        head_seq=count,
        head_hash=head_hash,
        message=f"OK: {count} events, head seq {count}, head hash {head_hash}",
    )


def audit_verify(
    *,
    chunk_size: int = 20_000,
    progress: Callable[[int], object] | None = None,
    up_to_seq: int | None = None,
    checkpoint: Checkpoint | None = None,
) -> VerifyResult:
    """Recompute the whole chain from the genesis hash, in seq order.

    Detects an edited event (its hash no longer matches its fields), a deleted
    event (a gap in seq, and the next event's prev_hash no longer links) and
    reordered events (seq is hashed, and the links break). Reports the first
    broken link. ``progress`` is called with the number of rows checked.

    With a ``checkpoint`` (a head recorded earlier outside the table), the chain must also
    reach the checkpoint's seq and hold the checkpoint's hash there: a chain that was wiped
    (TRUNCATE) or cut back and rebuilt is reported even though it links up by itself.

    One pass in keyset chunks, in constant memory. (A parallel, segmented check was tried and
    removed: it reported a false break in one CI environment, and a false tamper alarm is
    worse than a slower check.)
    """
    result = _verify_chain(up_to_seq, chunk_size, progress)
    if checkpoint is None or not result.ok:
        return result
    return checkpoint_compare(result, checkpoint)


def checkpoint_compare(result: VerifyResult, checkpoint: Checkpoint) -> VerifyResult:
    """An intact chain (``result``) against a checkpoint: it must be at least as long, and
    hold the checkpoint's hash at the checkpoint's seq."""
    seen = f"checkpoint of {checkpoint.time}: seq {checkpoint.seq}, hash {checkpoint.head_hash}"
    if result.head_seq < checkpoint.seq:
        message = f"the chain is shorter than the last checkpoint: head seq {result.head_seq}; {seen}"
        return dataclasses.replace(result, ok=False, broken_seq=result.head_seq + 1, message=f"BROKEN: {message}")
    stored = AuditEvent.objects.filter(seq=checkpoint.seq).values_list("hash", flat=True).first()
    stored = stored if checkpoint.seq else GENESIS_HASH
    if stored != checkpoint.head_hash:
        message = f"the chain disagrees with the last checkpoint: seq {checkpoint.seq} has hash {stored}; {seen}"
        return dataclasses.replace(result, ok=False, broken_seq=checkpoint.seq, message=f"BROKEN: {message}")
    return dataclasses.replace(result, message=f"{result.message}; matches the {seen}")


def _broken(count: int, last_good_hash: str, seq: int, message: str) -> VerifyResult:
    return VerifyResult(
        ok=False,
        count=count,
        head_seq=seq - 1,
        head_hash=last_good_hash,
        broken_seq=seq,
        message=f"BROKEN at seq {seq}: {message}",
    )
