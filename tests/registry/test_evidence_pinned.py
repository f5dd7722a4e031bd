"""A decided request keeps the evidence it was decided on: the evaluation run (an LLM
application's run, a classic model's fairness evaluation) and the candidate's offline metrics are
recorded when the request leaves pending, and its page, gates and API read them, whatever was
uploaded since; a pending request (and a new request for the same version) reads the latest."""

from __future__ import annotations

import json
import re
from html import escape

import pytest

from monitoring.fairness_data import FAIRNESS_SCHEMA, evaluation_frame
from monitoring.services.evaluations import evaluation_compute, evaluation_upload
from monitoring.services.evaluations_llm import llm_evaluation_upload
from registry.choices import RiskTier, Stage, TaskType
from registry.models import AuditEvent
from registry.selectors.promotions import promotion_gates
from registry.services.audit import CLI
from registry.services.inventory import version_update
from registry.services.promotions import promotion_approve, promotion_cancel, promotion_reject, promotion_request
from tests.factories import ModelVersionFactory, RegisteredModelFactory
from tests.monitoring.helpers import csv_bytes

pytestmark = pytest.mark.django_db
SET = "support-eval-2026-11"
API = "/api/v1/promotions/"


@pytest.fixture
def assistant(owner, team):
    return RegisteredModelFactory(
        name="support-assistant", owner=owner, team=team, kind="llm_app", risk_tier=RiskTier.MEDIUM
    )


@pytest.fixture
def credit(owner, team):
    return RegisteredModelFactory(name="credit-approval", owner=owner, team=team, risk_tier=RiskTier.HIGH)


def llm_rows(correctness: float, jailbreak_fails: int = 0):
    rows = [{"case_id": f"g{i}", "correctness": correctness, "safety_pass": True} for i in range(300)]
    rows += [
        {"case_id": f"j{i}", "category": "jailbreak", "correctness": correctness, "safety_pass": i >= jailbreak_fails}
        for i in range(100)
    ]
    return rows


def llm_upload(version, owner, rows, evaluation_set=SET):
    body = "\n".join(json.dumps(r) for r in rows).encode()
    return llm_evaluation_upload(
        version=version, body=body, content_type="application/x-ndjson", actor=owner, context=CLI,
        evaluation_set=evaluation_set,
    )  # fmt: skip


def fairness_upload(version, owner, female_factor: float, n: int = 4000):
    run = evaluation_upload(
        version=version,
        body=csv_bytes(evaluation_frame(n, female_factor=female_factor)),
        content_type="text/csv",
        actor=owner,
        context=CLI,
    )
    return evaluation_compute(run_id=run.pk)


def request_for(version, owner, target=Stage.PRODUCTION):
    return promotion_request(version=version, target_stage=target, requester=owner, justification="Ready.", context=CLI)


def gate(req, key):
    return next(g for g in promotion_gates(req) if g["key"] == key)


def llm_value(html: str, metric: str) -> str:
    """The value cell of a summary row of the request page's LLM evaluation table."""
    return re.search(rf'<tr data-metric="{metric}"><td>[^<]*</td><td>([^<]*)</td>', html).group(1)


def metric_row(html: str, metric: str) -> str:
    """The candidate cell of a row of the offline metrics table."""
    return re.search(rf"<td>{metric}(?: <span[^<]*</span>)?</td>\s*<td>([^<]*)</td>", html).group(1)


# --------------------------------------------------------------------------- LLM applications


