import datetime
import decimal
import uuid

import pytest
from django.db import IntegrityError, connection, transaction

from registry.choices import Stage
from registry.models import AuditEvent
from registry.services.audit import CLI, audit_record, event_payload
from registry.verify_export import GENESIS_HASH, canonical_json, event_hash
from tests.factories import ModelVersionFactory


def test_audit_events_chain_from_genesis(churn, owner):
    with transaction.atomic():
        first = audit_record(actor=owner, action="model.created", obj=churn, context=CLI, after={"name": "churn"})
        second = audit_record(
            actor=owner, action="model.updated", obj=churn, context=CLI, before={"a": 1}, after={"a": 2}
        )
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.hash
    assert second.seq == first.seq + 1
    stored = AuditEvent.objects.get(seq=second.seq)
    assert event_hash(stored.prev_hash, event_payload(stored)) == stored.hash
    assert stored.model_name == "churn"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_audit_record_refuses_to_run_outside_a_transaction(churn, owner):
    with pytest.raises(RuntimeError):
        audit_record(actor=owner, action="x", obj=churn, context=CLI)


def test_database_refuses_update_and_delete_of_audit_events(churn, owner):
    with transaction.atomic():
        event = audit_record(actor=owner, action="model.created", obj=churn, context=CLI)
    with pytest.raises(Exception, match="append-only"):
        with transaction.atomic():
            AuditEvent.objects.filter(seq=event.seq).update(action="tampered")
    with pytest.raises(Exception, match="append-only"):
        with transaction.atomic():
            AuditEvent.objects.filter(seq=event.seq).delete()
    assert connection.vendor in ("postgresql", "sqlite")


def test_database_allows_only_one_production_version_per_model(churn):
    ModelVersionFactory(model=churn, stage=Stage.PRODUCTION)
    with pytest.raises(IntegrityError):
        with transaction.atomic():
            ModelVersionFactory(model=churn, stage=Stage.PRODUCTION)


# ---------------------------------------------------------------- concurrency


