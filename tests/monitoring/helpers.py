"""Test data for the monitoring tests: reference tables and prediction batches."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import numpy as np
import pandas as pd

T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
PLANS = ["basic", "plus", "pro"]


def reference_frame(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.normal(40, 10, n)
    income = rng.lognormal(10, 0.5, n)
    plan = rng.choice(PLANS, n, p=[0.5, 0.3, 0.2])
    score = 1 / (1 + np.exp(-(age - 40) / 10))
    prediction = (score > 0.5).astype(int)
    return pd.DataFrame({"age": age, "income": income, "plan": plan, "prediction": prediction, "score": score})


def csv_bytes(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False).encode()


def parquet_bytes(df: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    df.to_parquet(buffer, index=False)
    return buffer.getvalue()


def profile_of(df: pd.DataFrame, schema: list[dict], task_type: str = "binary", n_bins: int = 10) -> dict:
    """The profile an upload of ``df`` (as Parquet) builds: read by the upload's own reader."""
    from monitoring.services.profiles import profile_build
    from monitoring.services.reference_data import reference_read

    version = SimpleNamespace(feature_schema=schema, task_type=task_type, classes=[])
    frame, _ = reference_read(body=parquet_bytes(df), content_type="application/vnd.apache.parquet", version=version)
    return profile_build(frame, schema, task_type, n_bins)


def prediction_records(
    n: int, *, start: datetime = T0, seed: int = 1, age_shift: float = 0.0, prefix: str = "p", spread_hours: int = 1
) -> list[dict]:
    rng = np.random.default_rng(seed)
    age = rng.normal(40 + age_shift, 10, n)
    income = rng.lognormal(10, 0.5, n)
    plan = rng.choice(PLANS, n, p=[0.5, 0.3, 0.2])
    score = 1 / (1 + np.exp(-(age - 40) / 10))
    seconds = rng.integers(0, 3600 * spread_hours, n)
    return [
        {
            "prediction_id": f"{prefix}{i}",
            "timestamp": (start + timedelta(seconds=int(seconds[i]))).isoformat(),
            "features": {"age": float(age[i]), "income": float(income[i]), "plan": str(plan[i])},
            "prediction": int(score[i] > 0.5),
            "score": float(score[i]),
        }
        for i in range(n)
    ]


def as_json(records) -> bytes:
    return json.dumps(records).encode()


def as_ndjson(records) -> bytes:
    return "\n".join(json.dumps(r) for r in records).encode()


def as_csv(records) -> bytes:
    rows = [
        {
            "prediction_id": r["prediction_id"],
            "timestamp": r["timestamp"],
            **r["features"],
            "prediction": r["prediction"],
            "score": r["score"],
        }
        for r in records
    ]
    return pd.DataFrame(rows).to_csv(index=False).encode()


FIGURES_TAG = '<script id="figures" type="application/json">'


# The charts a tabular model's dashboard draws (an LLM application's draws only the last).
DASHBOARD_CHART_IDS = [
    "chart-drift-heatmap",
    "chart-top-drifted",
    "chart-feature-distribution",
    "chart-drift-share",
    "chart-performance",
    "chart-prediction-distribution",
    "chart-volume-quality",
]


def figures_of(response) -> dict:
    """The chart figures a dashboard page embeds as JSON, by chart id."""
    page = response.content.decode()
    start = page.index(FIGURES_TAG) + len(FIGURES_TAG)
    return json.loads(page[start : page.index("</script>", start)])


def assert_error(response, status, *needles) -> dict:
    """The API answered ``status`` with the one error envelope, mentioning every needle; returns the error."""
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"} and {"code", "message", "details"} <= set(body["error"]), body
    text = json.dumps(body)
    for needle in needles:
        assert needle in text, (needle, text)
    return body["error"]


def ingest_predictions(version, records, actor):
    """Ingest prediction records as one JSON batch through the service, as the CLI would."""
    from monitoring.services.ingestion import predictions_ingest
    from registry.services.audit import CLI

    return predictions_ingest(
        version=version, body=as_json(records), content_type="application/json", actor=actor, context=CLI
    )


def ingest_subject_predictions(version, actor, subjects: list[str], prefix: str, *, start=T0):
    """One prediction per subject id in ``subjects`` (ids ``<prefix>0``, ``<prefix>1``, …) sent as
    one JSON batch with its ``subject_id``."""
    records = prediction_records(len(subjects), start=start, prefix=prefix)
    for record, subject in zip(records, subjects, strict=True):
        record["subject_id"] = subject
    return ingest_predictions(version, records, actor)


def ingest_labels(model, labels: list[dict], actor):
    """Ingest label records as one JSON batch through the service, as the CLI would."""
    from monitoring.services.ingestion import labels_ingest
    from registry.services.audit import CLI

    body = json.dumps(labels).encode()
    return labels_ingest(model=model, body=body, content_type="application/json", actor=actor, context=CLI)


def metric_row(version, start, metric, value, *, feature="", granularity=None, computed_at=None):
    """One metric value of a window as the engine stores it (unsaved, for ``bulk_create``): an
    hourly window unless ``granularity`` is daily."""
    from django.utils import timezone

    from monitoring.choices import Granularity
    from monitoring.models import MetricValue

    granularity = granularity or Granularity.HOURLY
    step = timedelta(days=1) if granularity == Granularity.DAILY else timedelta(hours=1)
    return MetricValue(
        model=version.model,
        version=version,
        granularity=granularity,
        window_start=start,
        window_end=start + step,
        feature=feature,
        metric=metric,
        value=value,
        computed_at=computed_at or timezone.now(),
    )


def partition_by_migration(table: str, before: list, insert_sql: str, params: list, select_sql: str):
    """PostgreSQL: migrate monitoring back to ``before`` (``table`` a plain table), insert a row per
    ``params`` and migrate forward again. ``table`` is then partitioned and ``select_sql`` reads the
    very rows it read before. Returns those rows and the latest migration."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    from monitoring.services import partitions

    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes("monitoring")
    executor.migrate(before)
    assert not partitions.is_partitioned(table)
    with connection.cursor() as cursor:
        for row in params:
            cursor.execute(insert_sql, row)
        cursor.execute(select_sql)
        rows = cursor.fetchall()
    MigrationExecutor(connection).migrate(latest)
    assert partitions.is_partitioned(table)
    with connection.cursor() as cursor:
        cursor.execute(select_sql)
        assert cursor.fetchall() == rows
    return rows, latest


def other_connection(*, autocommit: bool = True):
    """A second PostgreSQL connection to the test database, outside Django's (to hold or probe
    locks while the code under test runs)."""
    import psycopg
    from django.db import connection

    s = connection.settings_dict
    return psycopg.connect(
        dbname=s["NAME"],
        user=s["USER"] or None,
        password=s["PASSWORD"] or None,
        host=s["HOST"] or None,
        port=s["PORT"] or None,
        autocommit=autocommit,
    )


def assert_form_error(response, field: str | None = None) -> dict:
    """Bad values from a browser: the page again, 400, the errors beside the fields (``field``
    among them; ``monitoring.form_errors``); returns field name → messages."""
    assert response.status_code == 400, response.content[:300]
    assert response["Content-Type"].startswith("text/html")
    errors = response.context["field_errors"]
    assert errors and (field is None or field in errors), errors
    assert 'class="error"' in response.content.decode()
    return errors
