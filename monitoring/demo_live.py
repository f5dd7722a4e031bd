"""The live-evidence part of ``manage.py load_demo``: ``customer-churn`` v4 in shadow, on its days.

Two and a half weeks ago v4 (gradient boosting retrained on a newer snapshot) is registered with
its labelled reference data and promoted to staging (owner request, reviewer approval); from
the first of the last ``SHADOW_DAYS`` days on, each morning it scores production's traffic with
the same prediction ids (shadow traffic through the ordinary predictions upload, ``shadow_day``,
run by the monitoring demo's day loop). Labels pair up as they arrive. The morning of the last
day, after its run, churn's tier policy asks for live evidence and v4's request to production
opens with the evidence paired so far (``live_steps``). The request page then shows the live
evidence and the drift of production's recent traffic against v4's reference, and the
dashboard shows v2's estimated ROC AUC for the days whose labels are still a week away.

Idempotent: each step is skipped when its rows exist.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from django.contrib.auth import get_user_model
from django.db import transaction

from monitoring.demo_privacy import customers
from monitoring.models import Prediction, ReferenceProfile
from monitoring.services.ingestion import predictions_ingest, reference_upload
from monitoring.services.live_evidence import live_evidence_refresh
from registry import demo as registry_demo
from registry import demo_training
from registry.choices import PromotionStatus, Stage
from registry.models import ModelVersion, PromotionRequest, RegisteredModel

SHADOW_VERSION = 4
SHADOW_DAYS = 14
SEED = 404
SEGMENT_SHARE = 0.95
SEGMENT_DAYS = 9


@functools.cache
def _trained():
    return demo_training.train_churn("gbm", demo_training.CHURN_NUMERIC, demo_training.CHURN_CATEGORICAL, seed=SEED)


# When (days from today, hour UTC): v4 registered with its reference data, promoted to staging
# (requested, approved) before the shadow days begin; the tier's policy asks for live evidence and
# v4's production request opens the morning of the last day, after its run (after the incident's
# re-promotion of v2, which the old policy governed).
REGISTERED, STAGING_REQUESTED, STAGING_APPROVED = (-17, 10), (-16, 9), (-15, 11)
POLICY_CHANGED, PRODUCTION_REQUESTED = (-1, 10), (-1, 10.25)


def _model() -> RegisteredModel | None:
    """customer-churn when it is the demo's inventory (v2 in production), else None."""
    model = RegisteredModel.objects.filter(name=registry_demo.CHURN).select_related("owner").first()
    production = model.versions.filter(stage=Stage.PRODUCTION).first() if model else None
    return model if production is not None and production.version in (1, 2) else None


def _register(created: dict[str, int]) -> None:
    from registry.services.inventory import version_create

    model = _model()
    if model is None or model.versions.filter(version=SHADOW_VERSION).exists():
        return
    trained, snapshot = _trained(), registry_demo.snapshot_date(REGISTERED)
    version_create(
        model=model,
        actor=model.owner,
        context=registry_demo.CONTEXT,
        description=f"Gradient boosting retrained on the {snapshot} snapshot; runs in shadow next to v2.",
        artifact_uri=f"s3://acme-ml-models/{model.name}/{SHADOW_VERSION}/model.joblib",
        source_commit="4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f70",
        training_run_id="run-churn-404",
        training_data_ref=registry_demo.CHURN_SNAPSHOT.format(snapshot=snapshot),
        training_data_hash=trained.data_hash,
        metrics=trained.metrics,
        feature_schema=trained.schema,
        task_type="binary",
    )
    created["versions"] = created.get("versions", 0) + 1


def _v4() -> ModelVersion | None:
    return ModelVersion.objects.filter(model__name=registry_demo.CHURN, version=SHADOW_VERSION).first()


def _send_csv(ingest, version: ModelVersion, frame: pd.DataFrame) -> None:
    """``frame`` as a CSV body to an ingestion service, sent by the model's owner."""
    body = frame.to_csv(index=False).encode()
    ingest(
        version=version, body=body, content_type="text/csv", actor=version.model.owner, context=registry_demo.CONTEXT
    )


def _reference(created: dict[str, int]) -> None:
    version = _v4()
    if version is None or ReferenceProfile.objects.filter(version=version).exists():
        return
    trained, features = _trained(), [f["name"] for f in version.feature_schema]
    reference = demo_training.churn_dataset(5000, seed=SEED)
    body = _scored(trained, reference, features).assign(label=reference[demo_training.CHURN_LABEL].to_numpy())
    _send_csv(reference_upload, version, body)
    created["reference uploads"] = created.get("reference uploads", 0) + 1


def _staging_request() -> None:
    from registry.services.promotions import promotion_request

    version = _v4()
    if version is None or PromotionRequest.objects.filter(version=version, target_stage=Stage.STAGING).exists():
        return
    promotion_request(
        version=version,
        target_stage=Stage.STAGING,
        requester=version.model.owner,
        justification="Run v4 in shadow on production traffic before asking for production.",
        context=registry_demo.CONTEXT,
    )


