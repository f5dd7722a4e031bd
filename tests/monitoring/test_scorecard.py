"""Governance scorecard: criteria computed from records, failing models listed, maturity level."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from monitoring.choices import AlertKind, AlertSeverity, AlertStatus, Granularity, Metric
from monitoring.models import MetricValue, MonitoringConfig
from monitoring.scorecard import CRITERIA, LEVELS, maturity_level, scorecard_compute
from registry.choices import Decision, EvaluationKind, EvaluationStatus, PromotionStatus, RiskTier, Stage
from registry.models import EvaluationRun, PromotionRequest, Review, StageTransition
from tests.factories import AlertFactory, ModelVersionFactory, RegisteredModelFactory, TeamFactory, UserFactory
from tests.monitoring.helpers import assert_form_error
from tests.monitoring.llm_helpers import llm_model, llm_version

pytestmark = pytest.mark.django_db


def _promote(version, *, requester, reviewer, applied=True):
    request = PromotionRequest.objects.create(
        version=version,
        target_stage=Stage.PRODUCTION,
        requested_by=requester,
        justification="ok",
        status=PromotionStatus.APPLIED if applied else PromotionStatus.APPROVED,
    )
    Review.objects.create(request=request, reviewer=reviewer, requester=requester, decision=Decision.APPROVE)
    StageTransition.objects.create(
        version=version, model=version.model, from_stage=Stage.STAGING, to_stage=Stage.PRODUCTION, actor=requester
    )
    version.stage = Stage.PRODUCTION
    version.save(update_fields=["stage"])
    return request


def _acknowledged_alert(model, severity, *, opened, after):
    """A drift alert opened at ``opened`` and acknowledged ``after`` that."""
    AlertFactory(
        model=model,
        severity=severity,
        status=AlertStatus.ACKNOWLEDGED,
        opened_at=opened,
        acknowledged_at=opened + after,
    )


@pytest.fixture
def good(owner, team, reviewer):
    """A production model that meets every criterion."""
    model = RegisteredModelFactory(name="good", owner=owner, team=team, retrain_cadence_days=30)
    old = ModelVersionFactory(model=model)
    _promote(old, requester=owner, reviewer=reviewer)
    old.stage = Stage.ARCHIVED
    old.save(update_fields=["stage"])
    new = ModelVersionFactory(model=model)
    _promote(new, requester=owner, reviewer=reviewer)
    MonitoringConfig.objects.create(model=model)
    now = timezone.now()
    MetricValue.objects.create(
        model=model,
        version=new,
        granularity=Granularity.HOURLY,
        window_start=now - timedelta(hours=2),
        window_end=now - timedelta(hours=1),
        metric=Metric.VOLUME,
        value=100,
        computed_at=now,
    )
    _acknowledged_alert(model, AlertSeverity.WARNING, opened=now - timedelta(days=3), after=timedelta(hours=2))
    return model


@pytest.fixture
def bad(owner, team, reviewer):
    """A production model that fails every criterion but the owner."""
    model = RegisteredModelFactory(name="bad", owner=owner, team=team, limitations="", retrain_cadence_days=None)
    version = ModelVersionFactory(model=model)
    _promote(version, requester=owner, reviewer=reviewer, applied=False)  # approved, never applied
    now = timezone.now()
    _acknowledged_alert(model, AlertSeverity.CRITICAL, opened=now - timedelta(days=5), after=timedelta(hours=30))
    return model


@pytest.fixture
def not_in_production(owner, team):
    model = RegisteredModelFactory(name="staging-only", owner=owner, team=team, limitations="")
    ModelVersionFactory(model=model, stage=Stage.STAGING)
    return model


def test_scorecard_checks_every_criterion_against_the_records(owner, good, bad, not_in_production):
    card = scorecard_compute(user=owner)
    assert [m.name for m in card.models] == ["bad", "good"]  # staging-only is not counted
    by_key = {r.criterion.key: r for r in card.results}
    assert by_key["owner"].share == 1.0
    for key in (
        "model_card",
        "independent_approval",
        "monitoring",
        "retrain_cadence",
        "rollback_target",
        "alerts_acknowledged",
    ):
        result = by_key[key]
        assert (result.passed, result.total) == (1, 2), key
        assert [m.name for m, _why in result.failing] == ["bad"], key
    assert "limitations" in by_key["model_card"].failing[0][1]
    assert "not acknowledged within 24 h" in by_key["alerts_acknowledged"].failing[0][1]
    assert card.level.name == "developing"


def test_acknowledgement_time_is_configurable(owner, good, bad):
    strict = {r.criterion.key: r for r in scorecard_compute(user=owner, ack_hours=1).results}
    lenient = {r.criterion.key: r for r in scorecard_compute(user=owner, ack_hours=48).results}
    assert strict["alerts_acknowledged"].passed == 0
    assert lenient["alerts_acknowledged"].passed == 2


def test_unacknowledged_alert_fails_only_once_its_deadline_has_passed(owner, good):
    now = timezone.now()
    AlertFactory(
        model=good, kind=AlertKind.PERFORMANCE, title="fresh", opened_at=now - timedelta(hours=1), updated_at=now
    )
    assert {r.criterion.key: r for r in scorecard_compute(user=owner).results}["alerts_acknowledged"].passed == 1
    later = scorecard_compute(user=owner, now=now + timedelta(hours=30))
    assert {r.criterion.key: r for r in later.results}["alerts_acknowledged"].passed == 0


def test_a_self_approved_or_rejected_promotion_is_not_an_independent_approval(owner, team, reviewer):
    model = RegisteredModelFactory(name="solo", owner=owner, team=team)
    version = ModelVersionFactory(model=model)
    request = _promote(version, requester=owner, reviewer=reviewer)
    Review.objects.filter(request=request).update(decision=Decision.REJECT)
    card = scorecard_compute(user=owner)
    assert {r.criterion.key: r for r in card.results}["independent_approval"].passed == 0


def test_a_model_meeting_everything_reaches_transformative(owner, good):
    card = scorecard_compute(user=owner)
    assert all(r.share == 1.0 for r in card.results if r.criterion.applies(good))
    assert card.level.number == 7 and card.level.name == "transformative"
    assert card.next_level is None


@pytest.mark.parametrize(
    "shares,expected",
    [
        ({c.key: 0.0 for c in CRITERIA}, "initial"),
        ({**{c.key: 0.0 for c in CRITERIA}, "owner": 0.6, "model_card": 0.5}, "developing"),
        ({**{c.key: 0.0 for c in CRITERIA}, "owner": 0.9, "model_card": 0.8, "independent_approval": 0.8}, "defined"),
        (
            {
                **{c.key: 0.5 for c in CRITERIA},
                "owner": 1,
                "model_card": 1,
                "independent_approval": 1,
                "monitoring": 0.8,
            },
            "managed",
        ),
        ({c.key: 0.8 for c in CRITERIA}, "optimized"),
        ({c.key: 0.96 for c in CRITERIA}, "leading"),
        ({c.key: 1.0 for c in CRITERIA}, "transformative"),
        # levels are cumulative: great monitoring without approvals is still "developing"
        ({**{c.key: 1.0 for c in CRITERIA}, "independent_approval": 0.2}, "developing"),
    ],
)
def test_maturity_levels_follow_the_written_rules(shares, expected):
    assert maturity_level(shares).name == expected


def test_seven_levels_in_order_each_with_a_rule():
    assert [lv.name for lv in LEVELS] == [
        "initial",
        "developing",
        "defined",
        "managed",
        "optimized",
        "leading",
        "transformative",
    ]
    assert all(lv.rule for lv in LEVELS)


def test_scorecard_page_shows_levels_rules_and_failing_models_with_links(client_for, owner, good, bad):
    response = client_for(owner).get(reverse("monitoring:scorecard"))
    assert response.status_code == 200
    html = response.content.decode()
    for level in LEVELS:
        assert level.rule in html
    assert 'data-level="2"' in html
    assert f'href="{reverse("registry:model_detail", args=["bad"])}"' in html
    assert 'id="criterion-independent_approval" data-share="50"' in html


@pytest.mark.parametrize("role", ["reviewer", "auditor", "admin"])
def test_roles_that_see_all_models_score_the_whole_organisation(client_for, roles, role, good, bad):
    other = RegisteredModelFactory(name="elsewhere", owner=UserFactory(username="x"), team=TeamFactory(slug="x"))
    ModelVersionFactory(model=other, stage=Stage.PRODUCTION)
    response = client_for(roles[role]).get(reverse("monitoring:scorecard"))
    assert response.status_code == 200
    assert {m.name for m in response.context["card"].models} == {"good", "bad", "elsewhere"}


def test_outsider_scores_nothing(client_for, outsider, good, bad):
    response = client_for(outsider).get(reverse("monitoring:scorecard"))
    assert response.status_code == 200
    card = response.context["card"]
    assert card.models == [] and card.level.name == "initial"
    assert b"/models/good/" not in response.content and b"/models/bad/" not in response.content


@pytest.mark.parametrize("value", ["0", "-3", "abc", "100000"])
def test_scorecard_rejects_a_bad_acknowledgement_time(client_for, owner, value):
    response = client_for(owner).get(reverse("monitoring:scorecard"), {"ack_hours": value})
    assert_form_error(response, "ack_hours")


def test_scorecard_page_accepts_an_acknowledgement_time(client_for, owner, good, bad):
    response = client_for(owner).get(reverse("monitoring:scorecard"), {"ack_hours": "48"})
    assert response.status_code == 200
    assert response.context["card"].ack_hours == 48


def _in_production(model, *, since):
    """A production version of ``model``, in production since ``since``."""
    return ModelVersionFactory(model=model, stage=Stage.PRODUCTION, stage_changed_at=since)


def _fairness_evaluated(version, *, at):
    EvaluationRun.objects.create(
        version=version,
        kind=EvaluationKind.FAIRNESS,
        status=EvaluationStatus.DONE,
        source_format="csv",
        n_rows=500,
        data=b"",
        data_sha256="0" * 64,
        created_at=at,
    )


def _result(card, key):
    return next(r for r in card.results if r.criterion.key == key)


def test_bias_examined_counts_only_high_risk_models(owner, team, good, bad, client_for):
    # the demo read "80%, 4 of 5 pass": low- and medium-risk models counted as passes
    now = timezone.now()
    examined = RegisteredModelFactory(name="credit", owner=owner, team=team, risk_tier=RiskTier.HIGH)
    _fairness_evaluated(_in_production(examined, since=now), at=now - timedelta(days=1))
    unexamined = RegisteredModelFactory(name="screening", owner=owner, team=team, risk_tier=RiskTier.HIGH)
    _in_production(unexamined, since=now)
    result = _result(scorecard_compute(user=owner), "bias_examined")
    assert (result.passed, result.total, result.percent) == (1, 2, 50)
    assert [m.name for m, _why in result.failing] == ["screening"]
    html = client_for(owner).get(reverse("monitoring:scorecard")).content.decode()
    assert 'id="criterion-bias_examined" data-share="50"' in html
    assert "1 of 2 high-risk ML models in production pass." in html


def test_a_criterion_that_applies_to_no_model_is_not_applicable_and_holds_no_level_back(owner, good, client_for):
    card = scorecard_compute(user=owner)
    assert _result(card, "bias_examined").total == 0  # good is medium risk
    assert card.level.name == "transformative"
    html = client_for(owner).get(reverse("monitoring:scorecard")).content.decode()
    assert "No high-risk ML models in production: not applicable." in html


def _llm_app_in_production(owner, team, name):
    model = llm_model(owner, team, name=name)
    return model, llm_version(model, stage=Stage.PRODUCTION, stage_changed_at=timezone.now())


def test_an_llm_application_with_recent_windows_counts_as_monitored(owner, team, good):
    # the demo read "monitoring not configured" for support-assistant, whose dashboard had recent windows
    _, version = _llm_app_in_production(owner, team, "support-assistant")
    now = timezone.now()
    MetricValue.objects.create(
        model=version.model,
        version=version,
        granularity=Granularity.HOURLY,
        window_start=now - timedelta(hours=2),
        window_end=now - timedelta(hours=1),
        metric=Metric.VOLUME,
        value=40,
        computed_at=now,
    )
    _llm_app_in_production(owner, team, "silent-assistant")  # no request records, no config
    result = _result(scorecard_compute(user=owner), "monitoring")
    assert (result.passed, result.total) == (2, 3)
    assert [(m.name, why) for m, why in result.failing] == [("silent-assistant", "monitoring not configured")]


def test_a_tabular_model_with_windows_but_no_saved_config_is_still_not_configured(owner, good):
    MonitoringConfig.objects.filter(model=good).delete()
    result = _result(scorecard_compute(user=owner), "monitoring")
    assert [(m.name, why) for m, why in result.failing] == [("good", "monitoring not configured")]


def test_retrain_cadence_counts_only_ml_models(owner, team, good):
    # support-assistant failed "no retrain cadence set": an LLM application is not trained
    _llm_app_in_production(owner, team, "support-assistant")
    result = _result(scorecard_compute(user=owner), "retrain_cadence")
    assert (result.passed, result.total, result.failing) == (1, 1, [])
