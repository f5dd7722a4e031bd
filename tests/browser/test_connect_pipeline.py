"""The "Connect a pipeline" page in real headless Chromium: the owner opens it from the model
page, creates the pipeline token, copies a snippet, presses the check button and sees
"waiting…" turn into the first batch when the pipeline sends one (htmx polling, strict CSP).
Takes docs/screenshots/connect-pipeline.png."""

from __future__ import annotations

import json

import pytest
from django.utils import timezone

from monitoring.services.ingestion import predictions_ingest
from registry.services.audit import CLI
from tests.browser.conftest import login, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_owner_creates_a_token_copies_a_snippet_and_sees_the_first_batch(page, live_server, churn_v1, owner):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    login(page, live_server, owner)
    page.goto(live_server.url + churn_v1.model.get_absolute_url())
    with page.expect_navigation():
        page.get_by_role("link", name="Connect a pipeline").click()
    assert page.locator("h1").inner_text().strip() == "Connect a pipeline to churn"

    with page.expect_navigation():
        page.get_by_role("button", name="Create pipeline token").click()
    raw = page.locator("#raw-token").inner_text().strip()
    assert raw.startswith("mlp_")
    page.locator("summary", has_text="curl").click()  # the Python client's block is open, the others folded
    page.locator("[data-copy='snippet-curl-batch']").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert raw in copied and "/api/v1/models/churn/versions/2/predictions/" in copied

    page.get_by_role("button", name="Check for the first batch").click()
    page.locator(".batch-waiting").wait_for()
    assert "Waiting" in page.locator("#batches-since").inner_text()
    page.locator("summary", has_text="curl").click()
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "connect-pipeline")

    rows = [
        {
            "prediction_id": f"p-{i}",
            "timestamp": timezone.now().isoformat(),
            "features": {"age": 40, "income": 2000.0, "plan": "basic"},
            "prediction": 1,
            "score": 0.6,
        }
        for i in range(3)
    ]
    body = json.dumps(rows).encode()
    predictions_ingest(version=churn_v1, body=body, content_type="application/json", actor=owner, context=CLI)
    arrived = page.locator(".batch-arrived")
    arrived.wait_for(timeout=10_000)  # the next poll (every 2 s)
    assert "3 rows for version 1" in arrived.inner_text()
