"""The monitoring half of ``manage.py load_demo`` (the registry half is ``registry.demo``).

For the production version of each demo model: a monitoring config, reference data (the
version's training data, scored by the trained model), then five weeks of daily scoring
batches with labels arriving later. ``customer-churn``: from three weeks ago on, a gradual
drift is injected in two features (``support_calls`` and ``days_since_last_login``), so the
model goes amber and then red and alerts open. ``diabetes-progression``: patients like the
study's, no drift, so it stays green. ``credit-approval`` (``monitoring.demo_fairness``) is
scored each morning too, customer-churn v4 runs in shadow over the last two weeks
(``monitoring.demo_live``), support-assistant's requests (``monitoring.demo_llm_requests``) and
every model's cost records (``monitoring.demo_cost``) arrive on their days: one timeline
replays all of it, with the registry's later history, in time order. Everything goes through
the services (audit source ``cli``). The computation is queued for the Celery worker; with
``sync`` the tasks run inline, in order, so health and alerts follow the story day by day.

Idempotent: each step is skipped when its rows exist (config, reference profile, each day's
batch by its first prediction id, each day's labels).
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

import numpy as np
import pandas as pd
from django.utils import timezone

from mlops_portal import clock, db, queue
from monitoring import demo_fairness
from monitoring.demo_live import SHADOW_DAYS, after_the_incident, churn_traffic, live_steps, shadow_day
from monitoring.demo_privacy import customers, privacy_steps
from monitoring.models import GroundTruth, MonitoringConfig, Prediction, ReferenceProfile
from monitoring.services.config import monitoring_config_update
from monitoring.services.ingestion import labels_ingest, predictions_ingest, reference_upload
from monitoring.services.partitions import day_analyze
from registry import demo as registry_demo
from registry import demo_training
from registry.choices import Stage
from registry.demo_llm import demo_steps
from registry.models import RegisteredModel

STEPS = 2  # progress steps: one per monitored model
DAYS = 35
DRIFT_FROM_DAY = 14  # churn: drift starts this many days into the period and ramps up to the end
ROWS_PER_DAY = 400
DIABETES_ROWS_PER_DAY = 300
REFERENCE_ROWS = 5000
ANALYZE_DAYS = frozenset({0, 1, 2, 4, 8, 16, 32})  # each time the raw tables about doubled


def _csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


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


@dataclass
class MonitoredSpec:
    """How one demo model is monitored: its config, reference data and daily traffic."""

    model: str
    production_version: int
    id_prefix: str
    config: dict[str, Any]
    reference: Callable[[], pd.DataFrame]  # feature columns + the label column
    day: Callable[[int], pd.DataFrame]  # day index -> that day's rows (features + label)
    label: str
    label_delay_days: int
    with_score: bool
    subjects: Callable[[int, int], list[str]] | None = None  # (day, rows) -> each row's subject id


def _churn_day(day: int) -> pd.DataFrame:
    drift = max(0.0, (day - DRIFT_FROM_DAY + 1) / (DAYS - DRIFT_FROM_DAY))
    return demo_training.churn_dataset(ROWS_PER_DAY, seed=10_000 + day, drift=drift)


def _diabetes_day(day: int) -> pd.DataFrame:
    """New patients like the study's (resampled from it): no drift."""
    data = _diabetes_recorded()
    rng = np.random.default_rng(30_000 + day)
    return data.iloc[rng.integers(0, len(data), size=DIABETES_ROWS_PER_DAY)].reset_index(drop=True)


def _diabetes_recorded() -> pd.DataFrame:
    """The diabetes data as a clinic system records it: measurements with 6 decimals.

    (Full 17-digit floats would also work on PostgreSQL; on SQLite the window query's
    ``json_group_array`` prints reals with 15 digits, which moves values sitting exactly on a
    reference bin edge into the neighbouring bin: reported to the monitoring owner.)
    """
    return demo_training.diabetes_dataset().round(6)


MONITORED = [
    MonitoredSpec(
        model=registry_demo.CHURN,
        production_version=2,
        id_prefix="churn",
        config={"alert_recipients": ["retention-ml@example.com"], "retrain_cooldown_hours": 24},
        reference=lambda: demo_training.churn_dataset(REFERENCE_ROWS, seed=202),  # the training snapshot
        day=churn_traffic,  # _churn_day plus a shift into a harder segment (monitoring.demo_live)
        label=demo_training.CHURN_LABEL,
        label_delay_days=7,
        with_score=True,
        subjects=functools.partial(customers, "churn"),
    ),
    MonitoredSpec(
        model=registry_demo.DIABETES,
        production_version=2,
        id_prefix="dpt",
        # the primary metric is RMSE (about 54 here): thresholds in its units
        config={
            "alert_recipients": ["clinical-ml@example.com"],
            "performance_drop_warning": 8.0,
            "performance_drop_critical": 15.0,
        },
        reference=_diabetes_recorded,
        day=_diabetes_day,
        label="progression",
        label_delay_days=14,
        with_score=False,
    ),
]