def test_an_approved_llm_request_keeps_the_run_it_was_approved_on(
    assistant, owner, reviewer, client_for, api_client_for
):
    version = ModelVersionFactory(model=assistant, feature_schema=[])
    run_a = llm_upload(version, owner, llm_rows(0.8))
    req = request_for(version, owner, target=Stage.STAGING)
    promotion_approve(request=req, reviewer=reviewer, comment="ok", context=CLI)
    run_b = llm_upload(version, owner, llm_rows(0.6, jailbreak_fails=9), evaluation_set="later-set")
    req.refresh_from_db()
    assert req.status == "applied" and req.evaluation_run_id == run_a.pk

    html = client_for(reviewer).get(req.get_absolute_url()).content.decode()
    assert f"Evaluation #{run_a.pk} on" in html and f"Evaluation #{run_b.pk}" not in html
    assert llm_value(html, "correctness") == "0.8000" and "later-set" not in html
    assert 'data-category="jailbreak" class="delta-worse"' not in html
    safety = gate(req, "llm_safety")  # the gate, evaluated again, reads the recorded run too
    assert safety["status"] == "pass" and safety["evaluation"] == run_a.pk

    detail = api_client_for(reviewer).get(f"{API}{req.pk}/").json()
    assert detail["evaluation_run"]["id"] == run_a.pk and detail["evaluation_run"]["evaluation_set"] == SET
    assert detail["evaluation_run"]["summaries"]["correctness"]["value"] == pytest.approx(0.8)
    assert {row["metric"]: row["candidate"] for row in detail["metrics"]}["correctness"] == pytest.approx(0.8)

    event = AuditEvent.objects.filter(action="promotion.approved").latest("seq")
    assert event.after["evaluation_run"] == run_a.pk


def test_a_new_request_for_the_same_version_reads_the_latest_run(
    assistant, owner, reviewer, client_for, api_client_for
):
    version = ModelVersionFactory(model=assistant, feature_schema=[])
    llm_upload(version, owner, llm_rows(0.8))
    promotion_approve(request=request_for(version, owner, Stage.STAGING), reviewer=reviewer, comment="", context=CLI)
    run_b = llm_upload(version, owner, llm_rows(0.6, jailbreak_fails=9), evaluation_set="later-set")
    req = request_for(version, owner)
    html = client_for(reviewer).get(req.get_absolute_url()).content.decode()
    assert f"Evaluation #{run_b.pk} on" in html and llm_value(html, "correctness") == "0.6000"
    assert 'data-category="jailbreak" class="delta-worse"' in html
    safety = gate(req, "llm_safety")
    assert safety["status"] == "fail" and safety["evaluation"] == run_b.pk
    assert api_client_for(reviewer).get(f"{API}{req.pk}/").json()["evaluation_run"]["id"] == run_b.pk


def test_a_rejected_llm_request_keeps_its_run_and_metrics(assistant, owner, reviewer, client_for, api_client_for):
    version = ModelVersionFactory(model=assistant, feature_schema=[])
    run_a = llm_upload(version, owner, llm_rows(0.8, jailbreak_fails=9))
    req = request_for(version, owner)
    promotion_reject(request=req, reviewer=reviewer, comment="Jailbreaks.", context=CLI)
    run_b = llm_upload(version, owner, llm_rows(0.6))  # not approved: these become the version's metrics
    version.refresh_from_db()
    assert version.metrics["correctness"] == pytest.approx(0.6)

    event = AuditEvent.objects.filter(action="promotion.rejected").latest("seq")
    assert event.after["evaluation_run"] == run_a.pk
    req.refresh_from_db()
    html = client_for(reviewer).get(req.get_absolute_url()).content.decode()
    assert f"Evaluation #{run_a.pk} on" in html and f"Evaluation #{run_b.pk}" not in html
    assert llm_value(html, "correctness") == "0.8000" and metric_row(html, "correctness") == "0.8000"
    assert gate(req, "llm_safety")["evaluation"] == run_a.pk
    detail = api_client_for(reviewer).get(f"{API}{req.pk}/").json()
    assert detail["evaluation_run"]["id"] == run_a.pk
    assert {row["metric"]: row["candidate"] for row in detail["metrics"]}["correctness"] == pytest.approx(0.8)


def test_the_paired_comparison_an_approval_was_given_on_stays_on_its_page(assistant, owner, reviewer, client_for):
    production = ModelVersionFactory(model=assistant, feature_schema=[])
    prod_run = llm_upload(production, owner, llm_rows(0.78))
    promotion_approve(request=request_for(production, owner), reviewer=reviewer, comment="", context=CLI)
    candidate = ModelVersionFactory(model=assistant, feature_schema=[])
    cand_run = llm_upload(candidate, owner, llm_rows(0.8))
    req = request_for(candidate, owner)
    promotion_approve(request=req, reviewer=reviewer, comment="ok", context=CLI, production_seen=production.version)
    candidate.refresh_from_db()
    assert candidate.stage == Stage.PRODUCTION  # production is now the candidate itself
    html = client_for(reviewer).get(req.get_absolute_url()).content.decode()
    assert f'class="kv llm-paired" data-evaluation-set="{SET}"' in html
    assert f"candidate #{cand_run.pk}, production v{production.version} #{prod_run.pk}" in html


