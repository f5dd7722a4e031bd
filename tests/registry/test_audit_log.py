"""Audit log page, its export button and the audit API: roles, filters, keyset pages, exports."""

from __future__ import annotations

import datetime
import io
import json
import re
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from registry.choices import TokenScope
from registry.models import AuditEvent
from registry.services.audit import CLI, AuditContext, audit_record
from registry.verify_export import verify_stream
from tests.factories import RegisteredModelFactory
from tests.times import extreme_times, off_the_calendar


@pytest.fixture
def history(churn, owner, reviewer, team):
    fraud = RegisteredModelFactory(name="fraud", owner=owner, team=team)
    with transaction.atomic():
        audit_record(actor=owner, action="model.created", obj=churn, context=CLI, after={"name": "churn"})
        audit_record(
            actor=owner,
            action="model.updated",
            obj=churn,
            context=AuditContext(source="ui", request_id="req-1", ip="10.1.2.3"),
            before={"description": "old text", "risk_tier": "low"},
            after={"description": "new text", "risk_tier": "low"},
        )
        audit_record(actor=reviewer, action="promotion.approved", obj=fraud, context=AuditContext(source="api"))
    return {"churn": churn, "fraud": fraud}


def _stream_text(response) -> str:
    return b"".join(response.streaming_content).decode()


# ---------------------------------------------------------------- page


@pytest.mark.parametrize(
    "role, status",
    [("auditor", 200), ("privacy", 200), ("admin", 200), ("owner", 403), ("reviewer", 403), ("outsider", 403)],
)
def test_only_auditors_privacy_officers_and_admins_see_the_audit_log(roles, history, client_for, role, status):
    response = client_for(roles[role]).get(reverse("registry:audit_log"))
    assert response.status_code == status
    if status == 200:
        assert b"promotion.approved" in response.content
    else:
        assert b"promotion.approved" not in response.content


def test_anonymous_users_are_sent_to_login(client, history):
    response = client.get(reverse("registry:audit_log"))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_audit_log_filters_by_model_actor_action_source_and_time(auditor, history, client_for):
    client = client_for(auditor)
    url = reverse("registry:audit_log")
    page = client.get(url, {"model": "churn"}).content.decode()
    assert "model.updated" in page and "promotion.approved" not in page
    page = client.get(url, {"actor": "reviewer"}).content.decode()
    assert "promotion.approved" in page and "model.updated" not in page
    page = client.get(url, {"action": "model."}).content.decode()
    assert "model.created" in page and "model.updated" in page and "promotion.approved" not in page
    page = client.get(url, {"source": "api"}).content.decode()
    assert "promotion.approved" in page and "model.created" not in page
    future = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    page = client.get(url, {"since": future}).content.decode()
    assert "No events match" in page


def test_each_event_expands_to_a_before_after_diff_table(auditor, history, client_for):
    page = client_for(auditor).get(reverse("registry:audit_log"), {"action": "model.updated"}).content.decode()
    assert "<details" in page and "audit-diff" in page
    assert "old text" in page and "new text" in page
    assert 'class="changed"' in page
    assert "req-1" in page and "10.1.2.3" in page


def test_a_long_unbroken_username_of_a_failed_sign_in_wraps_in_the_audit_table(auditor, client, client_for):
    # a failed sign-in with a 150-character username widened /audit/ to 2342px (tests/browser/test_layout_defects.py)
    long_name = "x" * 150
    client.post(reverse("login"), {"username": long_name, "password": "wrong"})
    html = client_for(auditor).get(reverse("registry:audit_log")).content.decode()
    assert '<table class="audit-table">' in html and long_name in html
    css = Path(finders.find("css/app.css")).read_text()
    assert re.search(r"\.audit-table td \{[^}]*overflow-wrap: anywhere", css)


