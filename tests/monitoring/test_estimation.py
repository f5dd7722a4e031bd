"""Performance estimated before the labels arrive: CBPE (binary) and DLE (regression).

The statistics are checked on simulated data against the realized metrics computed by
scikit-learn on the same rows; the database side through the ordinary upload, ingestion,
window computation, metrics endpoint and health."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from django.utils import timezone
from sklearn import metrics as skm

from monitoring import estimation
from monitoring import stats as metrics
from monitoring.choices import AlertKind, AlertSeverity, Granularity
from monitoring.models import HealthStatus, MetricValue, ReferenceProfile
from monitoring.services.ingestion import labels_ingest, reference_upload
from registry.choices import Stage
from registry.services.audit import CLI
from tests.factories import ModelVersionFactory
from tests.monitoring.helpers import T0, as_json, csv_bytes, ingest_predictions, profile_of

SCHEMA = [{"name": "x1", "type": "numeric"}, {"name": "x2", "type": "numeric"}]


def simulate(rng: np.random.Generator, n: int, shift: float, spread: float = 1.0) -> pd.DataFrame:
    """A model whose true probability is a logistic of x1, x2; its score is a monotone
    distortion of it (so the calibration has work to do); covariate shift moves x1 (and
    narrows it: fewer clear cases, a lower AUC)."""
    x1 = rng.normal(shift, spread, n)
    x2 = rng.normal(0, 1, n)
    p = 1 / (1 + np.exp(-(1.5 * x1 - 1.0 * x2 - 0.5)))
    score = p**1.3
    return pd.DataFrame(
        {"x1": x1, "x2": x2, "prediction": (score >= 0.4).astype(int), "score": score, "label": rng.random(n) < p}
    )


def realized(w: pd.DataFrame) -> dict[str, float]:
    y, p = w["label"].astype(int), w["prediction"]
    return {
        "accuracy": skm.accuracy_score(y, p),
        "precision": skm.precision_score(y, p),
        "recall": skm.recall_score(y, p),
        "f1": skm.f1_score(y, p),
        "roc_auc": skm.roc_auc_score(y, w["score"]),
    }


@pytest.fixture(scope="module")
def calibrated_profile():
    ref = simulate(np.random.default_rng(0), 20_000, 0.0)
    return profile_of(ref, SCHEMA)


def test_the_profile_of_a_labelled_reference_holds_an_isotonic_calibration_on_the_score_bins(calibrated_profile):
    cal = calibrated_profile["calibration"]
    score = calibrated_profile["features"]["__score__"]
    assert cal["method"] == "isotonic" and cal["positive_label"] == "1"
    assert len(cal["bin_prob"]) == len(score["counts"]) == len(cal["bin_pred"])
    assert np.all(np.diff(cal["bin_prob"]) >= 0)  # isotonic: monotone in the score
    assert set(np.round(cal["bin_pred"], 12)) <= {0.0, 1.0}  # the threshold is a bin edge


def test_cbpe_under_covariate_shift_is_within_002_and_its_band_covers_the_realized_value(calibrated_profile):
    """20 seeded windows of 5,000 rows, each with its own shift of x1 (-0.8 … 0.8)."""
    cal = calibrated_profile["calibration"]
    fx = calibrated_profile["features"]["__score__"]
    errors = {m: [] for m in estimation.CLASSIFICATION_METRICS}
    covered = {m: 0 for m in estimation.CLASSIFICATION_METRICS}
    for seed in range(20):
        rng = np.random.default_rng(100 + seed)
        window = simulate(rng, 5_000, rng.uniform(-0.8, 0.8))
        counts = metrics.bin_numeric(fx, window["score"].to_numpy()).counts
        estimate = estimation.cbpe_estimate(cal, counts)
        truth = realized(window)
        for m in errors:
            value, lower, upper = estimate[m]
            errors[m].append(abs(value - truth[m]))
            covered[m] += lower <= truth[m] <= upper
    assert max(errors["roc_auc"]) < 0.02 and max(errors["accuracy"]) < 0.02
    assert np.mean(errors["f1"]) < 0.02
    # about 95%: 20 windows, P(≤ 16 covered | 95%) ≈ 1.6%
    assert all(c >= 17 for c in covered.values()), covered


def test_cbpe_cannot_see_concept_drift():
    """Documented limit: the same inputs with another outcome leave the estimate unchanged."""
    rng = np.random.default_rng(3)
    ref = simulate(rng, 20_000, 0.0)
    profile = profile_of(ref, SCHEMA)
    window = simulate(rng, 5_000, 0.0)
    window["label"] = rng.random(5_000) < 0.5  # the outcome no longer depends on the inputs
    counts = metrics.bin_numeric(profile["features"]["__score__"], window["score"].to_numpy()).counts
    estimate = estimation.cbpe_estimate(profile["calibration"], counts)["roc_auc"][0]
    assert estimate > 0.75 and realized(window)["roc_auc"] < 0.55


def test_dle_estimates_mae_and_rmse_of_a_regression_window():
    rng = np.random.default_rng(5)

    def regression(n, shift):
        x1 = rng.normal(shift, 1, n)
        x2 = rng.normal(0, 1, n)
        y = 2 * x1 + x2 + rng.normal(0, 0.5 + np.abs(x1), n)  # noise grows with |x1|
        return {"x1": x1, "x2": x2, "__prediction__": 2 * x1 + x2}, y

    columns, y = regression(20_000, 0.0)
    models = estimation.dle_fit(columns, y, SCHEMA)
    for shift in (0.0, 1.0):
        window, y_window = regression(5_000, shift)
        one_group = np.zeros(len(y_window), dtype=np.int64)
        est = estimation.dle_estimate(estimation.dle_groups(models, window, one_group, 1)[0])
        err = y_window - window["__prediction__"]
        assert est["mae"][0] == pytest.approx(np.abs(err).mean(), rel=0.05)
        assert est["rmse"][0] == pytest.approx(np.sqrt((err**2).mean()), rel=0.05)
        assert est["mae"][1] < est["mae"][0] < est["mae"][2]


# --------------------------------------------------------------------------- through the database


def _records(frame: pd.DataFrame, start, prefix: str) -> list[dict]:
    return [
        {
            "prediction_id": f"{prefix}{i}",
            "timestamp": (start + pd.Timedelta(seconds=int(i % 3600))).isoformat(),
            "features": {"x1": float(r.x1), "x2": float(r.x2)},
            "prediction": int(r.prediction),
            "score": float(r.score),
        }
        for i, r in enumerate(frame.itertuples())
    ]


def production_version(model):
    """A version of ``model`` in production on the two simulated features, with a ROC AUC of 0.85."""
    return ModelVersionFactory(
        model=model,
        stage=Stage.PRODUCTION,
        stage_changed_at=timezone.now(),
        feature_schema=SCHEMA,
        metrics={"roc_auc": 0.85},
    )


def labelled_reference() -> pd.DataFrame:
    """4,000 labelled rows without shift (seed 0): the reference the estimate is calibrated on."""
    ref = simulate(np.random.default_rng(0), 4_000, 0.0)
    ref["label"] = ref["label"].astype(int)
    return ref


@pytest.fixture
def labelled_production(churn, owner, django_capture_on_commit_callbacks):
    version = production_version(churn)
    with django_capture_on_commit_callbacks(execute=True):
        reference_upload(
            version=version, body=csv_bytes(labelled_reference()), content_type="text/csv", actor=owner, context=CLI
        )
    return version


@pytest.mark.django_db
def test_an_unlabelled_window_gets_estimated_metrics_through_the_metrics_endpoint(
    labelled_production, owner, api_client_for, django_capture_on_commit_callbacks
):
    assert "calibration" in ReferenceProfile.objects.get(version=labelled_production).profile
    window = simulate(np.random.default_rng(9), 1_500, 0.0)
    with django_capture_on_commit_callbacks(execute=True):
        ingest_predictions(labelled_production, _records(window, T0, "w"), owner)
    hourly = {
        m.metric: m.value
        for m in MetricValue.objects.filter(version=labelled_production, granularity=Granularity.HOURLY, feature="")
    }
    truth = realized(window)
    assert hourly["estimated.roc_auc"] == pytest.approx(truth["roc_auc"], abs=0.04)
    assert hourly["estimated.roc_auc.lower"] < hourly["estimated.roc_auc"] < hourly["estimated.roc_auc.upper"]
    assert "roc_auc" not in hourly  # nothing realized without labels
    body = api_client_for(owner).get("/api/v1/models/churn/metrics/", {"metric": "estimated.roc_auc"}).json()
    rows = body["results"] if isinstance(body, dict) and "results" in body else body
    assert any(r["metric"] == "estimated.roc_auc" for r in rows)


@pytest.mark.django_db
def test_health_warns_from_the_estimate_before_any_label_and_the_realized_value_takes_over(
    labelled_production, owner, django_capture_on_commit_callbacks
):
    # the inputs narrow to where the model is less sure: the estimated AUC falls below 0.85 - 0.05
    window = simulate(np.random.default_rng(11), 1_500, 0.0, spread=0.2)
    records = _records(window, T0, "s")
    with django_capture_on_commit_callbacks(execute=True):
        ingest_predictions(labelled_production, records, owner)
    reasons = HealthStatus.objects.get(model=labelled_production.model).reasons
    perf = [r for r in reasons if r["kind"] == AlertKind.PERFORMANCE]
    assert perf and perf[0].get("estimated") and "estimate" in perf[0]["message"]
    assert perf[0]["severity"] in (AlertSeverity.WARNING, AlertSeverity.CRITICAL)
    labels = [
        {"prediction_id": r["prediction_id"], "label": int(v)} for r, v in zip(records, window["label"], strict=True)
    ]
    with django_capture_on_commit_callbacks(execute=True):
        labels_ingest(
            model=labelled_production.model,
            body=as_json(labels),
            content_type="application/json",
            actor=owner,
            context=CLI,
        )
    reasons = HealthStatus.objects.get(model=labelled_production.model).reasons
    assert not any(r.get("estimated") for r in reasons)


@pytest.mark.django_db
def test_the_dashboard_draws_the_estimate_dashed_with_its_band_and_says_estimated(
    labelled_production, owner, client_for, django_capture_on_commit_callbacks
):
    window = simulate(np.random.default_rng(12), 800, 0.0)
    with django_capture_on_commit_callbacks(execute=True):
        ingest_predictions(labelled_production, _records(window, T0, "d"), owner)
    params = {"range": "custom", "start": "2026-03-01T00:00", "end": "2026-03-04T00:00", "granularity": "hourly"}
    response = client_for(owner).get(f"/monitoring/models/{labelled_production.model.name}/", params)
    assert response.status_code == 200
    figure = response.context["figures"]["chart-performance"]
    estimated = [t for t in figure["data"] if t.get("name") == "roc_auc (estimated)"]
    assert estimated and estimated[0]["line"]["dash"] == "dash" and "estimated" in estimated[0]["hovertemplate"]
    assert any(t.get("fill") == "tonexty" for t in figure["data"])
    assert "estimated" in figure["layout"]["title"]["text"]
