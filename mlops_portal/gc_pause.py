"""Python's cyclic garbage collector paused around one ingestion batch.

A JSON batch of 10,000 predictions decodes into 10,000 record objects and as many ``features``
objects: tracked containers that the cyclic collector walks again and again while the batch is
parsed, validated and written, though none of them is in a cycle (reference counting frees them
all when the batch is done). On a 10,000-row, 20-feature batch, parsing, validating and writing
the COPY text took 141–157 ms with the collector running and 101–106 ms with it paused; CSV,
which decodes into columns, took 91–122 ms either way (docs/performance.md, the summary of the
2026-12-05 23:29 run, "Fixed in the product").

So the ingestion services run with the collector paused and turn it back on, if it was on, when
the batch is done, whatever happens. Pauses nest and may overlap across threads: the collector
comes back when the last one ends. Whatever cycles a batch leaves are collected after it. The
README's gunicorn runs sync workers (one request at a time), where pauses never overlap; under
a threaded server, batches that keep overlapping would keep the collector off, so a pause that
ends while others run collects once itself when the collector has been off for ``MAX_PAUSE``
seconds.
"""

from __future__ import annotations

import contextlib
import gc
import threading
import time
from collections.abc import Iterator

MAX_PAUSE = 10.0  # seconds the collector may stay off while pauses keep overlapping
_lock = threading.Lock()
_depth = 0
_was_enabled = False
_off_since = 0.0


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic collector for the block (usable as a decorator: ``@gc_paused()``)."""
    global _depth, _was_enabled, _off_since
    with _lock:
        if _depth == 0:
            _was_enabled, _off_since = gc.isenabled(), time.monotonic()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        collect = False
        with _lock:
            _depth -= 1
            if _depth == 0:
                if _was_enabled:
                    gc.enable()
            elif _was_enabled and time.monotonic() - _off_since > MAX_PAUSE:
                collect, _off_since = True, time.monotonic()
        if collect:  # other batches still run: collect once here rather than never
            gc.collect()


__all__ = ["MAX_PAUSE", "gc_paused"]
