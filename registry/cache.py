"""Cached inventory HTML, API tokens and sessions' users, kept exact by revision counters.

Rendering the inventory page costs tens of milliseconds of Python (ORM, filter form,
templates) and an API model detail a few; the result only changes when something it shows
changes. So rendered HTML and API details are cached (Django's cache,
``INVENTORY_CACHE_SECONDS``) under a key holding the current ``InventoryRevision`` values, and
every committed change to what they show bumps one.

Why it stays exact:

- The bump runs *after* the commit (``transaction.on_commit``), as its own one-row UPDATE,
  so it never holds a lock inside a request's transaction. A reader that read the old value
  before the bump can at worst store fresh HTML under a key nobody reads again.
- A connection whose open transaction has changed what the pages show (its bump still
  pending) bypasses the cache entirely: a request or a test sees its own writes. Which bumps
  are pending is known from weak references to the callbacks queued with ``on_commit``
  (``_PendingBump``), not from Django's queue itself.
- The changes are caught by model signals (``registry.apps``), which cover services, the
  admin and shell alike. Queryset ``update()``/``bulk_create`` send no signals: code that
  changes displayed fields that way calls ``inventory_changed()`` itself. Writes the pages do
  not show (``last_login``, reference-profile stamps, health recomputed to the same status)
  deliberately do not bump.

API tokens and sessions' users are cached the same way under the ACCESS revision: a request reads
one small row instead of compiling and running the token or user query with the user's roles
(about 1.5 ms of CPU a request). Revoking a token, (de)activating a user, changing a password, a
group, a group membership or a team membership bumps it, so the next request after the commit
reads them again from the database.

A request reads every revision row in one statement the first time it needs one, and reuses
them for the rest of the request (``_committed_revisions``): authenticating and serving the
cached page or detail then cost one small read between them.
"""

from __future__ import annotations

import hashlib
import weakref

from asgiref.local import Local
from django.conf import settings
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, transaction
from django.db.models import F

from registry.models import InventoryRevision
from registry.rules import sees_all_models

# The two ``InventoryRevision`` rows: LISTS counts changes to what lists and details both show
# (names, owners, stages, tags, health status, ...); HEALTH counts changes to health details
# only (reasons and times, recomputed after every monitoring window), which lists do not show.
LISTS = 1
HEALTH = 2
ACCESS = 3  # tokens, users, groups, teams and memberships: what authenticating a request reads


def _bump(pk: int) -> None:
    """Add one to a revision (a single autocommitted UPDATE; the row is created if missing)."""
    if InventoryRevision.objects.filter(pk=pk).update(value=F("value") + 1) == 0:
        InventoryRevision.objects.bulk_create([InventoryRevision(pk=pk, value=0)], ignore_conflicts=True)
        InventoryRevision.objects.filter(pk=pk).update(value=F("value") + 1)
    _forget_revisions()


# Per thread, during one request: the revision rows it has read, by database alias. A request
# reads them all in one query the first time it needs one (authenticating, then the cached
# page or detail), not once per use; a bump this thread runs forgets them. A bump committed
# elsewhere meanwhile is seen by the next request, as if this one had read everything at once.
_request = Local()


def start_request(**_signal_kwargs) -> None:
    """``request_started`` receiver: this thread now serves a request (revisions read once)."""
    _request.revisions = {}


def finish_request(**_signal_kwargs) -> None:
    """``request_finished`` receiver: outside a request every use reads the revisions again."""
    _request.revisions = None


def _forget_revisions() -> None:
    if getattr(_request, "revisions", None):
        _request.revisions = {}


def _committed_revisions(using: str) -> dict[int, int]:
    """Every revision row's committed value, read once per request (see ``_request``)."""
    seen = getattr(_request, "revisions", None)
    if seen is not None and using in seen:
        return seen[using]
    found = dict(InventoryRevision.objects.using(using).values_list("pk", "value"))
    if seen is not None:
        seen[using] = found
    return found


def bump_lists_revision() -> None:
    _bump(LISTS)


def bump_health_revision() -> None:
    _bump(HEALTH)


def bump_access_revision() -> None:
    _bump(ACCESS)


