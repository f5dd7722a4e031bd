"""Fairness in production: sensitive values stored apart, per-group counts per hourly window that
merge exactly into days, selection-rate parity from predictions alone, error-rate parity from late
labels without double counting, ``fairness.*`` through the metrics endpoint with an attribute
filter, and the health reason when disparate impact crosses the threshold."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from monitoring import fairness
from monitoring.choices import Granularity
from monitoring.fairness_data import FAIRNESS_SCHEMA, applicants, biased_decisions
from monitoring.models import MetricValue, Prediction, PredictionSensitive, WindowGroupCounts
from monitoring.services.health import evaluate_reasons
from monitoring.services.ingestion import labels_ingest, predictions_ingest
from monitoring.services.windows import window_compute
from registry.choices import RiskTier, Stage, TaskType
from registry.services.audit import CLI
from tests.factories import ModelVersionFactory, RegisteredModelFactory
from tests.monitoring.helpers import T0, csv_bytes

pytestmark = pytest.mark.django_db
N = 600


@pytest.fixture
def credit_v1(owner, team):
    model = RegisteredModelFactory(name="credit-approval", owner=owner, team=team, risk_tier=RiskTier.HIGH)
    return ModelVersionFactory(model=model, feature_schema=FAIRNESS_SCHEMA, task_type=TaskType.BINARY,
                               stage=Stage.PRODUCTION)  # fmt: skip


def _traffic(female_factor: float, seed: int = 3):
    data = applicants(N, seed=seed)
    prediction, score = biased_decisions(data, female_factor=female_factor, seed=seed)
    minutes = np.sort(np.random.default_rng(seed).integers(0, 120, N))  # two hourly windows
    frame = pd.DataFrame({
        "prediction_id": [f"p{i}" for i in range(N)],
        "timestamp": [(T0 + timedelta(minutes=int(m))).isoformat() for m in minutes],
        "income": data["income"].round(2), "debt_ratio": data["debt_ratio"].round(4),
        "years_employed": data["years_employed"].round(2), "age_band": data["age_band"], "sex": data["sex"],
        "prediction": prediction, "score": score.round(5),
    })  # fmt: skip
    return frame, data


def _ingest(version, owner, frame, capture):
    with capture(execute=True):
        predictions_ingest(version=version, body=csv_bytes(frame), content_type="text/csv", actor=owner, context=CLI)


def _compute(version):
    for hour in (T0, T0 + timedelta(hours=1)):
        window_compute(version_id=version.pk, window_start=hour, granularity=Granularity.HOURLY)
    window_compute(version_id=version.pk, window_start=T0, granularity=Granularity.DAILY)


def _value(version, granularity, feature, metric):
    return MetricValue.objects.get(version=version, granularity=granularity, feature=feature, metric=metric).value


def test_sensitive_values_are_stored_apart_from_features(credit_v1, owner, django_capture_on_commit_callbacks):
    frame, _ = _traffic(1.0)
    _ingest(credit_v1, owner, frame, django_capture_on_commit_callbacks)
    features = Prediction.objects.filter(version=credit_v1).first().features
    assert "sex" not in features and "age_band" not in features and "income" in features
    assert PredictionSensitive.objects.filter(version=credit_v1).count() == N
    stored = PredictionSensitive.objects.get(version=credit_v1, prediction_id="p0").values
    assert stored == {"age_band": frame.age_band[0], "sex": frame.sex[0]}


def test_selection_parity_from_predictions_alone_and_days_are_sums_of_hours(
    credit_v1, owner, django_capture_on_commit_callbacks
):
    frame, _ = _traffic(0.6)
    _ingest(credit_v1, owner, frame, django_capture_on_commit_callbacks)
    _compute(credit_v1)
    expected = fairness.fairness_report(task="binary", y_true=frame.prediction.to_numpy(),
                                        y_pred=frame.prediction.to_numpy(), attributes={"sex": frame.sex.to_numpy()},
                                        n_boot=0)["attributes"]["sex"]["summary"]  # fmt: skip
    assert _value(credit_v1, Granularity.DAILY, "sex", "fairness.disparate_impact") == pytest.approx(
        expected["disparate_impact"], abs=1e-12
    )
    assert _value(credit_v1, Granularity.DAILY, "sex", "fairness.demographic_parity_difference") == pytest.approx(
        expected["demographic_parity_difference"], abs=1e-12
    )
    hours = WindowGroupCounts.objects.filter(version=credit_v1, granularity=Granularity.HOURLY, attribute="sex")
    summed = sum(np.array(h.counts) for h in hours)
    females = frame.sex == "F"
    assert summed[0].tolist()[:2] == [females.sum(), frame.prediction[females].sum()]  # groups sorted: F, M
    assert not MetricValue.objects.filter(metric="fairness.equalized_odds_difference").exists()  # no labels yet


def test_late_labels_give_error_parity_once(credit_v1, owner, django_capture_on_commit_callbacks, api_client_for):
    frame, data = _traffic(1.0)
    _ingest(credit_v1, owner, frame, django_capture_on_commit_callbacks)
    labels = csv_bytes(pd.DataFrame({"prediction_id": frame.prediction_id, "label": data["label"]}))
    for _ in range(2):  # the same labels sent twice: replaced, never added
        with django_capture_on_commit_callbacks(execute=True):
            labels_ingest(model=credit_v1.model, body=labels, content_type="text/csv", actor=owner, context=CLI)
        _compute(credit_v1)
    sex = frame.sex.to_numpy()
    from fairlearn.metrics import equalized_odds_difference

    expected = equalized_odds_difference(data["label"], frame.prediction.to_numpy(), sensitive_features=sex)
    assert _value(credit_v1, Granularity.DAILY, "sex", "fairness.equalized_odds_difference") == pytest.approx(
        expected, abs=1e-12
    )
    day = sum(np.array(h.counts) for h in WindowGroupCounts.objects.filter(
        version=credit_v1, granularity=Granularity.HOURLY, attribute="sex"))  # fmt: skip
    assert day[:, 2:].sum() == N  # every row labelled exactly once
    body = (
        api_client_for(owner)
        .get("/api/v1/models/credit-approval/metrics/", {"attribute": "sex", "granularity": "daily"})
        .json()
    )
    rows = body["results"] if isinstance(body, dict) else body
    names = {(r["feature"], r["metric"]) for r in rows}
    assert ("sex", "fairness.disparate_impact") in names and ("sex=F", "fairness.selection_rate") in names
    assert all(r["feature"] == "sex" or r["feature"].startswith("sex=") for r in rows)


def test_disparate_impact_below_threshold_is_a_health_reason(credit_v1, owner, django_capture_on_commit_callbacks):
    frame, _ = _traffic(0.5)
    _ingest(credit_v1, owner, frame, django_capture_on_commit_callbacks)
    _compute(credit_v1)
    reasons = evaluate_reasons(credit_v1.model, now=T0 + timedelta(days=1)).reasons
    fair = [r for r in reasons if r["kind"] == "fairness"]
    assert any(r["attribute"] == "sex" and "Disparate impact for sex is 0.4" in r["message"] for r in fair), fair


def test_a_parity_breach_in_production_opens_a_fairness_alert_and_a_review(
    credit_v1, owner, django_capture_on_commit_callbacks
):
    # "the owner gets an alert when a parity figure crosses its threshold", and the breach is a
    # trigger of an unscheduled review (oversight)
    from monitoring.models import Alert
    from monitoring.oversight.models import PeriodicReview
    from monitoring.oversight.reviews import reviews_sweep
    from monitoring.services.health import health_evaluate

    frame, _ = _traffic(0.5)
    _ingest(credit_v1, owner, frame, django_capture_on_commit_callbacks)
    _compute(credit_v1)
    health_evaluate(model=credit_v1.model, now=T0 + timedelta(days=1))
    alert = Alert.objects.get(model=credit_v1.model, kind="fairness", status="open")
    assert "Disparate impact for sex is 0.4" in alert.title + " " + str(alert.reasons)
    reviews_sweep(now=T0 + timedelta(days=1))
    assert PeriodicReview.objects.get(model=credit_v1.model).trigger == "fairness"


def test_scorecard_bias_examined_before_production(credit_v1, owner, admin_user, django_capture_on_commit_callbacks):
    from django.utils import timezone

    from monitoring.fairness_data import evaluation_frame
    from monitoring.scorecard import scorecard_compute
    from monitoring.services.evaluations import evaluation_compute, evaluation_upload

    def failing():
        result = next(r for r in scorecard_compute(user=admin_user).results if r.criterion.key == "bias_examined")
        return [m.name for m, _ in result.failing]

    credit_v1.stage_changed_at = timezone.now()
    credit_v1.save(update_fields=["stage_changed_at"])
    low = ModelVersionFactory(model=RegisteredModelFactory(name="low-risk", risk_tier=RiskTier.LOW),
                              stage=Stage.PRODUCTION, stage_changed_at=timezone.now())  # fmt: skip
    assert failing() == ["credit-approval"] and low.model.name not in failing()
    run = evaluation_upload(version=credit_v1, body=csv_bytes(evaluation_frame(500)), content_type="text/csv",
                            actor=owner, context=CLI)  # fmt: skip
    evaluation_compute(run_id=run.pk)
    assert failing() == ["credit-approval"]  # uploaded after the version went live
    credit_v1.stage_changed_at = timezone.now()
    credit_v1.save(update_fields=["stage_changed_at"])
    assert failing() == []


def test_dashboard_draws_group_rates_over_time(credit_v1, owner, client_for, django_capture_on_commit_callbacks):
    frame, _ = _traffic(0.7)
    _ingest(credit_v1, owner, frame, django_capture_on_commit_callbacks)
    _compute(credit_v1)
    start, end = T0 - timedelta(days=1), T0 + timedelta(days=2)
    page = client_for(owner).get(
        f"/monitoring/models/{credit_v1.model.name}/",
        {"range": "custom", "start": start.date().isoformat(), "end": end.date().isoformat(), "granularity": "daily"},
    )
    html = page.content.decode()
    assert page.status_code == 200, html[:500]
    assert 'id="chart-fairness-groups"' in html and "selection rate sex=F" in html and "disparate impact sex" in html


def test_ingested_sensitive_values_never_reach_the_audit_log_or_its_exports(
    credit_v1, owner, django_capture_on_commit_callbacks
):
    # Art. 10(5) safeguard: the raw values sent with predictions stay in their own table
    from registry.models import AuditEvent
    from registry.services.audit import audit_export_rows

    frame, _ = _traffic(0.5)
    frame["age_band"] = frame["age_band"].map(lambda band: f"band-{band}-zq")  # values no other text holds
    _ingest(credit_v1, owner, frame, django_capture_on_commit_callbacks)
    _compute(credit_v1)
    assert AuditEvent.objects.filter(action="predictions.ingested").exists()
    assert PredictionSensitive.objects.filter(values__age_band__endswith="-zq").count() == len(frame)  # stored apart
    logged = json.dumps([[e.before, e.after] for e in AuditEvent.objects.all()])
    exported = "".join(audit_export_rows(fmt="jsonl")) + "".join(audit_export_rows(fmt="csv"))
    assert "-zq" not in logged and "-zq" not in exported


@pytest.mark.parametrize(
    ("value", "limit", "shown"),
    [(0.4, 0.8, "0.40"), (0.797, 0.8, "0.797"), (0.7996, 0.8, "0.7996"), (0.1049, 0.1, "0.105"), (0.2, 0.1, "0.20")],
)
def test_a_breach_never_prints_as_the_threshold_it_breaches(value, limit, shown):
    """Alert #5 of the demo read "Disparate impact for age_band is 0.80 in production (≥ 0.80)":
    0.797 rounded to the threshold, and "(≥ 0.80)" read as a claim about the value."""
    from monitoring.fairness_monitoring import beside

    assert beside(value, limit) == shown


def test_the_reason_names_the_side_of_the_policy_threshold_it_is_on(
    credit_v1, owner, django_capture_on_commit_callbacks
):
    frame, _ = _traffic(0.5)
    _ingest(credit_v1, owner, frame, django_capture_on_commit_callbacks)
    _compute(credit_v1)
    reasons = evaluate_reasons(credit_v1.model, now=T0 + timedelta(days=1)).reasons
    message = next(r["message"] for r in reasons if r["kind"] == "fairness" and r["attribute"] == "sex")
    assert re.fullmatch(
        r"Disparate impact for sex is 0\.\d+ in production, below the policy's minimum of 0\.80\.", message
    )
