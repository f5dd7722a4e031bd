"""Data-subject ids: accepted with predictions and labels, kept only as HMAC-SHA256 under the
installation's ``SUBJECT_KEY``, so the database, logs, audit log and exports never hold the id
in clear, and an erasure request finds a subject's rows through the same keyed hash.

Without the key the hashes cannot be linked back to people by guessing ids (an unkeyed hash of
a customer number is reversed by hashing every customer number)."""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

MAX_SUBJECT_LENGTH = 200


def subject_key() -> bytes:
    key = settings.SUBJECT_KEY
    if not key:
        raise ImproperlyConfigured("SUBJECT_KEY is not set: it is required to accept or erase subject ids.")
    return key.encode()


def subject_hash(subject_id: str, *, key: bytes | None = None) -> str:
    """HMAC-SHA256 (hex) of a subject id (trimmed) under ``SUBJECT_KEY``."""
    return hmac.new(key or subject_key(), subject_id.strip().encode(), hashlib.sha256).hexdigest()


def subject_hashes(values: list[str | None]) -> list[str | None]:
    """One hash per value (None stays None), the key read once."""
    key = subject_key()
    return [None if v is None else subject_hash(v, key=key) for v in values]
