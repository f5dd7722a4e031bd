"""Verify an audit export offline: ``python -m registry.verify_export FILE``.

Standard library only, so an auditor can copy this one file and run it anywhere
(``python3 verify_export.py FILE`` works too). It reads the CSV and JSON Lines
exports of ``GET /api/v1/audit/export?format=csv|jsonl`` (and the export button
of the audit log page) and exits with one of ``EXIT_CODES``: 0 when the export is
intact; 1 when it is not (an edited, deleted, reordered or added event, an edited or
missing manifest), printing the first problem with its sequence number; 2 for a wrong
command line; 3 when the file cannot be read as an export at all (missing, not UTF-8,
not CSV or JSON Lines, a malformed row), printing one line that names it.

The hash rule, shared byte for byte with the server (``registry.services.audit``)::

    hash = sha256( prev_hash || canonical_json(event_fields) )

where ``event_fields`` are the 16 fields in ``HASHED_FIELDS`` (``prev_hash``
included), plus ``token`` when it is not empty, and canonical_json sorts keys, uses
``(",", ":")`` separators, no ASCII escaping, UTF-8. The first event of the chain has
``prev_hash`` = 64 zeros. ``token`` names the API token an event was made with (its
prefix and id, never the secret); events written before it existed, and events made
without a token, have none, and their hash is what it always was.

Checked: (1) every event's own hash, recomputed from its fields; (2) the links between rows
with consecutive sequence numbers (``prev_hash`` = the previous ``hash``); (3) the closing
manifest (count, first/last sequence, first prev_hash, last hash); an export whose ``filters``
leave no event out must have no gap, whatever ``contiguous`` says, and a missing manifest is a
truncated file; (4) the rows: an unknown JSON field, a duplicated JSON key or an extra CSV
column is refused; a UTF-8 byte order mark is ignored. A filtered export (one model, one actor)
is checked by (1), and (2) where rows follow each other; ``registry.verify_filtered`` checks
it against a later full export, which holds the chain's record of its count (``recorded_as``).

Formats (docs/audit.md, "Exporting and verifying offline"): JSON Lines, one object per event
(the hashed fields, ``token``, ``hash``) and a last line ``{"manifest": {...}}``; CSV, a header
(the hashed fields, ``token`` except in older exports, ``hash``; empty means null or none;
``before``/``after`` as JSON text), an optional ``#cell_escape,formula-quote`` row after it (a
cell beginning with ``= + - @``, tab, carriage return or ``'`` then carries one extra leading
``'``, taken off before hashing: ``formula_quoted``), and a last row ``#manifest`` + its JSON.
"""

from __future__ import annotations

import csv
import datetime
import decimal
import hashlib
import io
import json
import sys
import uuid
from collections.abc import Iterable, Iterator

GENESIS_HASH = "0" * 64

# The fields covered by the hash, in export column order.
HASHED_FIELDS = (
    "seq",
    "timestamp",
    "actor_id",
    "actor_name",
    "action",
    "object_type",
    "object_id",
    "object_repr",
    "model_id",
    "model_name",
    "before",
    "after",
    "request_id",
    "source",
    "ip",
    "prev_hash",
)
# Hashed only when not empty, so that the events written before it existed still verify.
TOKEN_FIELD = "token"
EXPORT_COLUMNS = (*HASHED_FIELDS, TOKEN_FIELD, "hash")
_EXPORT_COLUMNS_WITHOUT_TOKEN = (*HASHED_FIELDS, "hash")  # exports made before the token was recorded
MANIFEST_MARKER = "#manifest"
# CSV exports neutralise spreadsheet formulas (OWASP "CSV injection"): a cell beginning with a
# character a spreadsheet would read as a formula gets one leading "'", and so does a cell that
# begins with "'" itself, so the prefix is always undone exactly. Such exports declare it in the
# row right after the header (``#cell_escape,formula-quote``) and in the manifest
# (``"cell_escape"``); older exports have neither, and their cells are hashed as written.
CELL_ESCAPE_MARKER = "#cell_escape"
FORMULA_QUOTE = "formula-quote"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
QUOTED_STARTS = (*FORMULA_STARTS, "'")
_INT_FIELDS = ("seq", "actor_id", "model_id")
_JSON_FIELDS = ("before", "after")
_NULLABLE_TEXT = ("ip",)

