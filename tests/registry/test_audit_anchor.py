"""The audit log cannot be wiped silently: TRUNCATE is refused at the database, and the chain's
head is checkpointed outside the table, where ``verify_audit`` compares the chain with it."""

from __future__ import annotations

import datetime
import json
import re

import pytest
from django.db import DatabaseError, connection, transaction

from registry.models import AuditEvent
from registry.services.audit import CLI, audit_record
from tests.loopback import LoopbackServer, QuietHandler


def _record_some(churn, owner, n=3):
    with transaction.atomic():
        for i in range(n):
            audit_record(actor=owner, action="model.updated", obj=churn, context=CLI, after={"i": i})


def _execute(sql: str) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The test's own inserts leave deferred foreign-key checks, which TRUNCATE refuses first.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(sql)


# ---------------------------------------------------------------- TRUNCATE


@pytest.mark.postgres
@pytest.mark.parametrize(
    "sql",
    ["TRUNCATE registry_auditevent", "TRUNCATE registry_registeredmodel, registry_auditevent CASCADE"],
    ids=["the audit log", "several tables that name the audit log"],
)
def test_database_refuses_a_truncate_of_the_audit_log(churn, owner, sql):
    _record_some(churn, owner)
    with pytest.raises(DatabaseError, match="append-only"):
        _execute(sql)
    assert AuditEvent.objects.count() == 3


@pytest.mark.postgres
def test_truncate_is_allowed_only_in_a_transaction_that_sets_the_switch(churn, owner):
    _record_some(churn, owner)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL mlops.allow_audit_truncate = 'on'")
            cursor.execute("TRUNCATE registry_auditevent")
        assert AuditEvent.objects.count() == 0
        transaction.set_rollback(True)
    assert AuditEvent.objects.count() == 3
    with pytest.raises(DatabaseError, match="append-only"):
        _execute("TRUNCATE registry_auditevent")


def test_deleting_every_row_is_refused_on_both_databases(churn, owner):
    # SQLite has no TRUNCATE: its equivalent is an unqualified DELETE, which the row trigger refuses.
    _record_some(churn, owner)
    with pytest.raises(DatabaseError, match="append-only"):
        _execute("DELETE FROM registry_auditevent")
    assert AuditEvent.objects.count() == 3


def _fresh_connection():
    """A new connection with the test database's settings, as the application would open one."""
    import psycopg

    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return psycopg.connect(**{k: v for k, v in params.items() if v not in (None, "")}, autocommit=True)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_transactional_test_can_write_audit_events(churn, owner):
    # Its flush (TRUNCATE of every table) must get through: the test harness allows it for flushes.
    _record_some(churn, owner)
    assert AuditEvent.objects.count() == 3


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_after_a_flush_normal_connections_are_refused_again(churn, owner):
    assert AuditEvent.objects.filter(action="model.updated").count() == 0  # the flush above worked
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('mlops.allow_audit_truncate', true)")
        assert cursor.fetchone()[0] in (None, "", "off")
    _record_some(churn, owner, n=1)
    with _fresh_connection() as conn:
        with pytest.raises(Exception, match="append-only"):
            conn.execute("TRUNCATE registry_auditevent")
    assert AuditEvent.objects.count() >= 1


# ---------------------------------------------------------------- checkpoints


@pytest.fixture
def checkpoint_file(settings, tmp_path):
    path = tmp_path / "anchor" / "checkpoints.jsonl"
    settings.AUDIT_CHECKPOINT_FILE = str(path)
    settings.AUDIT_CHECKPOINT_URL = ""
    return path


def _command(name: str, *args: str) -> tuple[int, str, str]:
    from io import StringIO

    from django.core.management import call_command

    out, err = StringIO(), StringIO()
    try:
        call_command(name, *args, stdout=out, stderr=err)
    except SystemExit as exc:
        return int(exc.code or 0), out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def _lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _head() -> tuple[int, str]:
    event = AuditEvent.objects.order_by("-seq").first()
    return event.seq, event.hash


class _Wipe:
    """Remove rows as an attacker with the table owner's rights would (triggers off)."""

    def __enter__(self):
        from tests.registry.test_audit_chain import _TriggersOff

        self._off = _TriggersOff()
        return self._off.__enter__()

    def __exit__(self, *exc):
        return self._off.__exit__(*exc)


