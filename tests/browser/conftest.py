"""Browser-test harness: real headless Chromium (Debian's ``chromium``) driven by
Playwright's sync API against pytest-django's ``live_server``.

Use it like this::

    import pytest
    from tests.browser.conftest import login, screenshot

    pytestmark = [pytest.mark.browser, pytest.mark.postgres]

    def test_owner_sees_the_inventory(page, live_server, owner, churn):
        login(page, live_server, owner)
        page.goto(live_server.url + "/models/")
        assert page.get_by_text("churn").first.is_visible()
        screenshot(page, "inventory")

- ``page`` collects console errors and uncaught page errors in ``page.console_errors``
  and fails the test at teardown if there are any (CSP violations included).
- ``live_server`` needs a transactional database, so browser tests are marked
  ``browser`` and ``postgres`` (the SQLite flush conflicts with the audit trigger).
- A missing ``/usr/bin/chromium`` is a failure with instructions, never a skip;
  ``make test`` installs it (``make browser-deps``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Playwright's sync API keeps an asyncio loop running in this thread; Django's
# ORM would otherwise refuse to run from test code ("SynchronousOnlyOperation").
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
VIEWPORT = {"width": 1280, "height": 800}
PASSWORD = "pass-1234-word"  # tests.factories.UserFactory's password
SCREENSHOT_DIR = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
DEFAULT_TIMEOUT_MS = 15_000


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the whole session."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}. The browser tests need Debian's chromium: "
            "run `make browser-deps` (or `apt-get update && apt-get install -y chromium`), "
            "or point CHROMIUM_PATH at a Chromium binary.",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


def open_page(browser):
    """A fresh browser context (1280x800) and its page, whose console errors and uncaught
    page errors are collected in ``page.console_errors``. Returns ``(context, page)``."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    pg = context.new_page()
    pg.console_errors = []

    def on_console(message):
        if message.type == "error":
            location = message.location or {}
            pg.console_errors.append(f"console.error: {message.text} ({location.get('url', '')})")

    def on_page_error(error):
        pg.console_errors.append(f"page error: {error}")

    pg.on("console", on_console)
    pg.on("pageerror", on_page_error)
    return context, pg


@pytest.fixture
def page(browser, transactional_db):
    """A fresh browser context and page (1280x800). Console errors and page errors are
    collected in ``page.console_errors``; any of them fails the test at teardown.

    It depends on ``transactional_db`` so that it closes before the database is flushed: a
    request still in flight from the page (an htmx poll) would otherwise hold a lock that
    the flush's TRUNCATE waits on, and deadlock it. Closing the page does not wait for the
    server's side of that request, so the teardown also waits until no other session of the
    test database is running a statement or holding a transaction (a clean clone's run once
    deadlocked the flush against a request still reading). A request that reaches the database
    only after that wait can still deadlock the flush; the flush then runs again
    (tests/conftest.py, tests/test_flush.py)."""
    context, pg = open_page(browser)
    yield pg
    errors = list(pg.console_errors)
    context.close()
    _requests_finished()
    if errors:
        pytest.fail("The browser reported errors:\n  " + "\n  ".join(errors), pytrace=False)


def _requests_finished(timeout: float = 10.0) -> None:
    """Wait (PostgreSQL) until the live server's requests have left the database: no other
    session of this database active or in a transaction; then the flush may run."""
    import time

    from django.db import connection

    if connection.vendor != "postgresql":
        return
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
                " AND state IN ('active', 'idle in transaction', 'idle in transaction (aborted)')"
            )
            if cursor.fetchone()[0] == 0:
                return
            time.sleep(0.05)


def login(page, live_server, user, password: str = PASSWORD) -> None:
    """Log ``user`` in through the real login form and wait until we have left it."""
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", user.get_username())
    page.fill("#id_password", password)
    with page.expect_navigation():
        page.click("form[action$='/login/'] button[type=submit]")
    if "/login/" in page.url:
        raise AssertionError(f"login as {user.get_username()!r} failed: still on {page.url}")


def screenshot(page, name: str) -> Path:
    """Save a 1280x800 screenshot of the page to docs/screenshots/<name>.png."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size(VIEWPORT)
    path = SCREENSHOT_DIR / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path


def failed_gate(page, live_server, reviewer, request, key: str):
    """Open the promotion request's page as ``reviewer``: its ``key`` gate is red. Returns the gate."""
    login(page, live_server, reviewer)
    page.goto(live_server.url + request.get_absolute_url())
    gate = page.locator(f'.gate[data-gate="{key}"]')
    assert "gate-fail" in gate.get_attribute("class")
    return gate


def approval_is_refused(page, request, reason: str) -> None:
    """Approving the open request page is refused with ``reason`` and the request stays pending.

    The refusal is a 409 answer, which Chromium logs; it is the expected outcome, not a page error."""
    from registry.choices import PromotionStatus

    page.fill("#id_comment", "Looks fine to me.")
    page.get_by_role("button", name="Approve").click()
    page.wait_for_selector("#promotion-actions [role=alert]")
    assert reason in page.locator("#promotion-actions").inner_text()
    refused = [e for e in page.console_errors if "409 (Conflict)" in e and "/approve/" in e]
    assert len(refused) == 1
    page.console_errors[:] = [e for e in page.console_errors if e not in refused]
    request.refresh_from_db()
    assert request.status == PromotionStatus.PENDING
