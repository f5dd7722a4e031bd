"""The audit log cannot be wiped silently: TRUNCATE is refused at the database, and the chain's
head is checkpointed outside the table, where ``verify_audit`` compares the chain with it."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from registry.models import AuditEvent
from registry.services.audit import CLI, audit_record


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
def test_database_refuses_truncate_of_the_audit_log(churn, owner):
    _record_some(churn, owner)
    with pytest.raises(DatabaseError, match="append-only"):
        _execute("TRUNCATE registry_auditevent")
    assert AuditEvent.objects.count() == 3


@pytest.mark.postgres
def test_database_refuses_a_truncate_of_several_tables_that_names_the_audit_log(churn, owner):
    _record_some(churn, owner)
    with pytest.raises(DatabaseError, match="append-only"):
        _execute("TRUNCATE registry_registeredmodel, registry_auditevent CASCADE")
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