EXIT_OK, EXIT_BROKEN, EXIT_USAGE, EXIT_UNREADABLE = 0, 1, 2, 3
EXIT_CODES = {
    EXIT_OK: "the export is intact",
    EXIT_BROKEN: "the chain is broken: an event or the manifest was altered, added, removed or reordered",
    EXIT_USAGE: "wrong command line",
    EXIT_UNREADABLE: "the file cannot be read as an audit export (missing, not UTF-8, malformed)",
}


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


# One encoder, reused: exactly what json.dumps(...) with these options builds on every call.
_CANONICAL_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=canonical_default
)


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list) -> dict:
    keys = [key for key, _ in pairs]
    for key in keys:
        if keys.count(key) > 1:
            raise _DuplicateKey(key)
    return dict(pairs)


def strict_json(text: str):
    """``json.loads`` refusing a duplicated key: json keeps the last value silently, so a forged
    value written first would be read by other tools while the hash checks the genuine one."""
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except _DuplicateKey as exc:
        raise json.JSONDecodeError(f"duplicate key {exc.args[0]!r}", text, 0) from None


def canonical_json(payload) -> str:
    return _CANONICAL_ENCODER.encode(payload)


def event_hash(prev_hash: str, payload: dict) -> str:
    return hashlib.sha256((prev_hash + canonical_json(payload)).encode("utf-8")).hexdigest()


def with_token(payload: dict, token: str | None) -> dict:
    """``payload`` (the 16 hashed fields) with the event's token, which is hashed only when set."""
    if token:
        payload[TOKEN_FIELD] = token
    return payload


# ---------------------------------------------------------------- CSV encoding


def csv_cells(payload: dict, hash_: str) -> list:
    """One CSV row for an event (used by the server's exporter too)."""
    cells = []
    for name in HASHED_FIELDS:
        value = payload[name]
        if name in _JSON_FIELDS:
            cells.append(canonical_json(value) if value is not None else "null")
        else:
            cells.append("" if value is None else value)
    cells.append(payload.get(TOKEN_FIELD, ""))
    cells.append(hash_)
    return cells


def formula_quoted(cell):
    """A CSV cell as an export declaring ``formula-quote`` writes it (text only)."""
    return "'" + cell if isinstance(cell, str) and cell.startswith(QUOTED_STARTS) else cell


def _formula_unquoted(row: list[str], header: list[str], line_no: int) -> list[str]:
    """The cells of a ``formula-quote`` export as they were hashed: exactly one leading "'" taken
    off where the exporter put it. A cell the exporter would have prefixed but was not (a formula
    written into the file afterwards), or a prefix it never writes, is refused."""
    cells = []
    for name, cell in zip(header, row, strict=True):
        if cell.startswith("'") and cell[1:].startswith(QUOTED_STARTS):
            cells.append(cell[1:])
        elif cell.startswith(QUOTED_STARTS):
            raise _Broken(
                f"line {line_no}: {name} begins with {cell[:2]!r} but the export declares formula-quote, "
                "which writes every such cell with exactly one ' prefix: the cell was edited"
            )
        else:
            cells.append(cell)
    return cells


def _declare_cell_escape(row: list[str], line_no: int, holder: dict) -> None:
    """The ``#cell_escape`` row, which comes right after the header in exports that prefix cells."""
    if line_no != 2 or holder["cell_escape"]:
        raise ExportFormatError(f"line {line_no}: {CELL_ESCAPE_MARKER} belongs on line 2, right after the header")
    if row[1:] != [FORMULA_QUOTE]:
        raise ExportFormatError(f"line {line_no}: unknown cell escape {','.join(row[1:])!r} (expected {FORMULA_QUOTE})")
    holder["cell_escape"] = FORMULA_QUOTE


