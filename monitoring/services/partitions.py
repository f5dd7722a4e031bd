"""Time partitions of the raw tables: the one module with the database-specific code for
them (PostgreSQL partition DDL, DETACH and DROP), with the ORM path beside it (SQLite keeps
plain tables and removes rows by range).

On PostgreSQL, each table in ``PARTITIONED`` is declaratively partitioned by range on its time
column into one partition per UTC day, named ``<table>_pYYYYMMDD``. Partitions are shared by
every model (one partition holds one day of every model's rows): per-model partitions would
multiply the number of tables by the number of models, and the planner's cost with them. So a
day is dropped only when it has expired for every model with rows in it and none of them is
under a legal hold; otherwise the expired models' rows of that day are deleted by range
(``monitoring.services.retention``).

Adding a table is one line in ``PARTITIONED`` (plus the migration that turns the table into
a partitioned one, see ``monitoring/migrations/0015_partitioned_predictions.py`` and
``0025_partitioned_labels.py``). Predictions are partitioned on their ``timestamp``, labels on
their ``received_at`` (the time retention counts a label's age from); a label's rows belong to
a model, so its ``version_column`` is ``model_id``.

Locks, so that ingestion never waits on partition maintenance:

* a new partition is created as a standalone table with a CHECK constraint matching its
  bounds, then attached with ``ALTER TABLE … ATTACH PARTITION`` (SHARE UPDATE EXCLUSIVE on
  the parent, which does not conflict with INSERT or COPY; the CHECK constraint lets
  PostgreSQL skip the validation scan), and the constraint is dropped again;
* an expired partition is detached with ``DETACH PARTITION … CONCURRENTLY`` (outside a
  transaction; the plain form, which takes an ACCESS EXCLUSIVE lock, only when the caller is
  already inside one, as tests are), then dropped as a standalone table.

A prediction id is stored once per version: the predictions' keys live in a plain table with
that primary key, kept by triggers (migration 0026; ``prediction_keys_*`` below).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.db import connection, transaction

from mlops_portal.db import analyze, is_postgresql

from .raw_digests import MOD, ids_digest

DAY = timedelta(days=1)
_NAME_DAY = re.compile(r"_p(\d{8})$")


@dataclass(frozen=True)
class PartitionedTable:
    """A raw table partitioned by day on ``column``, whose rows belong to a model version
    (``version_column``) and carry a prediction id (``id_column``, digested in purge receipts)."""

    table: str
    column: str
    version_column: str = "version_id"
    id_column: str = "prediction_id"


PARTITIONED: dict[str, PartitionedTable] = {
    "monitoring_prediction": PartitionedTable("monitoring_prediction", "timestamp"),
    # labels belong to a model (not a version) and are partitioned by when they arrived
    "monitoring_groundtruth": PartitionedTable("monitoring_groundtruth", "received_at", version_column="model_id"),
}


def day_floor(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    return datetime(moment.year, moment.month, moment.day, tzinfo=UTC)


def partition_name(table: str, day: date) -> str:
    return f"{table}_p{day:%Y%m%d}"


def _bounds(day: date) -> tuple[str, str | None]:
    """The day's [start, end) as ISO text; no end for the last day a datetime can hold."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start.isoformat(), (start + DAY).isoformat() if day < date.max else None


def _range_sql(table: str, name: str, day: date) -> tuple[str, str, list]:
    """(CHECK expression, FOR VALUES clause, their parameters) of one day's partition."""
    column = PARTITIONED[table].column
    low, high = _bounds(day)
    if high is None:
        return f'"{column}" IS NOT NULL AND "{column}" >= %s', "FROM (%s) TO (MAXVALUE)", [low]
    return f'"{column}" IS NOT NULL AND "{column}" >= %s AND "{column}" < %s', "FROM (%s) TO (%s)", [low, high]


def is_partitioned(table: str) -> bool:
    """True when ``table`` is a partitioned table (PostgreSQL only)."""
    if not is_postgresql():
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [table])
        row = cursor.fetchone()
    return bool(row) and row[0] == "p"


def partition_days(table: str) -> dict[date, str]:
    """The attached partitions of ``table``: day → partition name (empty on SQLite)."""
    if not is_partitioned(table):
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(%s)",
            [table],
        )
        names = [row[0] for row in cursor.fetchall()]
    days = {}
    for name in names:
        match = _NAME_DAY.search(name)
        if match:
            days[datetime.strptime(match.group(1), "%Y%m%d").date()] = name
    return days


