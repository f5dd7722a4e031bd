"""The fairness part of ``manage.py load_demo``: ``credit-approval`` (high risk, AI Act Annex III 5(b)).

* v1: a logistic regression trained on historic approval decisions that turned women down more
  often, with ``sex`` among its inputs: its evaluation set shows disparate impact for sex=F vs
  sex=M under 0.80; its production request was blocked by the fairness gate (and cancelled when v2
  went live).
* v2: trained on repayment outcomes, without ``sex`` as an input (``sex`` is a monitoring-only
  sensitive attribute): within thresholds, approved by two reviewers, in production.
* v3: a challenger that puts ``sex`` back as an input on the old decisions: its request stays
  pending, blocked with the reason on the request page.
* Production traffic over five weeks: the incomes women report in the applications drift down,
  so the model (blind to sex) approves fewer women and ``fairness.disparate_impact`` for ``sex``
  drifts from about 0.95 towards the 0.80 threshold; labels arrive a week later.

Everything goes through the services (audit source ``cli``) at the story's times: the
registration, evaluations and promotions are steps of ``registry.demo``'s schedule
(``registry.demo_credit``), the traffic is one more model of the monitoring demo's day loop
(``traffic_day``). Idempotent (each step is skipped when its rows exist).
"""

from __future__ import annotations

import functools
import hashlib
from datetime import UTC, datetime, time, timedelta
from typing import Any

import numpy as np
import pandas as pd
from django.contrib.auth import get_user_model
from django.utils import timezone

from mlops_portal import queue
from monitoring.demo_privacy import customers
from monitoring.fairness_data import AGE_BANDS, applicants
from monitoring.models import GroundTruth, MonitoringConfig, Prediction
from monitoring.services.config import monitoring_config_update
from monitoring.services.evaluations import evaluation_compute, evaluation_upload
from monitoring.services.ingestion import labels_ingest, predictions_ingest
from monitoring.services.partitions import day_analyze
from registry.choices import RiskTier, Stage, TaskType
from registry.demo import CONTEXT
from registry.models import EvaluationRun, ModelVersion, RegisteredModel, Team

MODEL = "credit-approval"
JUSTIFICATIONS = {
    1: "Credit model for the consumer-loan pilot; evaluation set uploaded.",
    2: "Retrained on repayment outcomes without sex as an input; fairness within thresholds.",
    3: "Challenger: sex back as an input, trained on past underwriting decisions; "
    "its ROC AUC on repayment outcomes is a little below v2's.",
}
DAYS, ROWS_PER_DAY, EVAL_ROWS, TRAIN_ROWS = 35, 400, 4000, 8000
NUMERIC = ["income", "debt_ratio", "years_employed"]
CARD = {
    "description": "Scores consumer-credit applications: approve or refer to an underwriter.",
    "risk_tier": RiskTier.HIGH,
    "ai_act_category": "High-risk: creditworthiness of natural persons (AI Act Annex III 5(b)).",
    "intended_use": "Decision support for consumer loans up to 25,000 EUR; refusals are reviewed by an underwriter.",
    "limitations": "Trained on generated applicant data; sex and age band are examined for bias, never sold or shared.",
    "primary_metric": "roc_auc",
    "primary_metric_higher_is_better": True,
    "tags": ["credit", "fairness", "tabular"],
}


def _schema(sex_use: str) -> list[dict]:
    return [
        *({"name": n, "type": "numeric"} for n in NUMERIC),
        {"name": "age_band", "type": "categorical", "sensitive": True},
        {"name": "sex", "type": "categorical", "sensitive": True, "use": sex_use},
    ]


def _matrix(data: dict, with_sex: bool) -> np.ndarray:
    cols = [np.log(data["income"]), data["debt_ratio"], data["years_employed"]]
    return np.column_stack([*cols, (data["sex"] == "M").astype(float)] if with_sex else cols)


BIASED = (1, 3)