def test_audit_checkpoint_command_appends_the_head_to_the_file(churn, owner, checkpoint_file):
    _record_some(churn, owner)
    code, out, _ = _command("audit_checkpoint")
    assert code == 0 and str(checkpoint_file) in out
    _record_some(churn, owner, n=2)
    assert _command("audit_checkpoint")[0] == 0
    first, second = _lines(checkpoint_file)
    seq, head_hash = _head()
    assert second["seq"] == seq and second["head_hash"] == head_hash
    assert first["seq"] == seq - 2
    assert datetime.datetime.fromisoformat(second["time"]) >= datetime.datetime.fromisoformat(first["time"])


def test_the_beat_schedule_runs_the_checkpoint_task(churn, owner, checkpoint_file):
    from django_celery_beat.models import PeriodicTask

    from registry.tasks import audit_checkpoint

    schedule = PeriodicTask.objects.get(task="registry.tasks.audit_checkpoint")
    assert schedule.enabled and schedule.interval.every <= 3600
    _record_some(churn, owner)
    audit_checkpoint.delay()  # eager in unit tests: the task body runs here
    assert _lines(checkpoint_file)[-1]["seq"] == _head()[0]


class _Receiver(LoopbackServer):
    """A real HTTP server on 127.0.0.1 that records the checkpoints POSTed to it."""

    def __init__(self, status: int = 204):
        received = self.received = []

        class Handler(QuietHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                received.append((self.headers.get("Content-Type"), self.rfile.read(length)))
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"secret internal body")

        super().__init__(Handler, "/checkpoints")


@pytest.fixture
def receiver(settings):
    # The receiver is a loopback address: allow-list it for the outbound-URL policy.
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    servers: list[_Receiver] = []

    def make(status: int = 204) -> _Receiver:
        servers.append(_Receiver(status))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def test_checkpoints_are_posted_to_the_configured_url(churn, owner, checkpoint_file, receiver, settings):
    sink = receiver()
    settings.AUDIT_CHECKPOINT_URL = sink.url
    _record_some(churn, owner)
    code, out, _ = _command("audit_checkpoint")
    assert code == 0 and "HTTP 204" in out
    ((content_type, body),) = sink.received
    assert content_type == "application/json"
    seq, head_hash = _head()
    assert json.loads(body) == {"seq": seq, "head_hash": head_hash, "time": _lines(checkpoint_file)[-1]["time"]}


def test_a_url_that_refuses_the_checkpoint_fails_the_command_and_the_file_is_still_written(
    churn, owner, checkpoint_file, receiver, settings
):
    sink = receiver(status=500)
    settings.AUDIT_CHECKPOINT_URL = sink.url
    _record_some(churn, owner)
    code, out, err = _command("audit_checkpoint")
    assert code == 1 and "HTTP 500" in err
    assert "secret internal body" not in out + err  # the response body is never read back
    assert _lines(checkpoint_file)[-1]["seq"] == _head()[0]


def test_verify_audit_matches_the_last_checkpoint_of_the_configured_file(churn, owner, checkpoint_file):
    _record_some(churn, owner)
    _command("audit_checkpoint")
    _record_some(churn, owner, n=2)  # the chain may grow past its checkpoint
    code, out, _ = _command("verify_audit", "--no-progress")
    assert code == 0 and "OK: 5 events" in out and "matches the checkpoint" in out


def test_a_wiped_chain_fails_verify_audit_against_its_checkpoint(churn, owner, checkpoint_file):
    """The reported attack: wipe the table, and verify_audit used to say "OK: 0 events"."""
    _record_some(churn, owner)
    _command("audit_checkpoint")
    with _Wipe():
        AuditEvent.objects.all().delete()
    code, out, err = _command("verify_audit", "--no-progress")
    assert code == 1 and "OK" not in out
    assert "shorter than the last checkpoint" in err and "head seq 0" in err
    # Without the checkpoint the empty chain is self-consistent: the checkpoint is what catches it.
    assert _command("verify_audit", "--no-progress", "--no-checkpoint")[0] == 0


def test_a_rebuilt_chain_fails_verify_audit_against_its_checkpoint(churn, owner, checkpoint_file):
    _record_some(churn, owner)
    _command("audit_checkpoint")
    with _Wipe():
        AuditEvent.objects.all().delete()
    _record_some(churn, owner, n=4)  # as long as before, links up by itself, other hashes
    code, _, err = _command("verify_audit", "--no-progress")
    assert code == 1 and "disagrees with the last checkpoint" in err


def test_verify_audit_reads_a_checkpoint_file_given_on_the_command_line(churn, owner, checkpoint_file, tmp_path):
    _record_some(churn, owner)
    elsewhere = tmp_path / "kept-by-the-customer.jsonl"
    _command("audit_checkpoint", "--file", str(elsewhere))
    assert not checkpoint_file.exists()
    with _Wipe():
        AuditEvent.objects.filter(seq=_head()[0]).delete()  # drop the newest event: no gap left behind
    assert _command("verify_audit", "--no-progress")[0] == 0  # no default file: chain only
    code, _, err = _command("verify_audit", "--no-progress", "--checkpoint", str(elsewhere))
    assert code == 1 and "shorter than the last checkpoint" in err


