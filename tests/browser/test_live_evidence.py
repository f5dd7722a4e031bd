"""Live evidence in real headless Chromium: the request page shows the challenger's paired
evidence and drift on recent traffic; the dashboard draws the estimated ROC AUC as a dashed
line with its band (read from the Plotly graph div). Screenshots go to docs/screenshots/."""

from __future__ import annotations

import numpy as np
import pytest

from monitoring.services.ingestion import reference_upload
from registry.choices import Stage
from registry.models import PromotionPolicy
from registry.services.audit import CLI
from registry.services.promotions import promotion_request
from tests.browser.conftest import login, screenshot
from tests.browser.test_dashboards import wait_for_charts
from tests.factories import ModelVersionFactory
from tests.monitoring.helpers import T0, csv_bytes, ingest_predictions
from tests.monitoring.test_estimation import SCHEMA, _records, labelled_reference, production_version, simulate
from tests.monitoring.test_live_evidence import label

pytestmark = [pytest.mark.browser, pytest.mark.postgres]


@pytest.fixture
def shadowed(transactional_db, churn, owner, django_capture_on_commit_callbacks):
    churn.description = churn.intended_use = churn.limitations = "filled"
    churn.save()
    prod = production_version(churn)
    cand = ModelVersionFactory(model=churn, stage=Stage.STAGING, feature_schema=SCHEMA, metrics={"roc_auc": 0.86})
    reference = labelled_reference()
    PromotionPolicy.objects.update_or_create(
        risk_tier=churn.risk_tier, defaults={"require_live_not_worse": True, "live_min_labelled_pairs": 200}
    )
    request = promotion_request(
        version=cand, target_stage=Stage.PRODUCTION, requester=owner, justification="shadow", context=CLI
    )
    window = simulate(np.random.default_rng(5), 900, 0.0)
    labelled = _records(window.iloc[:400], T0, "id")
    with django_capture_on_commit_callbacks(execute=True):
        for version in (prod, cand):
            reference_upload(
                version=version, body=csv_bytes(reference), content_type="text/csv", actor=owner, context=CLI
            )
            ingest_predictions(version, _records(window, T0, "id"), owner)
    label(churn, owner, labelled, window["label"].iloc[:400].astype(int).to_numpy(), django_capture_on_commit_callbacks)
    return request


def test_the_request_page_shows_live_evidence_and_the_dashboard_the_dashed_estimate(page, live_server, owner, shadowed):
    login(page, live_server, owner)
    page.goto(live_server.url + shadowed.get_absolute_url())
    block = page.locator("#live-evidence")
    block.wait_for()
    assert block.locator("[data-pairs]").inner_text().strip() == "900"
    assert block.locator("[data-labelled-pairs]").inner_text().strip() == "400"
    assert block.locator("tr[data-metric=roc_auc]").is_visible()
    assert block.get_by_text("Drift on recent traffic").is_visible()
    assert page.locator("[data-gate=live]").is_visible()
    block.scroll_into_view_if_needed()
    screenshot(page, "live-evidence")

    page.goto(
        live_server.url
        + "/monitoring/models/churn/?range=custom&start=2026-03-01T00:00&end=2026-03-04T00:00&granularity=hourly"
    )
    wait_for_charts(page, ["chart-performance"])
    estimated = page.evaluate(
        """() => document.getElementById('chart-performance').data
                 .filter((t) => (t.name || '').includes('(estimated)'))
                 .map((t) => ({name: t.name, dash: t.line && t.line.dash}))"""
    )
    assert {"name": "roc_auc (estimated)", "dash": "dash"} in estimated
    bands = page.evaluate(
        "() => document.getElementById('chart-performance').data.filter((t) => t.fill === 'tonexty').length"
    )
    assert bands >= 1
    assert "estimated" in page.locator("#chart-performance .gtitle").text_content()
    page.locator("#chart-performance").scroll_into_view_if_needed()
    screenshot(page, "estimated-performance")
