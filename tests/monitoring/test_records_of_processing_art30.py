"""GDPR Art. 30(1)(c), (d) and (e): the records of processing name, per model, the categories of
data subjects, the recipients and any transfers to third countries with their safeguards. The
privacy officer records them on the model's retention policy (API PATCH and the privacy page's
form, through the retention service, audited); the export says "not recorded" where one is
empty ("none" is an answer) and counts the models whose records are incomplete."""

from __future__ import annotations

import csv
import io
import re

import pytest

from monitoring.models import RetentionPolicy
from registry.models import AuditEvent
from tests.factories import RegisteredModelFactory
from tests.monitoring.helpers import assert_form_error

pytestmark = pytest.mark.django_db

API = "/api/v1/models/{}/retention/"
PAGE = "/monitoring/privacy/"
FORM = "/monitoring/privacy/retention/{}/"
RECORDS = "/api/v1/records-of-processing/"
STEPPED_UP = ["privacy:write", "step-up:sensitive", "monitoring:read"]  # a write needs the step-up scope
ART30 = ["data_subject_categories", "recipients", "third_country_transfers"]
FILLED = {
    "data_subject_categories": "Customers of the subscription service",
    "recipients": "The customer-care team",
    "third_country_transfers": "none",
}


def _changes():
    return list(AuditEvent.objects.filter(action="retention.changed").order_by("seq"))


def test_an_officer_records_subjects_recipients_and_transfers_through_the_api_audited(
    api_client_for, churn, privacy, last_seq
):
    client = api_client_for(privacy, STEPPED_UP)
    assert {name: client.get(API.format("churn")).json()[name] for name in ART30} == dict.fromkeys(ART30, "")
    response = client.patch(API.format("churn"), FILLED, format="json")
    assert response.status_code == 200, response.content
    assert {name: response.json()[name] for name in ART30} == FILLED
    assert response.json()["raw_days"] == 183  # the tier's default, unchanged
    policy = RetentionPolicy.objects.get(model=churn)
    assert {name: getattr(policy, name) for name in ART30} == FILLED
    (created,) = _changes()
    assert created.actor_id == privacy.pk and created.source == "api" and created.model_name == "churn"
    assert {name: created.after[name] for name in ART30} == FILLED
    seq = last_seq()
    transfer = "United States: OpenAI, standard contractual clauses (GDPR Art. 46(2)(c))"
    client.patch(API.format("churn"), {"third_country_transfers": transfer}, format="json")
    (changed,) = AuditEvent.objects.filter(seq__gt=seq)
    assert changed.action == "retention.changed"
    assert (changed.before, changed.after) == (
        {"third_country_transfers": "none"},
        {"third_country_transfers": transfer},
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"recipients": 7}, "recipients"),
        ({"recipients": None}, "recipients"),
        ({"recipients": ["the care team"]}, "recipients"),
        ({"data_subject_categories": {"a": 1}}, "data_subject_categories"),
        ({"data_subject_categories": "x" * 2001}, "data_subject_categories"),
        ({"third_country_transfers": "none\x00"}, "third_country_transfers"),
    ],
)
def test_bad_art30_input_is_a_400_naming_the_field_with_nothing_changed(
    api_client_for, churn, privacy, body, field, last_seq
):
    client = api_client_for(privacy, STEPPED_UP)
    seq = last_seq()
    response = client.patch(API.format("churn"), body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["details"][field] != ["Unknown field."]  # the field's own check refused it
    assert not RetentionPolicy.objects.exists() and last_seq() == seq


def test_an_unknown_field_beside_them_is_still_refused(api_client_for, churn, privacy):
    body = {**FILLED, "recipient": "a typo"}
    response = api_client_for(privacy, STEPPED_UP).patch(API.format("churn"), body, format="json")
    assert response.status_code == 400 and response.json()["error"]["details"] == {"recipient": ["Unknown field."]}
    assert not RetentionPolicy.objects.exists() and _changes() == []


def test_only_privacy_officers_and_admins_record_them_over_the_api(
    api_client_for, churn, owner, auditor, outsider, privacy, admin_user
):
    body = {"recipients": "The customer-care team"}
    url = API.format("churn")
    assert api_client_for(outsider).get(url).status_code == 404
    assert api_client_for(outsider).patch(url, body, format="json").status_code == 403
    assert api_client_for(owner).get(url).json()["recipients"] == ""  # who sees the model reads them
    for user in (owner, auditor):
        assert api_client_for(user).patch(url, body, format="json").status_code == 403
    assert api_client_for(privacy, ["monitoring:read"]).patch(url, body, format="json").status_code == 403
    assert not RetentionPolicy.objects.exists() and _changes() == []
    assert api_client_for(privacy, STEPPED_UP).patch(url, body, format="json").status_code == 200
    admin = api_client_for(admin_user).patch(url, {"recipients": "none"}, format="json")
    assert admin.status_code == 200 and admin.json()["recipients"] == "none"
    assert [e.actor_name for e in _changes()] == ["privacy", "admin"]


def test_an_officer_records_them_on_the_privacy_page_and_it_is_audited(client_for, privacy, churn):
    client = client_for(privacy)
    page = client.get(PAGE).content.decode()
    for name in ART30:
        assert f'name="{name}"' in page
    response = client.post(FORM.format("churn"), {"raw_days": "183", **FILLED}, follow=True)
    assert response.redirect_chain == [(PAGE, 302)]
    policy = RetentionPolicy.objects.get(model=churn)
    assert {name: getattr(policy, name) for name in ART30} == FILLED and policy.updated_by == privacy
    (event,) = _changes()
    assert event.actor_name == "privacy" and {name: event.after[name] for name in ART30} == FILLED
    html = response.content.decode()
    assert "Customers of the subscription service" in html and "The customer-care team" in html


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"recipients": "a\x00b"}, "recipients"),
        ({"data_subject_categories": "x" * 2001}, "data_subject_categories"),
        ({"third_country_transfers": "y" * 2001}, "third_country_transfers"),
    ],
)
def test_malformed_art30_values_on_the_page_are_a_form_error_and_change_nothing(
    client_for, privacy, churn, data, field
):
    response = client_for(privacy).post(FORM.format("churn"), {"raw_days": "183", **data})
    assert_form_error(response, field)
    assert not RetentionPolicy.objects.exists() and _changes() == []


