"""Label changes are traceable: an identical label resent is counted unchanged (not stored
again, not audited), and a changed label is audited with its value before and after (a bounded
list per batch, with the total)."""

from __future__ import annotations

import json

import pytest

from monitoring.models import GroundTruth
from monitoring.services import ingestion
from monitoring.services.ingestion import labels_ingest
from registry.models import AuditEvent
from registry.services.audit import CLI
from tests.monitoring.helpers import T0, ingest_predictions, prediction_records

pytestmark = pytest.mark.django_db
LABEL_URL = "/api/v1/models/churn/ground-truth/"


def _send(model, owner, labels: dict):
    body = json.dumps([{"prediction_id": pid, "label": value} for pid, value in labels.items()]).encode()
    return labels_ingest(model=model, body=body, content_type="application/json", actor=owner, context=CLI)


def test_an_identical_label_is_unchanged_and_not_audited(churn_v1, owner, api_client_for):
    client = api_client_for(owner)
    body = json.dumps([{"prediction_id": "a", "label": 1}]).encode()
    assert client.generic("POST", LABEL_URL, body, "application/json").status_code == 201
    received = GroundTruth.objects.get().received_at
    again = client.generic("POST", LABEL_URL, body, "application/json").json()
    assert (again["new"], again["updated"], again["unchanged"]) == (0, 0, 1)
    assert GroundTruth.objects.get().received_at == received
    assert AuditEvent.objects.filter(action="labels.ingested").count() == 1


def test_a_changed_label_is_audited_with_before_and_after(churn_v1, owner):
    ingest_predictions(churn_v1, prediction_records(3, start=T0), owner)
    _send(churn_v1.model, owner, {"p0": 1, "p1": 1, "p2": 0})
    answer = _send(churn_v1.model, owner, {"p0": 0, "p1": 1, "p2": 0, "p9": 1})
    assert (answer["new"], answer["updated"], answer["unchanged"]) == (1, 1, 2)
    labels = dict(GroundTruth.objects.values_list("prediction_id", "label"))
    assert labels == {"p0": "0", "p1": "1", "p2": "0", "p9": "1"}
    event = AuditEvent.objects.filter(action="labels.ingested").latest("seq")
    assert event.before == {"labels": {"p0": "1"}}
    assert event.after["labels"] == {"p0": "0"}
    assert event.after["updated"] == 1 and event.after["unchanged"] == 2 and event.after["new"] == 1
    assert answer["matched_predictions"] == 3 and answer["dirty_windows"] > 0
    # identical labels again: every prediction still matched, no window made dirty, no event
    seq = event.seq
    again = _send(churn_v1.model, owner, {"p0": 0, "p1": 1, "p2": 0})
    assert (again["unchanged"], again["matched_predictions"], again["dirty_windows"]) == (3, 3, 0)
    assert not AuditEvent.objects.filter(seq__gt=seq).exists()


def test_the_audited_changes_are_bounded_with_the_total(churn_v1, owner, monkeypatch):
    monkeypatch.setattr(ingestion, "LABEL_CHANGES_SHOWN", 3)
    _send(churn_v1.model, owner, {f"x{i}": 1 for i in range(5)})
    answer = _send(churn_v1.model, owner, {f"x{i}": 0 for i in range(5)})
    assert answer["updated"] == 5
    event = AuditEvent.objects.filter(action="labels.ingested").latest("seq")
    assert event.before == {"labels": {"x0": "1", "x1": "1", "x2": "1"}}
    assert event.after["labels"] == {"x0": "0", "x1": "0", "x2": "0"}
    assert event.after["updated"] == 5 and event.after["labels_shown"] == 3
