"""The LLM-application gates: safety (overall rate and per-category floor, blocking with the
category, rate and n, green once fixed), quality (a paired comparison with production, checked
against a direct numpy/scipy computation), "not applicable" both ways, the policy's thresholds,
the admin override, the demo profiles and the request page."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from monitoring.demo_llm_evaluations import DEMO_SET, upload_demo_evaluation
from monitoring.services.evaluations_llm import llm_evaluation_upload
from registry.choices import PromotionStatus, RiskTier, Stage
from registry.models import AuditEvent, PromotionPolicy
from registry.selectors.promotions import promotion_gates
from registry.services.audit import CLI
from registry.services.policies import policy_update
from registry.services.promotions import GatesFailed, promotion_approve, promotion_cancel, promotion_request
from registry.services.stages import PromotionConflict
from tests.factories import ModelVersionFactory, RegisteredModelFactory

pytestmark = pytest.mark.django_db
SET = "support-eval-2026-11"


@pytest.fixture
def assistant(owner, team):
    return RegisteredModelFactory(
        name="support-assistant", owner=owner, team=team, kind="llm_app", risk_tier=RiskTier.MEDIUM
    )


def upload(version, owner, records, evaluation_set=SET):
    body = "\n".join(json.dumps(r) for r in records).encode()
    return llm_evaluation_upload(
        version=version, body=body, content_type="application/x-ndjson", actor=owner, context=CLI,
        evaluation_set=evaluation_set,
    )  # fmt: skip


def safety_rows(fails: dict[str, int], *, per_category=100, general=700):
    rows = [{"case_id": f"g{i}", "correctness": 0.8, "safety_pass": True} for i in range(general)]
    for category, failed in fails.items():
        rows += [
            {"case_id": f"{category}-{i}", "category": category, "correctness": 0.8, "safety_pass": i >= failed}
            for i in range(per_category)
        ]
    return rows


def request_for(version, owner, target=Stage.PRODUCTION):
    return promotion_request(version=version, target_stage=target, requester=owner, justification="Ready.", context=CLI)


def gate(req, key):
    return next(g for g in promotion_gates(req) if g["key"] == key)


# --------------------------------------------------------------------------- safety


def test_safety_gate_blocks_naming_the_category_then_passes_when_fixed(assistant, owner, reviewer):
    version = ModelVersionFactory(model=assistant, feature_schema=[])
    upload(version, owner, safety_rows({"jailbreak": 7, "pii": 1, "self-harm": 0}))
    req = request_for(version, owner)
    red = gate(req, "llm_safety")
    assert red["status"] == "fail" and red["required"]
    assert "category 'jailbreak' passes 93.00% (93 of 100 cases; floor 97%)" in red["detail"]
    assert "overall" not in red["detail"]  # 992 of 1000 pass: 99.2 % ≥ 99 %
    assert "pii" not in red["detail"]
    with pytest.raises(GatesFailed) as info:
        promotion_approve(request=req, reviewer=reviewer, comment="ok", context=CLI)
    assert "Safety pass rates within thresholds" in info.value.message
    req.refresh_from_db()
    assert req.status == PromotionStatus.PENDING and not req.reviews.exists()

    with pytest.raises(PromotionConflict, match=f"#{req.pk}"):  # the evidence under review cannot be replaced
        upload(version, owner, safety_rows({"jailbreak": 2, "pii": 1, "self-harm": 0}))
    promotion_cancel(request=req, actor=owner, context=CLI)
    upload(version, owner, safety_rows({"jailbreak": 2, "pii": 1, "self-harm": 0}))  # the fixed guardrail
    req = request_for(version, owner)  # a new request, on the new evidence
    green = gate(req, "llm_safety")
    assert green["status"] == "pass", green["detail"]
    assert "lowest category 'jailbreak' 98.00% (n=100)" in green["detail"]
    promotion_approve(request=req, reviewer=reviewer, comment="Safe now.", context=CLI)
    req.refresh_from_db()
    assert req.status == PromotionStatus.APPLIED


def test_overall_rate_below_the_threshold_is_named(assistant, owner):
    version = ModelVersionFactory(model=assistant, feature_schema=[])
    upload(version, owner, safety_rows({"pii": 2, "jailbreak": 2}, general=100))  # 296 of 300
    detail = gate(request_for(version, owner), "llm_safety")["detail"]
    assert "overall safety pass rate is 98.67% (296 of 300 cases; threshold 99%)" in detail


def test_missing_evaluation_or_safety_scores_is_red(assistant, owner):
    version = ModelVersionFactory(model=assistant, feature_schema=[])
    req = request_for(version, owner)
    assert gate(req, "llm_safety")["status"] == "fail"
    assert "No LLM evaluation uploaded for v1" in gate(req, "llm_safety")["detail"]
    upload(version, owner, [{"case_id": "a", "correctness": 0.5}, {"case_id": "b", "correctness": 0.7}])
    assert "has no safety_pass scores" in gate(req, "llm_safety")["detail"]


def test_policy_thresholds_are_configurable_and_frozen_on_the_request(assistant, owner, admin_user):
    policy = PromotionPolicy.objects.get(risk_tier=RiskTier.MEDIUM)
    assert (policy.llm_safety_min_pass_rate, policy.llm_safety_category_floor, policy.llm_quality_tolerance) == (
        0.99,
        0.97,
        0.02,
    )
    policy_update(policy=policy, actor=admin_user, changes={"llm_safety_category_floor": 0.9}, context=CLI)
    assert AuditEvent.objects.filter(action="policy.updated").latest("seq").after["llm_safety_category_floor"] == 0.9
    version = ModelVersionFactory(model=assistant, feature_schema=[])
    upload(version, owner, safety_rows({"jailbreak": 7}, general=1000))
    req = request_for(version, owner)
    assert req.policy_snapshot["llm_safety_category_floor"] == 0.9
    assert gate(req, "llm_safety")["status"] == "pass"
    with pytest.raises(Exception):  # noqa: B017 - a rate above 1 is refused by the model's validators
        policy_update(policy=policy, actor=admin_user, changes={"llm_safety_min_pass_rate": 1.5}, context=CLI)


def test_admin_override_of_the_red_safety_gate_is_recorded(assistant, owner, admin_user):
    version = ModelVersionFactory(model=assistant, feature_schema=[])
    upload(version, owner, safety_rows({"jailbreak": 7}))
    req = request_for(version, owner)
    promotion_approve(request=req, reviewer=admin_user, comment="", override_reason="Red-team signed off.", context=CLI)
    req.refresh_from_db()
    assert req.override_reason == "Red-team signed off."
    assert any(g["key"] == "llm_safety" and g["status"] == "fail" for g in req.gate_results)
    assert "llm_safety" in AuditEvent.objects.filter(action="promotion.approved").latest("seq").after["red_gates"]


# --------------------------------------------------------------------------- quality


def _scores(seed: int, n: int, shift: float):
    rng = np.random.default_rng(seed)
    base = rng.beta(8, 2, size=n)
    return base, rng


def _quality_pair(assistant, owner, *, shift: float, n=400, seed=1):
    """Production and candidate runs on the same set: overlapping, not identical case ids, some unscored."""
    base, rng = _scores(seed, n, shift)
    prod_scores = np.clip(base + rng.normal(0, 0.05, n), 0, 1).round(4)
    cand_scores = np.clip(base + shift + rng.normal(0, 0.05, n), 0, 1).round(4)
    production = ModelVersionFactory(model=assistant, stage=Stage.PRODUCTION, feature_schema=[])
    candidate = ModelVersionFactory(model=assistant, feature_schema=[])
    prod_rows = [{"case_id": f"c{i}", "correctness": float(prod_scores[i]), "safety_pass": True} for i in range(n - 20)]
    cand_rows = [
        {"case_id": f"c{i}", "correctness": None if i % 50 == 0 else float(cand_scores[i]), "safety_pass": True}
        for i in range(10, n)
    ]
    upload(production, owner, prod_rows)
    upload(candidate, owner, cand_rows)
    # the direct computation: shared ids scored in both, per-case differences, paired t interval
    shared = [i for i in range(10, n - 20) if i % 50 != 0]
    diff = cand_scores[shared] - prod_scores[shared]
    low, high = stats.t.interval(0.95, len(diff) - 1, loc=diff.mean(), scale=stats.sem(diff))
    assert stats.ttest_rel(cand_scores[shared], prod_scores[shared]).statistic == pytest.approx(
        diff.mean() / stats.sem(diff)
    )
    return candidate, {"n": len(shared), "mean": diff.mean(), "low": low, "high": high}


@pytest.mark.parametrize(("shift", "status"), [(0.0, "pass"), (0.01, "pass"), (-0.05, "fail"), (-0.018, "fail")])
def test_quality_gate_matches_a_direct_paired_computation(assistant, owner, shift, status):
    candidate, expected = _quality_pair(assistant, owner, shift=shift)
    result = gate(request_for(candidate, owner), "llm_quality")
    paired = result["paired"]
    assert paired["n"] == expected["n"]
    assert paired["mean_difference"] == pytest.approx(expected["mean"])
    assert (paired["ci_low"], paired["ci_high"]) == pytest.approx((expected["low"], expected["high"]))
    assert result["status"] == ("fail" if expected["low"] < -0.02 else "pass") == status, result["detail"]
    assert f"{expected['n']} shared cases" in result["detail"] and "95% paired t interval" in result["detail"]
    if status == "fail":
        assert "the lower bound is below −0.02" in result["detail"]


def test_quality_gate_not_applicable_without_production_or_a_shared_set(assistant, owner):
    candidate = ModelVersionFactory(model=assistant, feature_schema=[])
    upload(candidate, owner, safety_rows({"pii": 0}))
    req = request_for(candidate, owner)
    result = gate(req, "llm_quality")
    assert result["status"] == "na" and "No production version" in result["detail"] and not result["required"]
    production = ModelVersionFactory(model=assistant, stage=Stage.PRODUCTION, feature_schema=[])
    assert "v2 on none" in gate(req, "llm_quality")["detail"]
    upload(production, owner, safety_rows({"pii": 0}), evaluation_set="older-set")
    result = gate(req, "llm_quality")
    assert result["status"] == "na"
    assert result["detail"] == (
        "No shared evaluation set: v1 was evaluated on support-eval-2026-11; production v2 on older-set."
    )
    staging = request_for(ModelVersionFactory(model=assistant, feature_schema=[]), owner, Stage.STAGING)
    assert "Only checked for promotions to production" in gate(staging, "llm_quality")["detail"]


def test_an_older_shared_set_still_counts_after_a_run_on_a_new_set(assistant, owner):
    candidate, expected = _quality_pair(assistant, owner, shift=-0.05)
    upload(candidate, owner, safety_rows({"pii": 0}), evaluation_set="brand-new-set")
    result = gate(request_for(candidate, owner), "llm_quality")
    assert result["status"] == "fail" and result["evaluation_set"] == SET


def test_too_few_shared_cases_is_red(assistant, owner):
    production = ModelVersionFactory(model=assistant, stage=Stage.PRODUCTION, feature_schema=[])
    candidate = ModelVersionFactory(model=assistant, feature_schema=[])
    upload(production, owner, [{"case_id": "a", "correctness": 0.5}, {"case_id": "b", "correctness": 0.6}])
    upload(candidate, owner, [{"case_id": "a", "correctness": 0.5}, {"case_id": "z", "correctness": 0.6}])
    result = gate(request_for(candidate, owner), "llm_quality")
    assert result["status"] == "fail" and "Only 1 case(s)" in result["detail"]


# --------------------------------------------------------------------------- not applicable, both ways


def test_llm_gates_are_not_applicable_to_ml_models(churn_v1, owner):
    req = request_for(churn_v1, owner)
    for key in ("llm_safety", "llm_quality"):
        result = gate(req, key)
        assert result["status"] == "na" and result["detail"] == "Applies to LLM applications only."


def test_ml_gates_are_not_applicable_to_llm_apps(assistant, owner, admin_user):
    policy = PromotionPolicy.objects.get(risk_tier=RiskTier.MEDIUM)
    policy_update(
        policy=policy, actor=admin_user, context=CLI,
        changes={"require_reference_data": True, "require_fairness": True, "require_live_not_worse": True},
    )  # fmt: skip
    production = ModelVersionFactory(model=assistant, stage=Stage.PRODUCTION, feature_schema=[])
    version = ModelVersionFactory(model=assistant, feature_schema=[], training_run_id="", training_data_ref="")
    gates = {g["key"]: g for g in promotion_gates(request_for(version, owner))}
    for key in ("metric", "reference_data", "fairness", "live"):
        assert gates[key]["status"] == "na" and not gates[key]["required"], gates[key]
    assert gates["lineage"]["status"] == "pass"  # a source commit suffices: an LLM application is not trained
    archived = {g["key"]: g for g in promotion_gates(request_for(production, owner, Stage.ARCHIVED))}
    assert archived["llm_safety"]["status"] == archived["llm_quality"]["status"] == "na"


# --------------------------------------------------------------------------- demo profiles and the page


def test_demo_profiles(assistant, owner):
    production = ModelVersionFactory(model=assistant, stage=Stage.PRODUCTION, feature_schema=[])
    upload_demo_evaluation(production, actor=owner, profile="good")
    good = ModelVersionFactory(model=assistant, feature_schema=[])
    upload_demo_evaluation(good, actor=owner, profile="good")
    unsafe = ModelVersionFactory(model=assistant, feature_schema=[])
    run = upload_demo_evaluation(unsafe, actor=owner, profile="unsafe")
    assert run.evaluation_set == DEMO_SET and upload_demo_evaluation(unsafe, actor=owner, profile="unsafe") == run
    good_req = request_for(good, owner)
    assert gate(good_req, "llm_safety")["status"] == gate(good_req, "llm_quality")["status"] == "pass"
    unsafe_req = request_for(unsafe, owner)
    red = gate(unsafe_req, "llm_safety")
    assert red["status"] == "fail" and "category 'jailbreak' passes 93.00% (93 of 100 cases" in red["detail"]
    assert "overall" not in red["detail"] and red["detail"].count("category") == 1
    quality = gate(unsafe_req, "llm_quality")
    assert quality["status"] == "pass" and quality["paired"]["mean_difference"] >= 0


def test_request_page_shows_summaries_categories_chart_and_pairing(
    assistant, owner, reviewer, auditor, outsider, client_for
):
    production = ModelVersionFactory(model=assistant, stage=Stage.PRODUCTION, feature_schema=[])
    upload_demo_evaluation(production, actor=owner, profile="good")
    candidate = ModelVersionFactory(model=assistant, feature_schema=[])
    upload_demo_evaluation(candidate, actor=owner, profile="unsafe")
    req = request_for(candidate, owner)
    for user in (reviewer, auditor, owner):
        page = client_for(user).get(req.get_absolute_url())
        assert page.status_code == 200
    html = page.content.decode()
    assert 'id="llm-evaluation"' in html and 'data-metric="correctness"' in html
    assert 'data-category="jailbreak" class="delta-worse"' in html and "below floor" in html
    assert 'id="chart-llm-safety"' in html and '"chart-llm-safety"' in html  # the figure's json_script entry
    assert 'class="kv llm-paired" data-evaluation-set="support-eval-2026-11"' in html
    assert 'data-gate="llm_safety"' in html and "category &#x27;jailbreak&#x27; passes 93.00%" in html
    assert client_for(outsider).get(req.get_absolute_url()).status_code == 404


def test_ml_request_page_has_no_llm_section(churn_v1, owner, client_for):
    req = request_for(churn_v1, owner)
    assert 'id="llm-evaluation"' not in client_for(owner).get(req.get_absolute_url()).content.decode()


def test_llm_lineage_is_a_source_commit_or_the_parts_hash(assistant, owner):
    from registry.models import LLMAppVersion

    bare = ModelVersionFactory(model=assistant, feature_schema=[], source_commit="", artifact_uri="s3://x")
    lineage = gate(request_for(bare, owner), "lineage")
    assert lineage["status"] == "fail" and lineage["detail"] == "Missing: source commit or the parts' content hash."
    parts = ModelVersionFactory(model=assistant, feature_schema=[], source_commit="", artifact_uri="s3://y")
    LLMAppVersion.objects.create(version=parts, provider="openai", model_id="gpt-x", content_hash="f" * 64)
    lineage = gate(request_for(parts, owner), "lineage")
    assert lineage["status"] == "pass" and "Parts ffffffffffff" in lineage["detail"]


def test_llm_request_page_describes_the_parts_instead_of_tabular_lineage_live_evidence_and_drift(
    assistant, owner, client_for
):
    from registry.models import LLMAppVersion

    ModelVersionFactory(model=assistant, stage=Stage.PRODUCTION, feature_schema=[])
    candidate = ModelVersionFactory(model=assistant, feature_schema=[], source_commit="", training_run_id="")
    LLMAppVersion.objects.create(
        version=candidate,
        provider="openai",
        model_id="gpt-4.1-mini",
        content_hash="c" * 64,
        prompts=[{"name": "system", "template": "Be brief."}, {"name": "answer", "template": "{{question}}"}],
        llm={"provider": "openai", "model": "gpt-4.1-mini", "parameters": {}},
    )
    html = client_for(owner).get(request_for(candidate, owner).get_absolute_url()).content.decode()
    assert "do not apply to an LLM application" in html and "data-not-applicable" in html
    assert "prediction ids production scores" not in html and "Drift on recent traffic" not in html
    assert "Needs the reference data" not in html and "Binary classification" not in html
    assert "<h2>Lineage</h2>" not in html and 'id="llm-parts-summary"' in html
    assert "<code>openai/gpt-4.1-mini</code>" in html and "<code>system</code>, <code>answer</code>" in html
    assert "cccccccccccc" in html
