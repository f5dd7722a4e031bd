"""The inventory cache (registry/cache.py): cached inventory HTML and API model details stay
exact. Every change the pages show, committed by any path, is visible on the next request;
changes they do not show keep the cache; one transaction's own writes are never hidden; users
with different visibility never share a cached copy.

These tests commit for real (transactional database), as requests do: the revision is bumped
after the commit, which a test inside a rolled-back transaction would never reach."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from monitoring.models import HealthStatus
from registry.cache import HEALTH, LISTS
from registry.choices import Stage
from registry.models import InventoryRevision, ModelVersion, RegisteredModel, Tag
from registry.rules import REVIEWER_GROUP
from registry.services.audit import CLI
from registry.services.inventory import model_update, version_create
from tests.factories import ModelVersionFactory, RegisteredModelFactory, TeamFactory, UserFactory

# Flushed between tests, which only PostgreSQL allows here (SQLite's append-only audit trigger refuses it).
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

LIST = reverse("registry:model_list")


def revision(pk: int = LISTS) -> int:
    return InventoryRevision.objects.filter(pk=pk).values_list("value", flat=True).first() or 0


def inventory_world() -> dict:
    """A team with an owner, a reviewer, and one model with one version."""
    team = TeamFactory(name="Risk", slug="risk")
    owner = UserFactory(username="olive")
    team.members.add(owner)
    reviewer = UserFactory(username="rita")
    reviewer.groups.add(Group.objects.get_or_create(name=REVIEWER_GROUP)[0])
    model = RegisteredModelFactory(name="churn", owner=owner, team=team, description="first words")
    version = ModelVersionFactory(model=model, version=1)
    return {"team": team, "owner": owner, "reviewer": reviewer, "model": model, "version": version}


@pytest.fixture
def world(db):
    return inventory_world()


def page(client, **params) -> str:
    response = client.get(LIST, params)
    assert response.status_code == 200
    return response.content.decode()


def test_a_cached_page_is_served_until_a_shown_change_commits(world, client_for):
    client = client_for(world["owner"])
    assert "first words" in page(client)
    # Rendered once: the same request again runs no inventory query.
    with CaptureQueriesContext(connection) as queries:
        assert "first words" in page(client)
    assert not any("registry_registeredmodel" in q["sql"] for q in queries.captured_queries)
    # A write that bypasses every signal (no code path of the product does this) is not seen ...
    RegisteredModel.objects.filter(pk=world["model"].pk).update(description="changed behind its back")
    assert "first words" in page(client)
    # ... until a real change commits: the service's save bumps the revision after the commit.
    before = revision()
    model_update(model=world["model"], actor=world["owner"], context=CLI, changes={"description": "second words"})
    assert revision() == before + 1
    html = page(client)
    assert "second words" in html and "first words" not in html


def _rename_owner(w):
    w["owner"].username = "olivia"
    w["owner"].save()
    return '<td title="olivia">olivia</td>'  # the owner column (the header shows the logged-in name anyway)


def _rename_team(w):
    w["team"].name = "Credit Risk"
    w["team"].save()
    return "Credit Risk"


def _tag(w):
    w["model"].tags.add(Tag.objects.create(name="pii"))
    return ">pii</a>"


def _new_version(w):
    version_create(model=w["model"], actor=w["owner"], context=CLI, description="v2")
    return "(latest v2)"


def _promote(w):
    w["version"].stage = Stage.PRODUCTION
    w["version"].save()
    return 'badge-production">v1'


def _health(w):
    HealthStatus.objects.create(model=w["model"], status="critical", computed_at=timezone.now())
    return 'badge-critical">critical'


def _new_model(w):
    RegisteredModelFactory(name="fraud-detector", owner=w["owner"], team=w["team"])
    return "fraud-detector"


def test_a_reviewers_count_of_pending_requests_follows_each_request(world, client_for):
    """The navigation's count is cached with the inventory: a request filed, then decided, shows
    on the next page."""
    from registry.services.promotions import promotion_cancel, promotion_request

    client = client_for(world["reviewer"])
    assert 'class="nav-count"' not in page(client)
    with CaptureQueriesContext(connection) as queries:
        page(client)
    assert not any("registry_promotionrequest" in q["sql"] for q in queries.captured_queries)
    req = promotion_request(
        version=world["version"],
        target_stage=Stage.STAGING,
        requester=world["owner"],
        justification="ready",
        context=CLI,
    )
    assert '<span class="nav-count" title="Pending requests you may review">1</span>' in page(client)
    promotion_cancel(request=req, actor=world["owner"], context=CLI, comment="not yet")
    assert 'class="nav-count"' not in page(client)


@pytest.mark.parametrize(
    "change", [_rename_owner, _rename_team, _tag, _new_version, _promote, _health, _new_model], ids=lambda f: f.__name__
)
def test_every_kind_of_shown_change_reaches_the_next_request(world, client_for, change):
    client = client_for(world["owner"])
    page(client)
    expected = change(world)
    assert expected in page(client)


def test_many_changes_in_one_transaction_bump_once_after_the_commit(world):
    before = revision()
    with transaction.atomic():
        for i in range(5):
            ModelVersionFactory(model=world["model"], version=10 + i)
        world["model"].tags.add(Tag.objects.create(name="credit"))
        assert revision() == before  # nothing is bumped (or locked) inside the transaction
    assert revision() == before + 1


def test_a_rolled_back_change_does_not_bump(world):
    before = revision()
    with pytest.raises(RuntimeError), transaction.atomic():
        ModelVersionFactory(model=world["model"], version=7)
        raise RuntimeError("abort")
    assert revision() == before


def test_a_change_after_a_rolled_back_one_still_bumps(world):
    """The pending bump of a rolled-back transaction is gone with it: the next transaction on the
    same connection queues its own."""
    before = revision()
    with pytest.raises(RuntimeError), transaction.atomic():
        ModelVersionFactory(model=world["model"], version=7)
        raise RuntimeError("abort")
    with transaction.atomic():
        ModelVersionFactory(model=world["model"], version=8)
    assert revision() == before + 1


def test_a_change_after_a_rolled_back_savepoint_still_bumps(world):
    before = revision()
    with transaction.atomic():
        with pytest.raises(RuntimeError), transaction.atomic():
            world["model"].tags.add(Tag.objects.create(name="credit"))
            raise RuntimeError("abort the savepoint")
        world["model"].description = "second words"
        world["model"].save()
    assert revision() == before + 1


def test_a_transaction_sees_its_own_uncommitted_changes(world, client_for):
    client = client_for(world["owner"])
    page(client)
    with transaction.atomic():
        world["model"].description = "not committed yet"
        world["model"].save()
        # The test client runs the view on this connection, inside this transaction.
        assert "not committed yet" in page(client)
        transaction.set_rollback(True)
    assert "first words" in page(client)


def test_logins_and_token_use_do_not_bump(world, client_for, api_client_for):
    before = revision()
    client_for(world["owner"]).get(LIST)
    world["owner"].last_login = timezone.now()
    world["owner"].save(update_fields=["last_login"])
    api_client_for(world["owner"]).get(reverse("api:model-detail", args=["churn"]))
    assert revision() == before


def test_users_with_different_visibility_never_share_a_cached_page(world, client_for):
    elsewhere = RegisteredModelFactory(name="secret-model", team=TeamFactory(slug="elsewhere"))
    assert "secret-model" in page(client_for(world["reviewer"]))  # cached for those who see everything
    outsider = UserFactory(username="outsider")
    for user in (world["owner"], outsider):
        html = page(client_for(user))
        assert "secret-model" not in html
    assert "churn" not in page(client_for(outsider))
    # Joining the team that owns it is a shown change for that user.
    elsewhere.team.members.add(outsider)
    assert "secret-model" in page(client_for(outsider))


def test_the_htmx_fragment_and_the_full_page_are_cached_apart(world, client_for):
    client = client_for(world["owner"])
    fragment = client.get(LIST, HTTP_HX_REQUEST="true").content.decode()
    full = page(client)
    assert "<html" not in fragment and "<html" in full
    assert "<html" not in client.get(LIST, HTTP_HX_REQUEST="true").content.decode()


def test_filters_are_part_of_the_key_and_invalid_filters_stay_400(world, client_for):
    RegisteredModelFactory(name="fraud", owner=world["owner"], team=world["team"], risk_tier="high")
    client = client_for(world["owner"])
    assert "churn" in page(client) and "fraud" in page(client)
    high = page(client, risk_tier="high")
    assert "fraud" in high and ">churn<" not in high
    for _ in range(2):
        response = client.get(LIST, {"risk_tier": "extreme"})
        assert response.status_code == 400 and "risk_tier" in response.content.decode()


def test_the_cached_inventory_shows_its_times_in_utc_with_the_zone_whatever_zone_is_active(world, client_for):
    """Every page writes a moment as ``2026-11-28 04:40 UTC`` (the ``utc`` filter): rendered under
    another active zone, or served from the cache filled under one, the inventory says the same."""
    from django.utils import timezone as tz

    client = client_for(world["owner"])
    with tz.override("Asia/Kolkata"):  # +05:30: a local rendering would differ from UTC
        kolkata = page(client)
    utc = page(client)
    stamp = tz.localtime(world["model"].updated_at, tz.get_fixed_timezone(0)).strftime("%Y-%m-%d %H:%M UTC")
    local = tz.localtime(world["model"].updated_at, tz.get_fixed_timezone(330)).strftime("%Y-%m-%d %H:%M")
    assert stamp in kolkata and stamp in utc
    assert local not in kolkata


def test_the_page_around_the_cached_part_is_per_user(world, client_for):
    """The register button depends on the user, not on the cached inventory."""
    assert "Register a model" in page(client_for(world["owner"]))
    assert "Register a model" not in page(client_for(world["reviewer"]))


def test_api_detail_is_cached_and_follows_health_details(world, api_client_for):
    client = api_client_for(world["owner"])
    url = reverse("api:model-detail", args=["churn"])
    assert client.get(url).json()["health"]["status"] == "no_data"
    now = timezone.now()
    health = HealthStatus.objects.create(model=world["model"], status="warning", reasons=[], computed_at=now)
    assert client.get(url).json()["health"]["status"] == "warning"
    lists, details = revision(LISTS), revision(HEALTH)
    # Recomputed to the same status with new reasons: lists keep their cache, details do not.
    health = HealthStatus.objects.get(pk=health.pk)
    health.reasons = [{"kind": "drift", "severity": "warning", "message": "age drifted"}]
    health.computed_at = now + timedelta(hours=1)
    health.save()
    assert (revision(LISTS), revision(HEALTH)) == (lists, details + 1)
    body = client.get(url).json()
    assert body["health"]["reasons"][0]["message"] == "age drifted"


def detail_fresh_then_cached(client):
    """The API detail of churn read twice: the first answer (which fills the cache), the second
    and the queries the second ran."""
    url = reverse("api:model-detail", args=["churn"])
    fresh = client.get(url)
    with CaptureQueriesContext(connection) as queries:
        cached = client.get(url)
    return fresh, cached, queries


def test_a_cached_api_detail_is_byte_for_byte_the_fresh_one(world, api_client_for):
    fresh, cached, queries = detail_fresh_then_cached(api_client_for(world["reviewer"]))
    assert not any("registry_modelversion" in q["sql"] for q in queries.captured_queries)  # served from the cache
    assert cached.status_code == fresh.status_code == 200
    assert cached.content == fresh.content and cached["Content-Type"] == fresh["Content-Type"]


def test_api_detail_of_a_hidden_model_is_never_served_from_anothers_cache(world, api_client_for):
    url = reverse("api:model-detail", args=["churn"])
    assert api_client_for(world["reviewer"]).get(url).status_code == 200
    outsider = UserFactory(username="outsider")
    response = api_client_for(outsider).get(url)
    assert response.status_code == 404 and "error" in response.json()


def test_api_detail_follows_version_changes(world, api_client_for):
    client = api_client_for(world["owner"])
    url = reverse("api:model-detail", args=["churn"])
    assert client.get(url).json()["version_count"] == 1
    version_create(model=world["model"], actor=world["owner"], context=CLI)
    assert client.get(url).json()["version_count"] == 2
    ModelVersion.objects.filter(model=world["model"], version=2).get().delete()
    assert client.get(url).json()["version_count"] == 1


def test_no_cache_when_turned_off(world, client_for, settings):
    settings.INVENTORY_CACHE_SECONDS = 0
    client = client_for(world["owner"])
    page(client)
    RegisteredModel.objects.filter(pk=world["model"].pk).update(description="seen at once")
    assert "seen at once" in page(client)