def _lock(table: str) -> None:
    """Serialize partition maintenance of one table (transaction-level advisory lock)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"partitions:{table}"])


def partitions_ensure(*, table: str, days: Iterable[date]) -> list[str]:
    """Create and attach the missing daily partitions of ``table`` → their names. Cheap when
    nothing is missing (one catalog read); a no-op on SQLite."""
    wanted = sorted(set(days))
    if not wanted or not is_partitioned(table):
        return []
    if not set(wanted) - set(partition_days(table)):
        return []
    created = []
    with transaction.atomic():
        _lock(table)
        existing = partition_days(table)
        with connection.cursor() as cursor:
            for day in wanted:
                if day in existing:
                    continue
                name = partition_name(table, day)
                check, values, params = _range_sql(table, name, day)
                cursor.execute(f'CREATE TABLE "{name}" (LIKE "{table}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS)')
                cursor.execute(f'ALTER TABLE "{name}" ADD CONSTRAINT "{name}_bounds" CHECK ({check})', params)
                cursor.execute(f'ALTER TABLE "{table}" ATTACH PARTITION "{name}" FOR VALUES {values}', params)
                cursor.execute(f'ALTER TABLE "{name}" DROP CONSTRAINT "{name}_bounds"')
                created.append(name)
    return created


def partitions_create_ahead(*, days_ahead: int, today: date | None = None) -> list[str]:
    """Create today's partition and the next ``days_ahead`` ones of every partitioned table."""
    today = today or datetime.now(UTC).date()
    days = [today + i * DAY for i in range(days_ahead + 1)]
    created = []
    for table in PARTITIONED:
        created += partitions_ensure(table=table, days=days)
    return created


def ensure_for_datetimes(*, table: str, stamps) -> None:
    """Make sure rows at these times have partitions (ORM inserts; PostgreSQL only)."""
    if not stamps or not is_postgresql():
        return
    partitions_ensure(table=table, days={s.astimezone(UTC).date() for s in stamps})


def day_analyze(day: date) -> None:
    """Refresh the planner's statistics of the day's partitions (predictions and labels), for a
    bulk loader that computes the day's windows sooner than autovacuum analyzes them: never
    analyzed, a partition is planned as nearly empty and the label join reads every label of
    the day for each prediction (the credit-approval demo's five weeks: 73 s without, 35 s
    with). Nothing on SQLite."""
    tables = [name for name in (partition_days(table).get(day) for table in PARTITIONED) if name]
    if tables:
        analyze(tables)


def ensure_for_micros(*, table: str, ts_us_min: int, ts_us_max: int) -> None:
    """Make sure a batch spanning these UTC microseconds has partitions (ingestion calls this
    before COPY; beat creates partitions ahead, so this creates one only for back-filled days)."""
    if not is_postgresql():
        return
    first = (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ts_us_min)).date()
    last = (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ts_us_max)).date()
    days = [first + i * DAY for i in range((last - first).days + 1)]
    partitions_ensure(table=table, days=days)  # one catalog read when nothing is missing


def stored_ids(*, table: str, version_id: int, ids: list[str]) -> set[str]:
    """The ids of ``ids`` already stored for the version (labels: the model), across every
    partition: one index probe per id and partition. The LATERAL … LIMIT 1 keeps it a probe per
    id: a plain join (or ``= ANY(array)``) on a 10,000-id batch made the planner hash-join a scan
    of every partition (7–10 s at 3 M rows, against 1.9 s for the probes, on this loaded 2-CPU
    machine). Predictions do not need it: their keys table holds every stored id."""
    spec = PARTITIONED[table]
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT i.id FROM unnest(%s::text[]) AS i(id) CROSS JOIN LATERAL (SELECT 1 FROM "{table}" p '
            f'WHERE p."{spec.version_column}" = %s AND p."{spec.id_column}" = i.id LIMIT 1) AS hit',
            [ids, int(version_id)],
        )
        return {row[0] for row in cursor.fetchall()}


# The stored predictions' keys (PostgreSQL, migration 0026): a plain table whose primary key is
# (version_id, prediction_id), kept in step with the partitioned table by its statement-level
# triggers, so the database refuses an id stored twice for a version, whatever day holds it.
PREDICTION_KEYS = "monitoring_predictionkey"