def _append_events(model_pk: int, user_pk: int, count: int, errors: list) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connections

    from registry.models import RegisteredModel

    try:
        user = get_user_model().objects.get(pk=user_pk)
        model = RegisteredModel.objects.get(pk=model_pk)
        for i in range(count):
            with transaction.atomic():
                audit_record(actor=user, action="test.concurrent", obj=model, context=CLI, after={"i": i})
    except Exception as exc:  # reported to the main thread
        errors.append(exc)
    finally:
        connections.close_all()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_never_fork_or_gap_the_chain(churn, owner):
    import threading

    from registry.services.audit import audit_verify

    start = AuditEvent.objects.count()
    errors: list = []
    threads = [threading.Thread(target=_append_events, args=(churn.pk, owner.pk, 25, errors)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    rows = list(AuditEvent.objects.order_by("seq").values_list("seq", "prev_hash", "hash"))
    assert len(rows) == start + 150
    assert [r[0] for r in rows] == list(range(1, len(rows) + 1))
    assert len({r[1] for r in rows}) == len(rows)  # no two events share a parent: no fork
    for (_, _, h), (_, prev, _) in zip(rows, rows[1:], strict=False):
        assert prev == h
    result = audit_verify()
    assert result.ok and result.count == len(rows)


# ---------------------------------------------------------------- verify_audit and tampering


@pytest.fixture(autouse=True)
def _own_checkpoint_file(settings, tmp_path):
    """verify_audit compares with the configured checkpoint file: each test has its own."""
    settings.AUDIT_CHECKPOINT_FILE = str(tmp_path / "checkpoints.jsonl")


def _record_some(churn, owner, n=5):
    with transaction.atomic():
        for i in range(n):
            audit_record(
                actor=owner, action="model.updated", obj=churn, context=CLI, before={"i": i}, after={"i": i + 1}
            )


def _run_verify_audit():
    from io import StringIO

    from django.core.management import call_command

    out, err = StringIO(), StringIO()
    code = 0
    try:
        call_command("verify_audit", "--no-progress", stdout=out, stderr=err)
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue(), err.getvalue()


class _TriggersOff:
    """Tamper with the audit table as an attacker with raw database access would."""

    def __enter__(self):
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("ALTER TABLE registry_auditevent DISABLE TRIGGER ALL")
            else:
                cursor.execute("DROP TRIGGER IF EXISTS registry_auditevent_no_update")
                cursor.execute("DROP TRIGGER IF EXISTS registry_auditevent_no_delete")
        return self

    def __exit__(self, *exc):
        from importlib import import_module

        migration = import_module("registry.migrations.0001_squashed_0020_evaluation_created_at_from_the_clock")
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("ALTER TABLE registry_auditevent ENABLE TRIGGER ALL")
            else:
                for sql in migration.SQLITE_FORWARD:
                    cursor.execute(sql)
        return False


def test_verify_audit_reports_ok_with_count_and_head_hash(churn, owner):
    _record_some(churn, owner)
    code, out, _ = _run_verify_audit()
    head = AuditEvent.objects.order_by("-seq").first()
    assert code == 0
    assert f"OK: {AuditEvent.objects.count()} events" in out
    assert head.hash in out


def _edit(target):
    AuditEvent.objects.filter(seq=target).update(after={"i": 999})


def _delete(target):
    AuditEvent.objects.filter(seq=target).delete()


@pytest.mark.parametrize(("tamper", "finding"), [(_edit, "altered"), (_delete, "missing")], ids=["edited", "deleted"])
def test_verify_audit_detects_an_edited_or_deleted_event(churn, owner, tamper, finding):
    _record_some(churn, owner)
    target = AuditEvent.objects.order_by("seq")[2].seq
    with _TriggersOff():
        tamper(target)
    code, _, err = _run_verify_audit()
    assert code == 1
    assert f"BROKEN at seq {target}" in err
    assert finding in err


def test_verify_audit_detects_reordered_events(churn, owner):
    _record_some(churn, owner)
    a, b = AuditEvent.objects.order_by("seq")[1], AuditEvent.objects.order_by("seq")[2]
    # Swap the two events' contents (keeping each row's own hash): the order of history changes.
    fields = ["timestamp", "action", "before", "after", "prev_hash", "hash"]
    with _TriggersOff():
        AuditEvent.objects.filter(seq=a.seq).update(hash="x" * 64)
        AuditEvent.objects.filter(seq=b.seq).update(**{f: getattr(a, f) for f in fields})
        AuditEvent.objects.filter(seq=a.seq).update(**{f: getattr(b, f) for f in fields})
    code, _, err = _run_verify_audit()
    assert code == 1
    assert f"BROKEN at seq {a.seq}" in err


def test_verify_audit_detects_a_rehashed_edit_by_the_broken_link(churn, owner):
    """An attacker who recomputes the edited event's own hash still breaks the next link."""
    _record_some(churn, owner)
    target = AuditEvent.objects.order_by("seq")[2]
    target.after = {"i": 999}
    new_hash = event_hash(target.prev_hash, event_payload(target))
    with _TriggersOff():
        AuditEvent.objects.filter(seq=target.seq).update(after={"i": 999}, hash=new_hash)
    code, _, err = _run_verify_audit()
    assert code == 1
    assert f"BROKEN at seq {target.seq + 1}" in err
    assert "prev_hash" in err


def test_triggers_are_back_after_tampering_tests(churn, owner):
    _record_some(churn, owner, n=1)
    with _TriggersOff():
        pass
    with pytest.raises(Exception, match="append-only"):
        with transaction.atomic():
            AuditEvent.objects.update(action="tampered")


def test_audit_context_ignores_a_forged_forwarded_for_header(rf):
    from registry.services.audit import AuditContext

    request = rf.get("/", HTTP_X_FORWARDED_FOR="not-an-ip, 10.0.0.1", REMOTE_ADDR="192.0.2.7")
    request.id = "abc"
    context = AuditContext.from_request(request, source="api")
    assert context.ip == "192.0.2.7"
    assert context.request_id == "abc"
    assert AuditContext.from_request(rf.get("/", REMOTE_ADDR="::ffff:198.51.100.4")).ip == "198.51.100.4"


# ---------------------------------------------------------------- canonical encoding and parallel verify

TRICKY = [
    {"text": 'quote " backslash \\ newline \n tab \t nul \x00 bell \x07', "ünï": "中文 ✓ 🙂", "\u2028": "line sep"},
    {"f": 0.1, "g": 1e-7, "h": 123456.789, "neg": -0.0, "big": 2**53 + 1, "zero": 0, "t": True, "n": None},
    {"huge": 1e20, "tiny": 1.5e-300, "nan": float("nan"), "inf": float("-inf"), "sum": 0.1 + 0.2},
    {"nested": {"z": [1, {"b": None, "a": [True, False]}], "a": {}}, "empty": [], "": "empty key"},
    "a bare string",
    [3, 2, 1],
]


def test_fast_canonical_rows_hash_exactly_like_the_writer(churn, owner):
    from registry.services.audit import AuditContext, audit_verify
    from registry.services.audit.rows import canonical_row_text, canonical_rows

    with transaction.atomic():
        for i, value in enumerate(TRICKY):
            context = AuditContext(
                source="api", request_id=f"r\u00e9q-{i}", ip=["10.0.0.1", "2001:db8::1", None][i % 3]
            )
            audit_record(actor=owner, action="t.tricky", obj=churn, context=context, before=value, after={"v": value})
    stored = {e.seq: e for e in AuditEvent.objects.all()}
    rows = list(canonical_rows(AuditEvent.objects.all(), chunk_size=2))
    assert len(rows) == len(stored)
    for row in rows:
        event = stored[row.seq]
        assert canonical_row_text(row) == canonical_json(event_payload(event))
        assert event_hash(event.prev_hash, event_payload(event)) == event.hash
    assert audit_verify().ok
    first = stored[min(stored)]
    assert "\x00" not in first.before["text"] and "\ufffd" in first.before["text"]


# ---------------------------------------------------------------- fast verify (orjson) against the exact encoder

AWKWARD = [
    {"e16": 1e16, "e20": -1e20, "tiny": 1e-7, "e5": 1e-05, "e4": 0.0001, "negzero": -0.0, "third": 1 / 3},
    {"big": 2**64, "bigger": 2**64 + 1, "neg": -(2**63) - 1, "i64": 2**63 - 1, "u64": 2**64 - 1, "huge": 10**40},
    {"text": "ctl \x01\x1f\x7f bs \b ff \f cr \r", "nonascii": "é 中文 🙂 \u00a0", "u2028": "a\u2028b\u2029c"},
    {"nested": [{"b": [1.5e-300, {"z": None, "a": [True, False, []]}], "a": {}}], "ü": {"é": 1, "e": 2, "E": 3}},
    {
        "decimal": decimal.Decimal("1.10"),
        "when": datetime.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=datetime.UTC),
        "day": datetime.date(2026, 1, 2),
        "id": uuid.UUID(int=7),
        "tags": {"b", "a"},
    },
    {"key e+1": "value e+2", "plain": 1},
    0.00001,
    2**70,
]


def _record_awkward(churn, owner):
    with transaction.atomic():
        for i, value in enumerate(AWKWARD):
            audit_record(
                actor=owner, action="t.awkward", obj=churn, context=CLI, object_repr=f"awkward \u2028 {i}",
                before={"v": value}, after=value,
            )  # fmt: skip
    return list(AuditEvent.objects.filter(action="t.awkward").order_by("seq"))


def _exact_calls(monkeypatch):
    """Count the rows the fast path could not confirm (recomputed by the exact encoder)."""
    from registry.services.audit import verify as audit_module

    calls: list = []
    exact = audit_module._exact_row_hash

    def counting(row, json_text):
        calls.append(row.seq)
        return exact(row, json_text)

    monkeypatch.setattr(audit_module, "_exact_row_hash", counting)
    return calls


def test_fast_verify_accepts_awkward_payloads_and_agrees_with_the_exact_encoder(churn, owner, monkeypatch):
    from registry.services.audit import audit_verify

    events = _record_awkward(churn, owner)
    for event in events:  # the writer's own hash, by the standard-library rule
        assert event_hash(event.prev_hash, event_payload(event)) == event.hash
    calls = _exact_calls(monkeypatch)
    for chunk_size in (1, 3, 20_000):
        calls.clear()
        result = audit_verify(chunk_size=chunk_size)
        assert result.ok, result.message
        assert result.count == AuditEvent.objects.count()
        # Rows whose numbers orjson writes differently (1e-05, 1e-7, integers beyond 64 bits,
        # or any "e+") go to the exact path; every other row is confirmed by the fast text.
        awkward = {e.seq for e in events}
        assert set(calls) <= awkward
        assert len(calls) < len(awkward)  # the strings-only and set/date payloads stay on the fast path


def test_fast_verify_is_used_for_ordinary_events(churn, owner, monkeypatch):
    from registry.services.audit import audit_verify

    _record_some(churn, owner, n=6)
    calls = _exact_calls(monkeypatch)
    assert audit_verify(chunk_size=4).ok
    assert calls == []


@pytest.mark.parametrize("index", range(len(AWKWARD)))
def test_a_tampered_awkward_event_is_detected(churn, owner, index):
    from registry.services.audit import audit_verify
    from registry.services.audit.writer import _jsonable

    events = _record_awkward(churn, owner)
    target = events[index]
    value = AWKWARD[index]
    tampered = {"changed": True} if not isinstance(value, dict) else {**_jsonable(value), "added": 1}
    with _TriggersOff():
        AuditEvent.objects.filter(seq=target.seq).update(after=tampered)
    result = audit_verify(chunk_size=3)
    assert not result.ok
    assert result.broken_seq == target.seq
    assert "altered" in result.message
    assert result.head_seq == target.seq - 1
    assert result.head_hash == target.prev_hash


@pytest.mark.parametrize(
    ("stored", "hashed"),
    [
        (2**64, float(2**64)),  # orjson parses a big integer as this float
        (2**64 + 1, 2**64),  # and these two big integers as the same float
        (-(2**63) - 1, -(2**63) - 2),
        (10**30, 10**30 + 1),
    ],
)
def test_a_lossy_fast_parse_never_hides_a_change(churn, owner, stored, hashed):
    """Forge an event whose stored value differs from the hashed one only beyond what orjson
    can parse exactly: the fast text may match the forged hash, the exact encoder must not."""
    from registry.services.audit import audit_verify

    _record_some(churn, owner, n=2)
    with transaction.atomic():
        event = audit_record(actor=owner, action="t.big", obj=churn, context=CLI, after={"n": stored})
    forged = event_payload(event)
    forged["after"] = {"n": hashed}
    with _TriggersOff():
        AuditEvent.objects.filter(seq=event.seq).update(hash=event_hash(event.prev_hash, forged))
    result = audit_verify()
    assert not result.ok
    assert result.broken_seq == event.seq
    assert "altered" in result.message


def test_verify_stops_at_a_break_and_leaves_the_connection_usable(churn, owner):
    """A break found early in a chunk ends the chunk's stream cleanly: the caller's
    transaction (here the test's) is not aborted."""
    from registry.services.audit import audit_verify

    _record_some(churn, owner, n=8)
    first = AuditEvent.objects.order_by("seq").first()
    with _TriggersOff():
        AuditEvent.objects.filter(seq=first.seq).update(action="tampered")
    result = audit_verify(chunk_size=1000)
    assert not result.ok and result.broken_seq == first.seq
    assert result.count == 0 and result.head_hash == GENESIS_HASH
    assert AuditEvent.objects.count() == 8
    assert audit_verify(chunk_size=3).broken_seq == first.seq


def test_verify_in_chunks_with_progress_and_a_bound(churn, owner):
    from registry.services.audit import audit_verify

    _record_some(churn, owner, n=7)
    events = list(AuditEvent.objects.order_by("seq"))
    seen: list[int] = []
    result = audit_verify(chunk_size=3, progress=seen.append)
    assert result.ok and result.count == 7 and sum(seen) == 7
    assert result.head_seq == events[-1].seq and result.head_hash == events[-1].hash
    bounded = audit_verify(chunk_size=2, up_to_seq=events[3].seq)
    assert bounded.ok and bounded.count == 4 and bounded.head_hash == events[3].hash
    beyond = audit_verify(chunk_size=2, up_to_seq=events[-1].seq + 2)
    assert not beyond.ok and beyond.broken_seq == events[-1].seq + 1 and "ends early" in beyond.message
    assert beyond.head_hash == events[-1].hash


@pytest.mark.postgres
def test_verify_without_chunked_streaming_gives_the_same_answers(churn, owner, monkeypatch):
    """libpq older than 17 has no chunked rows mode: each chunk is fetched whole instead."""
    from psycopg import pq

    from registry.services.audit import audit_verify

    _record_awkward(churn, owner)
    streamed = audit_verify(chunk_size=3)
    monkeypatch.setattr(pq, "version", lambda: 160000)
    fetched = audit_verify(chunk_size=3)
    assert streamed == fetched and fetched.ok
    target = AuditEvent.objects.order_by("seq")[2].seq
    with _TriggersOff():
        AuditEvent.objects.filter(seq=target).update(object_repr="tampered")
    assert audit_verify(chunk_size=3).broken_seq == target