def _payload_from_csv(row: list[str], header: list[str]) -> tuple[dict, str]:
    record = dict(zip(header, row, strict=True))
    payload: dict = {}
    for name in HASHED_FIELDS:
        value = record[name]
        if name in _INT_FIELDS:
            payload[name] = int(value) if value != "" else None
        elif name in _JSON_FIELDS:
            payload[name] = strict_json(value)
        elif name in _NULLABLE_TEXT:
            payload[name] = value or None
        else:
            payload[name] = value
    return with_token(payload, record.get(TOKEN_FIELD)), record["hash"]


# ---------------------------------------------------------------- reading files


class ExportFormatError(ValueError):
    """The file is not a well-formed export."""


def read_export(stream: io.TextIOBase) -> tuple[Iterator[tuple[int, dict, str]], dict]:
    """Sniff the format; returns (iterator of (line_no, payload, hash), holder with 'manifest')."""
    first = stream.readline().removeprefix("\ufeff")  # a byte order mark, as Excel saves (verify_file drops it)
    holder: dict = {"manifest": None, "format": None, "cell_escape": None}
    if first.lstrip().startswith("{"):
        holder["format"] = "jsonl"
        return _read_jsonl(first, stream, holder), holder
    holder["format"] = "csv"
    return _read_csv(first, stream, holder), holder


def _read_jsonl(first: str, stream, holder: dict):
    line_no = 0
    for line in _chain_lines(first, stream):
        line_no += 1
        if not line.strip():
            continue
        if holder["manifest"] is not None:
            raise ExportFormatError(f"line {line_no}: data after the manifest")
        try:
            obj = strict_json(line)
        except json.JSONDecodeError as exc:
            raise ExportFormatError(f"line {line_no}: not valid JSON ({exc.msg})") from exc
        if not isinstance(obj, dict):
            raise ExportFormatError(f"line {line_no}: expected a JSON object")
        if "manifest" in obj and len(obj) == 1:
            holder["manifest"] = obj["manifest"]
            continue
        missing = [f for f in _EXPORT_COLUMNS_WITHOUT_TOKEN if f not in obj]
        if missing:
            raise ExportFormatError(f"line {line_no}: missing field(s) {', '.join(missing)}")
        unknown = [f for f in obj if f not in EXPORT_COLUMNS]
        if unknown:
            raise ExportFormatError(
                f"line {line_no} (seq {obj['seq']!r}): field(s) an export never writes: {', '.join(unknown)}"
            )
        payload = with_token({name: obj[name] for name in HASHED_FIELDS}, obj.get(TOKEN_FIELD))
        yield line_no, payload, obj["hash"]


def _chain_lines(first: str, stream) -> Iterable[str]:
    yield first
    yield from stream


def _lift_csv_field_limit() -> None:
    """Let the csv module read fields of any size: its default refuses fields over 128 KiB, and an
    event's ``before``/``after`` can be larger. The limit is a C long: 2**63 - 1 on most platforms,
    2**31 - 1 where a long is 32 bits (Windows), so halve until the platform accepts it."""
    limit = sys.maxsize
    while True:
        try:
            csv.field_size_limit(limit)
            return
        except OverflowError:
            limit //= 2


def _read_csv(first: str, stream, holder: dict):
    _lift_csv_field_limit()
    try:
        yield from _read_csv_rows(first, stream, holder)
    except csv.Error as exc:
        raise ExportFormatError(f"not a readable CSV file ({exc})") from exc


