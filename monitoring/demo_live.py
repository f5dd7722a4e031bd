"""The live-evidence part of ``manage.py load_demo``: ``customer-churn`` v4 in shadow.

After the monitoring demo has scored five weeks of churn traffic with production v2, this
registers v4 (gradient boosting retrained on a newer snapshot), promotes it to staging (owner
request, reviewer approval), uploads its labelled reference data and opens its request to
production; then v4 scores the last two weeks of production's traffic with the same
prediction ids (shadow traffic through the ordinary predictions upload). Labels already known
for those ids pair up at once; the worker pairs the rest as their labels arrive. The request
page then shows the live evidence and the drift of production's recent traffic against v4's
reference, and the dashboard shows v2's estimated ROC AUC for the days whose labels are still
a week away.

Idempotent: each step is skipped when its rows exist.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from django.contrib.auth import get_user_model

from monitoring.models import Prediction, ReferenceProfile
from monitoring.services.ingestion import predictions_ingest, reference_upload
from registry import demo as registry_demo
from registry import demo_training
from registry.choices import PromotionStatus, Stage
from registry.models import ModelVersion, PromotionRequest, RegisteredModel

SHADOW_VERSION = 4
SHADOW_DAYS = 14
SEED = 404
SEGMENT_SHARE = 0.95
SEGMENT_DAYS = 9


def _trained():
    return demo_training.train_churn("gbm", demo_training.CHURN_NUMERIC, demo_training.CHURN_CATEGORICAL, seed=SEED)


def _ensure_v4(model: RegisteredModel, trained, created: dict[str, int]) -> ModelVersion:
    from registry.services.inventory import version_create
    from registry.services.promotions import promotion_approve, promotion_request

    users = {u.username: u for u in get_user_model().objects.filter(username__in=["reviewer"])}
    version = model.versions.filter(version=SHADOW_VERSION).first()
    if version is None:
        version = version_create(
            model=model,
            actor=model.owner,
            context=registry_demo.CONTEXT,
            description="Gradient boosting retrained on the November snapshot; runs in shadow next to v2.",
            artifact_uri=f"s3://acme-ml-models/{model.name}/{SHADOW_VERSION}/model.joblib",
            source_commit="4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f70",
            training_run_id="run-churn-404",
            training_data_ref="s3://acme-ml-data/customer-churn/snapshots/2026-11-30/customers.csv",
            training_data_hash=trained.data_hash,
            metrics=trained.metrics,
            feature_schema=trained.schema,
            task_type="binary",
        )
        created["versions"] = created.get("versions", 0) + 1
    if version.stage not in (Stage.STAGING, Stage.PRODUCTION) and "reviewer" in users:
        req = PromotionRequest.objects.filter(version=version, target_stage=Stage.STAGING).first()
        if req is None:
            req = promotion_request(
                version=version,
                target_stage=Stage.STAGING,
                requester=model.owner,
                justification="Run v4 in shadow on production traffic before asking for production.",
                context=registry_demo.CONTEXT,
            )
        if req.status == PromotionStatus.PENDING:
            promotion_approve(
                request=req, reviewer=users["reviewer"], comment="Shadow run approved.", context=registry_demo.CONTEXT
            )
        version.refresh_from_db()
    if not PromotionRequest.objects.filter(version=version, target_stage=Stage.PRODUCTION).exists():
        _require_live_evidence(model)
        promotion_request(
            version=version,
            target_stage=Stage.PRODUCTION,
            requester=model.owner,
            justification="v4 scored the last two weeks of production traffic in shadow: "
            "decide on the paired live evidence.",
            context=registry_demo.CONTEXT,
        )
        created["promotion requests"] = created.get("promotion requests", 0) + 1
    return version


def churn_traffic(day: int) -> pd.DataFrame:
    """Day ``day`` of the churn demo's traffic: the monitoring demo's drifting customers, of
    whom, over the last ``SEGMENT_DAYS`` days (the labels of most of them are still a week
    away), a growing share (up to ``SEGMENT_SHARE``) comes from one segment,
    month-to-month contracts under 15 months of tenure, where the model separates churners less
    well (ROC AUC about 0.73 there against 0.82 overall). The segment is chosen on the inputs
    only, so the outcome still follows the same law given the inputs: a covariate shift, which
    the estimate sees on the day it happens while the labels arrive a week later."""
    from monitoring.demo import DAYS, DRIFT_FROM_DAY, _churn_day

    frame = _churn_day(day)
    drift = max(0.0, (day - DRIFT_FROM_DAY + 1) / (DAYS - DRIFT_FROM_DAY))
    ramp = min(1.0, max(0.0, (day - (DAYS - SEGMENT_DAYS)) / (SEGMENT_DAYS - 2)))
    k = int(round(len(frame) * SEGMENT_SHARE * ramp))
    if k == 0:
        return frame
    pool = demo_training.churn_dataset(len(frame) * 8, seed=50_000 + day, drift=drift)
    segment = pool[(pool["contract_type"] == "month-to-month") & (pool["tenure_months"] < 15)].head(k)
    out = frame.copy()
    out.iloc[: len(segment)] = segment.to_numpy()
    return out.astype(frame.dtypes.to_dict())


def _require_live_evidence(model: RegisteredModel) -> None:
    """The model's tier asks for "challenger not worse than champion on live traffic" (open
    requests keep their snapshot; v4's request, opened next, carries the rule)."""
    from registry.models import PromotionPolicy
    from registry.services.policies import policy_update

    admin = get_user_model().objects.filter(username="admin", is_superuser=True).first()
    policy = PromotionPolicy.objects.filter(risk_tier=model.risk_tier).first()
    if admin is None or policy is None or policy.require_live_not_worse:
        return
    changes = {"require_live_not_worse": True, "live_tolerance": 0.01, "live_min_labelled_pairs": 1000}
    policy_update(policy=policy, actor=admin, changes=changes, context=registry_demo.CONTEXT)


