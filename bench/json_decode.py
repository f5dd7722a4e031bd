"""Benchmark: reading one JSON prediction batch (10,000 records, 20 numeric features: the
ingestion benchmark's first cached batch) into what validation works on (a float64 block of the
features, the ids and the timestamps), in this process, with the reader the API uses
(``monitoring.services.ingest_json.predictions_read``: msgspec decoding by the feature schema)
against the two readers issue 21 named: orjson (``ingest_parsing.parse_body``, a dict per record,
then the block as validation formed it before) and pyarrow's JSON reader (``pyarrow.json.read_json``
of the same record texts as JSON Lines, which it needs: it cannot read a JSON array; its
timestamps come parsed, the others' as text), on one thread, as a gunicorn worker busy beside the
other and the database has it, and on all threads. The readers take turns in each of 21 rounds
(``_medians_ms``), with the cyclic garbage collector paused, as the ingestion service pauses it.

    python -m bench json_decode
"""

from __future__ import annotations

import gc
import io
import statistics
import time

from bench.common import Figure, log

RUNS = 21


def _medians_ms(readers: dict) -> dict[str, float]:
    """Each reader's median time, the readers taking turns in each of ``RUNS`` rounds (so that the
    machine's slow moments fall on all of them alike)."""
    times: dict[str, list[float]] = {name: [] for name in readers}
    gc.disable()
    try:
        for _ in range(RUNS):
            for name, read in readers.items():
                start = time.perf_counter()
                read()
                times[name].append(time.perf_counter() - start)
    finally:
        gc.enable()
    return {name: statistics.median(values) * 1000 for name, values in times.items()}


def _readers(body: bytes, names: list[str]) -> dict:
    """Each reader: body → (features block, ids, timestamps)."""
    from itertools import chain

    import numpy as np
    import orjson
    import pyarrow.json as pa_json

    from monitoring.services.ingest_json import predictions_read
    from monitoring.services.ingest_parsing import parse_body
    from monitoring.services.ingest_validation import _rows_of, numbers_column

    lines = b"\n".join(body.strip()[1:-1].split(b",\n"))  # the same record texts, one a line
    assert len(lines.splitlines()) == len(orjson.loads(body))
    schema = dict.fromkeys(names, "numeric")

    def ours():
        batch = predictions_read(body, "application/json", schema)
        assert batch.features is not None, "read by type"
        block = np.column_stack([batch.features[name] for name in names])
        return block, batch.columns["prediction_id"], batch.columns["timestamp"]

    def general():
        batch = parse_body(body, "application/json")
        rows = _rows_of(batch.column("features"), names)
        block = numbers_column(list(chain.from_iterable(rows)), "features", from_text=False)
        return block.reshape(batch.n, len(names)), batch.column("prediction_id"), batch.column("timestamp")

    def arrow(threads: bool):
        table = pa_json.read_json(io.BytesIO(lines), read_options=pa_json.ReadOptions(use_threads=threads))
        features = table.column("features").combine_chunks()
        block = np.column_stack([features.field(name).to_numpy(zero_copy_only=False) for name in names])
        return block, table.column("prediction_id").to_pylist(), table.column("timestamp")  # parsed already

    readers = {
        "orjson, a dict per record (parse_body)": general,
        "pyarrow.json.read_json, 1 thread": lambda: arrow(False),
        "pyarrow.json.read_json, all threads": lambda: arrow(True),
    }
    expected = ours()[0]
    for name, read in readers.items():
        assert np.array_equal(read()[0], expected, equal_nan=True), f"{name} read other numbers"
    return ours, readers


def run() -> list[Figure]:
    from bench.monitoring_ingest import BATCH, FEATURES, feature_names, write_batches

    body = write_batches()[0].with_suffix(".json").read_bytes()
    ours, readers = _readers(body, feature_names())
    peers = _medians_ms({"ours": ours, **readers})
    mine = peers.pop("ours")
    log(f"  ours {mine:.1f} ms; " + "; ".join(f"{name} {ms:.1f} ms" for name, ms in peers.items()))
    return [
        Figure(
            f"read one JSON batch of {BATCH:,} predictions × {FEATURES} features into columns",
            mine,
            "ms",
            peer=name,
            peer_value=ms,
            ratio=ms / mine,
            target="faster than the reader it replaced" if name.startswith("orjson") else "",
            passed=mine < ms if name.startswith("orjson") else None,
            note=f"ratio = peer ms / ours (x faster); median of {RUNS} in-process runs, {len(body) / 1e6:.1f} MB body",
        )
        for name, ms in peers.items()
    ]