class _Timeline:
    """The demo's steps in time order: each runs at its moment (``clock.at``), so seq order is
    time order in the audit chain. A step may add later steps, or run those due before a moment
    of its own (``run_until``), as the churn incident does."""

    def __init__(self) -> None:
        self._steps: list[tuple[datetime, int, Callable[[], Any]]] = []

    def add(self, moment: datetime, action: Callable[[], Any]) -> None:
        heapq.heappush(self._steps, (moment, next(_ORDER), action))  # ties: in the order added

    def run_until(self, until: datetime | None = None) -> None:
        while self._steps and (until is None or self._steps[0][0] <= until):
            moment, _, action = heapq.heappop(self._steps)
            with clock.at(min(moment, timezone.now())):  # the last steps fall minutes after midnight
                action()


_ORDER = itertools.count()


def load_demo(*, progress: Callable[[str], None] | None = None, sync: bool = False) -> dict[str, int]:
    """Create the monitoring demo data; returns what was created, by kind (empty on a re-run).

    Everything happens on its day (``clock.at``: back-dated, as the registry history before
    it), in time order: each day's batch and labels at 07:00 that day (churn, diabetes and
    credit-approval, then v4's shadow batch), the registry's later history, v4's registration
    and requests, support-assistant's requests and every model's cost records on their days;
    with ``sync`` the health, alerts and the churn incident that follows its critical drift alert
    happen on their days too."""
    from monitoring.demo_cost import cost_steps
    from monitoring.demo_llm_requests import llm_steps
    from monitoring.oversight.demo import demo_plans, diabetes_review_due, load_oversight_demo
    from registry.demo_llm import SUPPORT_ASSISTANT

    step = progress or (lambda label: None)
    created: dict[str, int] = {}
    registry = registry_demo.DemoResult()
    today = timezone.now().astimezone(UTC).date()
    first_day = datetime.combine(today - timedelta(days=DAYS), time(6, 0), tzinfo=UTC)
    set_up = first_day - timedelta(minutes=15)
    timeline = _Timeline()
    with _tasks_inline(sync):
        for moment, _label, action in demo_steps(registry):  # done by ``registry.demo`` until the set-up
            timeline.add(moment, action)
        timeline.run_until(set_up)
        with clock.at(set_up):
            targets = [t for spec in MONITORED if (t := _set_up(spec, created))]
            _count(created, demo_plans())  # the post-market plans, from the configuration just made
            credit = demo_fairness.traffic_version()  # its monitoring configured
        for day in range(DAYS):
            run = functools.partial(_run_day, targets, credit, first_day, day, created, sync, timeline)
            timeline.add(first_day + timedelta(days=day, hours=1), run)
        last_run = first_day + timedelta(days=DAYS - 1, hours=1)
        timeline.add(last_run + timedelta(hours=1), lambda: _count(created, diabetes_review_due(last_run)))
        names = [spec.name for spec in registry_demo.CATALOGUE] + [demo_fairness.MODEL, SUPPORT_ASSISTANT]
        for moment, action in [
            *live_steps(created),  # customer-churn v4 in shadow
            *llm_steps(today=today, days=28, created=created),  # support-assistant's requests
            *cost_steps(today=today, names=names, since=set_up + timedelta(minutes=5), created=created),
            *privacy_steps(first_day=first_day, days=DAYS, created=created, nightly=sync),  # retention, purges, erasure
        ]:
            timeline.add(moment, action)
        timeline.run_until(None)
        for spec in MONITORED:
            step(f"monitoring: {spec.model}")
    _count(created, registry.created)
    _count(created, load_oversight_demo())  # what is not done yet of incidents, plans, reviews, findings
    with _tasks_inline(sync):
        after_the_incident(created)  # without ``sync``: the tier's policy change and v4's request, now
    return created


def _run_day(targets, credit, first_day: datetime, day: int, created: dict[str, int], sync: bool, timeline) -> None:
    """Day ``day``'s 07:00 run: each monitored model's batch and labels, v4's shadow batch; with
    ``sync``, the beat's review sweep at 07:15 and the churn incident once its critical drift alert
    is open."""
    from monitoring.oversight.demo import churn_incident_after_its_alert, reviews_sweep_after_the_run

    if day in ANALYZE_DAYS:  # the planner's statistics as the tables grow (no autovacuum this fast)
        db.analyze()
    with queue.hold():  # the day's batches in, then one sweep of their windows, one health per model
        for target in targets:
            _day(target, first_day, day, created)
        if credit is not None:
            demo_fairness.traffic_day(credit, first_day, day, created)
        churn = next((t for t in targets if t.spec.model == registry_demo.CHURN), None)
        if churn is not None and day >= DAYS - SHADOW_DAYS:
            shadow_day(first_day, day, churn.frames[day], created)
        day_analyze((first_day + timedelta(days=day)).date())
    if sync:  # the beat's review sweep a quarter of an hour after the run, then the incident
        run = first_day + timedelta(days=day, hours=1)
        timeline.add(run + timedelta(minutes=15), lambda: _count(created, reviews_sweep_after_the_run()))
        _count(created, churn_incident_after_its_alert(run, advance=timeline.run_until))