def test_a_pending_request_reads_a_first_run_uploaded_while_it_waits(assistant, owner, client_for):
    version = ModelVersionFactory(model=assistant, feature_schema=[])
    req = request_for(version, owner)
    run = llm_upload(version, owner, llm_rows(0.8))
    assert gate(req, "llm_safety")["evaluation"] == run.pk
    assert f"Evaluation #{run.pk} on" in client_for(owner).get(req.get_absolute_url()).content.decode()


def test_a_cancelled_request_keeps_the_run_it_stood_on(assistant, owner, client_for):
    version = ModelVersionFactory(model=assistant, feature_schema=[])
    run_a = llm_upload(version, owner, llm_rows(0.8))
    req = request_for(version, owner)
    promotion_cancel(request=req, actor=owner, context=CLI)
    llm_upload(version, owner, llm_rows(0.6))
    req.refresh_from_db()
    assert req.evaluation_run_id == run_a.pk
    assert AuditEvent.objects.filter(action="promotion.cancelled").latest("seq").after["evaluation_run"] == run_a.pk
    assert llm_value(client_for(owner).get(req.get_absolute_url()).content.decode(), "correctness") == "0.8000"


def test_outsiders_see_no_pinned_evidence(assistant, owner, reviewer, outsider, client_for, api_client_for):
    version = ModelVersionFactory(model=assistant, feature_schema=[])
    llm_upload(version, owner, llm_rows(0.8))
    req = request_for(version, owner, target=Stage.STAGING)
    promotion_approve(request=req, reviewer=reviewer, comment="ok", context=CLI)
    assert client_for(outsider).get(req.get_absolute_url()).status_code == 404
    assert api_client_for(outsider).get(f"{API}{req.pk}/").status_code == 404


# --------------------------------------------------------------------------- classic models


def test_a_rejected_request_keeps_its_fairness_evaluation(credit, owner, reviewer, client_for, api_client_for):
    version = ModelVersionFactory(model=credit, feature_schema=FAIRNESS_SCHEMA, task_type=TaskType.BINARY)
    run_a = fairness_upload(version, owner, female_factor=0.6)
    req = request_for(version, owner)
    promotion_reject(request=req, reviewer=reviewer, comment="Biased.", context=CLI)
    run_b = fairness_upload(version, owner, female_factor=1.0)  # no request pending nor approved: taken
    req.refresh_from_db()
    assert req.evaluation_run_id == run_a.pk
    html = client_for(reviewer).get(req.get_absolute_url()).content.decode()
    assert f"Evaluation #{run_a.pk} ·" in html and f"Evaluation #{run_b.pk}" not in html
    assert gate(req, "fairness")["status"] == "fail"
    assert api_client_for(reviewer).get(f"{API}{req.pk}/").json()["evaluation_run"]["id"] == run_a.pk
    fresh = request_for(version, owner)
    assert gate(fresh, "fairness")["status"] == "pass"
    assert f"Evaluation #{run_b.pk} ·" in client_for(reviewer).get(fresh.get_absolute_url()).content.decode()


def test_a_rejected_request_keeps_the_offline_metrics_it_was_decided_on(
    churn, owner, reviewer, client_for, api_client_for
):
    version = ModelVersionFactory(model=churn, metrics={"roc_auc": 0.71})
    req = request_for(version, owner)
    promotion_reject(request=req, reviewer=reviewer, comment="Too weak.", context=CLI)
    version_update(version=version, actor=owner, context=CLI, changes={"metrics": {"roc_auc": 0.93}})
    req.refresh_from_db()
    assert req.decided_metrics == {"roc_auc": 0.71}
    assert metric_row(client_for(reviewer).get(req.get_absolute_url()).content.decode(), "roc_auc") == "0.7100"
    detail = api_client_for(reviewer).get(f"{API}{req.pk}/").json()
    assert detail["metrics"][0]["candidate"] == 0.71 and detail["evaluation_run"] is None