@functools.cache
def _train(version: int):
    """v1, v3: historic decisions (women refused more often), sex an input; v2: repayment, no sex."""
    from sklearn.linear_model import LogisticRegression

    data = applicants(TRAIN_ROWS, seed=500)
    target = data["label"]
    if version in BIASED:
        refused = (data["sex"] == "F") & (np.random.default_rng(501).random(TRAIN_ROWS) < 0.12)
        target = np.where(refused, 0, target)
    return LogisticRegression(max_iter=500).fit(_matrix(data, version in BIASED), target)


def _score(model, version: int, data: dict) -> tuple[np.ndarray, np.ndarray]:
    score = model.predict_proba(_matrix(data, version in BIASED))[:, 1]
    return (score >= 0.5).astype(int), score.round(5)


def _frame(data: dict, prediction, score, *, with_label: bool = True) -> pd.DataFrame:
    frame = pd.DataFrame({
        "income": data["income"].round(2), "debt_ratio": data["debt_ratio"].round(4),
        "years_employed": data["years_employed"].round(2), "age_band": data["age_band"], "sex": data["sex"],
        "prediction": prediction, "score": score,
    })  # fmt: skip
    if with_label:
        frame.insert(0, "label", data["label"])
    return frame


def _csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def ensure_model(*, owner, team) -> bool:
    """Register ``credit-approval`` (unless it exists); True when it was created now."""
    from registry.services.inventory import model_create

    if RegisteredModel.objects.filter(name=MODEL).exists():
        return False
    model_create(actor=owner, context=CONTEXT, name=MODEL, team=team, **CARD)
    return True


def ensure_version(number: int, *, owner) -> bool:
    """Register v``number`` with its real holdout AUC (unless it exists); True when created now."""
    from sklearn.metrics import roc_auc_score

    from registry.services.inventory import version_create

    model = RegisteredModel.objects.get(name=MODEL)
    if model.versions.filter(version=number).exists():
        return False
    trained, holdout = _train(number), applicants(EVAL_ROWS, seed=600)
    auc = roc_auc_score(holdout["label"], trained.predict_proba(_matrix(holdout, number in BIASED))[:, 1])
    seed = f"{MODEL}-{number}"
    version_create(
        model=model, actor=owner, context=CONTEXT,
        description="Logistic regression on past decisions, sex as an input." if number in BIASED else
        "Logistic regression on repayment outcomes; sex only monitored, never an input.",
        artifact_uri=f"s3://acme-ml-models/{MODEL}/{number}/model.joblib",
        source_commit=hashlib.sha1(seed.encode()).hexdigest(), training_run_id=f"run-{seed}",
        training_data_ref=f"s3://acme-data/credit/{'decisions' if number in BIASED else 'repayments'}.parquet",
        training_data_hash=hashlib.sha256(seed.encode()).hexdigest(), metrics={"roc_auc": round(float(auc), 4)},
        feature_schema=_schema("input" if number in BIASED else "monitoring"), task_type=TaskType.BINARY,
    )  # fmt: skip
    return True


def ensure_evaluation(number: int, *, owner) -> None:
    """v``number``'s evaluation run on the holdout (the fairness gate's evidence), once."""
    version = ModelVersion.objects.get(model__name=MODEL, version=number)
    if EvaluationRun.objects.filter(version=version).exists():
        return
    holdout = applicants(EVAL_ROWS, seed=600)
    prediction, score = _score(_train(number), number, holdout)
    run = evaluation_upload(version=version, body=_csv(_frame(holdout, prediction, score)), content_type="text/csv",
                            actor=owner, context=CONTEXT)  # fmt: skip
    evaluation_compute(run_id=run.pk, context=CONTEXT)  # the loader computes it now (queued too, for a worker)


@functools.cache
def _day_data(day: int) -> dict:
    """Day ``day``'s applicants: the incomes women report drift down over the five weeks."""
    data = applicants(ROWS_PER_DAY, seed=40_000 + day)
    women = data["sex"] == "F"
    data["income"] = np.where(women, data["income"] * (1 - 0.22 * day / (DAYS - 1)), data["income"])
    return data


