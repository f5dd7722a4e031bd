"""Ingestion bodies → columns: JSON arrays, JSON Lines and CSV, all read column-wise.

One reader per body kind, one output shape (``RawBatch``): a dict of column name → values,
which ``ingest_validation`` checks column by column.

* CSV goes through pyarrow's CSV reader with every column read as text (empty cell → null);
  a row with more or fewer cells than the header is refused, naming its row, and so is a quoted
  cell never closed (pyarrow would read the rows after it as that cell's text): a body with an
  odd count of quotes or more line breaks than rows is read again by the strict reader.
* JSON arrays and JSON Lines are decoded by orjson (it reads arrays, which pyarrow's JSON reader
  cannot; a prediction batch is first decoded by its feature schema in ``ingest_json``, and
  comes here only for what that reader refuses), JSON Lines a line at a time; the top-level
  fields become columns and ``features`` stays a column of objects. Standard-library ``json``
  only re-reads a body orjson refused, to tell a NaN/Infinity token (reported later with its
  row and field) from broken JSON. What it reads is then walked for unpaired surrogate escapes
  (``"\\ud800"``: orjson refuses them, ``json`` does not, and nothing can store them), refused
  with their row and field by the rule of ``mlops_portal.api.parsers``. A key given twice in
  one record (orjson keeps the last) is refused naming the row and the key
  (``_refuse_repeated_keys``: proved absent by counting colons, the body re-read only when the
  count cannot prove it). An id beyond 64 bits, which orjson reads as a float, is read exactly.
* Error messages never echo text that cannot be encoded: it is escaped (``\\udc00``).
* A UTF-8 byte-order mark at the start of the body is skipped (spreadsheet programs write one);
  any other invalid UTF-8 is refused with the byte offset.
"""

from __future__ import annotations

import codecs
import json
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import numpy as np
import orjson
from django.core.exceptions import ValidationError

from mlops_portal.api.errors import escape_unencodable
from mlops_portal.api.parsers import unpaired_surrogates

JSON_TYPES = ("application/json",)
NDJSON_TYPES = ("application/x-ndjson", "application/jsonl", "application/json-lines", "application/x-jsonlines")
CSV_TYPES = ("text/csv", "application/csv")
ACCEPTED_TYPES = JSON_TYPES + NDJSON_TYPES + CSV_TYPES


class BatchError(ValidationError):
    """A rejected batch: ``row`` is 1-based (the record's position; for CSV the data row)."""

    def __init__(self, row: int | None, field: str, message: str):
        field, message = escape_unencodable(field), escape_unencodable(message)
        self.row, self.field, self.reason = row, field, message
        where = f"Row {row}, field '{field}': " if row is not None else f"Field '{field}': "
        super().__init__({field: [where + message]})
        self.details = {"row": row, "field": field, "reason": message}


class UnsupportedFormat(BatchError):
    """The Content-Type is none of JSON, JSON Lines or CSV (API: 415)."""


@dataclass
class RawBatch:
    """Parsed, not yet validated: ``columns`` maps a field to one value per row.

    CSV cells are text or None (empty cell); JSON values are whatever the record held
    (a missing key reads as None). ``present`` lists the fields that occur at all. A CSV
    column stays a pyarrow string array until ``column`` is asked for its Python values, so
    the column-wise converters read ``text_column`` without a Python string per cell."""

    fmt: str
    n: int
    columns: dict[str, Any]
    present: list[str]
    features: dict[str, Any] | None = None
    """Feature columns already decoded by type (``ingest_json``): a numeric feature as float64
    (NaN where null or absent), any other as its values; None: features are in ``columns``."""

    @property
    def from_text(self) -> bool:
        return self.fmt == "csv"

    def column(self, name: str) -> list:
        values = self.columns.get(name)
        if values is None:
            return [None] * self.n
        if not isinstance(values, list):  # a CSV column still in pyarrow
            values = self.columns[name] = values.to_pylist()
        return values

    def text_column(self, name: str):
        """A CSV column as a pyarrow string array (``column`` otherwise), for converters that
        accept one (``ingest_validation.numbers_column``)."""
        values = self.columns.get(name)
        return values if values is not None and not isinstance(values, list) else self.column(name)


