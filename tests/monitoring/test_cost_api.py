"""Cost records and budgets through the API: exact Decimal sums per currency, idempotent external
ids, bad bodies and bad CSV refused with nothing stored, and permissions per role."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from monitoring.models_cost import Budget, CostRecord
from registry.choices import ModelKind
from registry.models import AuditEvent
from tests.factories import RegisteredModelFactory
from tests.monitoring.helpers import assert_error

pytestmark = pytest.mark.django_db

URL = "/api/v1/models/churn/costs/"
BUDGET_URL = "/api/v1/models/churn/budget/"


def post(client, body, content_type="application/json", url=URL):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.generic("POST", url, data, content_type=content_type)


def rec(**overrides) -> dict:
    out = {
        "period_start": "2026-11-03",
        "period_end": "2026-11-03",
        "amount": "12.50",
        "currency": "EUR",
        "category": "serving",
    }
    out.update(overrides)
    return out


def test_a_thousand_tenths_sum_exactly_and_currencies_are_never_mixed(churn, owner, api_client_for):
    client = api_client_for(owner)
    batch = [rec(amount="0.1") for _ in range(1000)] + [rec(amount=0.1, currency="USD") for _ in range(3)]
    response = post(client, batch)
    assert response.status_code == 201, response.content
    assert response.json()["totals"] == {"EUR": "100.000000", "USD": "0.300000"}
    body = client.get(URL, {"limit": 5}).json()
    assert body["count"] == 1003 and len(body["results"]) == 5
    assert {t["currency"]: Decimal(t["amount"]) for t in body["totals"]} == {
        "EUR": Decimal("100"),
        "USD": Decimal("0.3"),
    }


def test_one_record_is_stored_and_audited_once_with_counts_and_totals(churn, owner, api_client_for, last_seq):
    seq = last_seq()
    response = post(api_client_for(owner), rec(amount=3, currency="eur", category="training"))
    assert response.status_code == 201, response.content
    stored = CostRecord.objects.get(model=churn)
    assert (stored.amount, stored.currency, stored.source) == (Decimal("3"), "EUR", "api")
    events = list(AuditEvent.objects.filter(seq__gt=seq, action="cost.recorded"))
    assert len(events) == 1
    assert events[0].after["created"] == 1 and events[0].after["totals"] == {"EUR": "3.000000"}


def test_an_external_id_resent_with_the_same_values_changes_nothing_and_with_others_is_a_409(
    churn, owner, api_client_for
):
    client = api_client_for(owner)
    first = post(client, [rec(external_id="bill-1"), rec(external_id="bill-2", amount="1.5")])
    assert first.status_code == 201
    again = post(client, [rec(external_id="bill-1"), rec(external_id="bill-2", amount="1.500")])
    assert again.status_code == 200 and again.json()["created"] == 0 and again.json()["unchanged"] == 2
    conflict = post(client, [rec(external_id="bill-3"), rec(external_id="bill-1", amount="13")])
    assert_error(conflict, 409, "bill-1")
    assert CostRecord.objects.filter(model=churn).count() == 2  # bill-3 not stored either


@pytest.mark.parametrize(
    "body",
    [
        rec(amount="NaN"),
        rec(amount="Infinity"),
        rec(amount="1e999"),
        rec(amount="12345678901.5"),  # 11 integer digits
        rec(amount="1.1234567"),  # 7 decimal places
        rec(amount=True),
        rec(amount="12,50"),
        rec(currency="EURO"),
        rec(currency="E1R"),
        rec(currency=978),
        rec(category="compute"),
        rec(period_start="2026-11-04"),  # after period_end
        rec(period_end="2026-13-01"),
        rec(period_start=20261103),
        rec(period_start="2026-11-03T10:00:00"),
        rec(period_start="1999-12-31"),
        rec(period_start="2099-01-01", period_end="2099-01-01"),
        rec(period_start="2025-01-01", period_end="2026-11-03"),  # longer than a year
        rec(unknown="x"),
        rec(external_id="a\u0000b"),
        rec(external_id="x" * 201),
        {k: v for k, v in rec().items() if k != "currency"},
        [],
        [rec(), "not an object"],
        "just a string",
        [rec(external_id="dup"), rec(external_id="dup", amount="1")],
    ],
)
def test_bad_bodies_are_a_400_and_nothing_is_stored(churn, owner, api_client_for, body):
    response = post(api_client_for(owner), [rec(), body] if isinstance(body, dict) else body)
    assert_error(response, 400)
    assert not CostRecord.objects.exists()


@pytest.mark.parametrize(
    "raw",
    [b'{"amount": NaN}', b"[1,2", b"\xff\xfe", b'{"a":' * 100 + b"1" + b"}" * 100, b""],
)
def test_broken_json_is_a_400(churn, owner, api_client_for, raw):
    assert_error(post(api_client_for(owner), raw), 400)
    assert not CostRecord.objects.exists()


def test_an_unsupported_media_type_is_a_415(churn, owner, api_client_for):
    assert_error(post(api_client_for(owner), b"<x/>", content_type="application/xml"), 415)


BILL = (
    "\ufeffDate,Line ID,Service,Amount,Currency,Category\r\n"
    "2026-11-01,l-1,compute,10.10,EUR,serving\r\n"
    "2026-11-02,l-2,compute,10.20,EUR,serving\r\n"
    "2026-11-02,l-3,s3,0.70,USD,storage\r\n"
)


def test_a_cloud_bill_csv_with_a_bom_is_stored_per_line_and_resending_it_changes_nothing(churn, owner, api_client_for):
    client = api_client_for(owner)
    response = post(client, BILL.encode("utf-8"), content_type="text/csv")
    assert response.status_code == 201, response.content
    assert response.json()["totals"] == {"EUR": "20.300000", "USD": "0.700000"}
    stored = CostRecord.objects.get(model=churn, external_id="l-3")
    assert (stored.source, stored.period_start.isoformat(), stored.period_end.isoformat()) == (
        "csv",
        "2026-11-02",
        "2026-11-02",
    )
    again = post(client, BILL.encode("utf-8"), content_type="text/csv")
    assert again.status_code == 200 and again.json()["unchanged"] == 3
    assert CostRecord.objects.count() == 3


@pytest.mark.parametrize(
    "csv_text",
    [
        "date,amount,currency,category\n2026-11-01,10,EUR,serving\n2026-11-02,10,EUR\n",  # short row
        "date,amount,currency,category\n2026-11-01,10,EUR,serving,extra\n",  # long row
        "date,amount,currency,category\n2026-11-01,ten,EUR,serving\n",  # bad number
        "date,amount,currency,category\n2026-11-01,NaN,EUR,serving\n",
        "date,amount,currency,category\n2026-11-01,,EUR,serving\n",  # empty amount
        "date,amount,currency,category\n01/11/2026,10,EUR,serving\n",  # not ISO
        "date,amount,category\n2026-11-01,10,serving\n",  # no currency column
        "date,period_start,period_end,amount,currency,category\n2026-11-01,2026-11-01,2026-11-01,1,EUR,serving\n",
        "amount,cost,currency,category,date\n1,1,EUR,serving,2026-11-01\n",  # two amount columns
        "date,amount,currency,category\n",  # no rows
    ],
)
def test_bad_csv_is_a_400_with_nothing_stored(churn, owner, api_client_for, csv_text):
    good = "2026-11-01,1,EUR,serving\n"
    body = csv_text if csv_text.count("\n") < 2 else csv_text.replace("\n", "\n" + good, 1)
    assert_error(post(api_client_for(owner), body.encode(), content_type="text/csv"), 400)
    assert not CostRecord.objects.exists()


def test_get_filters_by_dates_and_category(churn, owner, api_client_for):
    client = api_client_for(owner)
    post(
        client,
        [
            rec(period_start="2026-10-01", period_end="2026-10-31", category="storage", amount="5"),
            rec(period_start="2026-11-02", period_end="2026-11-02", amount="1"),
            rec(period_start="2026-11-20", period_end="2026-11-20", amount="2"),
        ],
    )
    body = client.get(URL, {"from": "2026-10-15", "to": "2026-11-10"}).json()
    assert sorted(r["amount"] for r in body["results"]) == ["1.000000", "5.000000"]
    assert client.get(URL, {"category": "storage"}).json()["totals"] == [{"currency": "EUR", "amount": "5.000000"}]
    assert_error(client.get(URL, {"from": "yesterday"}), 400, "from")
    assert_error(client.get(URL, {"category": "compute"}), 400, "category")


def test_costs_work_for_an_llm_application(owner, team, api_client_for):
    RegisteredModelFactory(name="support-assistant", owner=owner, team=team, kind=ModelKind.LLM_APP)
    url = "/api/v1/models/support-assistant/costs/"
    response = post(api_client_for(owner), rec(category="inference"), url=url)
    assert response.status_code == 201, response.content


# --------------------------------------------------------------------------- roles


@pytest.mark.parametrize(
    ("role", "get", "post_status", "put"),
    [
        ("owner", 200, 201, 200),
        ("admin", 200, 201, 200),
        ("reviewer", 200, 403, 403),
        ("auditor", 200, 403, 403),
        ("outsider", 404, 403, 403),  # its token cannot hold monitoring:write
    ],
)
def test_permissions_per_role(churn, roles, api_client_for, role, get, post_status, put):
    Budget.objects.create(model=churn, monthly_amount=100, currency="EUR", updated_at=churn.created_at)
    client = api_client_for(roles[role])
    assert client.get(URL).status_code == get
    assert client.get(BUDGET_URL).status_code == get
    assert post(client, rec()).status_code == post_status
    response = client.put(BUDGET_URL, {"monthly_amount": "50.00", "currency": "EUR"}, format="json")
    assert response.status_code == put, response.content
    assert CostRecord.objects.count() == (1 if post_status == 201 else 0)


def test_scopes_read_may_read_and_not_write(churn, owner, api_client_for):
    client = api_client_for(owner, scopes=["monitoring:read"])
    assert client.get(URL).status_code == 200
    assert_error(post(client, rec()), 403, "monitoring:write")
    assert client.put(BUDGET_URL, {"monthly_amount": "50", "currency": "EUR"}, format="json").status_code == 403
    writer = api_client_for(owner, scopes=["monitoring:write"])
    assert post(writer, rec()).status_code == 201
    assert writer.get(URL).status_code == 403


# --------------------------------------------------------------------------- budget


def test_budget_put_is_audited_with_before_and_after_and_get_answers_the_share_used(
    churn, owner, api_client_for, last_seq
):
    from mlops_portal import clock

    client = api_client_for(owner)
    assert_error(client.get(BUDGET_URL), 404, "No budget")
    seq = last_seq()
    response = client.put(BUDGET_URL, {"monthly_amount": "200", "currency": "EUR"}, format="json")
    assert response.status_code == 200, response.content
    client.put(BUDGET_URL, {"monthly_amount": "400.00", "currency": "EUR", "warning_share": "0.9"}, format="json")
    events = list(AuditEvent.objects.filter(seq__gt=seq, action="budget.changed").order_by("seq"))
    assert len(events) == 2
    assert events[0].before is None and events[0].after["monthly_amount"] == "200.00"
    assert events[1].before == {
        "monthly_amount": "200.00",
        "currency": "EUR",
        "warning_share": "0.800",
        "critical_share": "1.000",
    }
    assert events[1].after["monthly_amount"] == "400.00" and events[1].after["warning_share"] == "0.900"

    today = clock.now().date().isoformat()
    post(
        client,
        [
            rec(period_start=today, period_end=today, amount="100"),
            rec(period_start=today, period_end=today, amount="7", currency="USD"),
        ],
    )
    body = client.get(BUDGET_URL).json()
    assert body["month_to_date"] == "100.000000" and body["share_used"] == "0.2500" and body["level"] == "ok"
    assert body["other_currencies"] == [{"currency": "USD", "amount": "7.000000"}]


@pytest.mark.parametrize(
    "body",
    [
        {"monthly_amount": "0", "currency": "EUR"},
        {"monthly_amount": "-5", "currency": "EUR"},
        {"monthly_amount": "NaN", "currency": "EUR"},
        {"monthly_amount": "1e30", "currency": "EUR"},
        {"monthly_amount": "10", "currency": "euro"},
        {"monthly_amount": "10"},
        {"monthly_amount": "10", "currency": "EUR", "warning_share": "0.9", "critical_share": "0.5"},
        {"monthly_amount": "10", "currency": "EUR", "colour": "red"},
        ["not", "an", "object"],
    ],
)
def test_bad_budgets_are_a_400(churn, owner, api_client_for, body):
    response = api_client_for(owner).put(BUDGET_URL, body, format="json")
    assert_error(response, 400)
    assert not Budget.objects.exists()


def test_a_bill_with_period_columns_and_other_header_spellings_is_read(churn, owner, api_client_for):
    body = (
        "Start Date,End-Date,Cost,Currency Code,CATEGORY,Line Item ID,Region\n"
        "2026-10-01,2026-10-31,120.5,usd,storage,x-1,eu\n"
    )
    response = post(api_client_for(owner), body.encode(), content_type="text/csv; charset=utf-8")
    assert response.status_code == 201, response.content
    stored = CostRecord.objects.get(model=churn)
    assert (stored.period_start.isoformat(), stored.period_end.isoformat(), stored.currency, stored.external_id) == (
        "2026-10-01",
        "2026-10-31",
        "USD",
        "x-1",
    )


def test_a_nul_character_in_a_csv_cell_is_a_400(churn, owner, api_client_for):
    body = b"date,amount,currency,category,line_id\n2026-11-01,1,EUR,serving,a\x00b\n"
    assert_error(post(api_client_for(owner), body, content_type="text/csv"), 400)
    assert not CostRecord.objects.exists()


def test_a_body_over_the_upload_limit_is_a_413(churn, owner, api_client_for, settings):
    settings.INGEST_MAX_BODY_BYTES = 1000
    body = ("date,amount,currency,category\n" + "2026-11-01,1,EUR,serving\n" * 100).encode()
    assert_error(post(api_client_for(owner), body, content_type="text/csv"), 413)
    assert not CostRecord.objects.exists()


def test_a_browser_session_may_read_costs_and_the_outsider_may_not(churn, owner, outsider, client_for):
    assert client_for(owner).get(URL).status_code == 200
    assert_error(client_for(outsider).get(URL), 404)


@pytest.mark.parametrize("query", [{"to": ""}, {"from": " "}])
def test_a_filter_given_empty_is_a_400(churn, owner, api_client_for, query):
    assert_error(api_client_for(owner).get(URL, query), 400)
