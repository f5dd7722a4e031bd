"""Windows of request records against a direct numpy/pandas computation, inference cost with
versioned prices (Decimal, currency kept, a price change mid-day, nothing doubled), and the
health reasons and alerts the LLM thresholds raise."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from monitoring.choices import AlertKind, AlertSeverity, Granularity, Metric
from monitoring.models import Alert, CostRecord, MetricValue
from monitoring.services.config import monitoring_config_update
from monitoring.services.health import health_evaluate
from monitoring.services.llm_cost import price_create, requests_cost
from monitoring.services.llm_requests import llm_requests_ingest
from monitoring.services.llm_windows import (
    COST,
    COST_KNOWN,
    FEEDBACK_COUNT,
    FEEDBACK_MEAN,
    LATENCY_P50,
    LATENCY_P95,
    SAFETY_RATE,
    TOKENS_IN,
    TOKENS_OUT,
)
from monitoring.services.windows import day_floor, window_compute
from registry.choices import Stage
from registry.services.audit import CLI
from tests.monitoring.llm_helpers import NOW, as_json, llm_version

pytestmark = pytest.mark.django_db

DAY = day_floor(NOW - timedelta(days=3))


@pytest.fixture
def v1(assistant):
    return llm_version(assistant, stage=Stage.PRODUCTION)


def make_records(n: int, *, seed: int = 7, start=DAY, hours: int = 24, latency: float = 800.0, prefix: str = "r"):
    rng = np.random.default_rng(seed)
    seconds = np.sort(rng.integers(0, 3600 * hours, n))
    records = []
    for i in range(n):
        feedback = [None, 1, -1, 0.5][int(rng.integers(0, 4))]
        flags = ["pii"] if rng.random() < 0.1 else []
        records.append(
            {
                "request_id": f"{prefix}{i}",
                "timestamp": (start + timedelta(seconds=int(seconds[i]))).isoformat(),
                "tokens_in": int(rng.integers(50, 3000)),
                "tokens_out": int(rng.integers(10, 800)),
                "latency_ms": float(np.round(rng.gamma(4, latency / 4), 3)),
                "feedback": feedback,
                "safety_flags": flags,
            }
        )
    return records


def ingest(version, records, actor):
    return llm_requests_ingest(
        version=version, body=as_json(records), content_type="application/json", actor=actor, context=CLI
    )


def metrics(version, start=DAY, granularity=Granularity.DAILY) -> dict[str, float | None]:
    rows = MetricValue.objects.filter(version=version, window_start=start, granularity=granularity, feature="")
    return dict(rows.values_list("metric", "value"))


def add_price(admin, *, start, inp: str, out: str, currency="USD", model="gpt-4.1-mini"):
    return price_create(
        actor=admin,
        context=CLI,
        provider="openai",
        model=model,
        input_per_million=Decimal(inp),
        output_per_million=Decimal(out),
        currency=currency,
        effective_from=start,
    )


# ------------------------------------------------------------------ window metrics


def test_daily_window_metrics_match_a_direct_computation(v1, owner, admin_user):
    add_price(admin_user, start=DAY - timedelta(days=10), inp="0.40", out="1.60")
    records = make_records(300)
    ingest(v1, records, owner)
    window_compute(version_id=v1.pk, window_start=DAY, granularity=Granularity.DAILY)
    got = metrics(v1)
    frame = pd.DataFrame(records)
    rated = frame["feedback"].dropna().astype(float)
    assert got[Metric.VOLUME] == 300
    assert got[LATENCY_P50] == pytest.approx(float(np.percentile(frame["latency_ms"], 50)), rel=1e-12)
    assert got[LATENCY_P95] == pytest.approx(float(np.quantile(frame["latency_ms"].to_numpy(), 0.95)), rel=1e-12)
    assert got[TOKENS_IN] == frame["tokens_in"].sum() and got[TOKENS_OUT] == frame["tokens_out"].sum()
    assert got[FEEDBACK_MEAN] == pytest.approx(rated.mean(), rel=1e-12) and got[FEEDBACK_COUNT] == len(rated)
    assert got[SAFETY_RATE] == pytest.approx(frame["safety_flags"].map(bool).mean(), rel=1e-12)
    expected = (frame["tokens_in"].sum() * Decimal("0.40") + frame["tokens_out"].sum() * Decimal("1.60")) / 10**6
    assert got[COST] == float(expected.quantize(Decimal("0.000001"))) and got[COST_KNOWN] == 1


def test_hourly_windows_split_the_requests_by_hour(v1, owner):
    records = make_records(40, hours=2)
    ingest(v1, records, owner)
    for hour in (DAY, DAY + timedelta(hours=1)):
        window_compute(version_id=v1.pk, window_start=hour, granularity=Granularity.HOURLY)
    frame = pd.DataFrame(records)
    frame["hour"] = pd.to_datetime(frame["timestamp"]).dt.floor("h")
    for hour, group in frame.groupby("hour"):
        got = metrics(v1, hour.to_pydatetime(), Granularity.HOURLY)
        assert got[Metric.VOLUME] == len(group)
        assert got[LATENCY_P95] == pytest.approx(float(np.percentile(group["latency_ms"], 95)), rel=1e-12)


# ------------------------------------------------------------------ cost


def test_cost_uses_the_price_in_force_at_each_request_in_decimal(v1, owner, admin_user):
    change = DAY + timedelta(hours=12)
    old = add_price(admin_user, start=DAY - timedelta(days=30), inp="0.40", out="1.60")
    new = add_price(admin_user, start=change, inp="0.30", out="1.20")
    records = make_records(500)
    ingest(v1, records, owner)
    window_compute(version_id=v1.pk, window_start=DAY, granularity=Granularity.DAILY)
    expected = Decimal(0)
    for rec in records:
        before = rec["timestamp"] < change.isoformat()
        inp, out = (Decimal("0.40"), Decimal("1.60")) if before else (Decimal("0.30"), Decimal("1.20"))
        expected += (rec["tokens_in"] * inp + rec["tokens_out"] * out) / Decimal(10**6)
    record = CostRecord.objects.get()
    assert record.amount == expected.quantize(Decimal("0.000001"))  # exact: no float anywhere
    assert record.currency == "USD" and record.category == "inference" and record.source == "requests"
    assert record.external_id == f"requests:{v1.pk}:{DAY:%Y-%m-%d}"
    assert record.period_start == record.period_end == DAY.date() and record.version == v1
    assert record.details["price_ids"] == [old.pk, new.pk]
    assert record.details["tokens_in"] == sum(r["tokens_in"] for r in records)


def test_a_request_at_the_instant_a_price_starts_pays_it_and_one_a_microsecond_earlier_the_old(v1, owner, admin_user):
    change = DAY + timedelta(hours=12)
    add_price(admin_user, start=DAY - timedelta(days=1), inp="1", out="0")
    add_price(admin_user, start=change, inp="3", out="0")
    at = {"before": change - timedelta(microseconds=1), "at": change}
    ingest(v1, [{"request_id": k, "timestamp": t.isoformat(), "tokens_in": 10**6, "tokens_out": 0,
                 "latency_ms": 1} for k, t in at.items()], owner)  # fmt: skip
    cost = requests_cost(v1, DAY, DAY + timedelta(days=1))
    assert cost.amount == Decimal(4) and [p["requests"] for p in cost.prices] == [1, 1]


def test_a_daily_window_reads_its_requests_once_for_metrics_and_cost(v1, owner, admin_user):
    add_price(admin_user, start=DAY - timedelta(days=1), inp="0.40", out="1.60")
    add_price(admin_user, start=DAY + timedelta(hours=12), inp="0.30", out="1.20")
    ingest(v1, make_records(100), owner)
    with CaptureQueriesContext(connection) as queries:
        window_compute(version_id=v1.pk, window_start=DAY, granularity=Granularity.DAILY)
    reads = [q["sql"] for q in queries.captured_queries if "monitoring_llmrequest" in q["sql"]]
    assert len(reads) == 1, reads
    assert CostRecord.objects.get().details["requests"] == 100


def test_many_small_costs_add_up_without_float_drift(v1, owner, admin_user):
    add_price(admin_user, start=DAY - timedelta(days=1), inp="0.1", out="0.2")
    records = [
        {"request_id": f"s{i}", "timestamp": (DAY + timedelta(seconds=i)).isoformat(), "tokens_in": 1,
         "tokens_out": 1, "latency_ms": 10}
        for i in range(1000)
    ]  # fmt: skip
    ingest(v1, records, owner)
    cost = requests_cost(v1, DAY, DAY + timedelta(days=1))
    assert cost.amount == Decimal("0.000300") and cost.currency == "USD"
    assert sum([0.1e-6 + 0.2e-6] * 1000) != 0.0003  # what a float sum would have given


def test_recomputing_and_resending_double_nothing(v1, owner, admin_user):
    add_price(admin_user, start=DAY - timedelta(days=1), inp="2", out="8")
    records = make_records(50)
    ingest(v1, records, owner)
    for _ in range(2):
        window_compute(version_id=v1.pk, window_start=DAY, granularity=Granularity.DAILY)
    amount = CostRecord.objects.get().amount
    again = ingest(v1, records, owner)
    assert "duplicate_of_batch" in again
    window_compute(version_id=v1.pk, window_start=DAY, granularity=Granularity.DAILY)
    assert CostRecord.objects.count() == 1 and CostRecord.objects.get().amount == amount
    assert MetricValue.objects.filter(version=v1, window_start=DAY, metric=COST).count() == 1


def test_a_later_price_does_not_rewrite_the_past(v1, owner, admin_user):
    add_price(admin_user, start=DAY - timedelta(days=1), inp="1", out="1")
    ingest(v1, make_records(20), owner)
    window_compute(version_id=v1.pk, window_start=DAY, granularity=Granularity.DAILY)
    before = CostRecord.objects.get().amount
    add_price(admin_user, start=DAY + timedelta(days=2), inp="5", out="5")
    window_compute(version_id=v1.pk, window_start=DAY, granularity=Granularity.DAILY)
    assert CostRecord.objects.get().amount == before


def test_the_currency_of_the_price_is_kept(v1, owner, admin_user):
    add_price(admin_user, start=DAY - timedelta(days=1), inp="0.5", out="1.5", currency="eur")
    ingest(v1, make_records(10), owner)
    window_compute(version_id=v1.pk, window_start=DAY, granularity=Granularity.DAILY)
    assert CostRecord.objects.get().currency == "EUR"


def test_without_a_price_the_cost_is_unknown_never_zero(v1, owner, admin_user):
    ingest(v1, make_records(10), owner)
    window_compute(version_id=v1.pk, window_start=DAY, granularity=Granularity.DAILY)
    got = metrics(v1)
    assert got[COST] is None and got[COST_KNOWN] == 0 and not CostRecord.objects.exists()
    # a price starting in the middle of the day leaves its morning unpriced: still unknown
    add_price(admin_user, start=DAY + timedelta(hours=12), inp="1", out="1")
    window_compute(version_id=v1.pk, window_start=DAY, granularity=Granularity.DAILY)
    assert metrics(v1)[COST] is None and not CostRecord.objects.exists()
    assert "No price" in requests_cost(v1, DAY, DAY + timedelta(days=1)).reason


def test_a_version_without_llm_parts_has_an_unknown_cost(assistant, owner, admin_user):
    from tests.factories import ModelVersionFactory

    bare = ModelVersionFactory(model=assistant, feature_schema=[], metrics={})
    add_price(admin_user, start=DAY - timedelta(days=1), inp="1", out="1")
    ingest(bare, make_records(5), owner)
    window_compute(version_id=bare.pk, window_start=DAY, granularity=Granularity.DAILY)
    assert metrics(bare)[COST] is None and not CostRecord.objects.exists()


def test_mixed_currencies_in_one_day_are_not_converted(v1, owner, admin_user):
    add_price(admin_user, start=DAY - timedelta(days=1), inp="1", out="1", currency="USD")
    add_price(admin_user, start=DAY + timedelta(hours=12), inp="1", out="1", currency="EUR")
    ingest(v1, make_records(40), owner)
    cost = requests_cost(v1, DAY, DAY + timedelta(days=1))
    assert cost.amount is None and "currencies" in cost.reason


# ------------------------------------------------------------------ health and alerts


def test_latency_safety_and_feedback_thresholds_raise_reasons_and_alerts(v1, owner):
    monitoring_config_update(
        model=v1.model,
        actor=owner,
        context=CLI,
        changes={
            "min_window_rows": 10,
            "llm_latency_p95_warning_ms": 1000,
            "llm_latency_p95_critical_ms": 3000,
            "llm_safety_flag_rate_warning": 0.05,
            "llm_safety_flag_rate_critical": 0.5,
            "llm_feedback_floor": 0.5,
        },
    )
    records = make_records(100, latency=4000.0)
    for rec in records:
        rec["feedback"] = -1 if int(rec["request_id"][1:]) % 2 else 1
        rec["safety_flags"] = ["toxicity"] if int(rec["request_id"][1:]) % 10 == 0 else []
    ingest(v1, records, owner)
    window_compute(version_id=v1.pk, window_start=DAY, granularity=Granularity.DAILY)
    health = health_evaluate(model=v1.model, now=NOW)
    kinds = {r["kind"]: r["severity"] for r in health.reasons}
    assert kinds == {
        AlertKind.LLM_LATENCY: AlertSeverity.CRITICAL,
        AlertKind.LLM_SAFETY: AlertSeverity.WARNING,
        AlertKind.LLM_FEEDBACK: AlertSeverity.WARNING,
    }
    assert health.status == "critical"
    alerts = dict(Alert.objects.filter(model=v1.model).values_list("kind", "severity"))
    assert alerts == kinds


def test_a_fast_safe_window_is_healthy(v1, owner):
    monitoring_config_update(model=v1.model, actor=owner, context=CLI, changes={"min_window_rows": 10})
    records = make_records(100, latency=300.0)
    for rec in records:
        rec["feedback"], rec["safety_flags"] = 1, []
    ingest(v1, records, owner)
    window_compute(version_id=v1.pk, window_start=DAY, granularity=Granularity.DAILY)
    health = health_evaluate(model=v1.model, now=NOW)
    assert health.status == "ok" and health.reasons == []
    assert not Alert.objects.exists()


def test_the_post_market_plan_of_an_llm_application_lists_its_request_signals(v1, churn):
    from monitoring.oversight.plan import plan_generate

    llm_signals = {s["signal"] for s in plan_generate(v1.model)["signals"]}
    assert {"llm_latency", "llm_safety", "llm_feedback", "llm_cost"} <= llm_signals
    # and none of a tabular model's, which the report's section 4.1 listed for the LLM app too
    assert not llm_signals & {"data_drift", "prediction_drift", "data_quality", "performance", "fairness"}
    latency = next(s for s in plan_generate(v1.model)["signals"] if s["signal"] == "llm_latency")
    assert latency["thresholds"] == {"p95_warning_ms": 2000, "p95_critical_ms": 5000}
    assert not any(s["signal"].startswith("llm_") for s in plan_generate(churn)["signals"])


@pytest.mark.parametrize(("role", "status"), [("auditor", 200), ("reviewer", 200), ("outsider", 404)])
def test_window_metrics_are_read_through_the_metrics_api(v1, owner, roles, role, status, api_client_for):
    ingest(v1, make_records(30), owner)
    window_compute(version_id=v1.pk, window_start=DAY, granularity=Granularity.DAILY)
    client = api_client_for(roles[role], scopes=["monitoring:read"])
    response = client.get("/api/v1/models/assistant/metrics/", {"metric": LATENCY_P95, "granularity": "daily"})
    assert response.status_code == status
    if status == 200:
        [row] = response.json()["results"]
        assert row["value"] == metrics(v1)[LATENCY_P95]