class _PendingBump:
    """One revision bump queued with ``transaction.on_commit``. Django's on-commit queue holds
    the only strong reference: a rollback (of the transaction, or of the savepoint it was queued
    in) drops it, and running it after the commit drops it too. So a weak reference to it tells,
    through public APIs only, whether this connection's open transaction still has it pending."""

    __slots__ = ("bump", "__weakref__")

    def __init__(self, bump):
        self.bump = bump

    def __call__(self) -> None:
        self.bump()


# Per thread, as Django's connections are: (alias, bump) -> weak reference to the queued _PendingBump.
_queued = Local()


def _queue() -> dict:
    if not hasattr(_queued, "refs"):
        _queued.refs = {}
    return _queued.refs


def _pending(using: str, bumps=(bump_lists_revision, bump_health_revision)) -> bool:
    """Whether this connection's open transaction has queued one of ``bumps`` (it changed what
    the pages show and has not committed yet)."""
    refs = _queue()
    return any((ref := refs.get((using, bump))) is not None and ref() is not None for bump in bumps)


def _bump_on_commit(bump, using: str) -> None:
    """Run ``bump`` once the current transaction commits (once per transaction). ``robust``: a
    failed bump is logged, never turned into an error for a change that has already committed
    (the cache's timeout then bounds how long a page may be stale)."""
    if _pending(using, (bump,)):
        return
    pending = _PendingBump(bump)
    _queue()[(using, bump)] = weakref.ref(pending)
    transaction.on_commit(pending, using=using, robust=True)
    del pending  # the on-commit queue keeps the only reference (run at once in autocommit mode)


def inventory_changed(using: str = DEFAULT_DB_ALIAS, **_signal_kwargs) -> None:
    """Record that the current transaction changed what inventory lists and details show."""
    _bump_on_commit(bump_lists_revision, using)


def health_details_changed(using: str = DEFAULT_DB_ALIAS) -> None:
    """Record that the current transaction changed a model's health details (not its status)."""
    _bump_on_commit(bump_health_revision, using)


def access_changed(using: str = DEFAULT_DB_ALIAS, **_signal_kwargs) -> None:
    """Record that the current transaction changed what authenticating a request reads."""
    _bump_on_commit(bump_access_revision, using)


def _revision(rows: tuple[int, ...], bumps: tuple, using: str) -> tuple[int, ...] | None:
    """The committed values of ``rows``, or None when the cache must not be used: caching is
    off, or this connection's open transaction has queued one of ``bumps`` (a request or test
    must see its own writes)."""
    if settings.INVENTORY_CACHE_SECONDS <= 0 or _pending(using, bumps):
        return None
    found = _committed_revisions(using)
    return tuple(found.get(pk, 0) for pk in rows)


def inventory_revision(*, details: bool = False, using: str = DEFAULT_DB_ALIAS) -> tuple[int, ...] | None:
    """The committed revision of what lists show (with ``details``, of what model details show),
    or None when the cache must not be used (see ``_revision``)."""
    return _revision((LISTS, HEALTH) if details else (LISTS,), (bump_lists_revision, bump_health_revision), using)


def cached_access(kind: str, ident, load):
    """What authenticating a request reads — a token by its hash (``kind`` "token"), a session's
    user by id ("user") — as ``load(ident)`` returns it, from the cache when the ACCESS revision
    allows. None (an unknown secret or user) is never cached."""
    revision = _revision((ACCESS,), (bump_access_revision,), DEFAULT_DB_ALIAS)
    if revision is None:
        return load(ident)
    key = cache_key("access", kind, *revision, ident)
    found = cache.get(key)
    if found is None:
        found = load(ident)
        if found is not None:
            cache.set(key, found, settings.INVENTORY_CACHE_SECONDS)
    return found


def access_recache(kind: str, ident, value) -> None:
    """Store ``value`` again after a write the ACCESS revision does not follow (a token's last use)."""
    revision = _revision((ACCESS,), (bump_access_revision,), DEFAULT_DB_ALIAS)
    if revision is not None:
        cache.set(cache_key("access", kind, *revision, ident), value, settings.INVENTORY_CACHE_SECONDS)


