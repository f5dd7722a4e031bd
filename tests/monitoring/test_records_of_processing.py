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
