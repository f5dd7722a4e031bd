"""After a purge every page that rests on aggregates renders the same figures: the dashboard,
the fleet, the scorecard, the model page, the compliance report and the as-of inventory."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring.management.commands.seed_dashboard_bench import seed_dashboard
from monitoring.models import MetricValue, Prediction
from monitoring.services.ingestion import predictions_ingest
from monitoring.services.retention import retention_purge
from registry.services.audit import CLI
from tests.monitoring.helpers import as_json

pytestmark = pytest.mark.django_db


_CSRF = re.compile(r'(csrfmiddlewaretoken" value="|csrf-token" content="|CSRFToken": "|request <code>)[^"<]+')
# the report's time and audit summary (which counts the receipt itself: the change a purge makes on purpose)
# the report's purge receipts: what the purge adds on purpose (the rest of its retention section is compared)
_RECEIPTS = re.compile(r'<dt>Purges</dt><dd>.*?</dd>|<div class="report-receipts">.*?<!-- /receipts -->', re.S)
_AUDIT_SUMMARY = re.compile(
    r"<dt>(Generated|Events for this model|Last event|Chain head at report time)</dt><dd>.*?</dd>", re.S
)


def _records(model, start, n=200):
    version = model.versions.get(version=1)
    names = [f["name"] for f in version.feature_schema]
    return version, [
        {
            "prediction_id": f"r{i}",
            "timestamp": (start + timedelta(minutes=7 * i)).isoformat(),
            "features": {name: float(i % 13) for name in names},
            "prediction": i % 2,
            "score": (i % 10) / 10,
        }
        for i in range(n)
    ]


def _pages(client, name, moment):
    # a fixed range: the default one ends at the current minute, which may turn between renders
    fixed = "range=custom&start={}&end={}".format(
        *(t.isoformat().replace("+", "%2B") for t in (moment - timedelta(days=7), moment + timedelta(hours=1)))
    )
    urls = [
        f"/monitoring/models/{name}/?{fixed}",
        f"/monitoring/models/{name}/?{fixed}&granularity=daily",
        "/monitoring/fleet/",
        "/monitoring/scorecard/",
        f"/models/{name}/",
        f"/models/{name}/report/",
        "/inventory/as-of/?time=" + moment.isoformat().replace("+", "%2B"),
    ]
    out = {}
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        html = _RECEIPTS.sub("", _AUDIT_SUMMARY.sub("", _CSRF.sub(r"\1", response.content.decode())))
        out[url] = html
    return out


def test_every_page_renders_the_same_figures_after_a_purge(stopped_clock, client_for, owner, team, admin_user):
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    model = seed_dashboard(name="fraud", days=3, features=4, owner=owner, team=team, now=now)
    version, records = _records(model, now - timedelta(days=2))
    predictions_ingest(
        version=version, body=as_json(records), content_type="application/json", actor=owner, context=CLI
    )
    client = client_for(admin_user)
    before = _pages(client, "fraud", now)
    metrics = sorted(MetricValue.objects.values_list("version_id", "window_start", "feature", "metric", "value"))
    receipts = retention_purge(now=now + timedelta(days=400))
    assert receipts and not Prediction.objects.exists()
    assert (
        sorted(MetricValue.objects.values_list("version_id", "window_start", "feature", "metric", "value")) == metrics
    )
    after = _pages(client, "fraud", now)
    for url, html in before.items():
        if after[url] != html:
            import difflib

            diff = list(difflib.unified_diff(html.splitlines(), after[url].splitlines(), lineterm="", n=0))
            raise AssertionError(url + "\n" + "\n".join(diff[:20]))
