"""Reads for the promotion request page: the challenger's live evidence and the drift of the
last days of production traffic against the candidate's reference profile.

The request was already found through the visibility filter by the page that shows it
(``registry.selectors.promotions.promotion_get``); ``live_block`` checks it again with
``RegisteredModel.objects.visible_to`` so that it never reads rows of a model the user may not see.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from monitoring import stats
from monitoring.choices import PREDICTION_FEATURE, SCORE_FEATURE, Granularity, Metric, ProfileStatus
from monitoring.models import IngestBatch, MonitoringConfig, ReferenceProfile
from registry.choices import PromotionStatus, Stage
from registry.models import ModelVersion, RegisteredModel
from registry.selectors.promotions import production_version

RECENT_DAYS = 7
_RULE_METRIC = {"psi": Metric.PSI, "jensen_shannon": Metric.JS_DISTANCE, "wasserstein": Metric.WASSERSTEIN}


def _evidence_rows(evidence: dict) -> list[dict[str, Any]]:
    rows = []
    for name, row in (evidence.get("metrics") or {}).items():
        diff = row.get("difference")
        better = None
        if diff is not None and row.get("ci_low") is not None and row.get("ci_high") is not None:
            if row["ci_low"] > 0 or row["ci_high"] < 0:
                better = (diff < 0) if row.get("lower_is_better") else (diff > 0)
        rows.append({"metric": name, **row, "better": better})
    return rows


def _profile_on_bins(production_profile: dict, reference_frame) -> dict:
    """The candidate's reference binned on production's bins: production's profile with the
    candidate's reference counts (and spread), so production's stored counts compare with it."""
    window = stats.bin_window(production_profile, reference_frame)
    features = {}
    for name, fc in window.items():
        fprof = dict(production_profile["features"][name])
        fprof["counts"] = [int(c) for c in fc.counts]
        if fprof["type"] == "numeric":
            col = reference_frame[name].to_numpy(dtype=float)
            std = float(col[~(col != col)].std()) if col.size else 0.0
            fprof["std"] = std or fprof.get("std")
        features[name] = fprof
    return {**production_profile, "features": features}


def recent_drift(version: ModelVersion, *, days: int = RECENT_DAYS, now=None) -> dict[str, Any]:
    """The candidate's reference against production's stored counts of the last ``days`` days,
    per input feature with the model's drift rule (stored hourly counts only: no traffic scan)."""
    from monitoring.services.profiles import dataframe_from_parquet
    from monitoring.services.windows import hour_floor, stored_counts

    production = ModelVersion.objects.filter(model_id=version.model_id, stage=Stage.PRODUCTION).first()
    if production is None:
        return {"status": "no_production"}
    if production.pk == version.pk:
        return {"status": "is_production", "production": production.version}
    candidate_ref = ReferenceProfile.objects.filter(version=version, status=ProfileStatus.READY).first()
    production_ref = ReferenceProfile.objects.filter(version=production, status=ProfileStatus.READY).first()
    end = hour_floor(now or timezone.now()) + timedelta(hours=1)
    latest = production.packed_bin_counts.filter(granularity=Granularity.HOURLY, window_start__lt=end).order_by(
        "-window_start"
    )
    last = latest.values_list("window_start", flat=True).first()
    # what is missing, named exactly: the versions without a ready reference profile, production's traffic
    missing = [v.version for v, ref in ((version, candidate_ref), (production, production_ref)) if ref is None]
    if missing or last is None:
        # Production's binned counts need its reference profile: without one, its traffic shows
        # in its prediction batches, and only their absence is "no monitored traffic".
        received = production_ref is None and IngestBatch.objects.filter(version=production).exists()
        return {
            "status": "missing",
            "production": production.version,
            "candidate": version.version,
            "missing_reference": missing,
            "no_traffic": last is None and not received,
        }
    end = last + timedelta(hours=1)
    start = end - timedelta(days=days)
    counts = stored_counts(production.pk, start, end)
    frame = dataframe_from_parquet(candidate_ref.data)
    profile = _profile_on_bins(production_ref.profile, frame)
    config = MonitoringConfig.objects.filter(model_id=version.model_id).first()
    settings = stats.DriftSettings.from_config(config)
    rows = stats.drift_from_counts(profile, {k: v for k, v in counts.items() if k in profile["features"]}, settings)
    metric = _RULE_METRIC.get(settings.rule, Metric.PSI)
    by_feature: dict[str, dict] = {}
    for r in rows:
        if r["feature"] in ("", PREDICTION_FEATURE, SCORE_FEATURE):
            continue
        entry = by_feature.setdefault(r["feature"], {"feature": r["feature"]})
        if r["metric"] == Metric.DRIFT_DETECTED:
            entry["drifted"] = bool(r["value"])
        elif r["metric"] in (metric, Metric.PSI, Metric.KS_P_VALUE, Metric.CHI2_P_VALUE):
            entry[r["metric"]] = r["value"]
    features = sorted(by_feature.values(), key=lambda e: (not e.get("drifted"), e["feature"]))
    return {
        "status": "ok",
        "production": production.version,
        "start": start,
        "end": end,
        "rule": settings.rule,
        "rows": int(max((c.n + c.missing for c in counts.values()), default=0)),
        "features": features,
        "drifted": sum(1 for e in features if e.get("drifted")),
    }


def _champion_now(request, evidence: dict) -> int | None:
    """The version in production now, when a pending request's evidence was paired with another
    one (a rollback or a promotion since): the live gate waits for pairs with it. None otherwise."""
    if request.status != PromotionStatus.PENDING or not evidence.get("pairs"):
        return None
    current = production_version(request.version.model)
    now = current.version if current is not None else None
    return now if now != evidence.get("production_version") else None


def live_block(*, user, request) -> dict[str, Any] | None:
    """The request page's live block, or None when the user may not see the model."""
    version = request.version
    if not RegisteredModel.objects.visible_to(user).filter(pk=version.model_id).exists():
        return None
    if version.model.is_llm_app:  # no tabular features nor scores: its evaluation gates apply instead
        return {"llm_app": True}
    evidence = request.live_evidence or {}
    return {
        "evidence": evidence,
        "champion_now": _champion_now(request, evidence),
        "rows": _evidence_rows(evidence),
        "evidence_at": request.live_evidence_at,
        "drift": recent_drift(version),
    }