@pytest.mark.parametrize(
    "params",
    [
        {"since": "yesterday"},
        {"source": "telepathy"},
        {"before": "abc"},
        {"from_seq": "-1"},
        {"from_seq": "1.5"},
        {"to_seq": "99999999999999999999999"},
        {"since": "2026-02-01T00:00", "until": "2026-01-01T00:00"},
    ],
)
def test_bad_filters_give_400_and_no_events(auditor, history, client_for, params):
    response = client_for(auditor).get(reverse("registry:audit_log"), params)
    assert response.status_code == 400
    assert b"promotion.approved" not in response.content
    if "until" in params:
        assert "The range ends before it starts" in response.content.decode()


def _bulk_events(owner, churn, n):
    with transaction.atomic():
        for i in range(n):
            audit_record(actor=owner, action="test.bulk", obj=churn, context=CLI, after={"i": i})


def test_keyset_pagination_walks_older_and_newer_pages(auditor, owner, churn, client_for):
    _bulk_events(owner, churn, 120)
    client = client_for(auditor)
    url = reverse("registry:audit_log")
    head = AuditEvent.objects.filter(action="test.bulk").order_by("-seq").first().seq
    first = client.get(url, {"action": "test.bulk"})
    assert first.context["page"].events[0].seq == head
    older = first.context["page"].older
    assert older == head - 49
    second = client.get(url, {"action": "test.bulk", "before": older})
    seqs = [e.seq for e in second.context["page"].events]
    assert seqs == list(range(older - 1, older - 51, -1))
    assert second.context["page"].newer == older - 1
    back = client.get(url, {"action": "test.bulk", "after": second.context["page"].newer})
    assert [e.seq for e in back.context["page"].events] == list(range(head, head - 50, -1))
    assert back.context["page"].newer is None
    assert f"before={second.context['page'].older}" in second.content.decode()


def test_audit_log_page_query_count_does_not_grow_with_the_log(auditor, owner, churn, client_for):
    client = client_for(auditor)
    url = reverse("registry:audit_log")
    _bulk_events(owner, churn, 5)
    client.get(url)
    with CaptureQueriesContext(connection) as small:
        client.get(url, {"before": 4})
    _bulk_events(owner, churn, 300)
    with CaptureQueriesContext(connection) as large:
        response = client.get(url, {"before": 250})
    assert response.status_code == 200
    assert len(large.captured_queries) == len(small.captured_queries)
    assert not any("COUNT(" in q["sql"].upper() for q in large.captured_queries)


# ---------------------------------------------------------------- export button


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_export_button_streams_a_verifiable_file_and_is_audited(auditor, history, client_for, fmt, last_seq):
    client = client_for(auditor)
    before = last_seq()
    response = client.get(reverse("registry:audit_export"), {"format": fmt, "model": "churn"})
    assert response.status_code == 200
    assert response.streaming
    assert "attachment" in response["Content-Disposition"]
    text = _stream_text(response)
    ok, message, summary = verify_stream(io.StringIO(text, newline=""))
    assert ok, message
    assert summary["count"] == AuditEvent.objects.filter(model_name="churn", seq__lte=before).count()
    event = AuditEvent.objects.get(action="audit.exported", seq__gt=before)
    assert event.actor == auditor and event.source == "ui"
    assert event.after["filters"] == {"model": "churn"}
    assert event.after["format"] == fmt and event.after["up_to_seq"] == before


@pytest.mark.parametrize("role", ["owner", "reviewer", "outsider"])
def test_export_button_refuses_non_auditors_with_json_403(roles, history, client_for, role, audit_actions, last_seq):
    before = last_seq()
    response = client_for(roles[role]).get(reverse("registry:audit_export"), {"format": "csv"})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert "audit.exported" not in audit_actions(before)


@pytest.mark.parametrize("params", [{"format": "xml"}, {"format": "csv", "since": "nope"}])
def test_export_with_bad_input_is_400_json_and_writes_nothing(auditor, history, client_for, params, last_seq):
    before = last_seq()
    response = client_for(auditor).get(reverse("registry:audit_export"), params)
    assert response.status_code == 400
    assert response.json()["error"]["message"]
    assert not AuditEvent.objects.filter(seq__gt=before, action="audit.exported").exists()


