"""An LLM evaluation upload writes the version's offline metrics; it must not rewrite the metrics a
promotion request is being decided on, nor those a request approved (the request page's
production column and the compliance report show them as approved)."""

from __future__ import annotations

import pytest

from registry.choices import PromotionStatus, Stage
from registry.models import AuditEvent, EvaluationRun, PromotionRequest
from registry.services.audit import CLI
from registry.services.promotions import promotion_request
from tests.monitoring.test_llm_evaluations_api import SET, as_json, assistant, assistant_v1, post, rows  # noqa: F401

pytestmark = pytest.mark.django_db

APPROVED = {"latency_p95_ms": 900.0, "correctness": 0.61, "safety_pass_rate": 0.97}


def _request(version, owner, status):
    version.metrics = dict(APPROVED)
    version.save(update_fields=["metrics"])
    req = promotion_request(
        version=version, target_stage=Stage.PRODUCTION, requester=owner, justification="Ship it.", context=CLI
    )
    PromotionRequest.objects.filter(pk=req.pk).update(status=status)
    return req


def test_an_approved_version_keeps_its_approved_metrics_but_stores_the_new_run(assistant_v1, owner, api_client_for):
    req = _request(assistant_v1, owner, PromotionStatus.APPLIED)
    client = api_client_for(owner)
    response = post(client, as_json(rows()), evaluation_set="paired-with-candidate")
    assert response.status_code == 201, response.content
    assistant_v1.refresh_from_db()
    assert assistant_v1.metrics == APPROVED
    assert EvaluationRun.objects.filter(version=assistant_v1, evaluation_set="paired-with-candidate").exists()
    event = AuditEvent.objects.filter(action="evaluation.uploaded").latest("seq")
    assert event.after["metrics_kept"] == f"approved in promotion request #{req.pk}"


def test_a_version_under_review_refuses_a_run_that_would_change_its_metrics(
    assistant_v1, owner, api_client_for, last_seq
):
    req = _request(assistant_v1, owner, PromotionStatus.PENDING)
    client = api_client_for(owner)
    start = last_seq()
    response = post(client, as_json(rows()))
    assert response.status_code == 409, response.content
    error = response.json()["error"]
    assert error["code"] == "conflict" and f"#{req.pk}" in error["message"]
    assert error["details"]["pending_request"] == req.pk
    assistant_v1.refresh_from_db()
    assert assistant_v1.metrics == APPROVED
    assert not EvaluationRun.objects.filter(version=assistant_v1).exists() and last_seq() == start


def test_without_a_request_the_run_writes_the_metrics(assistant_v1, owner, api_client_for):
    response = post(api_client_for(owner), as_json(rows()))
    assert response.status_code == 201
    assistant_v1.refresh_from_db()
    assert assistant_v1.metrics["correctness"] != APPROVED["correctness"]
    assert "metrics_kept" not in AuditEvent.objects.filter(action="evaluation.uploaded").latest("seq").after


def test_an_evaluation_set_named_twice_is_a_400(assistant_v1, owner, api_client_for):
    """``?evaluation_set=a&evaluation_set=b`` was read as ``b``: the run filed under a set the client
    may not have meant."""
    url = "/api/v1/models/support-assistant/versions/1/evaluations/?evaluation_set=a&evaluation_set=b"
    response = api_client_for(owner).generic("POST", url, as_json(rows()), content_type="application/json")
    assert response.status_code == 400
    assert list(response.json()["error"]["details"]) == ["evaluation_set"]
    assert not EvaluationRun.objects.exists()


def test_a_version_under_review_refuses_any_new_run_once_it_has_one(assistant_v1, owner, api_client_for, last_seq):
    """A second run with the same summaries (here the same cases under another set's name) was
    accepted while a request was pending, and became the run the safety gate and the request page
    read: its categories and its evaluation set changed under the reviewer's eyes."""
    client = api_client_for(owner)
    assert post(client, as_json(rows())).status_code == 201
    req = promotion_request(
        version=assistant_v1, target_stage=Stage.PRODUCTION, requester=owner, justification="Ship it.", context=CLI
    )
    start = last_seq()
    response = post(client, as_json(rows()), evaluation_set="another-set")
    assert response.status_code == 409, response.content
    assert response.json()["error"]["details"]["pending_request"] == req.pk
    assert EvaluationRun.objects.filter(version=assistant_v1).count() == 1 and last_seq() == start
