"""The monitoring half of ``manage.py load_demo`` (the registry half is ``registry.demo``).

For the production version of ``customer-churn``: a monitoring config, reference data (the
version's own training snapshot, scored by the trained model), then five weeks of daily
scoring batches with labels arriving a week late. From three weeks ago on, a gradual drift
is injected in two features (``support_calls`` and ``days_since_last_login``), so the model
goes amber and then red and alerts open. Everything goes through the monitoring services
(audit source ``cli``). The computation is queued for the Celery worker; with ``sync`` the
tasks run inline, in order, so health and alerts follow the story day by day.

Idempotent: each step is skipped when its rows exist (config, reference profile, each day's
batch by its first prediction id, each day's labels).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta

import numpy as np
import pandas as pd
from django.utils import timezone

from monitoring.models import GroundTruth, MonitoringConfig, Prediction, ReferenceProfile
from monitoring.services.config import monitoring_config_update
from monitoring.services.ingestion import labels_ingest, predictions_ingest, reference_upload
from registry import demo as registry_demo
from registry.choices import Stage
from registry.models import RegisteredModel

STEPS = 2
DAYS = 35
DRIFT_FROM_DAY = 14  # drift starts this many days into the period and ramps up to the end
ROWS_PER_DAY = 400
LABEL_DELAY_DAYS = 7
REFERENCE_ROWS = 5000
CHURN_PRODUCTION_VERSION = 2  # the version registry.demo's history puts in production


def _csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def _score(trained, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    score = trained.estimator.predict_proba(frame[trained.features])[:, 1]
    return (score >= 0.5).astype(int), score.round(5)


@contextlib.contextmanager
def _tasks_inline(enabled: bool):
    """With ``--sync``, queued tasks run inline (the same code the worker runs)."""
    if not enabled:
        yield
        return
    from mlops_portal.celery import app

    previous = app.conf.task_always_eager
    trace_log = logging.getLogger("celery.app.trace")  # one INFO line per inline task otherwise
    previous_level = trace_log.level
    app.conf.task_always_eager = True
    trace_log.setLevel(logging.WARNING)
    try:
        yield
    finally:
        app.conf.task_always_eager = previous
        trace_log.setLevel(previous_level)


def _day_batches(first_day: datetime) -> list[tuple[datetime, pd.DataFrame]]:
    batches = []
    for day in range(DAYS):
        drift = max(0.0, (day - DRIFT_FROM_DAY + 1) / (DAYS - DRIFT_FROM_DAY))
        frame = registry_demo.churn_dataset(ROWS_PER_DAY, seed=10_000 + day, drift=drift)
        batches.append((first_day + timedelta(days=day), frame))
    return batches


def load_demo(*, progress: Callable[[str], None] | None = None, sync: bool = False) -> dict[str, int]:
    """Create the monitoring demo data; returns what was created, by kind (empty on a re-run)."""
    step = progress or (lambda label: None)
    created: dict[str, int] = {}
    model = RegisteredModel.objects.filter(name=registry_demo.CHURN).select_related("owner").first()
    version = model.versions.filter(stage=Stage.PRODUCTION).first() if model else None
    if model is None or version is None or version.version != CHURN_PRODUCTION_VERSION:
        step("monitoring: skipped (churn production version not as loaded by the demo)")
        return created
    owner, context = model.owner, registry_demo.CONTEXT

    def trained():  # training takes seconds: only when something is to be scored
        return registry_demo.trained_version(registry_demo.CHURN, CHURN_PRODUCTION_VERSION)

    with _tasks_inline(sync):
        if not MonitoringConfig.objects.filter(model=model).exists():
            monitoring_config_update(
                model=model,
                actor=owner,
                context=context,
                changes={"alert_recipients": ["retention-ml@example.com"], "retrain_cooldown_hours": 24},
            )
            created["monitoring configs"] = 1
        if not ReferenceProfile.objects.filter(version=version).exists():
            reference = registry_demo.churn_dataset(REFERENCE_ROWS, seed=202)  # the training snapshot
            reference["prediction"], reference["score"] = _score(trained(), reference)
            columns = [f["name"] for f in version.feature_schema] + ["prediction", "score"]
            reference_upload(
                version=version, body=_csv(reference[columns]), content_type="text/csv", actor=owner, context=context
            )
            created["reference uploads"] = 1
        step("monitoring: config and reference data")

        today = timezone.now().astimezone(UTC).date()
        first_day = datetime.combine(today - timedelta(days=DAYS), time(6, 0), tzinfo=UTC)
        batches = _day_batches(first_day)
        days_sent = 0
        for day, (start, frame) in enumerate(batches):
            ids = [f"churn-{start:%Y%m%d}-{i:04d}" for i in range(len(frame))]
            if not Prediction.objects.filter(version=version, prediction_id=ids[0]).exists():
                rng = np.random.default_rng(20_000 + day)
                seconds = np.sort(rng.integers(0, 2 * 3600, size=len(frame)))  # a 06:00-08:00 scoring run
                batch = frame[[f["name"] for f in version.feature_schema]].copy()
                batch.insert(0, "timestamp", [(start + timedelta(seconds=int(s))).isoformat() for s in seconds])
                batch.insert(0, "prediction_id", ids)
                batch["prediction"], batch["score"] = _score(trained(), frame)
                predictions_ingest(
                    version=version, body=_csv(batch), content_type="text/csv", actor=owner, context=context
                )
                days_sent += 1
                created["predictions"] = created.get("predictions", 0) + len(batch)
            # labels for the day that is now LABEL_DELAY_DAYS old (churn is only known later)
            labelled_day = day - LABEL_DELAY_DAYS
            if labelled_day >= 0:
                _send_labels(model, batches[labelled_day], owner, context, created)
        step(f"monitoring: {DAYS} days of predictions" + (f" ({days_sent} sent)" if days_sent else ""))
    return created


def _send_labels(model, batch: tuple[datetime, pd.DataFrame], owner, context, created: dict[str, int]) -> None:
    start, frame = batch
    ids = [f"churn-{start:%Y%m%d}-{i:04d}" for i in range(len(frame))]
    if GroundTruth.objects.filter(model=model, prediction_id=ids[0]).exists():
        return
    labels = pd.DataFrame({"prediction_id": ids, "label": frame[registry_demo.CHURN_LABEL].to_numpy()})
    labels_ingest(model=model, body=_csv(labels), content_type="text/csv", actor=owner, context=context)
    created["labels"] = created.get("labels", 0) + len(labels)