def _count(created: dict[str, int], more: dict[str, int]) -> None:
    for what, n in more.items():
        created[what] = created.get(what, 0) + n


@dataclass
class _Target:
    """A monitored demo model ready for its daily traffic."""

    spec: MonitoredSpec
    model: RegisteredModel
    version: Any
    frames: list[pd.DataFrame]

    def scored(self, frame: pd.DataFrame) -> pd.DataFrame:
        trained = registry_demo.trained_version(self.spec.model, self.spec.production_version)  # cached
        out = frame[[f["name"] for f in self.version.feature_schema]].copy()
        if self.spec.with_score:
            score = trained.estimator.predict_proba(frame[trained.features])[:, 1]
            out["prediction"], out["score"] = (score >= 0.5).astype(int), score.round(5)
        else:
            out["prediction"] = trained.estimator.predict(frame[trained.features]).round(3)
        return out


def _set_up(spec: MonitoredSpec, created: dict[str, int]) -> _Target | None:
    """The model's monitoring config and reference data (None: not the demo's inventory)."""
    model = RegisteredModel.objects.filter(name=spec.model).select_related("owner").first()
    version = model.versions.filter(stage=Stage.PRODUCTION).first() if model else None
    if version is None or version.version != spec.production_version:
        return None  # not the demo's inventory: leave it alone
    owner, context = model.owner, registry_demo.CONTEXT
    target = _Target(spec, model, version, [spec.day(d) for d in range(DAYS)])
    if not MonitoringConfig.objects.filter(model=model).exists():
        monitoring_config_update(model=model, actor=owner, context=context, changes=spec.config)
        created["monitoring configs"] = created.get("monitoring configs", 0) + 1
    if not ReferenceProfile.objects.filter(version=version).exists():
        reference = spec.reference()  # with its labels: the calibration of estimated performance
        body = _csv(target.scored(reference).assign(label=reference[spec.label].to_numpy()))
        reference_upload(version=version, body=body, content_type="text/csv", actor=owner, context=context)
        created["reference uploads"] = created.get("reference uploads", 0) + 1
    return target


def _day(target: _Target, first_day: datetime, day: int, created: dict[str, int]) -> None:
    """One day of traffic: the 06:00 scoring run, and the labels of the day now old enough."""
    spec, model, version = target.spec, target.model, target.version
    owner, context = model.owner, registry_demo.CONTEXT
    start, frame = first_day + timedelta(days=day), target.frames[day]
    ids = [f"{spec.id_prefix}-{start:%Y%m%d}-{i:04d}" for i in range(len(frame))]
    if not Prediction.objects.filter(version=version, prediction_id=ids[0]).exists():
        rng = np.random.default_rng(20_000 + day)
        seconds = np.sort(rng.integers(0, 3600, size=len(frame)))  # the 06:00 scoring run
        batch = target.scored(frame)
        batch.insert(0, "timestamp", [(start + timedelta(seconds=int(s))).isoformat() for s in seconds])
        batch.insert(0, "prediction_id", ids)
        if spec.subjects is not None:
            batch["subject_id"] = spec.subjects(day, len(batch))
        predictions_ingest(version=version, body=_csv(batch), content_type="text/csv", actor=owner, context=context)
        created["predictions"] = created.get("predictions", 0) + len(batch)
    # the outcome of the day that is now label_delay_days old becomes known
    if day >= spec.label_delay_days:
        labelled_start = first_day + timedelta(days=day - spec.label_delay_days)
        labelled = target.frames[day - spec.label_delay_days]
        label_ids = [f"{spec.id_prefix}-{labelled_start:%Y%m%d}-{i:04d}" for i in range(len(labelled))]
        if not GroundTruth.objects.filter(model=model, prediction_id=label_ids[0]).exists():
            labels = pd.DataFrame({"prediction_id": label_ids, "label": labelled[spec.label].to_numpy()})
            if spec.subjects is not None:
                labels["subject_id"] = spec.subjects(day - spec.label_delay_days, len(labels))
            labels_ingest(model=model, body=_csv(labels), content_type="text/csv", actor=owner, context=context)
            created["labels"] = created.get("labels", 0) + len(labels)
