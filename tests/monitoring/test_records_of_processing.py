"""The records of processing (GDPR Art. 30) name everyone who sees every model's data: the
admins (staff or superuser, as ``registry.rules.is_admin`` counts them) and the members of each
role that sees all models, never a deactivated account."""

from __future__ import annotations

import csv
import io

import pytest

from tests.factories import UserFactory
from tests.monitoring.helpers import ingest_labels, ingest_predictions, prediction_records

pytestmark = pytest.mark.django_db


def test_the_records_name_every_admin_and_the_members_of_each_role_that_sees_all_models(
    api_client_for, churn_v1, privacy, reviewer, auditor
):
    UserFactory(username="root", is_superuser=True, is_staff=False)  # an admin to the rules
    UserFactory(username="ops", is_staff=True)
    UserFactory(username="gone", is_staff=True, is_active=False)
    body = api_client_for(privacy, ["audit:read"]).get("/api/v1/records-of-processing/").json()
    (record,) = body["records"]
    assert record["roles_seeing_all_models"] == [
        "admin (ops, root)",
        "reviewer (reviewer)",
        "auditor (auditor)",
        "privacy (privacy)",
    ]
    csv_text = api_client_for(privacy, ["audit:read"]).get("/api/v1/records-of-processing/?format=csv").content
    assert b"admin (ops, root); reviewer (reviewer); auditor (auditor); privacy (privacy)" in csv_text


def test_subject_ids_sent_with_labels_only_count_as_received(api_client_for, churn_v1, owner, privacy):
    ingest_predictions(churn_v1, prediction_records(2), owner)
    client = api_client_for(privacy, ["audit:read"])
    assert client.get("/api/v1/records-of-processing/").json()["records"][0]["subject_ids_received"] is False
    ingest_labels(churn_v1.model, [{"prediction_id": "p0", "label": 1, "subject_id": "CUST-1"}], owner)
    assert client.get("/api/v1/records-of-processing/").json()["records"][0]["subject_ids_received"] is True


def test_the_records_name_the_controller_the_officer_the_security_measures_and_when_made(
    api_client_for, churn_v1, privacy, settings, client_for
):
    """Art. 30(1)(a) and (g): the records lacked the controller and data protection officer, the
    security measures and the time they were drawn up."""
    settings.DATA_CONTROLLER = "Acme Telecom GmbH, Hauptstr. 1, Berlin, privacy@acme.example"
    settings.DATA_PROTECTION_OFFICER = "Dana Schmidt, dpo@acme.example"
    client = api_client_for(privacy, ["audit:read"])
    body = client.get("/api/v1/records-of-processing/").json()
    assert body["controller"] == settings.DATA_CONTROLLER
    assert body["data_protection_officer"] == settings.DATA_PROTECTION_OFFICER
    assert body["generated_at"].endswith("Z") or "+00:00" in body["generated_at"]
    assert any("HMAC-SHA256" in measure for measure in body["security_measures"])
    rows = list(csv.DictReader(io.StringIO(client.get("/api/v1/records-of-processing/?format=csv").content.decode())))
    assert rows[0]["controller"] == settings.DATA_CONTROLLER and rows[0]["generated_at"]
    assert "Dana Schmidt" in client_for(privacy).get("/monitoring/privacy/").content.decode()


def test_an_installation_without_a_controller_says_so(api_client_for, churn_v1, privacy, settings):
    settings.DATA_CONTROLLER = ""
    body = api_client_for(privacy, ["audit:read"]).get("/api/v1/records-of-processing/").json()
    assert body["controller"] == "not configured (DATA_CONTROLLER)"


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_each_download_of_the_records_is_audited_with_the_files_digest(
    api_client_for, client_for, churn_v1, privacy, last_seq, fmt
):
    """The audit export and the compliance report record the file they gave out; the records of
    processing (every model's data and who sees it) left no trace of who took a copy."""
    import hashlib

    from registry.models import AuditEvent

    for client, source in ((api_client_for(privacy, ["audit:read"]), "api"), (client_for(privacy), "api")):
        since = last_seq()
        response = client.get(f"/api/v1/records-of-processing/?format={fmt}")
        assert response.status_code == 200
        (event,) = AuditEvent.objects.filter(seq__gt=since)
        assert response["X-Audit-Seq"] == str(event.seq)
        assert event.action == "privacy.records_exported" and event.actor_id == privacy.pk
        assert event.source == source and event.request_id == response["X-Request-ID"]
        assert event.after["format"] == fmt and event.after["records"] == 1
        assert event.after["sha256"] == hashlib.sha256(response.content).hexdigest()
        assert event.after["bytes"] == len(response.content)
    assert client_for(privacy).get("/monitoring/privacy/").status_code == 200  # the page itself is not a download
    assert not AuditEvent.objects.filter(seq__gt=event.seq).exclude(action="user.logged_in").exists()


def test_a_refused_download_of_the_records_writes_no_event(api_client_for, churn_v1, privacy, outsider, last_seq):
    from registry.models import AuditEvent

    since = last_seq()
    assert api_client_for(outsider).get("/api/v1/records-of-processing/?format=csv").status_code == 403
    assert api_client_for(privacy, ["models:read"]).get("/api/v1/records-of-processing/").status_code == 403
    assert api_client_for(privacy).get("/api/v1/records-of-processing/?format=xml").status_code == 400
    assert not AuditEvent.objects.filter(seq__gt=since, action="privacy.records_exported").exists()