def test_only_officers_and_admins_record_them_on_the_page(
    client_for, privacy, auditor, owner, outsider, admin_user, churn
):
    data = {"raw_days": "183", **FILLED}
    assert client_for(auditor).post(FORM.format("churn"), data).status_code == 403
    assert client_for(owner).post(FORM.format("churn"), data).status_code == 403
    assert client_for(outsider).post(FORM.format("churn"), data).status_code == 404
    assert not RetentionPolicy.objects.exists() and _changes() == []
    assert client_for(admin_user).post(FORM.format("churn"), data).status_code == 302
    assert RetentionPolicy.objects.get(model=churn).recipients == FILLED["recipients"]
    assert [e.actor_name for e in _changes()] == ["admin"]


def test_the_records_say_not_recorded_and_count_the_incomplete_models(
    api_client_for, client_for, churn, owner, privacy
):
    """Before: the records had no data subjects, recipients or transfers at all."""
    RegisteredModelFactory(name="fraud", owner=owner, team=churn.team)
    client = api_client_for(privacy, ["audit:read", *STEPPED_UP])
    client.patch(API.format("churn"), FILLED, format="json")
    client.patch(API.format("fraud"), {"recipients": "   "}, format="json")  # blank is not an answer
    body = client.get(RECORDS).json()
    records = {r["model"]: r for r in body["records"]}
    assert {name: records["churn"][name] for name in ART30} == FILLED and records["churn"]["not_recorded"] == []
    assert {name: records["fraud"][name] for name in ART30} == dict.fromkeys(ART30, "not recorded")
    assert records["fraud"]["not_recorded"] == ART30
    assert body["incomplete_records"] == 1
    rows = {r["model"]: r for r in csv.DictReader(io.StringIO(client.get(RECORDS + "?format=csv").content.decode()))}
    assert {name: rows["churn"][name] for name in ART30} == FILLED and rows["churn"]["not_recorded"] == ""
    assert rows["fraud"]["recipients"] == "not recorded"
    assert rows["fraud"]["not_recorded"] == "data_subject_categories; recipients; third_country_transfers"
    html = client_for(privacy).get(PAGE).content.decode()
    assert "1 of 2 models" in html and "not recorded" in html and "Customers of the subscription service" in html
    client.patch(API.format("fraud"), dict.fromkeys(ART30, "none"), format="json")  # "none" is an answer
    assert client.get(RECORDS).json()["incomplete_records"] == 0
    assert "not recorded" not in client_for(privacy).get(PAGE).content.decode()


def test_a_recipient_a_spreadsheet_would_run_as_a_formula_is_quoted_in_the_csv(api_client_for, churn, privacy):
    client = api_client_for(privacy, ["audit:read", *STEPPED_UP])
    client.patch(API.format("churn"), {"recipients": "=HYPERLINK('http://x')"}, format="json")
    (row,) = csv.DictReader(io.StringIO(client.get(RECORDS + "?format=csv").content.decode()))
    assert row["recipients"] == "'=HYPERLINK('http://x')"


def test_the_compliance_report_states_them_or_says_not_recorded(api_client_for, client_for, auditor, churn, privacy):
    def section(html: str) -> str:
        found = re.search(r'<section class="report-section" id="retention">.*?</section>', html, re.S).group(0)
        return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found))

    before = section(client_for(auditor).get("/models/churn/report/").content.decode())
    assert "Data subjects not recorded" in before and "Third-country transfers not recorded" in before
    api_client_for(privacy, STEPPED_UP).patch(API.format("churn"), FILLED, format="json")
    after = section(client_for(auditor).get("/models/churn/report/").content.decode())
    assert "Data subjects Customers of the subscription service" in after
    assert "Recipients The customer-care team" in after and "Third-country transfers none" in after
    assert "not recorded" not in after