def prediction_keys_stored(*, version_id: int, ids: list[str]) -> set[str]:
    """The ids of ``ids`` stored for the version (one probe of the keys' primary key per id)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT prediction_id FROM {PREDICTION_KEYS} WHERE version_id = %s AND prediction_id = ANY(%s::text[])",
            [int(version_id), ids],
        )
        return {row[0] for row in cursor.fetchall()}


def prediction_keys_forget(*, day: date, batch: int) -> int:
    """Delete up to ``batch`` keys of one day's predictions whose rows are gone (their partition
    was dropped, which fires no trigger) → how many; fewer than ``batch``: none is left.

    The keys are found by their time index and deleted by their row address (``ctid``) in one
    statement. The delete names the addresses only: with the day's range beside them, stale
    statistics that put one key in the day made the planner scan the day and filter each key
    against the whole list of addresses (quadratic: over six minutes for a million keys); alone,
    they are reached directly (a TID scan), whatever the statistics say. The addresses come from
    the statement's own snapshot, so they name exactly the keys found. A key whose row is
    stored again (the day's partition created anew by a back-fill) is kept: ``NOT EXISTS``
    probes the predictions of that day only (partition pruning), so nothing is probed once the
    day's partition is gone."""
    low, high = _bounds(day)

    def in_day(alias: str) -> str:
        return f'{alias}."timestamp" >= %s' + (f' AND {alias}."timestamp" < %s' if high else "")

    bounds = [low, high] if high else [low]
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {PREDICTION_KEYS} WHERE ctid = ANY(ARRAY("
            f"SELECT k.ctid FROM {PREDICTION_KEYS} k WHERE {in_day('k')} AND NOT EXISTS ("
            f"SELECT 1 FROM monitoring_prediction p WHERE {in_day('p')} "
            "AND p.version_id = k.version_id AND p.prediction_id = k.prediction_id) LIMIT %s))",
            [*bounds, *bounds, int(batch)],
        )
        return cursor.rowcount


def stored_times(*, version_ids: list[int], ids: list[str]) -> list[tuple[int, datetime]]:
    """(version id, time) of the stored predictions of these versions with these ids (the label
    join of label ingestion), found in the keys table: one probe of its primary key per id and
    version, then one probe of the row in the partition of its day (pruned at run time), which
    skips the keys of a dropped day that the sweep has not deleted yet (``OFFSET 0`` keeps the
    probes: flattened, the join hash-joined every key of the versions). Probing the partitioned
    table by id instead read one index of every day kept per id: 400 ids against 35 days took
    0.47 s, and the cost grew with the retention."""
    if not version_ids:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT hit.v, hit.t FROM unnest(%s::text[]) AS i(id) CROSS JOIN LATERAL (SELECT k.version_id AS v, "
            f'k."timestamp" AS t FROM {PREDICTION_KEYS} k WHERE k.version_id = ANY(%s) AND k.prediction_id = i.id '
            'AND EXISTS (SELECT 1 FROM monitoring_prediction p WHERE p."timestamp" = k."timestamp" '
            "AND p.version_id = k.version_id AND p.prediction_id = k.prediction_id) OFFSET 0) AS hit",
            [ids, [int(v) for v in version_ids]],
        )
        return cursor.fetchall()


VERSION_LOCK_CLASS = 21021  # advisory-lock namespace of "prediction ids of a version"


def version_lock(version_id: int) -> None:
    """Serialize the digest updates of one version's batches until commit (PostgreSQL): their
    days' digests are read, changed and written. Ingestion takes it after its COPY, so the
    batches' rows are written side by side (the keys' primary key refuses an id stored twice)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [VERSION_LOCK_CLASS, int(version_id)])


LABEL_LOCK_CLASS = 21022  # advisory-lock namespace of "label ids of a model"


def label_lock(model_id: int) -> None:
    """Serialize the replace-or-insert of label batches of one model until commit (PostgreSQL):
    with labels partitioned by time, no unique index spans a model's prediction ids."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [LABEL_LOCK_CLASS, int(model_id)])


# --------------------------------------------------------------------------- removing rows


def partition_versions(table: str, name: str) -> list[int]:
    """The version ids with rows in one partition (a loose index scan: one probe per version)."""
    col = PARTITIONED[table].version_column
    with connection.cursor() as cursor:
        cursor.execute(
            f'WITH RECURSIVE v AS (SELECT min("{col}") AS id FROM "{name}" UNION ALL '
            f'SELECT (SELECT min("{col}") FROM "{name}" WHERE "{col}" > v.id) FROM v WHERE v.id IS NOT NULL) '
            "SELECT id FROM v WHERE id IS NOT NULL"
        )
        return [row[0] for row in cursor.fetchall()]


def partition_receipts(table: str, name: str) -> dict[int, tuple[int, str]]:
    """Per version: (rows, ``ids_digest`` of their ids) of one partition, by reading its ids:
    the fallback for days stored before ``RawDigest`` kept their digests."""
    spec = PARTITIONED[table]
    ids: dict[int, list[str]] = {}
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT "{spec.version_column}", "{spec.id_column}" FROM "{name}"')
        for version, pid in cursor.fetchall():
            ids.setdefault(version, []).append(pid)
    return {version: (len(values), ids_digest(values)) for version, values in ids.items()}


def partition_detach(*, table: str, name: str) -> None:
    """Detach one partition: CONCURRENTLY (no lock that blocks ingestion) when not in a
    transaction, the plain form inside one."""
    concurrently = "" if connection.in_atomic_block else " CONCURRENTLY"
    with connection.cursor() as cursor:
        cursor.execute(f'ALTER TABLE "{table}" DETACH PARTITION "{name}"{concurrently}')


def detached_partitions(table: str) -> list[str]:
    """Partition tables of ``table`` left detached (a purge interrupted between DETACH and DROP)."""
    if not is_partitioned(table):
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_class c WHERE c.relkind = 'r' AND c.relname LIKE %s "
            "AND NOT EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid)",
            [table.replace("_", r"\_") + r"\_p%"],
        )
        return sorted(row[0] for row in cursor.fetchall() if _NAME_DAY.search(row[0]))


def table_drop(name: str) -> None:
    """Drop a detached partition. Deferred foreign-key checks of rows written earlier in the
    same transaction (only tests write and purge in one) are run first: PostgreSQL refuses to
    drop a table with pending trigger events."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f'DROP TABLE "{name}"')
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def day_of(name: str) -> date:
    return datetime.strptime(_NAME_DAY.search(name).group(1), "%Y%m%d").date()


def delete_range(*, queryset, version_field: str, id_field: str = "prediction_id") -> dict[int, tuple[int, str]]:
    """The ORM path (SQLite, and the rows of some models in a shared PostgreSQL partition):
    delete the rows of ``queryset`` → per version (or model) id: (rows, digest of their ids)."""
    ids: dict[int, list[str]] = {}
    for owner, pid in queryset.values_list(version_field, id_field).iterator(chunk_size=10000):
        ids.setdefault(owner, []).append(pid)
    queryset.delete()
    return {owner: (len(values), ids_digest(values)) for owner, values in ids.items()}


def delete_batches(*, queryset, version_field: str, id_field: str, batch: int = 5000) -> dict[int, tuple[int, str]]:
    """``delete_range`` in batches of ``batch`` rows (by primary key), so that no statement
    holds more than that many ids: per version (or model) id, (rows, digest of their ids),
    the digests added up batch by batch (``raw_digests.ids_digest`` is additive)."""
    found: dict[int, tuple[int, int]] = {}
    while True:
        chunk = list(queryset.order_by("pk").values_list("pk", version_field, id_field)[:batch])
        if not chunk:
            break
        ids: dict[int, list[str]] = {}
        for _, owner, rid in chunk:
            ids.setdefault(owner, []).append(rid)
        for owner, values in ids.items():
            rows, total = found.get(owner, (0, 0))
            found[owner] = (rows + len(values), (total + int(ids_digest(values), 16)) % MOD)
        queryset.model.objects.filter(pk__in=[pk for pk, _, _ in chunk]).delete()
    return {owner: (rows, f"{total:064x}") for owner, (rows, total) in found.items()}


def partition_attach(*, table: str, name: str) -> None:
    """Attach a detached partition again (one holding rows put under a legal hold meanwhile)."""
    _, values, params = _range_sql(table, name, day_of(name))
    with connection.cursor() as cursor:
        cursor.execute(f'ALTER TABLE "{table}" ATTACH PARTITION "{name}" FOR VALUES {values}', params)


__all__ = [
    "PARTITIONED",
    "PartitionedTable",
    "day_floor",
    "delete_batches",
    "delete_range",
    "detached_partitions",
    "ensure_for_datetimes",
    "ensure_for_micros",
    "is_partitioned",
    "label_lock",
    "partition_attach",
    "partition_days",
    "partition_detach",
    "partition_receipts",
    "partition_versions",
    "partitions_create_ahead",
    "partitions_ensure",
    "prediction_keys_forget",
    "prediction_keys_stored",
    "stored_ids",
    "stored_times",
    "table_drop",
    "version_lock",
]
