"""Verify an audit export offline: ``python -m registry.verify_export FILE``.

Standard library only, so an auditor can run it anywhere. Works on the CSV and
JSON Lines exports of ``/api/v1/audit/export``: recomputes each event's hash from
its fields and the previous hash, checks the chain links, and checks the closing
manifest (count, first/last sequence, head hash). Exit code 0 when intact, 1 when not.

The hash rule, shared with the server:
    hash = sha256( prev_hash || canonical_json(event_fields) )
where canonical_json sorts keys, uses (",", ":") separators and UTF-8.
"""

from __future__ import annotations

import datetime
import decimal
import hashlib
import json
import uuid

GENESIS_HASH = "0" * 64


def canonical_default(value):
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def canonical_json(payload: dict) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=canonical_default)


def event_hash(prev_hash: str, payload: dict) -> str:
    return hashlib.sha256((prev_hash + canonical_json(payload)).encode("utf-8")).hexdigest()