def _staging_approval() -> None:
    from registry.services.promotions import promotion_approve

    reviewer = get_user_model().objects.filter(username="reviewer").first()
    req = PromotionRequest.objects.filter(
        version=_v4(), target_stage=Stage.STAGING, status=PromotionStatus.PENDING
    ).first()
    if req is not None and reviewer is not None:
        promotion_approve(request=req, reviewer=reviewer, comment="Shadow run approved.", context=registry_demo.CONTEXT)


def _production_request(created: dict[str, int]) -> None:
    from registry.models import PromotionPolicy
    from registry.services.promotions import promotion_request

    version = _v4()
    if version is None or PromotionRequest.objects.filter(version=version, target_stage=Stage.PRODUCTION).exists():
        return
    if not PromotionPolicy.objects.filter(risk_tier=version.model.risk_tier, require_live_not_worse=True).exists():
        return  # after the policy (``after_the_incident``)
    promotion_request(
        version=version,
        target_stage=Stage.PRODUCTION,
        requester=version.model.owner,
        justification="v4 scored the last two weeks of production traffic in shadow: "
        "decide on the paired live evidence.",
        context=registry_demo.CONTEXT,
    )
    with transaction.atomic():  # the evidence paired so far, on the new request (the worker refreshes it later)
        live_evidence_refresh(version=version, context=registry_demo.CONTEXT)
    created["promotion requests"] = created.get("promotion requests", 0) + 1


def after_the_incident(created: dict[str, int]) -> None:
    """The policy change and v4's production request, now, when the churn incident was written
    only at the end of the load (without ``--sync`` no alert opens during the days); with it,
    they happened on their day and this writes nothing."""
    _require_live_evidence()
    _production_request(created)


def live_steps(created: dict[str, int]) -> list[tuple[datetime, Callable[[], None]]]:
    """v4's steps outside the day loop, as ``(moment, action)`` (each idempotent); its shadow
    batches are ``shadow_day``, run with each day's production batch."""
    steps = [
        (REGISTERED, functools.partial(_register, created)),
        ((REGISTERED[0], REGISTERED[1] + 0.5), functools.partial(_reference, created)),
        (STAGING_REQUESTED, _staging_request),
        (STAGING_APPROVED, _staging_approval),
        (POLICY_CHANGED, _require_live_evidence),
        (PRODUCTION_REQUESTED, functools.partial(_production_request, created)),
    ]
    return [(registry_demo.moment(when), action) for when, action in steps]


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


def _require_live_evidence() -> None:
    """The model's tier asks for "challenger not worse than champion on live traffic" (open
    requests keep their snapshot; v4's request, opened next, carries the rule)."""
    from monitoring.oversight.models import Incident
    from registry.selectors.promotions import policy_for_tier
    from registry.services.policies import policy_update

    model = RegisteredModel.objects.filter(name=registry_demo.CHURN).first()
    admin = get_user_model().objects.filter(username="admin", is_superuser=True).first()
    policy = policy_for_tier(model.risk_tier) if model else None
    if _v4() is None or admin is None or policy is None or policy.require_live_not_worse:
        return
    if not Incident.objects.filter(model=model, status="closed").exists():
        return  # after v2's re-promotion in the incident, which the old policy governs (``after_the_incident``)
    changes = {"require_live_not_worse": True, "live_tolerance": 0.01, "live_min_labelled_pairs": 1000}
    policy_update(policy=policy, actor=admin, changes=changes, context=registry_demo.CONTEXT)


def _scored(trained, frame: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    score = trained.estimator.predict_proba(frame[trained.features])[:, 1]
    out = frame[features].copy()
    out["prediction"], out["score"] = (score >= 0.5).astype(int), score.round(5)
    return out


def shadow_day(first_day: datetime, day: int, frame: pd.DataFrame, created: dict[str, int]) -> None:
    """v4 scores day ``day``'s production traffic (``frame``) in shadow, with the same prediction
    ids and timestamps as production's run, once it is in staging (the last ``SHADOW_DAYS`` days)."""
    version = _v4()
    if version is None or version.stage != Stage.STAGING:
        return
    start = first_day + timedelta(days=day)
    ids = [f"churn-{start:%Y%m%d}-{i:04d}" for i in range(len(frame))]
    if Prediction.objects.filter(version=version, prediction_id=ids[0]).exists():
        return
    rng = np.random.default_rng(20_000 + day)  # the same timestamps as production's run
    seconds = np.sort(rng.integers(0, 3600, size=len(frame)))
    batch = _scored(_trained(), frame, [f["name"] for f in version.feature_schema])
    batch.insert(0, "timestamp", [(start + timedelta(seconds=int(s))).isoformat() for s in seconds])
    batch.insert(0, "prediction_id", ids)
    batch["subject_id"] = customers("churn", day, len(batch))  # production's customers, row for row
    _send_csv(predictions_ingest, version, batch)
    created["shadow predictions"] = created.get("shadow predictions", 0) + len(batch)
