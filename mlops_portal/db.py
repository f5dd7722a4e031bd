"""Database-specific code, in one place.

The portal runs on PostgreSQL (production) and on SQLite (the embedded default of `make run`).
Where PostgreSQL offers a faster or stronger way to do something, the function here does it,
and the portable way (the ORM, a plain INSERT, or nothing where SQLite needs nothing) sits
beside it in the same function or is named in its docstring. No other application module reads
``connection.vendor`` or opens a cursor: they call ``is_postgresql()`` and the helpers below.

The PostgreSQL paths run in the tests marked ``postgres`` and in every test on PostgreSQL;
the portable paths in the same tests on SQLite (``tests/test_db.py`` covers both).

PostgreSQL-only pieces that live elsewhere, on purpose:
- the audit table's append-only trigger: a migration (registry 0007);
- ``monitoring/services/ingest_storage.py``'s COPY of predictions and labels, which the
  partitioned-storage work reshapes (its ORM path sits beside it in that module).
"""

from __future__ import annotations

import codecs
import contextlib
import itertools
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, router
from django.db.models import F, FloatField, Func, Model, TextField
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast


def is_postgresql(using: str = DEFAULT_DB_ALIAS) -> bool:
    """True on PostgreSQL: the one vendor check of the application."""
    return connections[using].vendor == "postgresql"


def ping(using: str = DEFAULT_DB_ALIAS) -> str:
    """Run ``SELECT 1`` (raises when the database is unreachable); return the vendor name."""
    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return connection.vendor


# ----------------------------------------------------------------------------- locks


def advisory_xact_lock(key: int, using: str = DEFAULT_DB_ALIAS) -> None:
    """Serialise writers on ``key`` until the current transaction ends.

    PostgreSQL: ``pg_advisory_xact_lock``. SQLite: nothing to do, transactions are IMMEDIATE
    (settings), so writers are already serialised by the database lock."""
    if is_postgresql(using):
        with connections[using].cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


# ----------------------------------------------------------------------------- bulk loads


def analyze(tables: Sequence[str] = (), using: str = DEFAULT_DB_ALIAS) -> None:
    """Refresh the planner's statistics of ``tables`` (all of the schema's when empty), as a bulk loader does
    between stages.

    PostgreSQL: ``ANALYZE``. A fresh database loaded faster than autovacuum's schedule (or with
    autovacuum off) otherwise plans its joins on tables never analyzed: the label join of a
    window read each hour's labels partition by partition (0.57 s a window against 0.03 s after
    ``ANALYZE``, measured on the demo). SQLite: nothing (no statistics are kept unless asked)."""
    if is_postgresql(using):
        quote = connections[using].ops.quote_name
        with connections[using].cursor() as cursor:
            if not tables:
                # The schema's own tables (partitions included), never the shared catalogs: a
                # bare ANALYZE also locks those (pg_database, pg_authid…) until its transaction
                # ends, and every other database's ANALYZE of them waits for it.
                cursor.execute(
                    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') ORDER BY 1"
                )
                tables = [row[0] for row in cursor.fetchall()]
            if tables:
                cursor.execute(" ".join(["ANALYZE", ", ".join(quote(t) for t in tables)]))


