"""Additive digests of stored prediction ids per (version, UTC day).

The digest of a set of ids is the sum, modulo 2^256, of the SHA-256 of each id (UTF-8) as a
big-endian integer, written as 64 hex digits. It does not depend on order, so ingestion adds
a batch's ids to their days' digests, erasure subtracts the erased ids, and a purge receipt
for a whole day is the stored digest: no scan of the rows being dropped. Anyone holding the
removed ids recomputes it with ``ids_digest``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

import numpy as np

from monitoring.models import RawDigest

MOD = 1 << 256
DAY_US = 86_400_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _value(ids: Iterable[str]) -> int:
    """The sum of the ids' SHA-256 values modulo 2^256: the 256-bit values are added as eight
    32-bit limbs in uint64 columns (exact up to 2^32 ids a call), then carried once."""
    sha256 = hashlib.sha256
    hashes = b"".join([sha256(i.encode()).digest() for i in ids])
    limbs = np.frombuffer(hashes, dtype=">u4").reshape(-1, 8).sum(axis=0, dtype=np.uint64)
    return sum(int(limb) << (32 * (7 - k)) for k, limb in enumerate(limbs)) % MOD


def ids_digest(ids: Iterable[str]) -> str:
    """The digest of a set of ids (see module docstring)."""
    return f"{_value(ids):064x}"


def _combine(digest: str, delta: int) -> str:
    return f"{(int(digest or '0', 16) + delta) % MOD:064x}"


def digests_add(*, version_id: int, ids: list[str], ts_us: np.ndarray) -> None:
    """Add a stored batch's ids to their days' digests (inside the storing transaction; on
    PostgreSQL under the version's lock, so the read-modify-write does not race)."""
    days = ts_us // DAY_US
    for day_index in np.unique(days):
        chosen = np.flatnonzero(days == day_index)
        _apply(version_id, (EPOCH + timedelta(days=int(day_index))).date(), len(chosen), _value(ids[i] for i in chosen))


def digests_remove(*, rows: Iterable[tuple[int, datetime, str]]) -> None:
    """Subtract removed rows, given as (version id, timestamp, prediction id)."""
    groups: dict[tuple[int, date], list[str]] = {}
    for version_id, timestamp, pid in rows:
        groups.setdefault((version_id, timestamp.astimezone(UTC).date()), []).append(pid)
    for (version_id, day), ids in groups.items():
        _apply(version_id, day, -len(ids), -_value(ids))


def _apply(version_id: int, day: date, rows: int, delta: int) -> None:
    # ``of``: the default ordering joins the version's and model's rows, which FOR UPDATE would
    # lock too, and every foreign key check on them at commit then waits (a deadlock under load).
    row = RawDigest.objects.select_for_update(of=("self",)).filter(version_id=version_id, day=day).first()
    if row is None:
        RawDigest.objects.create(version_id=version_id, day=day, rows=rows, digest=_combine("", delta))
        return
    row.rows += rows
    row.digest = _combine(row.digest, delta)
    row.save(update_fields=["rows", "digest"])


def digests_take(*, version_ids: Iterable[int], day: date) -> dict[int, tuple[int, str]]:
    """The digests of one day of these versions → {version: (rows, digest)}; the rows are deleted
    (their predictions are being dropped in the same transaction)."""
    rows = RawDigest.objects.filter(version_id__in=list(version_ids), day=day)
    found = {r.version_id: (r.rows, r.digest) for r in rows}
    rows.delete()
    return found


def digests_forget(*, model_ids: list[int], before: date) -> None:
    """Drop the models' digests of the days before ``before`` (their rows are gone: purged by
    range, or erased down to none)."""
    RawDigest.objects.filter(version__model_id__in=model_ids, day__lt=before).delete()


__all__ = ["digests_add", "digests_forget", "digests_remove", "digests_take", "ids_digest"]