# ---------------------------------------------------------------- per-model history


def test_model_history_is_visible_to_whoever_can_view_the_model(roles, history, client_for):
    url = reverse("registry:model_history", args=["churn"])
    for role in ("owner", "reviewer", "auditor", "admin"):
        response = client_for(roles[role]).get(url)
        assert response.status_code == 200, role
        assert "model.updated" in response.content.decode()
        assert "promotion.approved" not in response.content.decode()
    assert client_for(roles["outsider"]).get(url).status_code == 404


def test_model_history_htmx_request_gets_only_the_fragment(owner, history, client_for):
    response = client_for(owner).get(reverse("registry:model_history", args=["churn"]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert b"<html" not in response.content and b'id="model-history"' in response.content


def test_model_history_with_a_bad_cursor_is_400(owner, history, client_for):
    response = client_for(owner).get(reverse("registry:model_history", args=["churn"]), {"before": "x"})
    assert response.status_code == 400


def test_model_history_of_an_unknown_model_is_404(auditor, client_for):
    assert client_for(auditor).get(reverse("registry:model_history", args=["nope"])).status_code == 404


# ---------------------------------------------------------------- API


def test_api_audit_list_returns_hashed_fields_newest_first(auditor, history, api_client_for):
    response = api_client_for(auditor, scopes=[TokenScope.AUDIT_READ]).get("/api/v1/audit/", {"model": "churn"})
    assert response.status_code == 200
    body = response.json()
    assert [e["action"] for e in body["results"]] == ["model.updated", "model.created"]
    event = body["results"][0]
    stored = AuditEvent.objects.get(seq=event["seq"])
    assert event["hash"] == stored.hash and event["prev_hash"] == stored.prev_hash
    assert event["timestamp"] == stored.timestamp.isoformat()
    assert body["next"] is None and body["previous"] is None


def test_api_audit_list_keyset_links(auditor, owner, churn, api_client_for):
    _bulk_events(owner, churn, 30)
    client = api_client_for(auditor, scopes=[TokenScope.AUDIT_READ])
    first = client.get("/api/v1/audit/", {"action": "test.bulk", "limit": 10}).json()
    assert len(first["results"]) == 10
    second = client.get(first["next"]).json()
    assert second["results"][0]["seq"] == first["results"][-1]["seq"] - 1
    back = client.get(second["previous"]).json()
    assert [e["seq"] for e in back["results"]] == [e["seq"] for e in first["results"]]


def test_a_privacy_officer_exports_the_log_and_reads_it_over_the_api_to_prove_purges_and_erasures(
    privacy, history, client_for, api_client_for, last_seq
):
    before = last_seq()
    response = client_for(privacy).get(reverse("registry:audit_export"), {"format": "csv"})
    assert response.status_code == 200 and "promotion.approved" in _stream_text(response)
    assert AuditEvent.objects.get(action="audit.exported", seq__gt=before).actor == privacy
    listed = api_client_for(privacy).get("/api/v1/audit/")
    assert listed.status_code == 200 and listed.json()["results"]


@pytest.mark.parametrize("role", ["owner", "reviewer", "outsider"])
def test_api_audit_list_refuses_non_auditors(roles, history, api_client_for, role):
    response = api_client_for(roles[role]).get("/api/v1/audit/")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


def test_api_audit_list_needs_the_audit_read_scope(auditor, history, api_client_for):
    response = api_client_for(auditor, scopes=[TokenScope.MODELS_READ]).get("/api/v1/audit/")
    assert response.status_code == 403
    assert "audit:read" in response.json()["error"]["message"]


def test_api_audit_list_without_credentials_is_401(client, history):
    assert client.get("/api/v1/audit/").status_code in (401, 403)


@pytest.mark.parametrize(
    "params",
    [
        {"since": "2026-13-45"},
        {"source": "x"},
        {"before": "-3"},
        {"limit": "0"},
        {"limit": "abc"},
        {"before": 1, "after": 2},
        {"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
        {"from_seq": "9", "to_seq": "3"},
    ],
)
def test_api_audit_list_bad_input_is_400_json(auditor, history, api_client_for, params):
    response = api_client_for(auditor).get("/api/v1/audit/", params)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


@pytest.mark.parametrize("url", ["/api/v1/audit/", "/api/v1/audit/export/"])
def test_api_audit_filter_errors_have_the_shape_of_every_other_400(auditor, history, api_client_for, url):
    client = api_client_for(auditor)
    error = client.get(url, {"since": "garbage", "format": "csv"}).json()["error"]
    other = client.get("/api/v1/models/", {"risk_tier": "garbage"}).json()["error"]  # DjangoFilterBackend's 400
    assert isinstance(other["details"]["risk_tier"][0], str)  # the shape every other endpoint gives
    assert error["code"] == "invalid"
    assert error["details"]["since"] and all(isinstance(m, str) for m in error["details"]["since"])
    assert error["message"] == f"since: {error['details']['since'][0]}"
    assert error["message"] != "since: invalid"


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_api_export_streams_verifiable_rows_and_records_the_export(auditor, history, api_client_for, fmt, last_seq):
    before = last_seq()
    client = api_client_for(auditor, scopes=[TokenScope.AUDIT_READ])
    after_token = last_seq()
    response = client.get("/api/v1/audit/export", {"format": fmt})
    assert response.status_code == 200
    text = _stream_text(response)
    ok, message, summary = verify_stream(io.StringIO(text, newline=""))
    assert ok, message
    assert summary["count"] == after_token  # the whole chain up to the head before the export event
    last = text.strip().splitlines()[-1]
    manifest = (
        json.loads(last)["manifest"] if fmt == "jsonl" else json.loads(next(iter(__import__("csv").reader([last])))[1])
    )
    assert manifest["contiguous"] is True and manifest["head_seq"] == after_token
    event = AuditEvent.objects.get(seq=after_token + 1)
    assert event.action == "audit.exported" and event.source == "api" and event.after["up_to_seq"] == after_token
    assert before <= after_token


def test_api_export_with_a_bad_format_is_400(auditor, history, api_client_for, last_seq):
    client = api_client_for(auditor)
    before = last_seq()
    response = client.get("/api/v1/audit/export", {"format": "pdf"})
    assert response.status_code == 400
    assert response.json()["error"]["details"]["format"]
    assert last_seq() == before


def test_api_export_refuses_the_outsider(outsider, history, api_client_for):
    assert api_client_for(outsider).get("/api/v1/audit/export", {"format": "csv"}).status_code == 403


# ---------------------------------------------------------------- admin


def test_admin_shows_audit_events_read_only(admin_user, history, client_for):
    client = client_for(admin_user)
    event = AuditEvent.objects.order_by("seq").first()
    assert client.get("/admin/registry/auditevent/").status_code == 200
    detail = client.get(f"/admin/registry/auditevent/{event.seq}/change/")
    assert detail.status_code == 200
    assert b'name="_save"' not in detail.content
    assert client.post(f"/admin/registry/auditevent/{event.seq}/delete/").status_code == 403


EXTREME_TIMES = extreme_times("2026-01-03T10:00:00")


@pytest.mark.parametrize("key", ["since", "until"])
@pytest.mark.parametrize("value", EXTREME_TIMES)
def test_api_audit_filters_with_extreme_times_are_never_a_500(auditor, history, api_client_for, key, value):
    client = api_client_for(auditor)
    for url in ("/api/v1/audit/", "/api/v1/audit/export"):
        response = client.get(url, {key: value, "format": "jsonl"} if "export" in url else {key: value})
        assert response.status_code in (200, 400), (url, response.status_code)
        if response.status_code == 400:
            assert response["Content-Type"].startswith("application/json")
            assert key in response.json()["error"]["details"]


@pytest.mark.parametrize("key", ["since", "until"])
@pytest.mark.parametrize("value", EXTREME_TIMES)
def test_audit_log_page_with_extreme_times_is_never_a_500(auditor, history, client_for, key, value):
    response = client_for(auditor).get(reverse("registry:audit_log"), {key: value})
    assert response.status_code in (200, 400)
    if off_the_calendar(value):
        assert response.status_code == 400 and "out of range" in response.content.decode()


def test_audit_since_out_of_the_calendar_is_400_and_an_odd_offset_is_the_same_instant(auditor, history, api_client_for):
    client = api_client_for(auditor)
    bad = client.get("/api/v1/audit/", {"since": "0001-01-01T00:00:00+05:00"})
    assert bad.status_code == 400 and "out of range" in str(bad.json()["error"]["details"]["since"])
    bad = client.get("/api/v1/audit/", {"until": "9999-12-31T23:59:59-05:00"})
    assert bad.status_code == 400
    newest = AuditEvent.objects.order_by("-seq").first()
    # +16:00 is the same instant as 08:00 the previous day in UTC: both select the same events.
    utc = (newest.timestamp - datetime.timedelta(seconds=1)).astimezone(datetime.UTC)
    shifted = utc.astimezone(datetime.timezone(datetime.timedelta(hours=16)))
    a = client.get("/api/v1/audit/", {"since": shifted.isoformat()})
    b = client.get("/api/v1/audit/", {"since": utc.isoformat()})
    assert a.status_code == b.status_code == 200
    assert [e["seq"] for e in a.json()["results"]] == [e["seq"] for e in b.json()["results"]] != []


def test_audit_pages_read_models_only_through_the_one_visibility_filter(roles, history, client_for, monkeypatch):
    """Model history, compliance report and as-of read models through
    ``RegisteredModel.objects.visible_to``: when it hides every model, so do they, for an admin too."""
    from registry.models import RegisteredModel

    queryset_class = type(RegisteredModel.objects.all())
    monkeypatch.setattr(queryset_class, "visible_to", lambda self, user: self.none())
    client = client_for(roles["admin"])
    history_page = client.get(reverse("registry:model_history", args=["churn"]))
    # 404 once model_get reads through visible_to; until then the page lists no event.
    assert history_page.status_code == 404 or history_page.context["page"].events == []
    assert client.get(reverse("registry:compliance_report", args=["churn"])).status_code == 404
    as_of = client.get(reverse("registry:as_of"))
    assert as_of.status_code == 200 and "churn" not in as_of.content.decode()


def test_the_source_filter_offers_any_source_instead_of_dashes(auditor, history, client_for):
    html = client_for(auditor).get(reverse("registry:audit_log")).content.decode()
    assert '<option value="" selected>Any source</option>' in html
    assert "---------" not in html


def test_the_model_column_does_not_wrap_when_filtered_to_one_model(auditor, owner, team, client_for):
    long = RegisteredModelFactory(name="customer-churn-propensity", owner=owner, team=team)
    audit_record(actor=owner, action="model.created", obj=long, context=CLI, after={"name": long.name})
    html = client_for(auditor).get(reverse("registry:audit_log"), {"model": long.name}).content.decode()
    link = f'<a href="{reverse("registry:model_detail", args=[long.name])}">{long.name}</a>'
    assert f'<td class="nowrap">{link}</td>' in html


@pytest.mark.parametrize("path", ["/api/v1/audit/export", "/audit/export/"])
def test_a_head_request_for_an_export_records_no_export(auditor, history, api_client_for, client_for, path, last_seq):
    # HEAD sends no file: a recorded audit.exported would tell of an export nobody received
    seq = last_seq()
    assert client_for(auditor).head(path, {"format": "csv"}).status_code == 405
    token = api_client_for(auditor, scopes=[TokenScope.AUDIT_READ])
    assert token.head(path, {"format": "csv"}).status_code in (302, 403, 405)  # the page: a sign-in
    assert not AuditEvent.objects.filter(seq__gt=seq, action="audit.exported").exists()
