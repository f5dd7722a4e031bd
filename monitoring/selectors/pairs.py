"""A candidate's predictions paired with production's predictions of the same ids (shadow
traffic), read by live evidence for each window of the candidate.

Production's prediction of an id can be on any day. On PostgreSQL predictions are partitioned
by day and the id's day is in the keys table (``monitoring_predictionkey``, primary key
(version, id)), so each pair is one probe of that key, then one probe of the row in its own
day (pruned at run time), as label ingestion finds its predictions (``partitions.stored_times``).
A probe of production's ``(version, prediction_id)`` index through the parent read that index in
every day kept, per candidate prediction: 0.82 s for 10,000 pairs with 127 days kept, growing
with the days. SQLite has no partitions: production's row is found by its unique (version, id).
"""

from __future__ import annotations

import json
from datetime import datetime

from django.db.models import OuterRef, Subquery

from mlops_portal.db import datetime_param, fetch_all
from monitoring.models import Prediction
from monitoring.services import partitions
from registry.models import ModelVersion

_PAIRS_SQL = (
    "SELECT p.prediction, p.score, q.prediction, q.score, p.prediction_id FROM monitoring_prediction p"
    ' CROSS JOIN LATERAL (SELECT k."timestamp" AS t FROM {keys} k'
    " WHERE k.version_id = %(production)s AND k.prediction_id = p.prediction_id) k"
    " CROSS JOIN LATERAL (SELECT r.prediction, r.score FROM monitoring_prediction r"
    ' WHERE r."timestamp" = k.t AND r.version_id = %(production)s AND r.prediction_id = p.prediction_id OFFSET 0) q'
    ' WHERE p.version_id = %(candidate)s AND p."timestamp" >= %(start)s AND p."timestamp" < %(end)s'
    ' ORDER BY p."timestamp" DESC'
)
"""The key's time is a parameter of the second ``LATERAL`` (kept apart by ``OFFSET 0``), so
PostgreSQL prunes production's days at run time to the key's day."""


def _json(value):
    return None if value is None else json.loads(value)


def paired_predictions(candidate: ModelVersion, production: ModelVersion, start: datetime, end: datetime) -> list:
    """(prediction, score, production's prediction, production's score, prediction id) of the
    candidate's predictions made in [start, end) that production also made, newest first."""
    if partitions.is_partitioned(Prediction._meta.db_table):
        sql = _PAIRS_SQL.format(keys=partitions.PREDICTION_KEYS)
        params = {"production": production.pk, "candidate": candidate.pk}
        params |= {"start": datetime_param(start), "end": datetime_param(end)}
        return [(_json(a), s, _json(b), t, pid) for a, s, b, t, pid in fetch_all(sql, params)]
    prod = Prediction.objects.filter(version=production, prediction_id=OuterRef("prediction_id"))
    return list(
        Prediction.objects.filter(version=candidate, timestamp__gte=start, timestamp__lt=end)
        .annotate(
            prod_id=Subquery(prod.values("pk")[:1]),
            prod_prediction=Subquery(prod.values("prediction")[:1]),
            prod_score=Subquery(prod.values("score")[:1]),
        )
        .filter(prod_id__isnull=False)
        .values_list("prediction", "score", "prod_prediction", "prod_score", "prediction_id")
    )