def media_type(content_type: str) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def parse_body(body: bytes, content_type: str) -> RawBatch:
    """A JSON array, JSON Lines or CSV body → ``RawBatch``; raises ``BatchError`` naming the row."""
    media = media_type(content_type)
    if media not in ACCEPTED_TYPES and media:
        raise UnsupportedFormat(
            None,
            "content_type",
            f"Unsupported Content-Type '{media}': use {', '.join(JSON_TYPES + NDJSON_TYPES[:1] + CSV_TYPES[:1])}.",
        )
    if body.startswith(codecs.BOM_UTF8):
        body = body[len(codecs.BOM_UTF8) :]
    if not body.strip():
        raise BatchError(None, "body", "The request body is empty.")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BatchError(None, "body", f"The body is not UTF-8 text ({exc.reason} at byte {exc.start}).") from exc
    if media in CSV_TYPES:
        return _read_csv(body)
    fmt = "jsonl" if media in NDJSON_TYPES else "json"
    batch = _record_columns(_json_records(body, fmt), fmt)
    if _inexact_integers(batch, body):  # orjson reads an integer beyond 64 bits as a float
        batch = _record_columns(_json_records(body, fmt, exact=True), fmt)
    return batch


# --------------------------------------------------------------------------- JSON


EXACT_FIELDS = ("prediction_id", "request_id", "case_id", "prediction", "label", "subject_id")
"""Top-level fields whose integers are kept exact whatever their size (ids, class labels, subject
ids: text written as a number), as are the values of ``features`` (categories)."""


def _json_records(body: bytes, fmt: str, *, exact: bool = False) -> list:
    records = _json_lines(body, exact=exact) if fmt == "jsonl" else _json_array(body, exact=exact)
    if not records:
        raise BatchError(None, "body", "The batch has no records.")
    _refuse_repeated_keys(body, records, lines=fmt == "jsonl")
    return records


_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")


def _inexact_integers(batch: RawBatch, body: bytes) -> bool:
    """Whether a column of ``EXACT_FIELDS`` or a features object holds a whole float beyond 64
    bits: orjson's reading of a larger integer, which the standard library reads exactly. The
    features are looked at only if the body has a run of 19 digits or more (2**63 has 19)."""
    columns = [batch.columns.get(name) for name in EXACT_FIELDS]
    objects = batch.columns.get("features")
    if objects is not None and b"0" * 19 in body.translate(_DIGITS_AS_ZERO):
        columns.append([value for obj in objects if isinstance(obj, dict) for value in obj.values()])
    for values in filter(None, columns):
        if float in set(map(type, values)):
            if any(type(v) is float and v.is_integer() and abs(v) >= 2**63 for v in values):
                return True
    return False


def _loads(data: bytes, row: int | None = None, *, exact: bool = False) -> Any:
    """orjson (unless ``exact``); a body it refuses is re-read by the standard library, which also
    accepts the NaN/Infinity tokens some clients send, so validation can name their row and field,
    and reads integers of any size exactly. What the standard library read is refused if it holds
    an unpaired surrogate; ``row`` is the record's row (a JSON Lines line), else the document is
    the array of records."""
    try:
        if not exact:
            return orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    document = json.loads(data)
    records = enumerate(document, start=1) if row is None and isinstance(document, list) else [(row, document)]
    for number, record in records:
        _refuse_surrogates(number, record)
    return document


def _refuse_surrogates(row: int | None, record: Any) -> None:
    """Walk one record without recursion; an unpaired surrogate in a string or key is a
    ``BatchError`` naming the top-level field it sits under (or the key itself)."""
    stack: list[tuple[Any, str | None]] = [(record, None)]
    while stack:
        value, field = stack.pop()
        if isinstance(value, str):
            if unpaired_surrogates(value):
                raise BatchError(row, field or "record", SURROGATE_MESSAGE)
        elif isinstance(value, dict):
            for key, item in value.items():
                where = key if field is None else field
                if unpaired_surrogates(key):
                    raise BatchError(row, where, SURROGATE_MESSAGE.replace("are not text", "in a key are not text"))
                stack.append((item, where))
        elif isinstance(value, list):
            stack.extend((item, field or "record") for item in value)


