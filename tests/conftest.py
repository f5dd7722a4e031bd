"""Shared fixtures: one user per role (owner, reviewer, reviewer2, auditor, admin, outsider),
a team, a model, and logged-in web and API clients for any of them."""

from __future__ import annotations

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from registry.models import AuditEvent
from registry.rules import AUDITOR_GROUP, PRIVACY_GROUP, REVIEWER_GROUP, usable_scopes
from registry.services.audit import CLI
from registry.services.tokens import token_create
from tests.factories import ModelVersionFactory, RegisteredModelFactory, TeamFactory, UserFactory
from tests.redis_db import use_own_broker

FLUSH_ATTEMPTS = 5  # a flush that loses a deadlock to a live server's request runs again


def pytest_configure(config):
    """A fast password hasher: every test makes several users, and PBKDF2 costs ~0.3 s each on
    these small machines. Logins through the real form still verify real (MD5-hashed) passwords."""
    from django.conf import settings

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    _flushes_may_truncate_the_audit_log()
    use_own_broker()


# The order in which a parallel run starts the tests (make test prints the slowest ones): the
# longest first, so that no process is left running one of them alone at the end. This runs
# before pytest-django's own ordering (tryfirst), whose stable sort then groups the tests as
# Django does: the transactional ones after the others, since their flush empties the tables
# the migrations filled (policies, groups, schedules).
#
# The integration phase hands out whole files in the order of their first test (`--dist loadfile
# --no-loadscope-reorder`). The files with tests that need no transaction (the MLflow and OIDC
# files) go out first, by pytest-django's grouping; then the others in this order. A process takes
# its next file while it still has two tests to run (pytest-xdist's prefetch) and holds it behind
# a long test: the demo tour is followed by a short one-test file, and schemathesis, which the
# next process to run low takes, by another; then the rest from the longest down.
STARTS_FIRST = [
    "tests/browser/test_demo_tour.py",  # ~250 s: the whole demo and its story, then every page as each user
    "tests/integration/test_alert_queue.py",  # short, held behind the tour
    "tests/integration/test_schemathesis.py",  # ~185 s: a 3-minute budget
    "tests/integration/test_onboarding_snippets.py",  # short, held behind schemathesis
    "tests/integration/test_healthz.py",
    "tests/browser/test_fairness_gate.py",
    "tests/integration/test_faults.py",
    "tests/integration/test_fault_sweeps.py",
    "tests/integration/test_monitoring_worker.py",
    "tests/integration/test_mlflow_worker.py",
    "tests/integration/test_client_cli.py",
    "tests/integration/test_incident_reminders.py",
    "tests/monitoring/test_demo.py",
    "tests/monitoring/test_fairness_demo.py",
]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    rank = {path: i for i, path in enumerate(STARTS_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


def _flushes_may_truncate_the_audit_log():
    """Transactional tests end with Django's flush, which the audit table's triggers refuse
    (registry migration 0001): a TRUNCATE of every table on PostgreSQL, a DELETE of every row on
    SQLite. On PostgreSQL the flush's own transaction sets the switch the trigger honours (SET
    LOCAL: it ends with that transaction); on SQLite, which has no such switch, the flush's
    transaction drops the DELETE trigger and creates it again before it commits. Every other
    statement, in tests as in production, is refused.

    On PostgreSQL a request of the live server that reaches the database as the flush starts can
    deadlock with its TRUNCATE (tests/test_flush.py); when the flush is the victim its
    transaction is rolled back whole, and it runs again once the request has finished."""
    import importlib
    import time

    from django.db import OperationalError
    from django.db.backends.postgresql.base import DatabaseWrapper as PostgreSQL
    from django.db.backends.sqlite3.base import DatabaseWrapper as SQLite
    from psycopg.errors import DeadlockDetected

    registry_schema = importlib.import_module(
        "registry.migrations.0001_squashed_0020_evaluation_created_at_from_the_clock"
    )
    drop, create = (next(sql for sql in statements if "no_delete" in sql)
                    for statements in (registry_schema.SQLITE_REVERSE, registry_schema.SQLITE_FORWARD))  # fmt: skip
    flushes = {
        PostgreSQL: lambda sql_list: ["SET LOCAL mlops.allow_audit_truncate = 'on'", *sql_list],
        SQLite: lambda sql_list: [drop, *sql_list, create],
    }
    for wrapper, around in flushes.items():
        operations = wrapper.ops_class
        flush = operations.execute_sql_flush

        def execute_sql_flush(self, sql_list, flush=flush, around=around):
            for attempt in range(1, FLUSH_ATTEMPTS + 1):
                try:
                    return flush(self, around(sql_list) if sql_list else sql_list)
                except OperationalError as error:
                    if attempt == FLUSH_ATTEMPTS or not isinstance(error.__cause__, DeadlockDetected):
                        raise
                    time.sleep(0.1 * attempt)

        operations.execute_sql_flush = execute_sql_flush


@pytest.fixture(autouse=True)
def _empty_cache():
    """Each test starts with an empty cache: the database is rolled back between tests, and
    with it the inventory revision that cached pages are keyed on (registry/cache.py)."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _celery_eager_outside_integration(request, settings):
    """Unit tests run tasks inline; tests/integration use a real worker instead."""
    if "integration" in request.keywords:
        yield
        return
    from mlops_portal.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


@pytest.fixture
def team(db):
    return TeamFactory(name="Risk Analytics", slug="risk-analytics")


@pytest.fixture
def owner(db, team):
    user = UserFactory(username="owner", first_name="Olive", last_name="Owner")
    team.members.add(user)
    return user


def _in_group(user, name):
    group, _ = Group.objects.get_or_create(name=name)
    user.groups.add(group)
    return user


@pytest.fixture
def reviewer(db):
    return _in_group(UserFactory(username="reviewer"), REVIEWER_GROUP)


@pytest.fixture
def reviewer2(db):
    return _in_group(UserFactory(username="reviewer2"), REVIEWER_GROUP)


@pytest.fixture
def auditor(db):
    return _in_group(UserFactory(username="auditor"), AUDITOR_GROUP)


@pytest.fixture
def privacy(db):
    """A privacy officer."""
    return _in_group(UserFactory(username="privacy"), PRIVACY_GROUP)


@pytest.fixture
def admin_user(db):
    return UserFactory(username="admin", is_staff=True, is_superuser=True)


@pytest.fixture
def outsider(db):
    """Logged in, but in no team and no group: must see nothing and do nothing."""
    return UserFactory(username="outsider")


@pytest.fixture
def roles(owner, reviewer, reviewer2, auditor, privacy, admin_user, outsider):
    return {
        "owner": owner,
        "reviewer": reviewer,
        "reviewer2": reviewer2,
        "auditor": auditor,
        "privacy": privacy,
        "admin": admin_user,
        "outsider": outsider,
    }


@pytest.fixture
def churn(db, owner, team):
    return RegisteredModelFactory(name="churn", owner=owner, team=team)


@pytest.fixture
def churn_v1(churn):
    return ModelVersionFactory(model=churn)


@pytest.fixture
def client_for(db):
    """client_for(user) -> a Django test client logged in as that user."""

    def make(user) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return make


@pytest.fixture
def api_client_for(db):
    """api_client_for(user, scopes=None) -> an APIClient sending a real Bearer token, with the
    given scopes or else every scope the user's roles can use (the token service refuses others)."""

    def make(user, scopes: list[str] | None = None) -> APIClient:
        _, raw = token_create(
            user=user, name="test", scopes=scopes or usable_scopes(user), expires_at=None, actor=user, context=CLI
        )
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        return client

    return make


@pytest.fixture
def audit_actions(db):
    """audit_actions(since_seq=0) -> the actions recorded after a sequence number, oldest first."""

    def read(since_seq: int = 0) -> list[str]:
        return list(AuditEvent.objects.filter(seq__gt=since_seq).order_by("seq").values_list("action", flat=True))

    return read


@pytest.fixture
def last_seq(db):
    """last_seq() -> the current head sequence number of the audit chain."""

    def read() -> int:
        return AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0

    return read


@pytest.fixture
def stopped_clock():
    """The clock stopped at the test's start: pages rendered before and after a change show times
    relative to now ("57 minutes ago", hours an alert has been open), which would otherwise move
    between the two renders."""
    with time_machine.travel(timezone.now(), tick=False):
        yield


@pytest.fixture
def midday_clock():
    """The clock at noon today, running: for a test whose steps must fall on one calendar day (a
    second run of the demo the same day changes nothing; one after midnight adds the new day)."""
    noon = timezone.now().replace(hour=12, minute=0, second=0, microsecond=0)
    with time_machine.travel(noon, tick=True):
        yield noon
