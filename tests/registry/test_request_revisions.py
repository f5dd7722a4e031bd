"""What one API read costs the database, and why it stays exact (registry/cache.py,
mlops_portal/api/transactions.py): a request reads the revisions once, in one statement, the
first time it needs one; a bump this thread runs makes it read them again; a request that may
write still runs in one transaction, its authentication included.

These tests commit for real (transactional database), as requests do."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from registry.cache import ACCESS, LISTS, finish_request, inventory_changed, inventory_revision, start_request
from registry.models import ApiToken, InventoryRevision
from tests.registry.test_inventory_cache import detail_fresh_then_cached, inventory_world

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


@pytest.fixture
def world(db):
    found = inventory_world()
    inventory_changed()  # the revision rows exist (autocommit: bumped at once)
    return found


@pytest.fixture
def in_request():
    start_request()
    yield
    finish_request()


def sql(queries) -> list[str]:
    return [q["sql"] for q in queries.captured_queries]


def test_a_cached_api_detail_costs_one_statement_and_no_transaction(world, api_client_for):
    fresh, cached, queries = detail_fresh_then_cached(api_client_for(world["reviewer"]))
    assert cached.status_code == 200 and cached.content == fresh.content
    # The token and the detail come from the cache under revisions read together, once.
    assert len(sql(queries)) == 1, sql(queries)
    assert "registry_inventoryrevision" in sql(queries)[0]


def test_a_request_reads_every_revision_in_one_statement(world, in_request):
    with CaptureQueriesContext(connection) as queries:
        lists = inventory_revision()
        details = inventory_revision(details=True)
    assert len(queries) == 1
    assert details[0] == lists[0]


def test_outside_a_request_every_use_reads_the_revisions_again(world):
    with CaptureQueriesContext(connection) as queries:
        inventory_revision()
        inventory_revision()
    assert len(queries) == 2


def test_a_bump_run_during_a_request_is_seen_by_the_rest_of_it(world, in_request):
    before = inventory_revision()
    inventory_changed()  # autocommit: committed and bumped at once, by this thread
    assert inventory_revision() == (before[0] + 1,)


def test_a_bump_committed_elsewhere_is_seen_by_the_next_request(world):
    start_request()
    before = inventory_revision()
    # Another process's bump (this thread's memory of the revisions knows nothing of it).
    InventoryRevision.objects.filter(pk=LISTS).update(value=F("value") + 1)
    assert inventory_revision() == before  # this request keeps what it read first
    finish_request()
    start_request()
    assert inventory_revision() == (before[0] + 1,)
    finish_request()


def test_revoking_a_token_is_obeyed_by_the_next_request(world, api_client_for):
    client = api_client_for(world["reviewer"])
    url = reverse("api:model-detail", args=["churn"])
    assert client.get(url).status_code == 200
    before = InventoryRevision.objects.get(pk=ACCESS).value
    ApiToken.objects.get(user=world["reviewer"]).delete()  # bumps ACCESS after its commit
    assert InventoryRevision.objects.get(pk=ACCESS).value == before + 1
    assert client.get(url).status_code == 401


def test_a_patch_runs_in_one_transaction_with_its_authentication(world, api_client_for):
    client = api_client_for(world["owner"])
    url = reverse("api:model-detail", args=["churn"])
    with CaptureQueriesContext(connection) as queries:
        response = client.patch(url, {"limitations": "EU only"}, format="json")
    assert response.status_code == 200, response.content
    statements = sql(queries)
    # The token's first use is written inside the request's transaction, with the change.
    last_use = next(i for i, s in enumerate(statements) if s.startswith('UPDATE "registry_apitoken"'))
    assert statements[0] == "BEGIN" and statements.count("BEGIN") == 1
    assert 0 < last_use < statements.index("COMMIT")


def test_a_refused_patch_writes_nothing_not_even_its_tokens_last_use(world, api_client_for):
    client = api_client_for(world["owner"])
    url = reverse("api:model-detail", args=["churn"])
    response = client.patch(url, {"no_such_field": 1}, format="json")
    assert response.status_code == 400
    assert ApiToken.objects.get(user=world["owner"]).last_used_at is None  # rolled back with the request


def test_a_read_records_its_tokens_last_use(world, api_client_for):
    client = api_client_for(world["owner"])
    assert client.get(reverse("api:model-detail", args=["churn"])).status_code == 200
    assert ApiToken.objects.get(user=world["owner"]).last_used_at is not None


def _api_views(patterns, prefix=""):
    from django.urls import URLPattern, URLResolver

    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _api_views(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern) and getattr(entry.callback, "cls", None) is not None:
            yield prefix + str(entry.pattern), entry.callback.cls


def test_every_api_view_takes_one_transaction_per_write_the_same_way():
    """One rule for every API view (``AtomicWritesMixin``): a write in one transaction with its
    authentication, a read without BEGIN/COMMIT; not one rule for the inventory and another for
    the rest."""
    from django.urls import get_resolver
    from rest_framework.views import APIView

    from mlops_portal.api.transactions import AtomicWritesMixin

    views = [(route, cls) for route, cls in _api_views(get_resolver().url_patterns) if route.startswith("api/")]
    ours = [(route, cls) for route, cls in views if not cls.__module__.startswith("drf_spectacular")]
    api = [(route, cls) for route, cls in ours if issubclass(cls, APIView)]
    assert len(api) > 20
    assert [route for route, cls in api if not issubclass(cls, AtomicWritesMixin)] == []
