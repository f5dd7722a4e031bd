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

Everything goes through the services (audit source ``cli``); idempotent (each step is skipped
when its rows exist).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, time, timedelta

import numpy as np
import pandas as pd
from django.contrib.auth import get_user_model
from django.utils import timezone

from monitoring.fairness_data import AGE_BANDS, applicants
from monitoring.models import GroundTruth, MonitoringConfig, Prediction
from monitoring.services.config import monitoring_config_update
from monitoring.services.evaluations import evaluation_compute, evaluation_upload
from monitoring.services.ingestion import labels_ingest, predictions_ingest
from registry.choices import PromotionStatus, RiskTier, Stage, TaskType
from registry.demo import CONTEXT
from registry.models import EvaluationRun, ModelVersion, PromotionRequest, RegisteredModel, Team

MODEL = "credit-approval"
JUSTIFICATIONS = {
    1: "Credit model for the consumer-loan pilot; evaluation set uploaded.",
    2: "Retrained on repayment outcomes without sex as an input; fairness within thresholds.",
    3: "Challenger: sex back as an input on past decisions gives a higher AUC.",
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


def _version(model, owner, number: int, trained) -> ModelVersion:
    from sklearn.metrics import roc_auc_score

    from registry.services.inventory import version_create

    existing = model.versions.filter(version=number).first()
    if existing:
        return existing
    holdout = applicants(EVAL_ROWS, seed=600)
    auc = roc_auc_score(holdout["label"], trained.predict_proba(_matrix(holdout, number in BIASED))[:, 1])
    seed = f"{MODEL}-{number}"
    return version_create(
        model=model, actor=owner, context=CONTEXT,
        description="Logistic regression on past decisions, sex as an input." if number in BIASED else
        "Logistic regression on repayment outcomes; sex only monitored, never an input.",
        artifact_uri=f"s3://acme-ml-models/{MODEL}/{number}/model.joblib",
        source_commit=hashlib.sha1(seed.encode()).hexdigest(), training_run_id=f"run-{seed}",
        training_data_ref=f"s3://acme-data/credit/{'decisions' if number in BIASED else 'repayments'}.parquet",
        training_data_hash=hashlib.sha256(seed.encode()).hexdigest(), metrics={"roc_auc": round(float(auc), 4)},
        feature_schema=_schema("input" if number in BIASED else "monitoring"), task_type=TaskType.BINARY,
    )  # fmt: skip


def _evaluate(version, owner, trained) -> None:
    if EvaluationRun.objects.filter(version=version).exists():
        return
    holdout = applicants(EVAL_ROWS, seed=600)
    prediction, score = _score(trained, version.version, holdout)
    run = evaluation_upload(version=version, body=_csv(_frame(holdout, prediction, score)), content_type="text/csv",
                            actor=owner, context=CONTEXT)  # fmt: skip
    evaluation_compute(run_id=run.pk)


def _promote(version, users, *, approve: bool) -> None:
    from registry.services.promotions import promotion_approve, promotion_request

    if PromotionRequest.objects.filter(version=version, target_stage=Stage.PRODUCTION).exists():
        return
    req = promotion_request(
        version=version, target_stage=Stage.PRODUCTION, requester=users["owner"], context=CONTEXT,
        justification=JUSTIFICATIONS[version.version],
    )  # fmt: skip
    if approve:
        for reviewer, comment in (("reviewer", "Fairness gate green; AUC fine."), ("reviewer2", "Agreed.")):
            req.refresh_from_db()
            if req.status == PromotionStatus.PENDING:
                promotion_approve(request=req, reviewer=users[reviewer], comment=comment, context=CONTEXT)


def _traffic(version, owner, trained, created: dict) -> None:
    model = version.model
    if not MonitoringConfig.objects.filter(model=model).exists():
        monitoring_config_update(model=model, actor=owner, context=CONTEXT,
                                 changes={"alert_recipients": ["credit-ml@example.com"]})  # fmt: skip
    first_day = datetime.combine(timezone.now().astimezone(UTC).date() - timedelta(days=DAYS), time(6), tzinfo=UTC)
    days = []
    for day in range(DAYS):
        data = applicants(ROWS_PER_DAY, seed=40_000 + day)
        women = data["sex"] == "F"
        data["income"] = np.where(women, data["income"] * (1 - 0.22 * day / (DAYS - 1)), data["income"])
        days.append((first_day + timedelta(days=day), data))
    for day, (start, data) in enumerate(days):
        ids = [f"credit-{start:%Y%m%d}-{i:04d}" for i in range(ROWS_PER_DAY)]
        if not Prediction.objects.filter(version=version, prediction_id=ids[0]).exists():
            prediction, score = _score(trained, version.version, data)
            frame = _frame(data, prediction, score, with_label=False)
            seconds = np.sort(np.random.default_rng(41_000 + day).integers(0, 3600, ROWS_PER_DAY))
            frame.insert(0, "timestamp", [(start + timedelta(seconds=int(s))).isoformat() for s in seconds])
            frame.insert(0, "prediction_id", ids)
            predictions_ingest(version=version, body=_csv(frame), content_type="text/csv", actor=owner, context=CONTEXT)
            created["predictions"] = created.get("predictions", 0) + ROWS_PER_DAY
        if day >= 7:
            labelled_start, labelled = days[day - 7]
            label_ids = [f"credit-{labelled_start:%Y%m%d}-{i:04d}" for i in range(ROWS_PER_DAY)]
            if not GroundTruth.objects.filter(model=model, prediction_id=label_ids[0]).exists():
                labels = pd.DataFrame({"prediction_id": label_ids, "label": labelled["label"]})
                labels_ingest(model=model, body=_csv(labels), content_type="text/csv", actor=owner, context=CONTEXT)
                created["labels"] = created.get("labels", 0) + ROWS_PER_DAY


def load_demo(*, created: dict[str, int]) -> None:
    """Add ``credit-approval`` and its story (see the module docstring); ``created`` counts what is new."""
    from registry.services.inventory import model_create

    users = {u.username: u for u in get_user_model().objects.filter(username__in=["owner", "reviewer", "reviewer2"])}
    team = Team.objects.filter(slug="customer-analytics").first()
    if len(users) < 3 or team is None:
        return  # not the demo's inventory
    owner = users["owner"]
    model = RegisteredModel.objects.filter(name=MODEL).first()
    if model is None:
        model = model_create(actor=owner, context=CONTEXT, name=MODEL, team=team, **CARD)
        created["models"] = created.get("models", 0) + 1
    trained = {n: _train(n) for n in (1, 2, 3)}
    versions = {}
    for n in (1, 2, 3):
        versions[n] = _version(model, owner, n, trained[n])
        _evaluate(versions[n], owner, trained[n])
        _promote(versions[n], users, approve=n == 2)  # 1 and 3: blocked (disparate impact for sex=F vs sex=M)
    versions[2].refresh_from_db()
    if versions[2].stage == Stage.PRODUCTION:
        _traffic(versions[2], owner, trained[2], created)


__all__ = ["AGE_BANDS", "load_demo"]