SURROGATE_MESSAGE = "Unpaired surrogate escapes (\\ud800…) are not text."


def _json_array(body: bytes, *, exact: bool = False) -> list:
    try:
        data = _loads(body, exact=exact)
    except (ValueError, RecursionError) as exc:  # ValueError: also a number of over 4,300 digits
        raise BatchError(None, "body", f"Invalid JSON: {_json_reason(exc)}.") from exc
    if not isinstance(data, list):
        raise BatchError(None, "body", "Expected a JSON array of records.")
    return data


def _json_lines(body: bytes, *, exact: bool = False) -> list:
    """One record per non-blank line, each line decoded alone: a line holding more, or less, than
    one value is refused naming it (JSON text never breaks a line inside a value)."""
    lines = nonblank_lines(body)
    try:
        if not exact:
            return list(map(orjson.loads, lines))
    except orjson.JSONDecodeError:
        pass
    records = []
    for lineno, line in enumerate(lines, start=1):
        try:
            records.append(_loads(line, lineno, exact=exact))
        except (ValueError, RecursionError) as exc:
            raise BatchError(lineno, "body", f"Invalid JSON: {_json_reason(exc)}.") from exc
    return records


def nonblank_lines(body: bytes) -> list[bytes]:
    return [line for line in body.splitlines() if line.strip()]


class _Repeated(dict):
    """An object the standard library read in which ``key`` was given more than once."""

    key = ""


def _members_once(pairs: list[tuple[str, Any]]) -> dict:
    members = dict(pairs)
    if len(members) == len(pairs):
        return members
    seen: set[str] = set()
    repeated = _Repeated(members)
    repeated.key = next(key for key, _ in pairs if key in seen or seen.add(key))
    return repeated


def _refuse_repeated_keys(body: bytes, records: list, *, lines: bool) -> None:
    """orjson keeps the last of a key given twice in an object; such a record is refused, naming
    its row and the key. The quick proof that none was: every ':' outside a string ends a key,
    and orjson's rendering of what it read has one per key it kept plus the colons of its strings
    (never escaped), so the same count of ':' in the body means no key was dropped, unless the
    body wrote a colon as ``\\u003a`` (a colon in the rendering only). Otherwise, and for what
    orjson cannot render (integers beyond 64 bits, nesting beyond 254 levels), the standard
    library reads the body again and finds the repeat, if any."""
    try:
        colons = count_byte(orjson.dumps(records), b":")
    except orjson.JSONEncodeError:
        colons = -1
    if colons == count_byte(body, b":") and not escaped_colon(body):
        return
    found = _first_repeated_key(body, lines=lines)
    if found is not None:
        row, field, key = found
        raise BatchError(row, field, f"Key '{key}' appears more than once in this record; send each key once.")


def _first_repeated_key(body: bytes, *, lines: bool) -> tuple[int, str, str] | None:
    """(row, field, key) of the first key given twice in one object of a record, or None."""
    for number, text in enumerate(nonblank_lines(body) if lines else [body], start=1):
        try:
            document = json.loads(text, object_pairs_hook=_members_once)
        except RecursionError as exc:  # orjson read it; a repeat below could go unnoticed: refused
            raise BatchError(number if lines else None, "body", "Invalid JSON: nested too deeply.") from exc
        except ValueError as exc:  # orjson read it, the standard library cannot: unproven, refused
            raise BatchError(number if lines else None, "body", f"Invalid JSON: {_json_reason(exc)}.") from exc
        rows = [(number, document)] if lines else enumerate(document if isinstance(document, list) else [], start=1)
        for row, record in rows:
            stack: list[tuple[Any, str]] = [(record, "")]
            while stack:
                value, path = stack.pop()
                if isinstance(value, _Repeated):
                    return row, f"{path}.{value.key}" if path else value.key, value.key
                if isinstance(value, dict):
                    stack.extend((item, f"{path}.{key}" if path else key) for key, item in value.items())
                elif isinstance(value, list):
                    stack.extend((item, path) for item in value)
    return None


def escaped_colon(body: bytes) -> bool:
    """Whether the body writes a colon as an escape (``\\u003a``): a colon of what is read, not of the body."""
    return b"\\" in body and (b"\\u003a" in body or b"\\u003A" in body)


