"""Tampered exports the offline verifier used to accept: gaps in an export that declares no
filters, fields an export never writes, duplicated JSON keys. And a file Excel re-saved with a
byte order mark, which is intact and verifies."""

from __future__ import annotations

import json

import pytest
from django.db import transaction

from registry.models import AuditEvent
from registry.services.audit import CLI, audit_export_rows, audit_record
from registry.verify_export import main, verify_file


@pytest.fixture
def events(churn, owner):
    with transaction.atomic():
        for i in range(6):
            audit_record(actor=owner, action="model.updated", obj=churn, context=CLI, after={"n": i})
    return AuditEvent.objects.count()


def _lines(fmt: str, queryset=None, filters=None) -> list[str]:
    return "".join(audit_export_rows(queryset, fmt=fmt, filters=filters)).splitlines(keepends=True)


def _write(tmp_path, name: str, lines: list[str], *, encoding: str = "utf-8"):
    path = tmp_path / name
    path.write_text("".join(lines), encoding=encoding)
    return str(path)


def _delete_seq(lines: list[str], seq: int) -> list[str]:
    kept = [line for line in lines[:-1] if json.loads(line)["seq"] != seq]
    manifest = json.loads(lines[-1])
    manifest["manifest"].update(count=manifest["manifest"]["count"] - 1, contiguous=False)
    return [*kept, json.dumps(manifest) + "\n"]


def test_a_gap_in_an_export_that_declares_no_filters_fails_even_when_the_manifest_says_not_contiguous(events, tmp_path):
    lines = _delete_seq(_lines("jsonl"), 3)
    assert json.loads(lines[-1])["manifest"]["filters"] == {}
    ok, message, _ = verify_file(_write(tmp_path, "gap.jsonl", lines))
    assert not ok
    assert "no filters" in message and "1 gap" in message
    assert main([_write(tmp_path, "gap2.jsonl", lines)]) == 1


def test_a_seq_range_is_not_a_filter_that_allows_gaps(events, tmp_path):
    lines = _delete_seq(_lines("jsonl", AuditEvent.objects.filter(seq__gte=2), {"from_seq": 2}), 4)
    ok, message, _ = verify_file(_write(tmp_path, "range-gap.jsonl", lines))
    assert not ok and "gap" in message


def test_a_filtered_export_with_gaps_verifies_and_names_its_filters(events, churn, owner, tmp_path):
    from tests.factories import RegisteredModelFactory

    other = RegisteredModelFactory(name="fraud", owner=owner, team=churn.team)
    with transaction.atomic():
        audit_record(actor=owner, action="model.updated", obj=other, context=CLI)
        audit_record(actor=owner, action="model.updated", obj=churn, context=CLI)
    lines = _lines("jsonl", AuditEvent.objects.filter(model_name="churn"), {"model": "churn"})
    ok, message, summary = verify_file(_write(tmp_path, "churn.jsonl", lines))
    assert ok, message
    assert summary["gaps"] >= 1
    assert "filtered export (filters: model=churn)" in message


def test_a_manifest_claiming_a_gap_free_export_is_not_contiguous_is_refused(events, tmp_path):
    lines = _lines("jsonl")
    manifest = json.loads(lines[-1])
    manifest["manifest"]["contiguous"] = False
    ok, message, _ = verify_file(_write(tmp_path, "flag.jsonl", [*lines[:-1], json.dumps(manifest) + "\n"]))
    assert not ok and "contiguous" in message


def test_a_field_added_to_a_json_line_is_refused_naming_the_line_and_the_field(events, tmp_path):
    lines = _lines("jsonl")
    row = json.loads(lines[2])
    row["note"] = "approved by CEO"
    lines[2] = json.dumps(row) + "\n"
    ok, message, _ = verify_file(_write(tmp_path, "note.jsonl", lines))
    assert not ok
    assert "line 3" in message and "note" in message and f"seq {row['seq']}" in message


def test_a_duplicated_key_with_a_forged_value_first_is_refused(events, tmp_path):
    lines = _lines("jsonl")
    lines[2] = '{"actor_name":"mallory",' + lines[2][1:]
    assert json.loads(lines[2])["actor_name"] == "owner"  # json keeps the last value: the hash still matches
    ok, message, _ = verify_file(_write(tmp_path, "dup.jsonl", lines))
    assert not ok
    assert "line 3" in message and "duplicate key 'actor_name'" in message


def test_a_duplicated_key_in_the_manifest_is_refused(events, tmp_path):
    lines = _lines("jsonl")
    lines[-1] = '{"manifest":{"count":0,' + lines[-1][len('{"manifest":{') :]
    ok, message, _ = verify_file(_write(tmp_path, "dup-manifest.jsonl", lines))
    assert not ok and "duplicate key 'count'" in message


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_an_export_re_saved_with_a_byte_order_mark_verifies(events, tmp_path, fmt):
    path = _write(tmp_path, f"bom.{fmt}", _lines(fmt), encoding="utf-8-sig")
    with open(path, "rb") as raw:
        assert raw.read(3) == b"\xef\xbb\xbf"
    ok, message, summary = verify_file(path)
    assert ok, message
    assert summary["count"] == events
    assert main([path]) == 0
