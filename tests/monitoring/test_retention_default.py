"""A retention policy without days of its own follows its risk tier's default: saving only a
legal hold or only the records of processing's entries stores no days (NULL), so the days
applied move with the tier and with ``RETENTION_DEFAULT_DAYS``; the API answers where the days
come from and takes ``null`` back to the default (audited); the compliance report names the
tier's default, or the latest event that set the days."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from monitoring.models import RetentionPolicy
from monitoring.services import partitions
from monitoring.services.retention import purge_plans, retention_policy_get, retention_policy_update
from registry.choices import RiskTier
from registry.models import AuditEvent
from registry.services.audit import CLI
from registry.services.inventory import model_update
from tests.factories import RegisteredModelFactory
from tests.monitoring.helpers import T0

pytestmark = pytest.mark.django_db
URL = "/api/v1/models/{}/retention/"
STEPPED_UP = ["privacy:write", "step-up:sensitive"]
HOLD = {"legal_hold": True, "legal_hold_reason": "Claim before the court.", "legal_hold_article": "GDPR Art. 17(3)(e)"}
ART30 = {"data_subject_categories": "customers", "recipients": "care team", "third_country_transfers": "none"}


def _set(model, actor, **changes):
    return retention_policy_update(model=model, actor=actor, context=CLI, changes=changes)


def _section(html: str) -> str:
    section = re.search(r'<section class="report-section" id="retention">.*?</section>', html, re.S).group(0)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", section))


def test_a_hold_only_save_keeps_following_the_tier_when_the_tier_changes(admin_user, privacy, owner, team):
    scoring = RegisteredModelFactory(name="scoring", owner=owner, team=team, risk_tier=RiskTier.LOW)
    _set(scoring, privacy, **HOLD)
    assert RetentionPolicy.objects.get(model=scoring).raw_days is None  # no days chosen: none stored
    assert retention_policy_get(model=scoring).raw_days is None
    model_update(model=scoring, actor=admin_user, context=CLI, changes={"risk_tier": RiskTier.MEDIUM})
    _set(scoring, privacy, legal_hold=False)
    plan = purge_plans(now=T0)[scoring.pk]
    assert plan.raw_days == 183 and plan.cutoff == partitions.day_floor(T0) - timedelta(days=183)


def test_a_hold_only_save_follows_a_changed_installation_default(privacy, churn, settings, api_client_for):
    _set(churn, privacy, **HOLD)
    settings.RETENTION_DEFAULT_DAYS = {**settings.RETENTION_DEFAULT_DAYS, "medium": 250}
    assert purge_plans(now=T0)[churn.pk].raw_days == 250
    got = api_client_for(privacy).get(URL.format("churn")).json()
    assert (got["raw_days"], got["raw_days_source"], got["effective_raw_days"]) == (250, "tier default", 250)


def test_an_art30_only_save_leaves_the_report_on_the_tier_default(client_for, auditor, privacy, churn):
    _set(churn, privacy, **ART30)
    assert RetentionPolicy.objects.get(model=churn).raw_days is None
    text = _section(client_for(auditor).get("/models/churn/report/").content.decode())
    assert "183 days (the medium risk tier's default)" in text and "last set by" not in text
    assert "Data subjects customers" in text


def test_the_report_names_the_latest_event_that_set_the_days_not_a_later_hold(client_for, auditor, privacy, churn):
    _set(churn, privacy, raw_days=400)
    days_set = AuditEvent.objects.filter(action="retention.changed").latest("seq")
    _set(churn, privacy, **HOLD)
    _set(churn, privacy, **ART30)
    assert AuditEvent.objects.filter(action="retention.changed").latest("seq").seq > days_set.seq
    text = _section(client_for(auditor).get("/models/churn/report/").content.decode())
    assert f"400 days (last set by privacy on {days_set.timestamp:%Y-%m-%d}, audit event {days_set.seq})" in text


def test_patch_null_returns_to_the_tier_default_audited(api_client_for, privacy, churn, client_for, auditor):
    client = api_client_for(privacy, STEPPED_UP)
    set_days = client.patch(URL.format("churn"), {"raw_days": 400}, format="json").json()
    assert (set_days["raw_days"], set_days["raw_days_source"]) == (400, "policy")
    response = client.patch(URL.format("churn"), {"raw_days": None}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert (body["raw_days"], body["raw_days_source"], body["effective_raw_days"]) == (183, "tier default", 183)
    assert RetentionPolicy.objects.get(model=churn).raw_days is None
    event = AuditEvent.objects.filter(action="retention.changed").latest("seq")
    assert (event.before, event.after) == ({"raw_days": 400}, {"raw_days": None})
    text = _section(client_for(auditor).get("/models/churn/report/").content.decode())
    assert "183 days (the medium risk tier's default)" in text


def test_the_schema_documents_raw_days_source_read_only(api_client_for, privacy, churn):
    schema = api_client_for(privacy).get("/api/schema/", HTTP_ACCEPT="application/json").json()
    components = schema["components"]["schemas"]
    props = components["Retention"]["properties"]
    assert props["raw_days_source"]["readOnly"] is True and props["raw_days"]["type"] == "integer"
    enum = components[props["raw_days_source"]["allOf"][0]["$ref"].rsplit("/", 1)[1]]["enum"]
    assert enum == ["policy", "tier default"]
    assert components["PatchedRetentionWriteRequest"]["properties"]["raw_days"]["nullable"] is True


def test_the_high_risk_floor_still_holds_for_an_integer_and_null_is_the_tier_default(api_client_for, privacy, owner):
    RegisteredModelFactory(name="credit", owner=owner, risk_tier=RiskTier.HIGH)
    client = api_client_for(privacy, STEPPED_UP)
    refused = client.patch(URL.format("credit"), {"raw_days": 90}, format="json")
    assert refused.status_code == 400 and "183" in str(refused.json()["error"])
    assert not RetentionPolicy.objects.exists()
    body = client.patch(URL.format("credit"), {"raw_days": None}, format="json").json()
    assert (body["raw_days"], body["raw_days_source"]) == (365, "tier default")


def test_a_model_following_the_default_may_become_high_risk(admin_user, privacy, churn):
    _set(churn, privacy, **HOLD)
    model_update(model=churn, actor=admin_user, context=CLI, changes={"risk_tier": RiskTier.HIGH})
    assert purge_plans(now=T0)[churn.pk].raw_days == 365


def test_the_page_form_saves_an_empty_days_field_as_the_tier_default(client_for, privacy, churn):
    client = client_for(privacy)
    client.post("/monitoring/privacy/retention/churn/", {"raw_days": "400"})
    assert RetentionPolicy.objects.get(model=churn).raw_days == 400
    client.post("/monitoring/privacy/retention/churn/", {"raw_days": "", "recipients": "care team"})
    assert RetentionPolicy.objects.get(model=churn).raw_days is None
    page = client.get("/monitoring/privacy/").content.decode()
    assert 'name="raw_days" value=""' in page and "Empty: the medium risk tier's default (183 days)" in page
