"""A resent evaluation upload is acknowledged, not stored twice: as with prediction batches, a
body byte-for-byte one already stored for the version (digest per version and kind) answers the
stored run, with no second run, no second audit event and the version's metrics untouched."""

from __future__ import annotations

import json

import pytest

from monitoring.fairness_data import FAIRNESS_SCHEMA, evaluation_frame
from monitoring.services.evaluations import evaluation_upload
from monitoring.services.evaluations_llm import llm_evaluation_upload
from registry.choices import RiskTier, TaskType
from registry.models import AuditEvent, EvaluationRun
from registry.services.audit import CLI
from tests.factories import ModelVersionFactory, RegisteredModelFactory
from tests.monitoring.helpers import csv_bytes

pytestmark = pytest.mark.django_db

URL = "/api/v1/models/support-assistant/versions/1/evaluations/?evaluation_set=s1"
ROWS = [
    {"case_id": f"c{i}", "correctness": 0.5 + i / 40, "safety_pass": i % 7 != 0, "refusal": i % 5 == 0}
    for i in range(20)
]
BODIES = {
    "json": (json.dumps(ROWS).encode(), "application/json"),
    "jsonl": (b"\n".join(json.dumps(r).encode() for r in ROWS), "application/x-ndjson"),
    "csv": (
        (
            "case_id,correctness,safety_pass,refusal\n"
            + "".join(
                f"{r['case_id']},{r['correctness']},{str(r['safety_pass']).lower()},{str(r['refusal']).lower()}\n"
                for r in ROWS
            )
        ).encode(),
        "text/csv",
    ),
}


@pytest.fixture
def assistant_v1(owner, team):
    model = RegisteredModelFactory(name="support-assistant", owner=owner, team=team, kind="llm_app")
    return ModelVersionFactory(model=model, feature_schema=[], metrics={})


@pytest.mark.parametrize("fmt", BODIES)
def test_a_resent_llm_evaluation_is_answered_with_the_stored_run(assistant_v1, owner, api_client_for, fmt):
    body, content_type = BODIES[fmt]
    client = api_client_for(owner)
    first = client.generic("POST", URL, body, content_type)
    assert first.status_code == 201, first.content
    second = client.generic("POST", URL, body, content_type)
    assert second.status_code == 200, second.content  # as a resent prediction batch: 200, nothing new
    assert second.json()["id"] == first.json()["id"] == second.json()["duplicate_of"]
    assert "duplicate_of" not in first.json()
    assert EvaluationRun.objects.count() == 1
    assert AuditEvent.objects.filter(action="evaluation.uploaded").count() == 1


def test_a_different_llm_body_is_a_new_run(assistant_v1, owner):
    body, content_type = BODIES["json"]
    first = llm_evaluation_upload(
        version=assistant_v1, body=body, content_type=content_type, actor=owner, context=CLI, evaluation_set="s1"
    )
    again = llm_evaluation_upload(
        version=assistant_v1, body=body, content_type=content_type, actor=owner, context=CLI, evaluation_set="s1"
    )
    other = llm_evaluation_upload(
        version=assistant_v1, body=body + b" ", content_type=content_type, actor=owner, context=CLI, evaluation_set="s1"
    )
    assert again.pk == first.pk and getattr(again, "duplicate_of", None) == first.pk
    assert other.pk != first.pk and getattr(other, "duplicate_of", None) is None
    assert EvaluationRun.objects.count() == 2


def test_a_resent_fairness_evaluation_is_answered_with_the_stored_run(owner, team):
    credit = RegisteredModelFactory(name="credit-approval", owner=owner, team=team, risk_tier=RiskTier.HIGH)
    version = ModelVersionFactory(model=credit, feature_schema=FAIRNESS_SCHEMA, task_type=TaskType.BINARY)
    body = csv_bytes(evaluation_frame(500))
    first = evaluation_upload(version=version, body=body, content_type="text/csv", actor=owner, context=CLI)
    again = evaluation_upload(version=version, body=body, content_type="text/csv", actor=owner, context=CLI)
    assert again.pk == first.pk and again.duplicate_of == first.pk
    assert EvaluationRun.objects.count() == 1
    assert AuditEvent.objects.filter(action="evaluation.uploaded").count() == 1
