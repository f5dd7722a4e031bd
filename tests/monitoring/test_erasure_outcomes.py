"""An erasure request's answer per model: a row per model it reached, which the model's
compliance report lists (erased or held, with the audit event), and the migration that moved the
answers out of the request's JSON without losing one."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from monitoring.models import ErasureOutcome, RetentionPolicy
from monitoring.services.erasure import erasure_request_create
from registry.models import AuditEvent
from registry.services.audit import CLI
from tests.factories import ModelVersionFactory, RegisteredModelFactory
from tests.monitoring.helpers import T0, ingest_subject_predictions

SUBJECT = "CUST-07342"
BEFORE = [("monitoring", "0032_retention_policy_updated_at_from_the_clock")]


def _section(html: str) -> str:
    section = re.search(r'<section class="report-section" id="retention">.*?</section>', html, re.S).group(0)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", section))


@pytest.mark.django_db
def test_the_compliance_report_lists_each_erasure_that_reached_the_model(
    client_for, auditor, owner, privacy, churn, churn_v1
):
    credit = ModelVersionFactory(model=RegisteredModelFactory(name="credit", owner=owner, team=churn.team))
    quiet = RegisteredModelFactory(name="quiet", owner=owner, team=churn.team)
    ingest_subject_predictions(churn_v1, owner, [SUBJECT, SUBJECT, "CUST-1"], "c")
    ingest_subject_predictions(credit, owner, [SUBJECT, "CUST-2"], "k")
    RetentionPolicy.objects.create(
        model=credit.model,
        raw_days=400,
        legal_hold=True,
        legal_hold_reason="Case 7",
        legal_hold_article="Art. 17(3)(e)",
    )
    request = erasure_request_create(subject_id=SUBJECT, actor=privacy, context=CLI)
    erasure_request_create(subject_id="CUST-nobody", actor=privacy, context=CLI)  # reaches no model
    event = AuditEvent.objects.get(action="erasure.completed", object_id=str(request.pk))

    churn_text = _section(client_for(auditor).get("/models/churn/report/").content.decode())
    assert "Erasure requests 1 reached this model's rows" in churn_text
    assert f"#{request.pk} {request.requested_at:%Y-%m-%d %H:%M}" in churn_text
    assert f"2 predictions, 0 labels erased {event.seq}" in churn_text
    credit_text = _section(client_for(owner).get("/models/credit/report/").content.decode())
    assert "1 prediction, 0 labels held : Case 7 (Art. 17(3)(e))" in credit_text
    quiet_text = _section(client_for(auditor).get(f"/models/{quiet.name}/report/").content.decode())
    assert "Erasure requests 0 reached" in quiet_text and "#" not in quiet_text
    for text in (churn_text, credit_text):
        assert SUBJECT not in text
    pdf = client_for(auditor).get("/models/churn/report.pdf")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"


@pytest.mark.django_db(transaction=True)
def test_the_migration_moves_every_answer_out_of_the_requests_json_and_back(churn, owner):
    fraud = RegisteredModelFactory(name="fraud", owner=owner, team=churn.team)
    results = [
        {"model": "churn", "predictions": 3, "labels": 1, "status": "erased"},
        {"model": "fraud", "predictions": 1, "labels": 0, "status": "held", "reason": "Case 7", "article": "Art. 9"},
    ]
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes("monitoring")
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps.get_model("monitoring", "ErasureRequest")
    common = {"subject_hash": "0" * 64, "requested_at": T0, "due_at": T0, "completed_at": T0}
    first = old.objects.create(status="held", results=results, **common)
    empty = old.objects.create(status="completed", results=[], **common)
    MigrationExecutor(connection).migrate(latest)
    moved = ErasureOutcome.objects.order_by("model__name").values_list(
        "request_id", "model_id", "predictions", "labels", "status", "hold_reason", "hold_article"
    )
    assert list(moved) == [
        (first.pk, churn.pk, 3, 1, "erased", "", ""),
        (first.pk, fraud.pk, 1, 0, "held", "Case 7", "Art. 9"),
    ]
    assert not ErasureOutcome.objects.filter(request_id=empty.pk).exists()
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps.get_model("monitoring", "ErasureRequest")
    assert old.objects.get(pk=first.pk).results == results and old.objects.get(pk=empty.pk).results == []
    MigrationExecutor(connection).migrate(latest)
