"""An audit event of an API call names the token it was made with (``token_public_id``: its
prefix and id, never the secret). The token is hashed only when set, so the events written
before the field existed, and events without a token, keep their hashes: the chain verifies in
the database and in an export, old and new events alike, and a changed token is detected."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.db import transaction
from django.urls import reverse

from registry.models import ApiToken, AuditEvent
from registry.services.audit import CLI, AuditContext, audit_export_rows, audit_record, audit_verify, event_payload
from registry.services.tokens import token_create
from registry.verify_export import HASHED_FIELDS, event_hash, verify_stream

MODELS = "/api/v1/models/"


def _api_client(user, scopes):
    """An API client with a new token of ``user``, and that token."""
    from rest_framework.test import APIClient

    token, raw = token_create(user=user, name="ci", scopes=scopes, expires_at=None, actor=user, context=CLI)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client, token, raw


@pytest.fixture
def mixed_chain(churn, owner):
    """Events without a token (as every event was before the field) and events with one: these
    four, after the fixtures' own events."""
    start = AuditEvent.objects.count()
    with transaction.atomic():
        audit_record(actor=owner, action="model.updated", obj=churn, context=CLI, after={"i": 1})
        api = AuditContext(source="api", request_id="req-1", token="mlp_AbC123#7")
        audit_record(actor=owner, action="model.updated", obj=churn, context=api, after={"i": 2})
        audit_record(actor=owner, action="model.updated", obj=churn, context=AuditContext(source="ui"), after={"i": 3})
        audit_record(actor=owner, action="model.updated", obj=churn, context=api, after={"i": 4})
    return list(AuditEvent.objects.filter(seq__gt=start).order_by("seq"))


def test_an_api_call_records_the_token_it_was_made_with_and_never_its_secret(owner, last_seq):
    from registry.services.audit.context import token_public_id

    client, token, raw = _api_client(owner, ["models:read", "models:write"])
    start = last_seq()
    response = client.post(MODELS, {"name": "fraud", "description": "Flags fraud", "risk_tier": "high"}, format="json")
    assert response.status_code == 201, response.content
    event = AuditEvent.objects.get(seq__gt=start, action="model.created")
    assert event.source == "api" and event.token == token_public_id(token) == f"{token.prefix}#{token.pk}"
    assert raw not in event.token and token.token_hash not in event.token
    assert event_hash(event.prev_hash, event_payload(event)) == event.hash
    assert event_payload(event)["token"] == event.token  # covered by the hash


def test_a_browser_session_call_names_no_token(owner, client_for, last_seq):
    client = client_for(owner)
    start = last_seq()
    response = client.post(reverse("registry:token_list"), {"name": "x", "scopes": ["models:read"]})
    assert response.status_code == 200
    event = AuditEvent.objects.get(seq__gt=start, action="token.created")
    assert event.token == "" and ApiToken.objects.count() == 1


def test_events_without_a_token_hash_as_before_and_the_chain_verifies(mixed_chain):
    for event in mixed_chain:
        fields = {name: value for name, value in event_payload(event).items() if name in HASHED_FIELDS}
        if event.token:
            assert event_hash(event.prev_hash, fields) != event.hash  # the token is hashed
        else:
            assert event_hash(event.prev_hash, fields) == event.hash  # the hash every old event has
    result = audit_verify()
    assert result.ok, result.message
    assert result.count == mixed_chain[-1].seq


@pytest.mark.parametrize("token", ["", "mlp_Other1#8"], ids=["removed", "changed"])
def test_verify_audit_detects_a_removed_or_changed_token(mixed_chain, token):
    from tests.registry.test_audit_chain import _TriggersOff

    target = mixed_chain[-1].seq
    with _TriggersOff():
        AuditEvent.objects.filter(seq=target).update(token=token)
    result = audit_verify()
    assert not result.ok and result.broken_seq == target


def _export(fmt: str) -> str:
    return "".join(audit_export_rows(fmt=fmt))


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_an_export_carries_the_token_and_verifies(mixed_chain, fmt):
    text = _export(fmt)
    ok, message, summary = verify_stream(io.StringIO(text, newline=""))
    assert ok, message
    assert summary["count"] == mixed_chain[-1].seq
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(text)))[:-1]  # the manifest row last
    else:
        rows = [json.loads(line) for line in text.splitlines()[:-1]]
    assert [row["token"] for row in rows[-4:]] == ["", "mlp_AbC123#7", "", "mlp_AbC123#7"]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
@pytest.mark.parametrize("token", ["", "mlp_Other1#8"], ids=["removed", "changed"])
def test_verify_export_detects_a_removed_or_changed_token(mixed_chain, fmt, token):
    text = _export(fmt).replace("mlp_AbC123#7", token, 1)
    ok, message, _ = verify_stream(io.StringIO(text, newline=""))
    assert not ok and f"event seq {mixed_chain[1].seq}" in message and "hash mismatch" in message


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_an_export_made_before_tokens_were_recorded_still_verifies(churn, owner, fmt):
    with transaction.atomic():
        for i in range(3):
            audit_record(actor=owner, action="model.updated", obj=churn, context=CLI, after={"i": i})
    text = _export(fmt)
    if fmt == "csv":  # the old file had no token column
        rows = list(csv.reader(io.StringIO(text, newline="")))
        token_at = rows[0].index("token")
        old = [row[:token_at] + row[token_at + 1 :] if row[0] != "#manifest" else row for row in rows]
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(old)
        text = buffer.getvalue()
    else:  # nor a token key
        text = text.replace(',"token":""', "")
    assert "token" not in text.split("\n", 1)[0]
    ok, message, summary = verify_stream(io.StringIO(text, newline=""))
    assert ok, message
    assert summary["count"] == 3


def test_the_audit_log_page_and_the_api_show_the_token(auditor, mixed_chain, client_for):
    page = client_for(auditor).get(reverse("registry:audit_log")).content.decode()
    assert page.count('<code class="audit-token">mlp_AbC123#7</code>') == 2
    client, _, _ = _api_client(auditor, ["audit:read"])
    results = client.get("/api/v1/audit/").json()["results"]
    by_seq = {row["seq"]: row["token"] for row in results}
    assert by_seq[mixed_chain[1].seq] == "mlp_AbC123#7" and by_seq[mixed_chain[0].seq] == ""
