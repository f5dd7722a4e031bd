"""Exports verify offline with the standalone script; any tampering fails with exit code 1."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import transaction

from registry.models import AuditEvent
from registry.services.audit import CLI, audit_export_rows, audit_record
from registry.verify_export import main, verify_file
from tests.factories import RegisteredModelFactory

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def events(churn, owner, team):
    other = RegisteredModelFactory(name="fraud", owner=owner, team=team)
    with transaction.atomic():
        for i in range(6):
            model = churn if i % 2 == 0 else other
            audit_record(
                actor=owner,
                action="model.updated",
                obj=model,
                context=CLI,
                before={"description": f"v{i}", "ünïcode": "é"},
                after={"description": f"v{i + 1}", "n": i, "x": 0.25, "nested": {"b": [1, 2], "a": None}},
            )
    return AuditEvent.objects.count()


def _write(tmp_path, name, chunks) -> Path:
    path = tmp_path / name
    path.write_text("".join(chunks), encoding="utf-8")
    return path


def _run_script(path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "registry.verify_export", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_full_export_verifies_offline_with_the_standalone_script(events, tmp_path, fmt):
    path = _write(tmp_path, f"full.{fmt}", audit_export_rows(fmt=fmt))
    result = _run_script(path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"OK: {events} event(s), seq 1..{events} (contiguous chain)")
    head = AuditEvent.objects.order_by("-seq").first()
    assert head.hash in result.stdout


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_filtered_export_verifies_each_event_and_links_between_consecutive_ones(events, tmp_path, fmt):
    qs = AuditEvent.objects.filter(model_name="churn")
    path = _write(tmp_path, f"churn.{fmt}", audit_export_rows(qs, fmt=fmt, filters={"model": "churn"}))
    ok, message, summary = verify_file(str(path))
    assert ok, message
    assert summary["count"] == qs.count()
    assert "filtered export" in message


def test_the_jsonl_manifest_carries_count_range_and_chain_hashes(events, tmp_path):
    lines = "".join(audit_export_rows(fmt="jsonl")).splitlines()
    manifest = json.loads(lines[-1])["manifest"]
    first = AuditEvent.objects.order_by("seq").first()
    last = AuditEvent.objects.order_by("-seq").first()
    assert manifest["count"] == events == len(lines) - 1
    assert (manifest["first_seq"], manifest["last_seq"]) == (first.seq, last.seq)
    assert manifest["first_prev_hash"] == first.prev_hash
    assert manifest["last_hash"] == manifest["head_hash"] == last.hash
    assert manifest["contiguous"] is True
    assert manifest["exported_at"]


def test_a_tampered_jsonl_line_fails_with_a_clear_message_and_exit_1(events, tmp_path):
    lines = "".join(audit_export_rows(fmt="jsonl")).splitlines(keepends=True)
    row = json.loads(lines[2])
    row["actor_name"] = "mallory"
    lines[2] = json.dumps(row) + "\n"
    path = _write(tmp_path, "tampered.jsonl", lines)
    result = _run_script(path)
    assert result.returncode == 1
    assert f"FAILED: event seq {row['seq']} (line 3): hash mismatch" in result.stderr


def test_a_tampered_csv_cell_fails(events, tmp_path):
    text = "".join(audit_export_rows(fmt="csv"))
    assert '""v3""' in text  # JSON inside a quoted CSV cell
    path = _write(tmp_path, "tampered.csv", [text.replace('""v3""', '""v9""', 1)])
    ok, message, _ = verify_file(str(path))
    assert not ok and "hash mismatch" in message
    assert main([str(path)]) == 1


def test_a_deleted_line_of_a_full_export_fails(events, tmp_path):
    lines = "".join(audit_export_rows(fmt="jsonl")).splitlines(keepends=True)
    del lines[3]
    ok, message, _ = verify_file(str(_write(tmp_path, "deleted.jsonl", lines)))
    assert not ok
    assert "manifest mismatch: count" in message


def test_a_deleted_line_with_an_edited_manifest_still_fails_as_a_gap(events, tmp_path):
    lines = "".join(audit_export_rows(fmt="jsonl")).splitlines(keepends=True)
    del lines[3]
    manifest = json.loads(lines[-1])
    manifest["manifest"]["count"] -= 1
    lines[-1] = json.dumps(manifest) + "\n"
    ok, message, _ = verify_file(str(_write(tmp_path, "deleted2.jsonl", lines)))
    assert not ok
    assert "gap" in message


def test_swapped_lines_fail(events, tmp_path):
    lines = "".join(audit_export_rows(fmt="jsonl")).splitlines(keepends=True)
    lines[2], lines[3] = lines[3], lines[2]
    ok, message, _ = verify_file(str(_write(tmp_path, "swapped.jsonl", lines)))
    assert not ok
    assert "out of order" in message


def test_a_truncated_export_without_manifest_fails(events, tmp_path):
    lines = "".join(audit_export_rows(fmt="csv")).splitlines(keepends=True)
    result = _run_script(_write(tmp_path, "truncated.csv", lines[:-1]))
    assert result.returncode == 1
    assert "no manifest" in result.stderr


def test_garbage_and_missing_files_fail_cleanly(tmp_path):
    assert main([str(_write(tmp_path, "junk.jsonl", ["{not json\n"]))]) == 3
    assert main([str(_write(tmp_path, "junk.csv", ["a,b,c\n1,2,3\n"]))]) == 3
    assert main([str(tmp_path / "missing.csv")]) == 3
    assert main([]) == 2


def test_an_empty_export_verifies(db, tmp_path):
    path = _write(tmp_path, "empty.jsonl", audit_export_rows(AuditEvent.objects.none(), fmt="jsonl", filters={"x": 1}))
    assert main([str(path)]) == 0


def test_verify_export_uses_only_the_standard_library():
    source = (ROOT / "registry" / "verify_export.py").read_text()
    imports = {
        line.split()[1].split(".")[0]
        for line in source.splitlines()
        if line.startswith(("import ", "from ")) and not line.startswith("from __future__")
    }
    assert imports <= set(sys.stdlib_module_names)


def test_a_seq_range_export_is_contiguous_and_detects_a_deleted_line(events, tmp_path):
    qs = AuditEvent.objects.filter(seq__gte=3)
    lines = "".join(audit_export_rows(qs, fmt="csv", filters={"from_seq": 3})).splitlines(keepends=True)
    assert main([str(_write(tmp_path, "range.csv", lines))]) == 0
    manifest = json.loads(next(iter(__import__("csv").reader([lines[-1]])))[1])
    assert manifest["contiguous"] is True and manifest["first_seq"] == 3
    del lines[3]  # the second event (the header, then the #cell_escape row)
    last = json.loads(next(iter(__import__("csv").reader([lines[-1]])))[1])
    last["count"] -= 1
    lines[-1] = '#manifest,"' + json.dumps(last).replace('"', '""') + '"\n'
    ok, message, _ = verify_file(str(_write(tmp_path, "range-deleted.csv", lines)))
    assert not ok and "gap" in message


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_exports_of_tricky_values_verify(churn, owner, tmp_path, fmt):
    from tests.registry.test_audit_chain import TRICKY

    with transaction.atomic():
        for value in TRICKY:
            audit_record(actor=owner, action="t.tricky", obj=churn, context=CLI, before=value, after={"v": value})
    path = _write(tmp_path, f"tricky.{fmt}", audit_export_rows(fmt=fmt))
    ok, message, summary = verify_file(str(path))
    assert ok, message
    assert summary["count"] == AuditEvent.objects.count()


def test_the_copy_csv_path_writes_the_same_cells_as_the_python_path(churn, owner, events):
    import csv
    import io

    from tests.registry.test_audit_chain import TRICKY

    with transaction.atomic():
        for value in TRICKY:
            audit_record(actor=owner, action="t.tricky", obj=churn, context=CLI, before=value, after=None)
    head = (AuditEvent.objects.order_by("-seq").first().seq, "h")
    for qs in (AuditEvent.objects.all(), AuditEvent.objects.filter(model_name="churn"), AuditEvent.objects.none()):
        fast = "".join(audit_export_rows(qs, fmt="csv", head=head, exported_at="t", chunk_size=2))
        slow = "".join(audit_export_rows(qs, fmt="csv", head=head, exported_at="t", use_copy=False))
        # Same cells (PostgreSQL quotes empty strings as "" where Python writes nothing).
        assert list(csv.reader(io.StringIO(fast))) == list(csv.reader(io.StringIO(slow)))


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_an_export_with_a_field_over_128_kib_verifies(churn, owner, tmp_path, fmt):
    """The csv module refuses fields over 131072 characters by default: the verifier lifts that."""
    with transaction.atomic():
        audit_record(actor=owner, action="model.updated", obj=churn, context=CLI, after={"description": "é" * 200_000})
    path = _write(tmp_path, f"big.{fmt}", audit_export_rows(fmt=fmt))
    result = _run_script(path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK: 1 event(s)")


def test_a_malformed_file_exits_3_with_one_line_apart_from_a_broken_chain(events, tmp_path):
    csv_text = "".join(audit_export_rows(fmt="csv"))
    header, rest = csv_text.split("\n", 1)
    malformed = {
        "junk.jsonl": "{not json\n",
        "junk.csv": "a,b,c\n1,2,3\n",
        "short_row.csv": f"{header}\n1,2\n{rest}",
        "nul.csv": csv_text.replace("v3", "v\x003", 1),
        "latin1.csv": None,
    }
    for name, text in malformed.items():
        path = tmp_path / name
        if text is None:
            path.write_bytes(b"seq,\xe9t\xe9\n")
        else:
            path.write_text(text, encoding="utf-8")
        result = _run_script(path)
        assert result.returncode == 3, (name, result.stderr)
        assert result.stderr.startswith("UNREADABLE: ") and result.stderr.count("\n") == 1, (name, result.stderr)
        assert "Traceback" not in result.stderr
    assert main([str(tmp_path / "missing.csv")]) == 3
    tampered = _write(tmp_path, "tampered.csv", [csv_text.replace('""v3""', '""v9""', 1)])
    assert main([str(tampered)]) == 1


def test_help_documents_the_exit_codes(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for code in ("0 ", "1 ", "2 ", "3 "):
        assert f"\n  {code}" in out
