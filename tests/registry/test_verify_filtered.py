"""A filtered audit export checked against a later full one (``registry.verify_filtered``): the
chain records each export's count and range, so an event deleted from a filtered export, with its
manifest rewritten to match, no longer passes unnoticed, nor does a genuine event of another
model swapped in for it."""

from __future__ import annotations

import json

import pytest
from django.db import transaction

from registry.models import AuditEvent
from registry.services.audit import CLI, audit_export, audit_record
from registry.verify_export import main as verify_export_main
from registry.verify_filtered import main
from tests.factories import RegisteredModelFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def chain(churn, owner, team):
    fraud = RegisteredModelFactory(name="fraud", owner=owner, team=team)
    with transaction.atomic():
        for i in range(4):
            audit_record(actor=owner, action="model.updated", obj=churn, context=CLI, after={"n": i})
            audit_record(actor=owner, action="model.updated", obj=fraud, context=CLI, after={"n": i})
    return fraud


def _export(auditor, tmp_path, name: str, fmt: str = "jsonl", **filters) -> str:
    queryset = AuditEvent.objects.all()
    if "model" in filters:
        queryset = queryset.filter(model_name=filters["model"])
    export = audit_export(actor=auditor, queryset=queryset, filters=filters, fmt=fmt, context=CLI)
    path = tmp_path / name
    path.write_text("".join(export.stream), encoding="utf-8")
    return str(path)


def _jsonl(path: str) -> tuple[list[dict], dict]:
    lines = [json.loads(line) for line in open(path, encoding="utf-8")]
    return lines[:-1], lines[-1]["manifest"]


def _rewrite(path: str, rows: list[dict], manifest: dict) -> None:
    """Rows and a manifest made consistent with them, as a careful forger would."""
    manifest |= {"count": len(rows), "first_seq": rows[0]["seq"], "last_seq": rows[-1]["seq"]}
    manifest |= {"first_prev_hash": rows[0]["prev_hash"], "last_hash": rows[-1]["hash"]}
    with open(path, "w", encoding="utf-8") as out:
        out.writelines(json.dumps(row) + "\n" for row in rows)
        out.write(json.dumps({"manifest": manifest}) + "\n")


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_an_untouched_filtered_export_verifies_against_a_later_full_one(chain, auditor, tmp_path, capsys, fmt):
    filtered = _export(auditor, tmp_path, f"churn.{fmt}", fmt, model="churn")
    event = AuditEvent.objects.order_by("-seq").first()
    churn_seqs = list(AuditEvent.objects.filter(model_name="churn", seq__lt=event.seq).values_list("seq", flat=True))
    assert event.action == "audit.exported" and len(churn_seqs) == 4
    recorded = {key: event.after[key] for key in ("count", "first_seq", "last_seq")}
    assert recorded == {"count": 4, "first_seq": min(churn_seqs), "last_seq": max(churn_seqs)}
    full = _export(auditor, tmp_path, f"full.{fmt}", fmt)
    assert main([filtered, full]) == 0
    assert "are all the events its record" in capsys.readouterr().out


def test_a_deleted_event_with_a_rewritten_manifest_passes_alone_but_not_against_the_chain(
    chain, auditor, tmp_path, capsys
):
    filtered = _export(auditor, tmp_path, "churn.jsonl", model="churn")
    full = _export(auditor, tmp_path, "full.jsonl")
    rows, manifest = _jsonl(filtered)
    _rewrite(filtered, rows[:1] + rows[2:], manifest)
    assert verify_export_main([filtered]) == 0  # consistent with itself: the gap looks like the filter's
    assert main([filtered, full]) == 1
    assert "says count = 4, this export has 3" in capsys.readouterr().err


def test_a_genuine_event_of_another_model_swapped_in_is_refused(chain, auditor, tmp_path, capsys):
    filtered = _export(auditor, tmp_path, "churn.jsonl", model="churn")
    full = _export(auditor, tmp_path, "full.jsonl")
    rows, manifest = _jsonl(filtered)
    full_rows, _ = _jsonl(full)
    fraud_row = next(r for r in full_rows if r["model_name"] == "fraud" and r["seq"] > rows[1]["seq"])
    swapped = sorted(rows[:1] + rows[2:] + [fraud_row], key=lambda r: r["seq"])
    _rewrite(filtered, swapped, manifest)
    assert verify_export_main([filtered]) == 0
    assert main([filtered, full]) == 1
    assert "does not match the declared filter model=churn" in capsys.readouterr().err


def test_the_full_export_must_be_unfiltered_and_hold_the_record(chain, auditor, tmp_path, capsys):
    early_full = _export(auditor, tmp_path, "early.jsonl")
    filtered = _export(auditor, tmp_path, "churn.jsonl", model="churn")
    other = _export(auditor, tmp_path, "fraud.jsonl", model="fraud")
    assert main([filtered, early_full]) == 1
    assert "export the chain again" in capsys.readouterr().err
    assert main([filtered, other]) == 1
    assert "FULL is itself filtered" in capsys.readouterr().err


def test_an_export_without_a_record_and_a_wrong_command_line_are_named(chain, auditor, tmp_path, capsys):
    filtered = _export(auditor, tmp_path, "churn.jsonl", model="churn")
    full = _export(auditor, tmp_path, "full.jsonl")
    rows, manifest = _jsonl(filtered)
    del manifest["recorded_as"]
    _rewrite(filtered, rows, manifest)
    assert main([filtered, full]) == 1
    assert "names no record" in capsys.readouterr().err
    assert main([filtered]) == 2
    assert main([str(tmp_path / "missing.jsonl"), full]) == 3


def _download(client, tmp_path, name: str, **params) -> str:
    response = client.get("/api/v1/audit/export", {"format": "jsonl", **params})
    assert response.status_code == 200
    path = tmp_path / name
    path.write_bytes(b"".join(response.streaming_content))
    return str(path)


def test_an_actor_export_verifies_after_the_actor_was_renamed(
    chain, owner, admin_user, auditor, api_client_for, tmp_path, capsys
):
    """The actor filter finds the account's events by its id, also those written under its former
    name: the check follows the account the record names, not the name snapshot."""
    from registry.services.accounts import account_save

    with transaction.atomic():
        owner.username = "owner-renamed"
        account_save(user=owner, actor=admin_user, context=CLI)
        audit_record(actor=owner, action="model.updated", obj=chain, context=CLI, after={"n": 9})
    client = api_client_for(auditor)
    filtered = _download(client, tmp_path, "owner.jsonl", actor="owner-renamed")
    rows, manifest = _jsonl(filtered)
    assert len(rows) == 9 and {row["actor_name"] for row in rows} == {"owner", "owner-renamed"}
    full = _download(client, tmp_path, "full.jsonl")
    assert main([filtered, full]) == 0, capsys.readouterr().err
    assert "are all the events its record" in capsys.readouterr().out
    assert manifest["filters"] == {"actor": "owner-renamed", "actor_ids": [owner.pk]}
    # a genuine event of another account put in place of one of its events is still refused
    swapped = next(json.loads(line) for line in open(full, encoding="utf-8") if f'"actor_id":{auditor.pk},' in line)
    _rewrite(filtered, sorted([*rows[1:], swapped], key=lambda row: row["seq"]), manifest)
    assert main([filtered, full]) == 1
    assert "does not match the declared filter actor" in capsys.readouterr().err
