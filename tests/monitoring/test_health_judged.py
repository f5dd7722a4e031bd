"""An open alert is resolved only by windows that judged its kind within thresholds (three in a
row by default: ``test_alert_hysteresis``).

A window that exists but lacks a kind's data (no labels yet after a rollback or a promotion,
groups too small to compare, no reference profile, no feedback given) is no evidence of a
recovery: the alert of that kind stays open, and the next windows that judge it resolve it.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring.choices import PREDICTION_FEATURE, AlertKind, AlertStatus, Granularity, Metric
from monitoring.estimation import estimated_name
from monitoring.fairness_monitoring import DI, EOD
from monitoring.llm_metrics import FEEDBACK_COUNT, FEEDBACK_MEAN, LATENCY_P95, SAFETY_RATE
from monitoring.models import Alert, HealthStatus, MetricValue
from monitoring.services.health import health_evaluate
from monitoring.services.ingestion import labels_ingest, predictions_ingest, reference_upload
from registry.choices import Stage
from registry.models import ModelVersion
from registry.services.audit import CLI
from tests.factories import AlertFactory, ModelVersionFactory
from tests.monitoring.helpers import T0, as_json, csv_bytes, metric_row, prediction_records, reference_frame
from tests.monitoring.llm_helpers import llm_model, llm_version

pytestmark = pytest.mark.django_db

VOLUME = {("", Metric.VOLUME): 500.0}
WITHIN = {("", Metric.DRIFT_SHARE): 0.0}  # a window that judges drift, and nothing else, within thresholds

# kind → (a window lacking the kind's data, a window judging it within thresholds); a value is
# the metric's value, or (value, provisional)
CASES = {
    "drift without a reference profile": (AlertKind.DRIFT, {}, WITHIN),
    "prediction drift without a reference profile": (
        AlertKind.PREDICTION_DRIFT,
        WITHIN,
        {(PREDICTION_FEATURE, Metric.DRIFT_DETECTED): 0.0, (PREDICTION_FEATURE, Metric.PSI): 0.01},
    ),
    "data quality without a reference profile": (
        AlertKind.DATA_QUALITY,
        {},
        {("age", Metric.MISSING_SHARE): 0.0, ("age", Metric.OUT_OF_RANGE_SHARE): 0.0},
    ),
    "performance before the labels": (
        AlertKind.PERFORMANCE,
        {**WITHIN, ("", Metric.ROC_AUC): (0.5, True), ("", Metric.LABEL_COVERAGE): 0.1},
        {("", Metric.ROC_AUC): 0.85, ("", Metric.LABEL_COVERAGE): 1.0},
    ),
    "performance estimated before the labels": (
        AlertKind.PERFORMANCE,
        {**WITHIN, ("", Metric.LABEL_COVERAGE): 0.0},
        {("", estimated_name(Metric.ROC_AUC)): 0.85, ("", Metric.LABEL_COVERAGE): 0.0},
    ),
    "fairness with groups too small to compare": (
        AlertKind.FAIRNESS,
        {**WITHIN, ("sex=F", "fairness.selection_rate"): 0.4, ("sex", EOD): (0.5, True)},
        {("sex", DI): 0.95, ("sex", EOD): 0.02},
    ),
}
LLM_CASES = {
    "llm latency without requests' latencies": (AlertKind.LLM_LATENCY, {}, {("", LATENCY_P95): 400.0}),
    "llm safety without requests' flags": (AlertKind.LLM_SAFETY, {}, {("", SAFETY_RATE): 0.0}),
    "llm feedback without feedback": (
        AlertKind.LLM_FEEDBACK,
        {("", LATENCY_P95): 400.0, ("", SAFETY_RATE): 0.0, ("", FEEDBACK_MEAN): None, ("", FEEDBACK_COUNT): 0.0},
        {("", FEEDBACK_MEAN): 0.6, ("", FEEDBACK_COUNT): 40.0},
    ),
}


def _window(version, day: int, values: dict) -> None:
    rows = []
    for (feature, metric), value in {**VOLUME, **values}.items():
        value, provisional = value if isinstance(value, tuple) else (value, False)
        start = T0 + timedelta(days=day)
        row = metric_row(version, start, metric, value, feature=feature, granularity=Granularity.DAILY)
        row.provisional = provisional
        rows.append(row)
    MetricValue.objects.bulk_create(rows)


def _survives_then_resolves(version, kind, lacking: dict, judging: dict, audit_actions, last_seq) -> None:
    alert = AlertFactory(model=version.model, kind=kind)
    _window(version, 0, lacking)
    seq = last_seq()
    health_evaluate(model=version.model, context=CLI)
    alert.refresh_from_db()
    assert alert.status == AlertStatus.OPEN and alert.resolved_at is None
    assert "alert.resolved" not in audit_actions(seq)
    _window(version, 1, judging)
    health_evaluate(model=version.model, context=CLI)
    alert.refresh_from_db()  # judged within thresholds once: recovering (three windows resolve it)
    assert alert.status == AlertStatus.OPEN and alert.clear_windows == 1
    for day in (2, 3):
        _window(version, day, judging)
        health_evaluate(model=version.model, context=CLI)
    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED and alert.resolved_at is not None
    assert audit_actions(seq).count("alert.resolved") == 1


@pytest.mark.parametrize("case", list(CASES))
def test_an_open_alert_survives_a_window_that_cannot_judge_its_kind_and_resolves_on_one_that_does(
    case, churn, audit_actions, last_seq
):
    kind, lacking, judging = CASES[case]
    schema = [{"name": "age", "type": "numeric"}, {"name": "sex", "type": "categorical", "sensitive": True}]
    version = ModelVersionFactory(
        model=churn, stage=Stage.PRODUCTION, stage_changed_at=timezone.now(), feature_schema=schema
    )
    _survives_then_resolves(version, kind, lacking, judging, audit_actions, last_seq)


@pytest.mark.parametrize("case", list(LLM_CASES))
def test_an_llm_applications_open_alert_survives_a_window_without_its_metric(
    case, owner, team, audit_actions, last_seq
):
    kind, lacking, judging = LLM_CASES[case]
    version = llm_version(llm_model(owner, team), stage=Stage.PRODUCTION, stage_changed_at=timezone.now())
    _survives_then_resolves(version, kind, lacking, judging, audit_actions, last_seq)


def test_a_tabular_window_never_judges_an_llm_kind_nor_an_llm_window_a_tabular_one(
    churn, owner, team, audit_actions, last_seq
):
    version = ModelVersionFactory(model=churn, stage=Stage.PRODUCTION, stage_changed_at=timezone.now())
    _window(version, 0, {**WITHIN, ("", LATENCY_P95): 100.0})
    alert = AlertFactory(model=churn, kind=AlertKind.LLM_LATENCY)
    health_evaluate(model=churn, context=CLI)
    alert.refresh_from_db()
    assert alert.status == AlertStatus.OPEN
    llm = llm_version(llm_model(owner, team), stage=Stage.PRODUCTION, stage_changed_at=timezone.now())
    _window(llm, 0, {("", LATENCY_P95): 100.0, ("", SAFETY_RATE): 0.0, ("", FEEDBACK_MEAN): 0.5})
    drift = AlertFactory(model=llm.model, kind=AlertKind.DRIFT)
    health_evaluate(model=llm.model, context=CLI)
    drift.refresh_from_db()
    assert drift.status == AlertStatus.OPEN


def test_a_performance_alert_stays_open_after_a_rollback_to_a_version_without_labels(
    churn, owner, django_capture_on_commit_callbacks, audit_actions, last_seq
):
    """The realized drop opens a critical performance alert; the version rolled back to has
    traffic (drift judged, within thresholds) but no labels yet: the alert is not resolved."""

    def upload(version):
        with django_capture_on_commit_callbacks(execute=True):
            reference_upload(
                version=version,
                body=csv_bytes(reference_frame(4000)),
                content_type="text/csv",
                actor=owner,
                context=CLI,
            )

    def send(version, records):
        with django_capture_on_commit_callbacks(execute=True):
            predictions_ingest(
                version=version, body=as_json(records), content_type="application/json", actor=owner, context=CLI
            )

    production = ModelVersionFactory(model=churn, stage=Stage.PRODUCTION, stage_changed_at=timezone.now())
    upload(production)
    records = prediction_records(400, seed=8)
    send(production, records)
    wrong = [{"prediction_id": r["prediction_id"], "label": 1 - r["prediction"]} for r in records]
    with django_capture_on_commit_callbacks(execute=True):
        labels_ingest(model=churn, body=as_json(wrong), content_type="application/json", actor=owner, context=CLI)
    alert = Alert.objects.get(model=churn, kind=AlertKind.PERFORMANCE)
    assert alert.status == AlertStatus.OPEN
    ModelVersion.objects.filter(pk=production.pk).update(stage=Stage.ARCHIVED)
    restored = ModelVersionFactory(model=churn, stage=Stage.PRODUCTION, stage_changed_at=timezone.now())
    upload(restored)
    seq = last_seq()
    send(restored, prediction_records(800, seed=7, prefix="v2-", start=T0 + timedelta(days=1)))
    health = HealthStatus.objects.get(model=churn)
    assert health.window_start == T0 + timedelta(days=1)  # the restored version's window decided
    alert.refresh_from_db()
    assert alert.status == AlertStatus.OPEN, health.reasons
    assert "alert.resolved" not in audit_actions(seq)


def test_a_models_health_keeps_an_open_alert_its_latest_window_could_not_judge(churn):
    """Health and alerts tell one story: a critical performance alert that a window without
    labels cannot judge keeps the model critical, its reason shown as held (not judged since),
    until a window judges the kind within thresholds."""
    version = ModelVersionFactory(model=churn, stage=Stage.PRODUCTION, stage_changed_at=timezone.now())
    reason = {"kind": AlertKind.PERFORMANCE, "severity": "critical", "message": "roc_auc is 0.610 against 0.850."}
    AlertFactory(model=churn, kind=AlertKind.PERFORMANCE, severity="critical", reasons=[reason])
    _window(version, 0, WITHIN)
    health = health_evaluate(model=churn, context=CLI)
    assert health.status == "critical"
    (held,) = health.reasons
    assert held["kind"] == AlertKind.PERFORMANCE and held["held"] is True
    assert held["message"].startswith("roc_auc is 0.610 against 0.850.")
    assert "not judged since" in held["message"]
    _window(version, 1, {**WITHIN, ("", Metric.ROC_AUC): 0.85, ("", Metric.LABEL_COVERAGE): 1.0})
    health = health_evaluate(model=churn, context=CLI)
    (recovering,) = health.reasons  # judged within thresholds once: still critical, recovering
    assert health.status == "critical" and recovering["recovering"] is True
    assert "recovering: 1 of 3 windows within thresholds" in recovering["message"]
    for day in (2, 3):
        _window(version, day, {**WITHIN, ("", Metric.ROC_AUC): 0.85, ("", Metric.LABEL_COVERAGE): 1.0})
        health = health_evaluate(model=churn, context=CLI)
    assert (health.status, health.reasons) == ("ok", [])


def test_an_acknowledged_alert_not_judged_is_held_too_and_no_window_is_not_no_data_with_an_open_alert(churn):
    version = ModelVersionFactory(model=churn, stage=Stage.PRODUCTION, stage_changed_at=timezone.now())
    reason = {"kind": AlertKind.DRIFT, "severity": "warning", "message": "40% of features drifted (age)."}
    AlertFactory(model=churn, kind=AlertKind.DRIFT, status=AlertStatus.ACKNOWLEDGED, reasons=[reason])
    health = health_evaluate(model=churn, context=CLI)  # no window of this version yet
    assert health.status == "warning" and [r["kind"] for r in health.reasons] == [AlertKind.DRIFT]
    assert version.model_id == churn.pk


def _fairness_alert(model, attribute: str) -> Alert:
    reason = {
        "kind": AlertKind.FAIRNESS,
        "severity": "warning",
        "message": f"Disparate impact for {attribute} is 0.61 in production, below the policy's minimum of 0.80.",
        "metric": DI,
        "attribute": attribute,
        "value": 0.61,
    }
    return AlertFactory(model=model, kind=AlertKind.FAIRNESS, reasons=[reason])


def test_a_fairness_alert_on_one_attribute_is_not_resolved_by_a_window_judging_only_another(churn):
    """Fairness is judged per sensitive attribute: a window whose `sex` groups are too small to
    compare, but whose `region` is within the policy, leaves the alert raised for `sex` open
    (and the model's health holds it); the windows that judge `sex` within the policy resolve it."""
    version = ModelVersionFactory(model=churn, stage=Stage.PRODUCTION, stage_changed_at=timezone.now())
    alert = _fairness_alert(churn, "sex")
    _window(version, 0, {**WITHIN, ("region", DI): 0.95, ("region", EOD): 0.02, ("sex", EOD): (0.4, True)})
    health = health_evaluate(model=churn, context=CLI)
    alert.refresh_from_db()
    assert alert.status == AlertStatus.OPEN
    assert [(r["attribute"], r["held"]) for r in health.reasons] == [("sex", True)]
    for day in (1, 2, 3):  # three windows judging `sex` within the policy
        _window(version, day, {**WITHIN, ("region", DI): 0.95, ("sex", DI): 0.9, ("sex", EOD): 0.03})
        health_evaluate(model=churn, context=CLI)
    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED


def test_a_fairness_alert_keeps_its_unjudged_attributes_reasons_when_another_attribute_breaches(churn):
    version = ModelVersionFactory(model=churn, stage=Stage.PRODUCTION, stage_changed_at=timezone.now())
    alert = _fairness_alert(churn, "sex")
    _window(version, 0, {**WITHIN, ("region", DI): 0.5})
    health_evaluate(model=churn, context=CLI)
    alert.refresh_from_db()
    assert alert.status == AlertStatus.OPEN
    assert sorted(r["attribute"] for r in alert.reasons) == ["region", "sex"]
    assert "region" in alert.title and "sex" in alert.title


def test_an_evaluation_reads_the_models_active_alerts_once(churn, django_assert_max_num_queries):
    """The health's held reasons and the alerts' sync read the same rows: one locked read."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    version = ModelVersionFactory(model=churn, stage=Stage.PRODUCTION)
    AlertFactory(model=churn, kind=AlertKind.DRIFT)
    _window(version, 0, VOLUME)
    with CaptureQueriesContext(connection) as queries:
        health_evaluate(model=churn, context=CLI)
    active_reads = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith("SELECT") and 'FROM "monitoring_alert"' in q["sql"] and "NOT" in q["sql"]
    ]
    assert len(active_reads) == 1, active_reads
