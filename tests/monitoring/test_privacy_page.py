"""The privacy page's retention form: a privacy officer (or an admin) changes a model's raw-data
retention and legal hold in the browser, through the same service as the API (audited); the
rules refuse with a message and change nothing; malformed values come back beside the field (400); everyone else
is refused."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from monitoring.models import RetentionPolicy
from monitoring.services.ingestion import predictions_ingest
from monitoring.services.raw_digests import ids_digest
from monitoring.services.retention import retention_policy_update, retention_purge
from registry.choices import RiskTier
from registry.models import AuditEvent
from registry.services.audit import CLI
from tests.factories import RegisteredModelFactory
from tests.monitoring.helpers import T0, as_json, assert_form_error, prediction_records

pytestmark = pytest.mark.django_db

URL = "/monitoring/privacy/retention/{}/"
HOLD = {
    "legal_hold": "on",
    "legal_hold_reason": "Complaint before the ombudsman.",
    "legal_hold_article": "Art. 17(3)(e)",
}


@pytest.fixture
def credit(churn, owner):
    return RegisteredModelFactory(name="credit", owner=owner, team=churn.team, risk_tier=RiskTier.HIGH)


def _changes():
    return list(AuditEvent.objects.filter(action="retention.changed").values_list("model_name", "actor_name"))


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_an_officer_sets_retention_and_a_hold_on_the_page_and_it_is_audited(client_for, privacy, churn):
    client = client_for(privacy)
    page = client.get("/monitoring/privacy/").content.decode()
    assert page.count("<summary>Change</summary>") == 1 and 'action="/monitoring/privacy/retention/churn/"' in page
    response = client.post(URL.format("churn"), {"raw_days": "400", **HOLD}, follow=True)
    assert response.redirect_chain == [("/monitoring/privacy/", 302)]
    assert _messages(response) == ["churn: retention and legal hold saved."]
    policy = RetentionPolicy.objects.get(model=churn)
    assert (policy.raw_days, policy.legal_hold, policy.legal_hold_article) == (400, True, "Art. 17(3)(e)")
    assert policy.updated_by == privacy and _changes() == [("churn", "privacy")]
    assert "Complaint before the ombudsman. (Art. 17(3)(e))" in response.content.decode()
    # lifting the hold (an unchecked box is not sent) clears its reason and article
    client.post(URL.format("churn"), {"raw_days": "400", "legal_hold_reason": "", "legal_hold_article": ""})
    policy.refresh_from_db()
    assert (policy.legal_hold, policy.legal_hold_reason, policy.legal_hold_article) == (False, "", "")


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("credit", {"raw_days": "90"}, "at least 183 days"),  # the high-risk floor
        ("churn", {"raw_days": "400", "legal_hold": "on", "legal_hold_reason": "x"}, "cites the article"),
    ],
)
def test_a_change_the_rules_refuse_comes_back_as_a_message_and_changes_nothing(
    client_for, privacy, churn, credit, name, data, message
):
    response = client_for(privacy).post(URL.format(name), data, follow=True)
    assert response.redirect_chain == [("/monitoring/privacy/", 302)]
    (shown,) = _messages(response)
    assert shown.startswith(f"{name}: ") and message in shown
    assert not RetentionPolicy.objects.exists() and _changes() == []


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"raw_days": "abc"}, "raw_days"),
        ({"raw_days": "1e3"}, "raw_days"),
        ({"raw_days": "0"}, "raw_days"),
        ({"raw_days": "100000"}, "raw_days"),
        ({}, "raw_days"),
        ({"raw_days": "400", "legal_hold_reason": "a\x00b"}, "legal_hold_reason"),
        ({"raw_days": "400", "legal_hold_article": "x" * 201}, "legal_hold_article"),
    ],
)
def test_malformed_values_are_a_form_error_naming_the_field_and_change_nothing(client_for, privacy, churn, data, field):
    response = client_for(privacy).post(URL.format("churn"), data)
    assert_form_error(response, field)
    assert response.context["retention_error_for"] == "churn" and '<details class="retention-change" open>' in (
        response.content.decode()
    )
    assert not RetentionPolicy.objects.exists() and _changes() == []


def test_only_officers_and_admins_may_change_it(client_for, privacy, auditor, owner, outsider, admin_user, churn):
    assert "<summary>Change</summary>" not in client_for(auditor).get("/monitoring/privacy/").content.decode()
    assert client_for(auditor).post(URL.format("churn"), {"raw_days": "30"}).status_code == 403
    assert client_for(owner).post(URL.format("churn"), {"raw_days": "30"}).status_code == 403
    assert client_for(outsider).post(URL.format("churn"), {"raw_days": "30"}).status_code == 404  # hidden from them
    assert client_for(privacy).post(URL.format("no-such-model"), {"raw_days": "30"}).status_code == 404
    assert client_for(privacy).get(URL.format("churn")).status_code == 405
    assert not RetentionPolicy.objects.exists() and _changes() == []
    assert client_for(admin_user).post(URL.format("churn"), {"raw_days": "30"}).status_code == 302
    assert RetentionPolicy.objects.get(model=churn).raw_days == 30 and _changes() == [("churn", "admin")]


def test_the_page_shows_each_purge_receipt_with_its_range_rows_and_digest(client_for, privacy, churn, churn_v1, owner):
    records = prediction_records(6, start=T0)
    predictions_ingest(
        version=churn_v1, body=as_json(records), content_type="application/json", actor=owner, context=CLI
    )
    retention_policy_update(model=churn, actor=privacy, context=CLI, changes={"raw_days": 30})
    retention_purge(now=T0 + timedelta(days=40))
    receipt = AuditEvent.objects.get(action="retention.purged", after__table="monitoring_prediction")
    digest = ids_digest(sorted(r["prediction_id"] for r in records))
    assert receipt.after["ids_sha256"] == {str(churn_v1.pk): {"rows": 6, "sha256": digest}}
    html = client_for(privacy).get("/monitoring/privacy/").content.decode()
    row = re.search(rf"<tr><td>{receipt.seq}</td>.*?</tr>", html, re.S).group(0)
    cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
    start, end = receipt.after["from"], receipt.after["to"][:10]  # a range delete has no start
    removed = f"{start[:10]} – {end}" if start else f"before {end}"
    method = {"range_delete": "rows deleted", "partition_drop": "day partition dropped"}[receipt.after["method"]]
    assert cells[2:7] == ["churn", "Predictions", removed, "6", method]  # labels; the stored names in titles
    assert 'title="monitoring_prediction"' in row and f'title="{receipt.after["method"]}"' in row
    assert cells[7] == digest[:12] + "…" and f"6 rows, {digest}" in row


def _section(html: str) -> str:
    section = re.search(r'<section class="report-section" id="retention">.*?</section>', html, re.S).group(0)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", section))


def test_the_compliance_report_states_retention_hold_and_each_purge_of_the_model(
    client_for, auditor, owner, privacy, churn, churn_v1, credit
):
    body = as_json(prediction_records(6, start=T0))
    predictions_ingest(version=churn_v1, body=body, content_type="application/json", actor=owner, context=CLI)
    retention_policy_update(model=churn, actor=privacy, context=CLI, changes={"raw_days": 30})
    hold = {"legal_hold": True, "legal_hold_reason": HOLD["legal_hold_reason"], "legal_hold_article": "Art. 17(3)(e)"}
    retention_policy_update(model=credit, actor=privacy, context=CLI, changes=hold)
    retention_purge(now=T0 + timedelta(days=40))
    receipt = AuditEvent.objects.get(action="retention.purged", after__table="monitoring_prediction")
    report = client_for(auditor).get("/models/churn/report/").content.decode()
    text = _section(report)
    changed = AuditEvent.objects.get(action="retention.changed", model_name="churn")
    assert f"30 days (last set by privacy on {changed.timestamp:%Y-%m-%d}, audit event {changed.seq})" in text
    assert "Legal hold none" in text
    assert f"Purges {AuditEvent.objects.filter(action='retention.purged', model_id=churn.pk).count()}" in text
    assert re.search(
        rf"<td>{receipt.seq}</td>.*?{receipt.after['ids_sha256'][str(churn_v1.pk)]['sha256']}", report, re.S
    )
    held = _section(client_for(owner).get("/models/credit/report/").content.decode())
    # a hold saved alone sets no days: the tier's default applies, named as such
    assert "365 days (the high risk tier's default)" in held and "at least 183 days" in held
    assert "Complaint before the ombudsman. (Art. 17(3)(e)): purges and erasure requests leave" in held
    assert "Purges 0" in held and "SHA-256" not in held
    pdf = client_for(auditor).get("/models/churn/report.pdf")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