def count_byte(data: bytes, byte: bytes) -> int:
    """How often one byte occurs in ``data`` (numpy: several times faster than ``bytes.count``)."""
    return int(np.count_nonzero(np.frombuffer(data, dtype=np.uint8) == ord(byte)))


def _json_reason(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} (line {exc.lineno}, column {exc.colno})"
    return "nested too deeply" if isinstance(exc, RecursionError) else str(exc)


def _record_columns(records: list, fmt: str) -> RawBatch:
    """Records → columns. Every record must be an object; absent keys read as None."""
    if set(map(type, records)) != {dict}:
        row = next(i for i, rec in enumerate(records, start=1) if not isinstance(rec, dict))
        raise BatchError(row, "record", "Expected an object.")
    keys = set().union(*records)
    columns: dict[str, list] = {}
    for key in keys:
        try:
            columns[key] = list(map(itemgetter(key), records))
        except KeyError:
            columns[key] = [rec.get(key) for rec in records]
    return RawBatch(fmt=fmt, n=len(records), columns=columns, present=sorted(keys))


# --------------------------------------------------------------------------- CSV


class _RaggedRows:
    """pyarrow's invalid-row handler: remembers the first row whose cell count is wrong."""

    def __init__(self):
        self.first = None

    def __call__(self, row) -> str:
        if self.first is None:
            self.first = row
        return "error"


def _read_csv(body: bytes) -> RawBatch:
    import pyarrow as pa  # imported on use: see registry/llm_stats.py
    import pyarrow.csv as pa_csv

    header_line = body.split(b"\n", 1)[0].rstrip(b"\r")
    if not header_line.strip():
        raise BatchError(None, "body", "The CSV has no header row.")
    ragged = _RaggedRows()
    try:
        names = pa_csv.read_csv(
            pa.py_buffer(header_line + b"\n"), read_options=pa_csv.ReadOptions(use_threads=False)
        ).column_names
        table = pa_csv.read_csv(
            pa.py_buffer(body),
            read_options=pa_csv.ReadOptions(use_threads=False),
            parse_options=pa_csv.ParseOptions(newlines_in_values=True, invalid_row_handler=ragged),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()), null_values=[""], strings_can_be_null=True
            ),
        )
    except (pa.ArrowInvalid, ValueError) as exc:
        if ragged.first is not None:
            _raise_ragged(ragged.first)
        raise BatchError(None, "body", f"Invalid CSV: {exc}.") from exc
    if len(set(names)) != len(names):
        duplicate = next(name for name in names if names.count(name) > 1)
        raise BatchError(None, duplicate, "Column appears twice in the CSV header.")
    if table.num_rows == 0:
        raise BatchError(None, "body", "The batch has no records.")
    if _quotes_unsettled(body) or _breaks_inside_cells(body, table.num_rows):
        _refuse_unclosed_quote(body)
    columns = {name: table.column(name).combine_chunks() for name in names}
    return RawBatch(fmt="csv", n=table.num_rows, columns=columns, present=list(names))


def _breaks_inside_cells(body: bytes, rows: int) -> bool:
    """Whether the body has more line breaks than its rows: a quoted cell holds one (or runs on
    to the end of the body, never closed), or a line is blank. A body whose every cell is on one
    line has one break per row and the header, the last one optional; counted in C, no cell read."""
    breaks = count_byte(body, b"\n")
    if b"\r" in body:  # CR LF is one break, a lone CR another
        breaks += count_byte(body, b"\r") - body.count(b"\r\n")
    return breaks > rows + body.endswith((b"\n", b"\r"))


_CELL_EDGES = np.array([ord(","), ord("\n"), ord("\r"), ord('"')], dtype=np.uint8)


def _quotes_unsettled(body: bytes) -> bool:
    """Whether the body's quote characters are odd in number (a cell never closed) or one has text
    on both sides (``"a"b``, or ``15" screen``): in a well-formed body every quote opens a cell,
    closes one or is doubled. pyarrow keeps ``"a"b`` as ``ab``; the strict reader tells it from a
    quote kept as sent in an unquoted cell. One pass finds the quotes; only their neighbours are
    read (numpy; a body without quotes costs one comparison)."""
    data = np.frombuffer(body, dtype=np.uint8)
    quotes = np.flatnonzero(data == ord('"'))
    if quotes.size % 2:
        return True
    if quotes.size == 0:
        return False
    before = np.isin(data[np.maximum(quotes - 1, 0)], _CELL_EDGES) | (quotes == 0)
    after = np.isin(data[np.minimum(quotes + 1, data.size - 1)], _CELL_EDGES) | (quotes == data.size - 1)
    return bool(np.any(~before & ~after))


