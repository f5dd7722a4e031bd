"""The labels of a window's predictions, read once by each window computation for its
performance metrics, fairness counts and shadow pairs.

A label belongs to a model and a prediction id (one per pair: ingestion keeps it so), and joins
every version's prediction with that id. It is read as one join of the window's predictions to
the model's labels, so the database chooses how: on PostgreSQL, with labels partitioned by the
day they are received, a hash join over the label days since the window could begin when they
hold fewer rows than the window's predictions times those days, else an index probe per
prediction and day (what a correlated ``[:1]`` subquery per prediction always did: 442 ms for
10,000 predictions labelled over 14 days, 5.2× a plain table; docs/scale.md, "Labels").

The label days read are bounded: a label is received after its prediction is made, and
ingestion accepts prediction times at most ``INGEST_MAX_FUTURE`` ahead of its clock, so no label
of a prediction made at ``start`` or later was received before ``start - INGEST_MAX_FUTURE``.
On PostgreSQL that bound prunes every older label day, however long retention keeps labels.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings

from mlops_portal.db import datetime_param, fetch_all
from monitoring.models import GroundTruth, Prediction
from registry.models import ModelVersion


def labels_earliest(start: datetime) -> datetime:
    """The earliest time a label of a prediction made at ``start`` or later can be received."""
    return start - timedelta(seconds=settings.INGEST_MAX_FUTURE)


def labelled_predictions_sql() -> str:
    """The join (parameters: version id, window start and end, model id, ``labels_earliest``)."""
    return (
        f"SELECT p.prediction_id, g.label, p.prediction, p.score"
        f" FROM {Prediction._meta.db_table} p JOIN {GroundTruth._meta.db_table} g"
        " ON g.prediction_id = p.prediction_id"
        " WHERE p.version_id = %s AND p.timestamp >= %s AND p.timestamp < %s"
        " AND g.model_id = %s AND g.received_at >= %s"
    )


def labelled_predictions(version: ModelVersion, start: datetime, end: datetime) -> list[tuple[str, Any, Any, Any]]:
    """(prediction id, label, prediction, score) of the version's predictions made in
    [start, end) that have a label, in no particular order; label and prediction decoded
    from their JSON as the ORM decodes them (``json.loads``: orjson would turn an integer
    beyond 64 bits into a float)."""
    params = [version.pk, datetime_param(start), datetime_param(end), version.model_id]
    rows = fetch_all(labelled_predictions_sql(), [*params, datetime_param(labels_earliest(start))])
    return [
        (pid, json.loads(label), None if prediction is None else json.loads(prediction), score)
        for pid, label, prediction, score in rows
    ]