@contextlib.contextmanager
def relaxed_commits(using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Commits that do not wait for the write-ahead log's flush, for a bulk load of data that can
    be loaded again (the demo): a crash may lose the last commits, never mixes them.

    PostgreSQL: ``synchronous_commit`` off for this session, restored after. SQLite: nothing."""
    if not is_postgresql(using):
        yield
        return
    with connections[using].cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        previous = cursor.fetchone()[0]
        cursor.execute("SET synchronous_commit TO off")
    try:
        yield
    finally:
        with connections[using].cursor() as cursor:
            cursor.execute("SELECT set_config('synchronous_commit', %s, false)", [previous])


# ----------------------------------------------------------------------------- reads


def fetch_one(sql: str, params: Sequence[Any], using: str = DEFAULT_DB_ALIAS) -> tuple | None:
    """One row of a hand-written query (portable SQL or SQL the caller chose per vendor)."""
    with connections[using].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def fetch_all(sql: str, params: Sequence[Any], using: str = DEFAULT_DB_ALIAS) -> list[tuple]:
    """Every row of a hand-written query (portable SQL or SQL the caller chose per vendor)."""
    with connections[using].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def datetime_param(value, using: str = DEFAULT_DB_ALIAS):
    """A datetime as a parameter of a hand-written query (SQLite stores naive UTC text)."""
    return connections[using].ops.adapt_datetimefield_value(value)


# Rows per libpq chunk while streaming (libpq >= 17): big enough to make the per-chunk cost
# vanish, small enough that PostgreSQL keeps producing rows while Python checks the last ones.
STREAM_ROWS = 2_000


def stream_rows(sql: str, params: Sequence[Any], *, chunk_rows: int, using: str = DEFAULT_DB_ALIAS) -> Iterator[tuple]:
    """PostgreSQL: the rows of one query as tuples straight from psycopg's row loader, streamed
    (libpq chunked-rows mode, libpq 17+; else fetched at once), so the server formats the next
    rows while Python works on these. Stopping early reads the rest of the result rather than
    let psycopg cancel the query, which would abort the caller's transaction.

    The portable path is the ORM: ``queryset.values_list(...)`` in keyset chunks."""
    from psycopg import pq

    with connections[using].cursor() as cursor:
        raw = cursor.cursor  # the psycopg 3 cursor under Django's wrapper
        if pq.version() >= 170000:
            rows = raw.stream(sql, params, size=min(chunk_rows, STREAM_ROWS))
        else:
            raw.execute(sql, params)
            rows = iter(raw.fetchall())
        try:
            for row in rows:  # noqa: UP028 (``yield from`` would close psycopg's stream on an early stop)
                yield row
        finally:
            for _ in rows:
                pass


def epoch_seconds(field: str) -> Func:
    """PostgreSQL: a timestamp column as float8 epoch seconds, computed in the database
    (``EXTRACT`` alone gives numeric, which would arrive as Decimal objects). The portable
    path reads the datetime and calls ``.timestamp()``."""
    return Func(F(field), template="EXTRACT(EPOCH FROM %(expressions)s)::float8", output_field=FloatField())


def pg_iso_timestamp(column_sql: str) -> RawSQL:
    """PostgreSQL: a timestamp column rendered exactly as Python's ``datetime.isoformat()``
    renders it in UTC (microseconds only when non-zero), so rows need no datetime objects.
    The portable path reads the datetime and calls ``.isoformat()``."""
    return RawSQL(
        f"""to_char({column_sql} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')"""
        f""" || CASE WHEN extract(microseconds FROM {column_sql})::bigint %% 1000000 <> 0"""
        f""" THEN to_char({column_sql} AT TIME ZONE 'UTC', '.US') ELSE '' END || '+00:00'""",
        [],
    )


def pg_json_text(field: str, column_sql: str, *, json_null: bool = False):
    """PostgreSQL: a JSON column as the database's JSON text; with ``json_null``, a NULL as the
    JSON text ``null``. The portable path reads the value Django parsed and dumps it."""
    if not json_null:
        return Cast(field, TextField())
    return RawSQL(f"COALESCE({column_sql}::text, 'null')", [])


def pg_inet_text(column_sql: str) -> RawSQL:
    """PostgreSQL: an ``inet`` column as its address text (no prefix length)."""
    return RawSQL(f"host({column_sql})", [])


# ----------------------------------------------------------------------------- COPY


def pg_prefixed_cells(sql: str, params: Sequence[Any], *, width: int, starts: Sequence[str], prefix: str):
    """PostgreSQL: the query ``sql`` (``width`` columns) with every cell as text, ``prefix`` put
    before each that begins with one of ``starts`` (CSV exports neutralise spreadsheet formulas this
    way: ``registry.verify_export.formula_quoted`` is the portable path). NULL stays NULL."""
    names = [f"c{i}" for i in range(width)]
    cells = ", ".join(
        f"CASE WHEN left({c}::text, 1) = ANY(%s::text[]) THEN %s || {c}::text ELSE {c}::text END" for c in names
    )
    return f"SELECT {cells} FROM ({sql}) AS cells({', '.join(names)})", [*([list(starts), prefix] * width), *params]


def copy_to_csv(sql: str, params: Sequence[Any], *, chunk_bytes: int, using: str = DEFAULT_DB_ALIAS) -> Iterator[str]:
    """PostgreSQL: the CSV rows of a query written by the database (``COPY (…) TO STDOUT``),
    as UTF-8 text chunks of about ``chunk_bytes``. The portable path writes the same cells
    with Python's csv module (``registry.services.audit.export``)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    pending: list[bytes] = []
    size = 0
    with connections[using].cursor() as cursor:
        with cursor.cursor.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)", params) as copy:
            for data in copy:
                pending.append(bytes(data))
                size += len(data)
                if size >= chunk_bytes:
                    yield decoder.decode(b"".join(pending))
                    pending, size = [], 0
    yield decoder.decode(b"".join(pending), final=True)


def insert_rows(
    model: type[Model], columns: Sequence[str], rows: Iterable[Sequence[Any]], *, batch_size: int = 5000
) -> int:
    """Insert plain rows (values in ``columns`` order, database column names) without model
    validation, signals or field defaults, as COPY does; return how many. PostgreSQL: one
    ``COPY … FROM STDIN``; other databases: one ``INSERT`` run over each batch of ``batch_size``
    rows (``executemany``), each value prepared by its field as the ORM would save it."""
    using = router.db_for_write(model)
    connection = connections[using]
    table = model._meta.db_table
    count = 0
    if is_postgresql(using):
        with connection.cursor() as cursor:
            with cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
                    count += 1
        return count
    by_column = {field.column: field for field in model._meta.concrete_fields}
    prepare = [by_column[column].get_db_prep_save for column in columns]
    quote = connection.ops.quote_name
    sql = f"INSERT INTO {quote(table)} ({', '.join(map(quote, columns))}) VALUES ({', '.join(['%s'] * len(columns))})"
    pending = iter(rows)
    with connection.cursor() as cursor:
        while batch := list(itertools.islice(pending, batch_size)):
            cursor.executemany(
                sql, [[prep(value, connection) for prep, value in zip(prepare, row, strict=True)] for row in batch]
            )
            count += len(batch)
    return count
