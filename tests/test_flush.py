"""The flush that ends every transactional test (tests/conftest.py): a request of the live server
that reaches the database just as the flush starts can deadlock with it (the request holds one
table and asks for another the flush has taken; a clean clone's CI run lost a browser test's
teardown, and the next test's setup, to one). The flush is rolled back whole when PostgreSQL
picks it as the victim, so it is run again, and the tables end empty."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection

from registry.models import Tag
from tests.monitoring.helpers import other_connection

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _flush_waits_on(cursor, flusher: int, table: str) -> bool:
    cursor.execute(
        "SELECT count(*) FROM pg_locks WHERE pid = %s AND NOT granted AND relation = %s::regclass",
        [flusher, table],
    )
    return cursor.fetchone()[0] == 1


def test_a_request_that_deadlocks_the_flush_delays_it_and_the_tables_end_empty():
    Tag.objects.create(name="left-over")
    tables = connection.introspection.django_table_names(only_existing=True, include_views=False)
    first, last = tables[0], tables[-1]  # the order the flush's TRUNCATE takes them in
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        flusher = cursor.fetchone()[0]
    request, watcher = other_connection(), other_connection()
    outcome = {}

    def live_request():
        """Hold the last table, wait until the flush waits on it, then ask for the first."""
        try:
            with request.transaction(), request.cursor() as cursor, watcher.cursor() as watch:
                cursor.execute(f'SELECT count(*) FROM "{last}"')
                deadline = time.monotonic() + 10
                while not _flush_waits_on(watch, flusher, last) and time.monotonic() < deadline:
                    time.sleep(0.01)
                outcome["flush waited"] = _flush_waits_on(watch, flusher, last)
                cursor.execute(f'SELECT count(*) FROM "{first}"')
            outcome["request"] = "committed"
        except psycopg.errors.DeadlockDetected:
            outcome["request"] = "deadlock victim"

    thread = threading.Thread(target=live_request)
    thread.start()
    try:
        call_command("flush", interactive=False, verbosity=0)
    finally:
        thread.join(timeout=30)
        request.close()
        watcher.close()
    assert outcome == {"flush waited": True, "request": "committed"}
    assert not Tag.objects.exists()