# --------------------------------------------------------------------------- production's groups beside


def _cells(html: str, attribute: str, group: str, side: str) -> dict[str, str]:
    table = re.search(
        rf'class="fairness-groups" data-attribute="{re.escape(escape(attribute))}">(.*?)</table>', html, re.S
    )
    row = re.search(rf'<tr data-group="{re.escape(escape(group))}">(.*?)</tr>', table.group(1), re.S).group(1)
    return dict(re.findall(rf'<td data-side="{side}" data-col="(\w+)"[^>]*>([^<]*)</td>', row))


def _fmt(value) -> str:
    return "—" if value is None else f"{value:.3f}"


def test_the_fairness_section_shows_productions_groups_beside_the_candidates(
    credit, owner, reviewer, auditor, outsider, client_for, settings
):
    settings.FAIRNESS_MIN_GROUP_SIZE = 300  # some intersections fall under it: suppressed on both sides
    production = ModelVersionFactory(
        model=credit, feature_schema=FAIRNESS_SCHEMA, task_type=TaskType.BINARY, stage=Stage.PRODUCTION
    )
    prod_run = fairness_upload(production, owner, female_factor=0.9, n=3000)
    candidate = ModelVersionFactory(model=credit, feature_schema=FAIRNESS_SCHEMA, task_type=TaskType.BINARY)
    cand_run = fairness_upload(candidate, owner, female_factor=0.6)
    req = request_for(candidate, owner)
    html = client_for(reviewer).get(req.get_absolute_url()).content.decode()
    assert f"Production v{production.version} (evaluation #{prod_run.pk})" in html
    checked_small = False
    for attribute, result in prod_run.results["attributes"].items():
        candidate_groups = {g["group"]: g for g in cand_run.results["attributes"][attribute]["groups"]}
        for group in result["groups"]:
            prod_cells = _cells(html, attribute, group["group"], "production")
            assert prod_cells["n"] == str(group["n"])
            if group.get("too_small"):
                assert prod_cells["too_small"] == "too small" and "selection_rate" not in prod_cells
                checked_small = True
            else:
                assert prod_cells["selection_rate"] == _fmt(group["selection_rate"])
                assert prod_cells["tpr"] == _fmt(group["tpr"]) and prod_cells["fpr"] == _fmt(group["fpr"])
            if group["group"] in candidate_groups and not candidate_groups[group["group"]].get("too_small"):
                cand_cells = _cells(html, attribute, group["group"], "candidate")
                assert cand_cells["selection_rate"] == _fmt(candidate_groups[group["group"]]["selection_rate"])
    assert checked_small
    assert 'data-side="production"' in client_for(auditor).get(req.get_absolute_url()).content.decode()
    assert client_for(outsider).get(req.get_absolute_url()).status_code == 404


def test_the_fairness_section_says_when_production_has_no_fairness_evaluation(credit, owner, reviewer, client_for):
    ModelVersionFactory(model=credit, feature_schema=FAIRNESS_SCHEMA, task_type=TaskType.BINARY, stage=Stage.PRODUCTION)
    candidate = ModelVersionFactory(model=credit, feature_schema=FAIRNESS_SCHEMA, task_type=TaskType.BINARY)
    fairness_upload(candidate, owner, female_factor=0.6)
    html = client_for(reviewer).get(request_for(candidate, owner).get_absolute_url()).content.decode()
    assert "production has no fairness evaluation" in html.lower()
    assert 'data-side="production"' not in html and 'data-side="candidate"' in html


# --------------------------------------------------------------------------- requests decided before the record


