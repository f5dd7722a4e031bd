"""The records of processing (GDPR Art. 30) name everyone who sees every model's data: the
admins (staff or superuser, as ``registry.rules.is_admin`` counts them) and the members of each
role that sees all models, never a deactivated account."""

from __future__ import annotations

import pytest

from tests.factories import UserFactory

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