def cache_key(*parts: object) -> str:
    """A short cache key from the parts (which may hold any text a user typed)."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=20).hexdigest()
    return f"inventory:{digest}"


def cached_render(user, key_parts: tuple, render, *, details: bool = False):
    """``render()``'s result for ``user``, from the cache when the revision allows (see
    ``inventory_revision``). Copies are shared only between users who see the same models:
    everyone who sees every model, else the user alone."""
    revision = inventory_revision(details=details)
    if revision is None:
        return render()
    scope = "all" if sees_all_models(user) else f"user:{user.pk}"
    key = cache_key(*revision, scope, *key_parts)
    found = cache.get(key)
    if found is None:
        found = render()
        cache.set(key, found, settings.INVENTORY_CACHE_SECONDS)
    return found


# --------------------------------------------------------------------------- signal receivers


def _row_changed(sender, using=DEFAULT_DB_ALIAS, **kwargs) -> None:
    inventory_changed(using)


def _relation_changed(sender, action, using=DEFAULT_DB_ALIAS, **kwargs) -> None:
    if action in ("post_add", "post_remove", "post_clear"):
        inventory_changed(using)


def _user_saved(sender, using=DEFAULT_DB_ALIAS, update_fields=None, **kwargs) -> None:
    """Logins save ``last_login``: no bump. A password change is not shown (no inventory bump)
    but ends the other sessions (the cached user holds the password's hash: ACCESS bump)."""
    changed = None if update_fields is None else set(update_fields)
    if changed is None or not changed <= {"last_login", "password"}:
        inventory_changed(using)
    if changed is None or not changed <= {"last_login"}:
        access_changed(using)


def _access_relation_changed(sender, action, using=DEFAULT_DB_ALIAS, **kwargs) -> None:
    if action in ("post_add", "post_remove", "post_clear"):
        access_changed(using)


def connect_receivers() -> None:
    """Bump after every change to the rows inventory pages show (called from ``RegistryConfig.ready``)."""
    from django.contrib.auth import get_user_model
    from django.db.models.signals import m2m_changed, post_delete, post_save

    from registry.models import ModelVersion, PromotionRequest, RegisteredModel, Tag, Team

    # PromotionRequest: the navigation's count of pending reviews (registry.selectors.inventory).
    for model in (RegisteredModel, ModelVersion, Tag, Team, PromotionRequest):
        post_save.connect(_row_changed, sender=model, dispatch_uid=f"inventory_saved_{model.__name__}")
        post_delete.connect(_row_changed, sender=model, dispatch_uid=f"inventory_deleted_{model.__name__}")
    for through in (RegisteredModel.tags.through, Team.members.through):
        m2m_changed.connect(_relation_changed, sender=through, dispatch_uid=f"inventory_m2m_{through.__name__}")
    from django.core.signals import request_finished, request_started

    request_started.connect(start_request, dispatch_uid="inventory_revisions_request_started")
    request_finished.connect(finish_request, dispatch_uid="inventory_revisions_request_finished")
    user = get_user_model()
    post_save.connect(_user_saved, sender=user, dispatch_uid="inventory_saved_user")
    post_delete.connect(_row_changed, sender=user, dispatch_uid="inventory_deleted_user")
    _connect_access_receivers(user)


def _connect_access_receivers(user) -> None:
    """Bump ACCESS after every change to what authenticating a request reads. A team's deletion
    removes its memberships without ``m2m_changed``: its own ``post_delete`` bumps."""
    from django.contrib.auth.models import Group
    from django.db.models.signals import m2m_changed, post_delete, post_save

    from registry.models import ApiToken, Team

    for model in (ApiToken, Group):  # the user's own saves: _user_saved (logins do not bump)
        post_save.connect(access_changed, sender=model, dispatch_uid=f"access_saved_{model.__name__}")
    for model in (ApiToken, Group, Team, user):
        post_delete.connect(access_changed, sender=model, dispatch_uid=f"access_deleted_{model.__name__}")
    for through in (user.groups.through, Team.members.through):
        m2m_changed.connect(_access_relation_changed, sender=through, dispatch_uid=f"access_m2m_{through.__name__}")
