"""The request page's offline metrics table: which way each metric is better (an LLM application's
refusals, latency, cost and harmful output are better lower) and the tolerance it states, which is
the one the gates apply under the request's policy."""

from __future__ import annotations

import pytest

from monitoring.demo_llm_evaluations import upload_demo_evaluation
from registry.choices import RiskTier, Stage
from registry.models import PromotionPolicy
from registry.selectors.promotions import metric_comparison, promotion_gates
from registry.services.audit import CLI
from registry.services.promotions import promotion_request
from tests.factories import ModelVersionFactory, RegisteredModelFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def assistant(owner, team):
    return RegisteredModelFactory(
        name="support-assistant", owner=owner, team=team, kind="llm_app", risk_tier=RiskTier.MEDIUM
    )


def _request(version, owner):
    return promotion_request(
        version=version, target_stage=Stage.PRODUCTION, requester=owner, justification="Ready.", context=CLI
    )


def _directions(model, production: dict, candidate: dict) -> dict[str, str]:
    live = ModelVersionFactory.build(model=model, stage=Stage.PRODUCTION, metrics=production)
    challenger = ModelVersionFactory.build(model=model, metrics=candidate)
    return {row["metric"]: row["direction"] for row in metric_comparison(challenger, live)}


@pytest.mark.parametrize(
    "metric",
    ["refusal_rate", "latency_p95_ms", "cost_per_request_usd", "toxicity_rate", "safety_violation_rate"],
)
def test_a_higher_refusal_latency_cost_or_harm_rate_is_marked_worse(assistant, metric):
    directions = _directions(assistant, {"correctness": 0.89, metric: 0.02}, {"correctness": 0.9, metric: 0.05})
    assert directions == {"correctness": "better", metric: "worse"}
    assert _directions(assistant, {metric: 0.05}, {metric: 0.02}) == {metric: "better"}


def test_a_higher_safety_pass_rate_or_groundedness_is_still_better(assistant):
    directions = _directions(
        assistant, {"safety_pass_rate": 0.99, "groundedness": 0.9}, {"safety_pass_rate": 0.995, "groundedness": 0.93}
    )
    assert directions == {"safety_pass_rate": "better", "groundedness": "better"}


def test_the_llm_request_page_states_the_quality_gates_tolerance(assistant, owner, reviewer, client_for):
    PromotionPolicy.objects.filter(risk_tier=RiskTier.MEDIUM).update(metric_tolerance=0.01, llm_quality_tolerance=0.03)
    production = ModelVersionFactory(model=assistant, stage=Stage.PRODUCTION, feature_schema=[])
    upload_demo_evaluation(production, actor=owner, profile="good")
    candidate = ModelVersionFactory(model=assistant, feature_schema=[])
    upload_demo_evaluation(candidate, actor=owner, profile="good")
    req = _request(candidate, owner)
    quality = next(g for g in promotion_gates(req) if g["key"] == "llm_quality")
    assert "tolerance 0.03" in quality["detail"]
    html = client_for(reviewer).get(req.get_absolute_url()).content.decode()
    assert 'tolerance <span data-tolerance="0.03">0.03</span>' in html
    assert "Correctness not worse than production (paired)" in html
    assert 'data-tolerance="0.01"' not in html


def test_the_ml_request_page_states_the_metric_gates_tolerance(churn, owner, reviewer, client_for):
    PromotionPolicy.objects.filter(risk_tier=churn.risk_tier).update(metric_tolerance=0.015, llm_quality_tolerance=0.03)
    ModelVersionFactory(model=churn, stage=Stage.PRODUCTION, metrics={"roc_auc": 0.80})
    req = _request(ModelVersionFactory(model=churn, metrics={"roc_auc": 0.79}), owner)
    metric = next(g for g in promotion_gates(req) if g["key"] == "metric")
    assert "tolerance 0.015" in metric["detail"]
    html = client_for(reviewer).get(req.get_absolute_url()).content.decode()
    assert 'tolerance <span data-tolerance="0.015">0.015</span>' in html and 'data-tolerance="0.03"' not in html


def test_the_page_states_no_tolerance_when_the_policy_compares_nothing(churn, owner, reviewer, client_for):
    PromotionPolicy.objects.filter(risk_tier=churn.risk_tier).update(require_metric_within_tolerance=False)
    req = _request(ModelVersionFactory(model=churn, metrics={"roc_auc": 0.79}), owner)
    html = client_for(reviewer).get(req.get_absolute_url()).content.decode()
    assert "data-tolerance" not in html and "the policy requires no comparison with production" in html


def test_set_sizes_among_the_metrics_are_shown_as_context_not_compared(churn, owner, reviewer, client_for):
    sizes = {"test_rows": 2000, "n_rows": 9000, "train_rows": 7000}
    ModelVersionFactory(model=churn, stage=Stage.PRODUCTION, metrics={"roc_auc": 0.80, **sizes})
    candidate = ModelVersionFactory(
        model=churn, metrics={"roc_auc": 0.85, "test_rows": 2500, "n_rows": 12000, "train_rows": 9500}
    )
    rows = metric_comparison(candidate, candidate.model.versions.get(stage=Stage.PRODUCTION))
    assert [r["metric"] for r in rows] == ["roc_auc", "n_rows", "test_rows", "train_rows"]
    assert rows[0]["direction"] == "better" and not rows[0]["count"]
    assert all(r["count"] and r["delta"] is None and r["direction"] == "" for r in rows[1:])
    html = client_for(reviewer).get(_request(candidate, owner).get_absolute_url()).content.decode()
    test_rows = html[html.index("<td>test_rows") : html.index("</tr>", html.index("<td>test_rows"))]
    assert "<td>2500</td>" in test_rows and "a count, not compared" in test_rows
    assert "better" not in test_rows and "worse" not in test_rows


def test_the_llm_request_page_rounds_the_offline_metrics_as_the_model_page(assistant, owner, reviewer, client_for):
    # the candidate and production cells read "0.813024" (the model page and the report: 0.8130)
    ModelVersionFactory(model=assistant, stage=Stage.PRODUCTION, feature_schema=[], metrics={"correctness": 0.791667})
    candidate = ModelVersionFactory(model=assistant, feature_schema=[], metrics={"correctness": 0.813024, "n": 120})
    html = client_for(reviewer).get(_request(candidate, owner).get_absolute_url()).content.decode()
    table = html[html.index('<table class="metric-compare">') : html.index("</table>", html.index("metric-compare"))]
    assert "<td>0.8130</td>" in table and "<td>0.7917</td>" in table and "<td>120</td>" in table
    assert "0.813024" not in html and "0.791667" not in html