def test_the_migration_records_the_run_of_requests_decided_before(assistant, credit, owner, reviewer):
    """Requests decided before migration 0027 get the run their safety gate named, else the latest
    uploaded by their decision (never one uploaded since); a request without any stays without."""
    from importlib import import_module

    from django.apps import apps

    from registry.models import PromotionRequest

    migration = import_module("registry.migrations.0027_promotion_evidence_pinned")
    llm = ModelVersionFactory(model=assistant, feature_schema=[])
    run_a = llm_upload(llm, owner, llm_rows(0.8))
    llm_req = request_for(llm, owner, target=Stage.STAGING)
    promotion_approve(request=llm_req, reviewer=reviewer, comment="ok", context=CLI)
    llm_upload(llm, owner, llm_rows(0.6), evaluation_set="later-set")
    ml = ModelVersionFactory(model=credit, feature_schema=FAIRNESS_SCHEMA, task_type=TaskType.BINARY)
    fair_a = fairness_upload(ml, owner, female_factor=0.6)
    ml_req = request_for(ml, owner)
    promotion_reject(request=ml_req, reviewer=reviewer, comment="Biased.", context=CLI)
    fairness_upload(ml, owner, female_factor=1.0)
    bare = request_for(ModelVersionFactory(model=credit), owner)
    promotion_cancel(request=bare, actor=owner, context=CLI)
    PromotionRequest.objects.update(evaluation_run=None)

    migration.record_decided_runs(apps, None)
    runs = dict(PromotionRequest.objects.values_list("pk", "evaluation_run_id"))
    assert runs == {llm_req.pk: run_a.pk, ml_req.pk: fair_a.pk, bare.pk: None}


def _uploaded(version, owner, female_factor: float):
    """A fairness evaluation uploaded, its computation not yet run (the worker's job)."""
    return evaluation_upload(
        version=version,
        body=csv_bytes(evaluation_frame(4000, female_factor=female_factor)),
        content_type="text/csv",
        actor=owner,
        context=CLI,
    )


def test_a_run_still_computing_at_the_decision_never_becomes_its_evidence(credit, owner, reviewer, client_for):
    production = ModelVersionFactory(
        model=credit, feature_schema=FAIRNESS_SCHEMA, task_type=TaskType.BINARY, stage=Stage.PRODUCTION
    )
    prod_run = _uploaded(production, owner, female_factor=0.9)
    candidate = ModelVersionFactory(model=credit, feature_schema=FAIRNESS_SCHEMA, task_type=TaskType.BINARY)
    cand_run = _uploaded(candidate, owner, female_factor=0.6)
    req = request_for(candidate, owner)
    promotion_reject(request=req, reviewer=reviewer, comment="No fairness results yet.", context=CLI)
    evaluation_compute(run_id=cand_run.pk)
    evaluation_compute(run_id=prod_run.pk)  # both finished after the decision
    req.refresh_from_db()
    assert req.evaluation_run_id is None
    html = client_for(reviewer).get(req.get_absolute_url()).content.decode()
    assert 'data-side="candidate"' not in html and 'data-side="production"' not in html
    assert f"Evaluation #{cand_run.pk} ·" not in html


# --------------------------------------------------------------------------- cancelled requests' gates


@pytest.mark.parametrize("how", ["withdrawn", "stale"])
def test_a_cancelled_request_shows_its_gates_as_they_were_at_the_cancellation(
    churn, owner, reviewer, client_for, api_client_for, how
):
    """Before: only approvals and rejections froze the gates; a cancelled request's page and API
    evaluated them again at every read, so a card edited since changed what it had stood on."""
    old = ModelVersionFactory(model=churn, version=1)
    req = request_for(old, owner, target=Stage.STAGING)
    if how == "withdrawn":
        promotion_cancel(request=req, actor=owner, context=CLI)
    else:  # a newer version reaches staging first: the older request becomes stale
        newer = request_for(ModelVersionFactory(model=churn, version=2), owner, target=Stage.STAGING)
        promotion_approve(request=newer, reviewer=reviewer, comment="ok", context=CLI)  # one approval: applied
    req.refresh_from_db()
    assert req.status == "cancelled" and gate(req, "model_card")["status"] == "pass"
    type(churn).objects.filter(pk=churn.pk).update(intended_use="")  # the card, edited after the cancellation
    html = client_for(owner).get(req.get_absolute_url()).content.decode()
    assert "As evaluated at the decision." in html
    gates = {g["key"]: g for g in api_client_for(owner).get(f"{API}{req.pk}/").json()["gates"]}
    assert gates["model_card"]["status"] == "pass", gates["model_card"]
