"""The LLM panels of the model dashboard and the demo's request traffic: four weeks of requests
through the real ingestion, v1 then v2 with a p95 latency regression, a price change, daily cost
records, the latency alert, and the panels drawn (valid plotly figures) for those who may see
the model."""

from __future__ import annotations

import copy
import json
from datetime import timedelta

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import pytest
from django.utils import timezone

from monitoring.charts_llm import CHART_IDS, llm_figures
from monitoring.choices import AlertKind, Granularity
from monitoring.demo_llm_requests import PRICE_CHANGE_DAYS_AGO, load_llm_requests
from monitoring.forms import dashboard_query_parse
from monitoring.llm_metrics import LATENCY_P95
from monitoring.models import Alert, CostRecord, LLMRequest, MetricValue, Price
from monitoring.selectors.dashboard import model_dashboard_data
from monitoring.selectors.llm import llm_panels
from registry.choices import Stage
from tests.monitoring.helpers import DASHBOARD_CHART_IDS, figures_of
from tests.monitoring.llm_helpers import llm_model, llm_version, support_assistant

pytestmark = pytest.mark.django_db

TODAY = timezone.now().date()


@pytest.fixture
def assistant(owner, team):
    return support_assistant(owner, team)


@pytest.fixture
def demo(assistant):
    return load_llm_requests(assistant, days=28, today=TODAY)


def daily(version, metric):
    rows = MetricValue.objects.filter(version=version, granularity=Granularity.DAILY, metric=metric, feature="")
    return dict(rows.values_list("window_start", "value"))


def test_the_demo_sends_four_weeks_v2_clearly_slower_costs_each_day_at_its_price_and_runs_once(assistant, demo):
    """One load of the four weeks (a few seconds per load) for what it sends, what it costs, and
    that a second run adds nothing."""
    v1, v2 = assistant.versions.order_by("version")
    assert demo["llm requests"] == LLMRequest.objects.count() > 28 * 150
    days = {*daily(v1, LATENCY_P95), *daily(v2, LATENCY_P95)}
    assert len(days) == 28
    p95_v1, p95_v2 = np.array(list(daily(v1, LATENCY_P95).values())), np.array(list(daily(v2, LATENCY_P95).values()))
    assert 5 <= len(p95_v1) <= 8 and len(p95_v2) >= 20  # v1 the first week, v2 from three weeks ago
    assert p95_v2.min() > 2000 > 1500 > p95_v1.max()
    assert Alert.objects.filter(model=assistant, kind=AlertKind.LLM_LATENCY).exists()

    records = CostRecord.objects.filter(model=assistant, source="requests").order_by("period_start")
    assert records.count() == 28 and {r.currency for r in records} == {"USD"}
    large = Price.objects.filter(model="gpt-4.1").order_by("effective_from")
    assert large.count() == 2  # the price change
    change_day = large[1].effective_from.date()
    assert change_day == TODAY - timedelta(days=PRICE_CHANGE_DAYS_AGO)
    for record in records.filter(version__version=2):
        assert record.details["price_ids"] == [large[1].pk if record.period_start >= change_day else large[0].pk]

    counts = (LLMRequest.objects.count(), CostRecord.objects.count(), Price.objects.count())
    again = load_llm_requests(assistant, days=28, today=TODAY)
    assert "llm requests" not in again and "prices" not in again
    assert (LLMRequest.objects.count(), CostRecord.objects.count(), Price.objects.count()) == counts


def _figures(user, name="support-assistant", **params):
    data = model_dashboard_data(user=user, name=name, query=dashboard_query_parse({"range": "30d", **params}))
    return llm_panels(data), llm_figures(llm_panels(data))


def test_the_panels_draw_the_windows_with_markers_and_thresholds_for_every_role_that_sees_the_model(
    assistant, demo, roles, client_for
):
    panels, figures = _figures(roles["owner"], granularity="daily")
    assert set(figures) == set(CHART_IDS)
    assert len(panels.windows) == 28 and len(panels.cost_days) == 28 and panels.currency == "USD"
    latency = figures["chart-llm-latency"]
    names = [shape["name"] for shape in latency["layout"]["shapes"]]
    assert "p95 warning 2,000 ms" in names and "marker-promotion" in names
    for figure in figures.values():  # plotly's own validators accept every figure
        json.loads(pio.to_json(go.Figure(copy.deepcopy(figure)), validate=True))

    for role in ("owner", "reviewer", "auditor", "admin"):  # the same load for the page of each role
        response = client_for(roles[role]).get("/monitoring/models/support-assistant/", {"range": "30d"})
        assert response.status_code == 200, role
        html = response.content.decode()
        assert html.count('id="llm-panels"') == 1
        for chart in CHART_IDS:
            assert f'id="{chart}"' in html and f'"{chart}"' in html.split('id="figures"')[1]


TABULAR_ONLY = [chart for chart in DASHBOARD_CHART_IDS if chart != "chart-volume-quality"]


def test_an_llm_application_shows_no_empty_tabular_panels_and_no_feature_picker(assistant, demo, owner, client_for):
    """Request records have no features, reference bins or labels of the tabular kind: the
    dashboard drew five empty tabular panels and a feature picker offering "—"."""
    response = client_for(owner).get("/monitoring/models/support-assistant/", {"range": "30d"})
    html, figures = response.content.decode(), figures_of(response)
    for chart in TABULAR_ONLY:
        assert f'id="{chart}"' not in html and chart not in figures
    assert 'id="chart-volume-quality"' in html and figures["chart-volume-quality"]["data"]
    assert 'id="id_feature"' not in html and 'id="reference-missing"' not in html


def test_an_unknown_cost_is_said_not_drawn_as_zero(owner, team):
    from monitoring.services.llm_requests import llm_requests_ingest
    from monitoring.services.windows import window_compute
    from registry.services.audit import CLI

    model = llm_model(owner, team, name="unpriced")
    version = llm_version(model, provider="acme", model_id="secret-model", stage=Stage.PRODUCTION)
    day = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=2)
    body = json.dumps(
        [{"request_id": "a", "timestamp": day.isoformat(), "tokens_in": 5, "tokens_out": 5, "latency_ms": 10}]
    ).encode()
    llm_requests_ingest(version=version, body=body, content_type="application/json", actor=owner, context=CLI)
    window_compute(version_id=version.pk, window_start=day, granularity=Granularity.DAILY)
    panels, figures = _figures(owner, name="unpriced", granularity="daily")
    assert "Cost unknown for 1 day" in panels.cost_note and panels.cost_days == []
    assert figures["chart-llm-cost"]["data"] == []


def test_an_outsider_gets_a_404(assistant, outsider, client_for):
    assert client_for(outsider).get("/monitoring/models/support-assistant/").status_code == 404


def test_an_ml_model_has_no_llm_panels(churn_v1, owner, client_for):
    html = client_for(owner).get("/monitoring/models/churn/").content.decode()
    assert 'id="llm-panels"' not in html and "chart-llm-latency" not in html
