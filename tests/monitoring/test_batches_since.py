"""The "Connect a pipeline" page's check: waiting until a prediction batch arrives after the
page was opened, then the first batch's time and rows (polled by htmx)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from monitoring.services.ingestion import predictions_ingest
from registry.services.audit import CLI
from tests.factories import ModelVersionFactory
from tests.monitoring.helpers import assert_form_error


def check_url(name: str = "churn") -> str:
    return reverse("monitoring:batches_since", args=[name])


def check(client, since, name: str = "churn"):
    value = since if isinstance(since, str) else since.isoformat()
    return client.get(check_url(name), {"since": value})


def send(version, owner, n: int, prefix: str):
    rows = [
        {
            "prediction_id": f"{prefix}-{i}",
            "timestamp": timezone.now().isoformat(),
            "features": {"age": 30 + i, "income": 1000.0, "plan": "basic"},
            "prediction": 1,
            "score": 0.7,
        }
        for i in range(n)
    ]
    body = json.dumps(rows).encode()
    return predictions_ingest(version=version, body=body, content_type="application/json", actor=owner, context=CLI)


def test_waiting_then_the_first_batch_its_time_and_rows(churn_v1, owner, client_for):
    client = client_for(owner)
    send(churn_v1, owner, 2, "before")  # before the page was opened: not counted
    opened = timezone.now()
    waiting = check(client, opened)
    assert waiting.status_code == 200
    text = waiting.content.decode()
    assert "Waiting" in text and 'hx-trigger="every 2s"' in text
    send(churn_v1, owner, 3, "first")
    send(churn_v1, owner, 4, "second")
    arrived = check(client, opened).content.decode()
    assert "Waiting" not in arrived and "hx-trigger" not in arrived  # polling stops
    assert "3 rows for version 1" in arrived
    assert "2 batches, 7 rows" in arrived


def test_batches_of_every_version_of_the_model_count_and_other_models_do_not(churn, owner, client_for, team):
    v1 = ModelVersionFactory(model=churn)
    other = ModelVersionFactory(model__owner=owner, model__team=team, model__name="fraud")
    opened = timezone.now() - timedelta(seconds=1)
    send(other, owner, 5, "fraud")
    assert "Waiting" in check(client_for(owner), opened).content.decode()
    v2 = ModelVersionFactory(model=churn)
    send(v2, owner, 1, "new")
    assert "1 row for version 2" in check(client_for(owner), opened).content.decode()
    assert v1.version == 1


@pytest.mark.parametrize(
    ("role", "status"), [("owner", 200), ("admin", 200), ("reviewer", 403), ("auditor", 403), ("outsider", 404)]
)
def test_only_who_may_change_the_model_checks(roles, role, status, churn_v1, client_for):
    assert check(client_for(roles[role]), timezone.now()).status_code == status


def test_anonymous_is_sent_to_sign_in(churn_v1, client):
    response = check(client, timezone.now())
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("since", ["", "yesterday", "2026-13-01T00:00:00Z", "0001-01-01T00:00:00+05:00", "x" * 5000])
def test_a_bad_since_is_a_json_400_for_htmx_and_a_message_in_the_browser(churn_v1, owner, client_for, since):
    value = since if isinstance(since, str) else since.isoformat()
    response = client_for(owner).get(check_url(), {"since": value}, HTTP_HX_REQUEST="true")
    assert response.status_code == 400
    assert response.json()["error"]["details"]["since"]
    assert_form_error(check(client_for(owner), since), "since")


def test_only_get_is_answered(churn_v1, owner, client_for):
    response = client_for(owner).post(check_url(), {"since": timezone.now().isoformat()})
    assert response.status_code == 405


def test_a_missing_since_is_a_json_400(churn_v1, owner, client_for):
    response = client_for(owner).get(reverse("monitoring:batches_since", args=["churn"]))
    assert_form_error(response, "since")
