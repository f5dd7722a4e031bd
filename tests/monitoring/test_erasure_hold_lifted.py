"""An erasure answered "held" under a model's legal hold is carried out when the hold is lifted:
the hold was the only ground for keeping the subject's rows (GDPR Art. 17(3)(e)), so the rows go
in the same transaction as the change, the request's answer says "erased", and the chain records
both the change and the erasure."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from monitoring.models import ErasureOutcome, ErasureRequest, GroundTruth, Prediction, RetentionPolicy
from monitoring.selectors_privacy import model_erasures
from monitoring.services.erasure import erasure_request_create
from monitoring.services.ingestion import labels_ingest
from monitoring.services.retention import retention_policy_update, retention_purge
from registry.models import AuditEvent
from registry.services.audit import CLI
from tests.factories import ModelVersionFactory, RegisteredModelFactory
from tests.monitoring.helpers import T0, ingest_subject_predictions

pytestmark = pytest.mark.django_db
SUBJECT = "CUST-07342"
HOLD = {"legal_hold": True, "legal_hold_reason": "Ombudsman case 7", "legal_hold_article": "GDPR Art. 17(3)(e)"}


@pytest.fixture
def held_request(churn, churn_v1, owner, privacy):
    """churn: 2 rows of the subject (erased at once); credit, under a legal hold: 2 rows and a
    label of the subject (held) and a row of someone else."""
    credit = ModelVersionFactory(model=RegisteredModelFactory(name="credit", owner=owner, team=churn.team))
    ingest_subject_predictions(churn_v1, owner, [SUBJECT, SUBJECT], "c")
    ingest_subject_predictions(credit, owner, [SUBJECT, SUBJECT, "CUST-1"], "k")
    labels = [{"prediction_id": "k0", "label": 1}, {"prediction_id": "k2", "label": 0}]
    labels_ingest(
        model=credit.model, body=json.dumps(labels).encode(), content_type="application/json", actor=owner, context=CLI
    )
    RetentionPolicy.objects.create(model=credit.model, raw_days=400, **HOLD)
    request = erasure_request_create(subject_id=SUBJECT, actor=privacy, context=CLI)
    assert request.status == "held"
    return request, credit.model


def test_lifting_the_hold_erases_the_held_rows_and_completes_the_request(held_request, privacy, last_seq):
    request, credit = held_request
    seq = last_seq()
    retention_policy_update(model=credit, actor=privacy, context=CLI, changes={"legal_hold": False})

    assert list(Prediction.objects.filter(version__model=credit).values_list("prediction_id", flat=True)) == ["k2"]
    assert list(GroundTruth.objects.filter(model=credit).values_list("prediction_id", flat=True)) == ["k2"]
    request.refresh_from_db()
    assert request.status == "completed"
    outcome = ErasureOutcome.objects.get(request=request, model=credit)
    assert (outcome.status, outcome.predictions, outcome.labels) == ("erased", 2, 1)
    assert (outcome.hold_reason, outcome.hold_article) == ("", "")
    events = list(AuditEvent.objects.filter(seq__gt=seq).order_by("seq"))
    assert [e.action for e in events] == ["retention.changed", "erasure.completed"]
    erased = events[1]
    assert (erased.object_id, erased.model_id, erased.actor_id) == (str(request.pk), credit.pk, privacy.pk)
    assert erased.before == {
        "status": "held",
        "results": [
            {"model": "churn", "predictions": 2, "labels": 0, "status": "erased"},
            {
                "model": "credit",
                "predictions": 2,
                "labels": 1,
                "status": "held",
                "reason": "Ombudsman case 7",
                "article": "GDPR Art. 17(3)(e)",
            },
        ],
    }
    assert erased.after == {
        "request": request.pk,
        "status": "completed",
        "results": [
            {"model": "churn", "predictions": 2, "labels": 0, "status": "erased"},
            {"model": "credit", "predictions": 2, "labels": 1, "status": "erased"},
        ],
        "hold_lifted_on": "credit",
    }
    assert SUBJECT not in json.dumps([e.before for e in events] + [e.after for e in events])
    # each model's compliance report names the event that decided its rows
    assert [o.audit_seq for o in model_erasures(model=credit)[0]] == [erased.seq]
    original = AuditEvent.objects.get(action="erasure.completed", object_id=str(request.pk), model__isnull=True)
    assert [
        o.audit_seq for o in model_erasures(model=request.outcomes.get(status="erased", model__name="churn").model)[0]
    ] == [original.seq]


def test_a_change_that_keeps_the_hold_erases_nothing(held_request, privacy, audit_actions, last_seq):
    request, credit = held_request
    seq = last_seq()
    retention_policy_update(model=credit, actor=privacy, context=CLI, changes={"raw_days": 500})
    assert audit_actions(seq) == ["retention.changed"]
    assert Prediction.objects.filter(version__model=credit).count() == 3
    assert ErasureRequest.objects.get(pk=request.pk).status == "held"


def test_the_api_and_the_privacy_page_answer_erased_once_the_hold_is_lifted(
    held_request, privacy, api_client_for, client_for
):
    request, credit = held_request
    client = api_client_for(privacy, ["privacy:write", "step-up:sensitive"])
    response = client.patch(f"/api/v1/models/{credit.name}/retention/", {"legal_hold": False}, format="json")
    assert response.status_code == 200, response.content
    body = client.get(f"/api/v1/erasure-requests/{request.pk}/").json()
    assert body["status"] == "completed"
    assert {r["model"]: r["status"] for r in body["results"]} == {"churn": "erased", "credit": "erased"}
    page = client_for(privacy).get("/monitoring/privacy/").content.decode()
    assert "Ombudsman case 7" not in page and "Partly held" not in page


def test_the_nightly_purge_carries_out_erasures_left_held_on_a_model_without_a_hold(held_request, audit_actions):
    """A hold lifted before lifting carried out its erasures (or outside the service) leaves the
    request held on a model that holds nothing: the purge finishes it, as the worker."""
    request, credit = held_request
    RetentionPolicy.objects.filter(model=credit).update(legal_hold=False, legal_hold_reason="", legal_hold_article="")
    seq = AuditEvent.objects.order_by("-seq").first().seq
    retention_purge(now=T0 + timedelta(days=1))
    assert ErasureRequest.objects.get(pk=request.pk).status == "completed"
    assert not Prediction.objects.filter(version__model=credit, prediction_id__in=["k0", "k1"]).exists()
    event = AuditEvent.objects.get(seq__gt=seq, action="erasure.completed")
    assert (event.actor_id, event.source, event.model_id) == (None, "worker", credit.pk)
    retention_purge(now=T0 + timedelta(days=1))  # nothing left to finish: no second event
    assert "erasure.completed" not in audit_actions(event.seq)


def test_the_purge_leaves_erasures_held_while_the_hold_stands(held_request):
    request, credit = held_request
    retention_purge(now=T0 + timedelta(days=1))
    assert ErasureRequest.objects.get(pk=request.pk).status == "held"
    assert Prediction.objects.filter(version__model=credit).count() == 3


def test_the_privacy_page_says_which_held_erasures_lifting_the_hold_carried_out(held_request, privacy, client_for):
    request, credit = held_request
    response = client_for(privacy).post(
        f"/monitoring/privacy/retention/{credit.name}/",
        {"raw_days": "400", "legal_hold_reason": "", "legal_hold_article": ""},
        follow=True,
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert (
        f"credit: retention and legal hold saved; the rows held for erasure request #{request.pk} were erased." in page
    )


def test_the_hold_form_warns_that_lifting_it_erases_the_held_rows(held_request, privacy, auditor, client_for):
    request, credit = held_request
    warning = f"Lifting it erases at once the rows held for erasure request #{request.pk}."
    page = client_for(privacy).get("/monitoring/privacy/").content.decode()
    assert page.count(warning) == 1  # credit's form only
    assert warning not in client_for(auditor).get("/monitoring/privacy/").content.decode()  # no form to lift it


def test_a_release_under_a_hold_set_meanwhile_erases_nothing(held_request, privacy):
    """The nightly purge releases held erasures from a plan read without a lock: a hold set
    between its plan and the release was ignored and the held rows erased for good."""
    from monitoring.services.erasure import erasure_holds_release

    request, credit = held_request
    assert RetentionPolicy.objects.get(model=credit).legal_hold  # still (or again) under its hold
    assert erasure_holds_release(model=credit, actor=None, context=CLI) == []
    assert Prediction.objects.filter(version__model=credit).count() == 3
    assert ErasureOutcome.objects.get(request=request, model=credit).status == "held"


def test_saving_a_model_without_a_hold_but_with_held_rows_erases_them_as_the_page_says(
    held_request, privacy, client_for
):
    """A model whose hold was lifted before lifting carried held erasures out: a save on the
    privacy page said the held rows 'were erased' while the service erased nothing, and the form
    warned 'Lifting it erases…' under a hold that was already off."""
    request, credit = held_request
    RetentionPolicy.objects.filter(model=credit).update(legal_hold=False, legal_hold_reason="", legal_hold_article="")
    client = client_for(privacy)
    page = client.get("/monitoring/privacy/").content.decode()
    assert "Lifting it erases at once" not in page
    answer = client.post(f"/monitoring/privacy/retention/{credit.name}/", {"raw_days": 400}, follow=True)
    assert "were erased" in answer.content.decode()
    assert list(Prediction.objects.filter(version__model=credit).values_list("prediction_id", flat=True)) == ["k2"]
    assert ErasureOutcome.objects.get(request=request, model=credit).status == "erased"