@pytest.mark.parametrize("content", [None, "not json\n", '{"seq": -1, "head_hash": "x", "time": "t"}\n'])
def test_verify_audit_with_a_missing_or_bad_checkpoint_file_is_an_error(churn, owner, tmp_path, content):
    from django.core.management.base import CommandError

    path = tmp_path / "cp.jsonl"
    if content is not None:
        path.write_text(content)
    with pytest.raises(CommandError, match="checkpoint"):
        _command("verify_audit", "--no-progress", "--checkpoint", str(path))


# ---------------------------------------------------------------- database roles (docs/audit.md)


def _documented_sql(block: str) -> list[str]:
    """The statements of one ``<!-- roles:… -->`` SQL block of docs/audit.md."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "audit.md").read_text()
    found = re.search(rf"<!-- roles:{block} -->\s*```sql\n(.*?)```", text, re.S)
    assert found, f"docs/audit.md has no roles:{block} block"
    return [s.strip() for s in found.group(1).split(";") if s.strip()]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_documented_roles_leave_the_application_only_insert_on_the_audit_log():
    import os

    import psycopg

    from registry.verify_export import GENESIS_HASH

    suffix = f"t{os.getpid()}"
    owner, app, database = f"audit_owner_{suffix}", f"audit_app_{suffix}", connection.settings_dict["NAME"]

    def adapt(sql: str) -> str:
        sql = sql.replace("mlops_owner", owner).replace("mlops_app", app)
        return re.sub(r"\bmlops\b", f'"{database}"', sql)

    admin = _fresh_connection()
    found = admin.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'registry_auditevent'")
    table_owner = found.fetchone()[0]
    try:
        for sql in _documented_sql("cluster"):
            if not sql.startswith("CREATE DATABASE"):  # the test database stands in for it
                admin.execute(adapt(sql))
        for sql in _documented_sql("database"):
            admin.execute(adapt(sql))
        admin.execute(f"ALTER TABLE registry_auditevent OWNER TO {owner}")  # as `migrate` by the owner leaves it
        for sql in _documented_sql("grants"):
            admin.execute(adapt(sql))
        params = {**connection.get_connection_params(), "user": app, "password": "change-me-app"}
        params = {k: v for k, v in params.items() if k in ("host", "port", "dbname", "user", "password") and v}
        with psycopg.connect(**params, autocommit=True) as as_app:
            as_app.execute(
                "INSERT INTO registry_auditevent (seq, timestamp, actor_name, action, object_type, object_id,"
                " object_repr, model_name, request_id, source, prev_hash, hash)"
                " VALUES (1, now(), 'app', 't.role', '', '', '', '', '', 'cli', %s, %s)",
                [GENESIS_HASH, "f" * 64],
            )
            assert as_app.execute("SELECT count(*) FROM registry_auditevent").fetchone()[0] == 1
            refused = [
                "UPDATE registry_auditevent SET action = 'tampered'",
                "DELETE FROM registry_auditevent",
                "TRUNCATE registry_auditevent",
                "SET mlops.allow_audit_truncate = 'on'; TRUNCATE registry_auditevent",
                "ALTER TABLE registry_auditevent DISABLE TRIGGER ALL",
            ]
            for sql in refused:
                with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied|must be owner"):
                    as_app.execute(sql)
            owned = "SELECT count(*) FROM pg_class WHERE relowner = (SELECT oid FROM pg_roles WHERE rolname = %s)"
            assert as_app.execute(owned, [app]).fetchone()[0] == 0
            assert as_app.execute("SELECT action FROM registry_auditevent").fetchone()[0] == "t.role"
    finally:
        admin.execute(f'ALTER TABLE registry_auditevent OWNER TO "{table_owner}"')
        admin.execute(f'REASSIGN OWNED BY {owner} TO "{table_owner}"')
        admin.execute("ALTER SCHEMA public OWNER TO pg_database_owner")
        admin.execute("GRANT USAGE ON SCHEMA public TO PUBLIC")
        admin.execute(f'GRANT CONNECT, TEMPORARY ON DATABASE "{database}" TO PUBLIC')
        for role in (owner, app):
            admin.execute(f"DROP OWNED BY {role}")
            admin.execute(f"DROP ROLE {role}")
        admin.close()