def _read_csv_rows(first: str, stream, holder: dict):
    reader = csv.reader(_chain_lines(first, stream))
    try:
        header = next(reader)
    except StopIteration:
        return
    if tuple(header) not in (EXPORT_COLUMNS, _EXPORT_COLUMNS_WITHOUT_TOKEN):
        raise ExportFormatError(f"line 1: unexpected CSV header (expected {','.join(EXPORT_COLUMNS)})")
    for row in reader:
        line_no = reader.line_num
        if not row:
            continue
        if holder["manifest"] is not None:
            raise ExportFormatError(f"line {line_no}: data after the manifest")
        if row[0] == MANIFEST_MARKER:
            try:
                holder["manifest"] = strict_json(row[1])
            except (IndexError, json.JSONDecodeError) as exc:
                raise ExportFormatError(f"line {line_no}: unreadable manifest") from exc
            continue
        if row[0] == CELL_ESCAPE_MARKER:
            _declare_cell_escape(row, line_no, holder)
            continue
        if len(row) != len(header):
            raise ExportFormatError(f"line {line_no}: expected {len(header)} columns, got {len(row)}")
        if holder["cell_escape"]:
            row = _formula_unquoted(row, header, line_no)
        try:
            payload, hash_ = _payload_from_csv(row, header)
        except (ValueError, json.JSONDecodeError) as exc:
            raise ExportFormatError(f"line {line_no}: unreadable value ({exc})") from exc
        yield line_no, payload, hash_


# ---------------------------------------------------------------- verification


class _Broken(Exception):
    """The first problem found in the rows: its message and summary."""

    def __init__(self, message: str, summary: dict | None = None):
        super().__init__(message)
        self.summary = summary or {}


def _check_link(seq: int, line_no: int, payload: dict, prev_seq, prev_hash_seen) -> bool:
    """Check one row's place after the previous one; True when a gap (filtered export) lies between."""
    if prev_seq is None:
        if seq == 1 and payload["prev_hash"] != GENESIS_HASH:
            raise _Broken(f"event seq 1 (line {line_no}): prev_hash is not the genesis hash", {"broken_seq": 1})
        return False
    if seq <= prev_seq:
        raise _Broken(f"event seq {seq} (line {line_no}): out of order after seq {prev_seq}")
    if seq != prev_seq + 1:
        return True
    if payload["prev_hash"] != prev_hash_seen:
        raise _Broken(
            f"event seq {seq} (line {line_no}): broken link, prev_hash does not match the hash of seq {prev_seq}",
            {"broken_seq": seq},
        )
    return False


def _walk(rows) -> tuple[dict, str | None]:
    """Check every row's hash and its link to the previous row. Returns the summary of the
    rows and the first event's prev_hash; raises _Broken at the first problem."""
    count = gaps = 0
    first_seq = last_seq = first_prev = last_hash = None
    for line_no, payload, stored_hash in rows:
        seq = payload["seq"]
        if not isinstance(seq, int):
            raise _Broken(f"line {line_no}: seq is not an integer")
        computed = event_hash(payload["prev_hash"], payload)
        if computed != stored_hash:
            raise _Broken(
                f"event seq {seq} (line {line_no}): hash mismatch, the event's fields were altered "
                f"(stored {stored_hash[:16]}…, recomputed {computed[:16]}…)",
                {"broken_seq": seq},
            )
        gaps += _check_link(seq, line_no, payload, last_seq, last_hash)
        if first_seq is None:
            first_seq, first_prev = seq, payload["prev_hash"]
        last_seq, last_hash = seq, stored_hash
        count += 1
    summary = {"count": count, "first_seq": first_seq, "last_seq": last_seq, "last_hash": last_hash, "gaps": gaps}
    return summary, first_prev


def _manifest_problem(
    manifest: dict, summary: dict, first_prev: str | None, *, cell_escape: str | None = None
) -> str | None:
    """What the manifest says that the rows do not, or None."""
    expected = {
        "cell_escape": cell_escape,
        "count": summary["count"],
        "first_seq": summary["first_seq"],
        "last_seq": summary["last_seq"],
        "first_prev_hash": first_prev,
        "last_hash": summary["last_hash"],
    }
    for key, value in expected.items():
        if manifest.get(key) != value:
            return (
                f"manifest mismatch: {key} is {manifest.get(key)!r} in the manifest but {value!r} in the rows "
                "(rows were added, removed or the manifest was edited)"
            )
    gaps, narrowing = summary["gaps"], _narrowing_filters(manifest)
    if gaps and not narrowing:
        return (
            f"the export declares no filters (other than a seq range) but has {gaps} gap(s) in the sequence: "
            "rows were deleted"
        )
    if manifest.get("contiguous") is not (not narrowing):
        return f"manifest mismatch: contiguous is {manifest.get('contiguous')!r} but the export declares " + (
            f"filters ({_filters_text(narrowing)})" if narrowing else "no filters (other than a seq range)"
        )
    if manifest.get("head_seq") == summary["last_seq"] and manifest.get("head_hash") != summary["last_hash"]:
        return "manifest mismatch: head_hash differs from the last event's hash"
    return None