def _scored(trained, frame: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    score = trained.estimator.predict_proba(frame[trained.features])[:, 1]
    out = frame[features].copy()
    out["prediction"], out["score"] = (score >= 0.5).astype(int), score.round(5)
    return out


def load_live_demo(
    *, day_frame: Callable[[int], pd.DataFrame], days: int, first_day: datetime, created: dict[str, int]
) -> None:
    """v4 of customer-churn in shadow on the last ``SHADOW_DAYS`` days of the demo's traffic
    (``day_frame(d)``: day ``d``'s rows, as the monitoring demo generated them)."""
    model = RegisteredModel.objects.filter(name=registry_demo.CHURN).select_related("owner").first()
    production = model.versions.filter(stage=Stage.PRODUCTION).first() if model else None
    if production is None or production.version != 2:
        return  # not the demo's inventory
    trained = _trained()
    version = _ensure_v4(model, trained, created)
    features = [f["name"] for f in version.feature_schema]
    owner, context = model.owner, registry_demo.CONTEXT
    if not ReferenceProfile.objects.filter(version=version).exists():
        reference = demo_training.churn_dataset(5000, seed=SEED)
        body = _scored(trained, reference, features).assign(label=reference[demo_training.CHURN_LABEL].to_numpy())
        reference_upload(
            version=version,
            body=body.to_csv(index=False).encode(),
            content_type="text/csv",
            actor=owner,
            context=context,
        )
        created["reference uploads"] = created.get("reference uploads", 0) + 1
    for day in range(days - SHADOW_DAYS, days):
        start = first_day + timedelta(days=day)
        frame = day_frame(day)
        ids = [f"churn-{start:%Y%m%d}-{i:04d}" for i in range(len(frame))]
        if Prediction.objects.filter(version=version, prediction_id=ids[0]).exists():
            continue
        rng = np.random.default_rng(20_000 + day)  # the same timestamps as production's run
        seconds = np.sort(rng.integers(0, 3600, size=len(frame)))
        batch = _scored(trained, frame, features)
        batch.insert(0, "timestamp", [(start + timedelta(seconds=int(s))).isoformat() for s in seconds])
        batch.insert(0, "prediction_id", ids)
        predictions_ingest(
            version=version,
            body=batch.to_csv(index=False).encode(),
            content_type="text/csv",
            actor=owner,
            context=context,
        )
        created["shadow predictions"] = created.get("shadow predictions", 0) + len(batch)