def traffic_version() -> ModelVersion | None:
    """v2 when it is in production (the demo's inventory), else None; its monitoring config made."""
    version = ModelVersion.objects.filter(model__name=MODEL, version=2, stage=Stage.PRODUCTION).first()
    if version is not None and not MonitoringConfig.objects.filter(model=version.model).exists():
        monitoring_config_update(model=version.model, actor=version.model.owner, context=CONTEXT,
                                 changes={"alert_recipients": ["credit-ml@example.com"]})  # fmt: skip
    return version


def traffic_day(version: ModelVersion, first_day: datetime, day: int, created: dict[str, Any]) -> None:
    """Day ``day``'s 06:00 scoring batch, and the labels of the day a week old (run at 07:00)."""
    owner, model, start = version.model.owner, version.model, first_day + timedelta(days=day)
    ids = [f"credit-{start:%Y%m%d}-{i:04d}" for i in range(ROWS_PER_DAY)]
    if not Prediction.objects.filter(version=version, prediction_id=ids[0]).exists():
        prediction, score = _score(_train(2), version.version, _day_data(day))
        frame = _frame(_day_data(day), prediction, score, with_label=False)
        seconds = np.sort(np.random.default_rng(41_000 + day).integers(0, 3600, ROWS_PER_DAY))
        frame.insert(0, "timestamp", [(start + timedelta(seconds=int(s))).isoformat() for s in seconds])
        frame.insert(0, "prediction_id", ids)
        frame["subject_id"] = customers("credit", day, ROWS_PER_DAY)
        predictions_ingest(version=version, body=_csv(frame), content_type="text/csv", actor=owner, context=CONTEXT)
        created["predictions"] = created.get("predictions", 0) + ROWS_PER_DAY
    if day >= 7:
        labelled_start = first_day + timedelta(days=day - 7)
        label_ids = [f"credit-{labelled_start:%Y%m%d}-{i:04d}" for i in range(ROWS_PER_DAY)]
        if not GroundTruth.objects.filter(model=model, prediction_id=label_ids[0]).exists():
            labels = pd.DataFrame({"prediction_id": label_ids, "label": _day_data(day - 7)["label"]})
            labels["subject_id"] = customers("credit", day - 7, ROWS_PER_DAY)
            labels_ingest(model=model, body=_csv(labels), content_type="text/csv", actor=owner, context=CONTEXT)
            created["labels"] = created.get("labels", 0) + ROWS_PER_DAY


def load_demo(*, created: dict[str, int]) -> None:
    """The whole story on its own (for tests and a partial inventory): the registry steps at their
    times, then the five weeks of traffic; ``created`` counts what is new."""
    from mlops_portal import clock
    from registry.demo import DemoResult, moment
    from registry.demo_credit import credit_schedule

    users = {u.username: u for u in get_user_model().objects.filter(username__in=["owner", "reviewer", "reviewer2"])}
    team = Team.objects.filter(slug="customer-analytics").first()
    if len(users) < 3 or team is None:
        return  # not the demo's inventory
    result = DemoResult()
    for when, _label, action in sorted(credit_schedule(users, {team.slug: team}, result), key=lambda s: s[0]):
        with clock.at(moment(when)):
            action()
    for what, n in result.created.items():
        created[what] = created.get(what, 0) + n
    version = traffic_version()
    if version is None:
        return
    first_day = datetime.combine(timezone.now().astimezone(UTC).date() - timedelta(days=DAYS), time(6), tzinfo=UTC)
    for day in range(DAYS):
        with clock.at(first_day + timedelta(days=day, hours=1)), queue.hold():  # the day in, then its windows
            traffic_day(version, first_day, day, created)
            day_analyze((first_day + timedelta(days=day)).date())


__all__ = ["AGE_BANDS", "load_demo", "traffic_day", "traffic_version"]
