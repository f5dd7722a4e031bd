"""Label ingestion finds the predictions its labels belong to (version and time, to mark their
windows dirty): through the keys table on PostgreSQL, one day's partition per id, never the
keys of a dropped day; through the plain table on SQLite."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from monitoring.models import DirtyWindow
from monitoring.services import partitions
from monitoring.services.ingest_storage import labelled_prediction_times
from monitoring.services.ingestion import labels_ingest
from monitoring.services.retention import retention_policy_update, retention_purge
from registry.services.audit import CLI
from tests.monitoring.helpers import T0, ingest_predictions, prediction_records

TABLE = "monitoring_prediction"
DAY = timedelta(days=1)


def _labels(model, ids, actor):
    body = json.dumps([{"prediction_id": i, "label": 1} for i in ids]).encode()
    return labels_ingest(model=model, body=body, content_type="application/json", actor=actor, context=CLI)


@pytest.mark.django_db
def test_a_label_of_a_purged_prediction_marks_no_window_and_the_others_mark_theirs(churn, churn_v1, owner, admin_user):
    """The purge dropped the old day (its keys wait for the sweep): a late label for one of its
    predictions must not mark the purged window dirty, which would recompute it from no rows
    and replace its kept figures."""
    old = T0 - 40 * DAY
    ingest_predictions(churn_v1, prediction_records(3, start=old, prefix="gone"), owner)
    ingest_predictions(churn_v1, prediction_records(3, start=T0, prefix="kept"), owner)
    retention_policy_update(model=churn, actor=admin_user, context=CLI, changes={"raw_days": 30})
    retention_purge(now=T0 + DAY)
    DirtyWindow.objects.all().delete()

    _labels(churn, ["gone0", "gone1", "kept0", "kept2"], owner)

    assert sorted(labelled_prediction_times(model=churn, ids=["gone0", "kept0", "kept2", "nobody"])) == sorted(
        (churn_v1.pk, t)
        for t in churn_v1.predictions.filter(prediction_id__in=["kept0", "kept2"]).values_list("timestamp", flat=True)
    )
    marked = {(m.window_start.date(), m.granularity) for m in DirtyWindow.objects.filter(version=churn_v1)}
    assert marked and {day for day, _ in marked} == {T0.date()}


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_lookup_probes_the_keys_and_only_the_partition_of_each_prediction_day(churn, churn_v1, owner):
    """One probe of the keys' primary key per id, then the row in its own day only: probing the
    partitioned table by id read an index of every day kept (the cost grew with the retention)."""
    days = [T0 - k * DAY for k in range(6)]
    for k, day in enumerate(days):
        ingest_predictions(churn_v1, prediction_records(20, start=day, prefix=f"d{k}-"), owner)
    ids = [f"d2-{i}" for i in range(20)]
    with CaptureQueriesContext(connection) as queries:
        found = list(labelled_prediction_times(model=churn, ids=ids))
    assert len(found) == 20 and {t.date() for _, t in found} == {days[2].date()}
    (lookup,) = [q["sql"] for q in queries.captured_queries if "unnest" in q["sql"]]
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {lookup}")
        plan = cursor.fetchone()[0]
        if isinstance(plan, str):
            plan = json.loads(plan)

    def nodes(node):
        yield node
        for child in node.get("Plans", []):
            yield from nodes(child)

    read = {
        n["Relation Name"]
        for n in nodes(plan[0]["Plan"])
        if n.get("Relation Name", "").startswith(f"{TABLE}_p") and n.get("Actual Loops", 0) > 0
    }
    assert read == {partitions.partition_name(TABLE, days[2].date())}, read
    # the keys are probed by id (never every key of the versions, hash-joined with the ids)
    probes = [n for n in nodes(plan[0]["Plan"]) if n.get("Index Name") == f"{partitions.PREDICTION_KEYS}_pkey"]
    assert probes and all("prediction_id" in n["Index Cond"] for n in probes), probes
    assert not [n for n in nodes(plan[0]["Plan"]) if n["Node Type"] == "Hash Join"]
