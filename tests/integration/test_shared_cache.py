"""The production cache on the real Redis (CACHE_URL): django-redis, as settings choose it for a
redis:// CACHE_URL, keeps Django's cache behaviour with one client; sessions read through it (cached_db) still end
at logout; cached inventory HTML in it follows committed changes."""

from __future__ import annotations

from urllib.parse import urlparse, urlunparse

import environ
import pytest
from django.core.cache import caches
from django.test import Client
from django.urls import reverse
from django_redis import get_redis_connection

from registry.services.audit import CLI
from registry.services.inventory import model_update
from tests.factories import RegisteredModelFactory, TeamFactory, UserFactory

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def redis_cache(settings, test_redis_url):
    """CACHE_URL pointed at a database of the test Redis of its own, emptied before and after."""
    parts = urlparse(test_redis_url)
    url = urlunparse(parts._replace(path="/13"))
    settings.CACHES = {"default": environ.Env.cache_url_config(url, backend="django_redis.cache.RedisCache")}
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
    cache = caches["default"]
    cache.clear()
    yield cache
    cache.clear()


def test_the_backend_answers_like_djangos_with_one_client(redis_cache):
    assert redis_cache.__class__.__module__ == "django_redis.cache"
    redis_cache.set("k", {"a": [1, 2.5, "x"]}, 30)
    assert redis_cache.get("k") == {"a": [1, 2.5, "x"]}
    assert redis_cache.add("k", "other") is False
    assert redis_cache.add("n", 1) is True and redis_cache.incr("n") == 2
    assert redis_cache.get_many(["k", "missing"]) == {"k": {"a": [1, 2.5, "x"]}}
    redis_cache.delete("k")
    assert redis_cache.get("k") is None
    assert get_redis_connection("default") is get_redis_connection("default")


def test_sessions_read_from_the_cache_end_at_logout(redis_cache):
    user = UserFactory(username="pat")
    user.set_password("a-long-password-1")
    user.save()
    client = Client()
    assert client.post(reverse("login"), {"username": "pat", "password": "a-long-password-1"}).status_code == 302
    key = client.cookies["sessionid"].value
    assert redis_cache.get(f"django.contrib.sessions.cached_db{key}") is not None  # cached_db's own key
    assert client.get(reverse("registry:model_list")).status_code == 200
    stolen = Client()
    stolen.cookies["sessionid"] = key
    assert stolen.get(reverse("registry:model_list")).status_code == 200
    client.post(reverse("logout"))
    response = stolen.get(reverse("registry:model_list"))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_cached_inventory_in_redis_follows_committed_changes(redis_cache):
    team = TeamFactory(slug="risk")
    owner = UserFactory(username="olive")
    team.members.add(owner)
    model = RegisteredModelFactory(name="churn", owner=owner, team=team, description="first words")
    client = Client()
    client.force_login(owner)
    assert b"first words" in client.get(reverse("registry:model_list")).content
    assert redis_cache.keys("inventory:*")
    model_update(model=model, actor=owner, context=CLI, changes={"description": "second words"})
    assert b"second words" in client.get(reverse("registry:model_list")).content