def _narrowing_filters(manifest: dict) -> dict:
    """The manifest's filters that leave events out: all but a seq range, which is a gap-free stretch."""
    filters = manifest.get("filters") or {}
    if not isinstance(filters, dict):
        return {"filters": filters}
    return {key: value for key, value in filters.items() if key not in ("from_seq", "to_seq")}


def _filters_text(filters: dict) -> str:
    return ", ".join(
        f"{key}={value if isinstance(value, str) else canonical_json(value)}" for key, value in filters.items()
    )


def verify_stream(stream: io.TextIOBase) -> tuple[bool, str, dict]:
    """Verify an export; returns (ok, message, summary). A file that is not a well-formed export
    answers ``summary == {"unreadable": True}``: its chain could not be checked at all."""
    rows, holder = read_export(stream)
    try:
        walked, first_prev = _walk(rows)
    except _Broken as exc:
        return False, str(exc), exc.summary
    except ExportFormatError as exc:
        return False, str(exc), {"unreadable": True}
    summary = {"format": holder["format"], **walked}
    manifest = holder["manifest"]
    if not isinstance(manifest, dict):
        return False, "no manifest at the end of the file: the export is truncated or not an audit export", summary
    problem = _manifest_problem(manifest, summary, first_prev, cell_escape=holder["cell_escape"])
    if problem:
        return False, problem, summary
    count, gaps = summary["count"], summary["gaps"]
    head = f"chain head at export: seq {manifest.get('head_seq')} {manifest.get('head_hash')}"
    if not count:
        return True, f"OK: empty export; {head}", summary
    filters = _filters_text(_narrowing_filters(manifest))
    kind = (
        f"filtered export (filters: {filters}), {gaps} gap(s) between matching events" if gaps else "contiguous chain"
    )
    message = (
        f"OK: {count} event(s), seq {summary['first_seq']}..{summary['last_seq']} ({kind}); "
        f"last hash {summary['last_hash']}; {head}"
    )
    return True, message, summary


def verify_file(path: str) -> tuple[bool, str, dict]:
    with open(path, encoding="utf-8-sig", newline="") as stream:  # Excel re-saves with a byte order mark
        return verify_stream(stream)


USAGE = "usage: python -m registry.verify_export FILE  (an audit export, CSV or JSON Lines)"


def _help() -> str:
    return f"{USAGE}\n\nexit status:\n" + "\n".join(f"  {code}  {text}" for code, text in EXIT_CODES.items())


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args in (["-h"], ["--help"]):
        print(_help())
        return EXIT_OK
    if len(args) != 1:
        print(_help(), file=sys.stderr)
        return EXIT_USAGE
    try:
        ok, message, summary = verify_file(args[0])
    except (OSError, UnicodeDecodeError) as exc:
        print(_one_line(f"UNREADABLE: cannot read {args[0]}: {exc}"), file=sys.stderr)
        return EXIT_UNREADABLE
    if ok:
        print(message)
        return EXIT_OK
    if summary.get("unreadable"):
        print(_one_line(f"UNREADABLE: {args[0]} is not a well-formed audit export: {message}"), file=sys.stderr)
        return EXIT_UNREADABLE
    print(f"FAILED: {message}", file=sys.stderr)
    return EXIT_BROKEN


if __name__ == "__main__":
    sys.exit(main())