def _refuse_unclosed_quote(body: bytes) -> None:
    """A quoted cell never closed is read by pyarrow to the end of the body (or to the next quote
    character, also a bare one kept as sent in an unquoted cell): the rows after it would become
    that cell's text. Only a body with an odd number of quote characters or a quote amid text
    (``_quotes_unsettled``), or line breaks inside its cells (``_breaks_inside_cells``) comes here: the
    standard library's strict reader tells a cell never closed, or closed and followed by other
    text, from well-formed cells."""
    import csv
    import io

    rows = -1  # the header
    csv.field_size_limit(max(csv.field_size_limit(), len(body)))  # a long cell is no error here
    reader = csv.reader(io.StringIO(body.decode("utf-8-sig", errors="replace"), newline=""), strict=True)
    try:
        for cells in reader:
            rows += bool(cells)  # blank lines are skipped, as pyarrow skips them
    except csv.Error as exc:
        reason = (
            "A quoted cell is never closed (its closing '\"' is missing)."
            if "end of data" in str(exc)
            else "A quoted cell is closed and followed by other text, or never closed until a later quote."
        )
        raise BatchError(rows + 1, "body", reason) from exc


def _raise_ragged(row) -> None:
    """``row.number`` is the line in the file (1 = header); data rows are counted from 1."""
    data_row = row.number - 1 if row.number is not None else None
    if row.actual_columns > row.expected_columns:
        raise BatchError(data_row, "body", "More cells than header columns.")
    raise BatchError(data_row, "body", "Fewer cells than header columns.")


# --------------------------------------------------------------------------- tables (CSV or Parquet)

PARQUET_MAGIC = b"PAR1"
PARQUET_TYPES = ("application/vnd.apache.parquet", "application/x-parquet", "application/parquet")
TABLE_TYPES = CSV_TYPES + PARQUET_TYPES


def parse_table(body: bytes, content_type: str) -> RawBatch:
    """A CSV or Parquet body (Parquet recognised by its media type or magic bytes) → ``RawBatch``.

    CSV goes through ``parse_body`` (all cells text); Parquet columns keep their types, as JSON
    values do (``from_text`` is false), so the same column validators apply."""
    media = media_type(content_type)
    if media in PARQUET_TYPES or body[:4] == PARQUET_MAGIC:
        return _read_parquet(body)
    if media and media not in CSV_TYPES:
        raise UnsupportedFormat(
            None, "content_type", f"Unsupported Content-Type '{media}': use text/csv or {PARQUET_TYPES[0]}."
        )
    return parse_body(body, "text/csv")


def _read_parquet(body: bytes) -> RawBatch:
    import pyarrow as pa  # imported on use: see registry/llm_stats.py
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(pa.py_buffer(body))
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise BatchError(None, "body", f"Invalid Parquet file: {str(exc)[:200]}.") from exc
    names = table.column_names
    if len(set(names)) != len(names):
        duplicate = next(name for name in names if names.count(name) > 1)
        raise BatchError(None, duplicate, "Column appears twice in the Parquet file.")
    if table.num_rows == 0:
        raise BatchError(None, "body", "The batch has no records.")
    columns = {}
    for name in names:
        column = table.column(name)
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        if pa.types.is_temporal(column.type) or pa.types.is_nested(column.type) or pa.types.is_binary(column.type):
            raise BatchError(None, name, f"Unsupported Parquet type {column.type}: use numbers, text or booleans.")
        columns[name] = column.to_pylist()
    return RawBatch(fmt="parquet", n=table.num_rows, columns=columns, present=list(names))


__all__ = ["ACCEPTED_TYPES", "BatchError", "RawBatch", "UnsupportedFormat", "media_type", "parse_body", "parse_table"]
