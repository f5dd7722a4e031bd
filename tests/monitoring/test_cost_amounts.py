"""Amounts of cost records and budgets: a negative amount (a credit or refund) is a 400 naming the
field and saying a credit is not a cost, in JSON, in a cloud-bill CSV and from the portal's own
callers; NaN, infinity and amounts beyond the stored digits are a 400, never a 500; zero (a free
line of a bill) is a cost of zero, "-0" included."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from monitoring.models_cost import Budget, CostRecord
from monitoring.services.costs import cost_records_store
from monitoring.services.ingest_parsing import BatchError
from registry.services.audit import CLI
from tests.monitoring.helpers import assert_error

pytestmark = pytest.mark.django_db

URL = "/api/v1/models/churn/costs/"
BUDGET_URL = "/api/v1/models/churn/budget/"


def rec(**overrides) -> dict:
    return {
        "period_start": "2026-11-03",
        "period_end": "2026-11-03",
        "amount": "12.50",
        "currency": "EUR",
        "category": "serving",
    } | overrides


def post(client, body: bytes, content_type="application/json"):
    return client.generic("POST", URL, body, content_type=content_type)


@pytest.fixture
def client(churn, owner, api_client_for):
    return api_client_for(owner)


@pytest.mark.parametrize("amount", ["-1", "-0.000001", "-12.50", -3, -0.01, "  -7  "])
def test_a_negative_cost_is_a_400_naming_the_amount_and_saying_a_credit_is_not_a_cost(client, amount, last_seq):
    seq = last_seq()
    body = json.dumps([rec(), rec(amount=amount)]).encode()
    error = assert_error(post(client, body), 400, "Row 2", "credit")
    assert list(error["details"]) == ["amount"], error
    assert not CostRecord.objects.exists()
    assert last_seq() == seq


def test_a_negative_line_of_a_cloud_bill_csv_is_a_400_naming_row_and_amount(client):
    body = b"date,amount,currency,category,line_id\n2026-11-01,10,EUR,serving,l1\n2026-11-02,-4.5,EUR,serving,l2\n"
    error = assert_error(post(client, body, "text/csv"), 400, "Row 2", "credit")
    assert list(error["details"]) == ["amount"], error
    assert not CostRecord.objects.exists()


def test_the_portals_own_callers_cannot_store_a_negative_cost(churn, owner):
    records = [rec(amount=Decimal("-1"))]
    with pytest.raises(BatchError) as caught:
        cost_records_store(model=churn, records=records, actor=owner, context=CLI)
    assert (caught.value.row, caught.value.field) == (1, "amount")
    assert not CostRecord.objects.exists()


@pytest.mark.parametrize(
    "raw",
    [
        b'{"period_start": "2026-11-03", "period_end": "2026-11-03", "amount": -Infinity, "currency": "EUR",'
        b' "category": "serving"}',
        b'{"period_start": "2026-11-03", "period_end": "2026-11-03", "amount": 1e400, "currency": "EUR",'
        b' "category": "serving"}',
        b'{"period_start": "2026-11-03", "period_end": "2026-11-03", "amount": -1e400, "currency": "EUR",'
        b' "category": "serving"}',
        json.dumps(rec(amount="-Infinity")).encode(),
        json.dumps(rec(amount="-NaN")).encode(),
        json.dumps(rec(amount="sNaN")).encode(),
        json.dumps(rec(amount=1e308)).encode(),
        json.dumps(rec(amount="1" + "0" * 400)).encode(),
        json.dumps(rec(amount="10000000000")).encode(),
    ],
)
def test_non_finite_and_huge_amounts_are_a_400(client, raw):
    needle = "body" if b"Infinity," in raw else "amount"  # a bare -Infinity token is not JSON
    assert_error(post(client, raw), 400, needle)
    assert not CostRecord.objects.exists()


def test_the_largest_amount_and_a_zero_line_are_stored_and_minus_zero_is_zero(client):
    body = json.dumps([rec(amount="9999999999.999999"), rec(amount="0"), rec(amount="-0.00")]).encode()
    response = post(client, body)
    assert response.status_code == 201, response.content
    assert response.json()["totals"] == {"EUR": "9999999999.999999"}
    amounts = sorted(str(a) for a in CostRecord.objects.values_list("amount", flat=True))
    assert all(not a.startswith("-") for a in amounts), amounts
    only_zero = post(client, json.dumps([rec(amount="-0", currency="USD")]).encode())
    assert only_zero.json()["totals"] == {"USD": "0.000000"}


@pytest.mark.parametrize("amount", ["-5", "-0.01", -100, "-0"])
def test_a_negative_or_zero_budget_is_a_400_naming_monthly_amount(client, amount):
    response = client.put(BUDGET_URL, {"monthly_amount": amount, "currency": "EUR"}, format="json")
    error = assert_error(response, 400, "monthly_amount")
    assert list(error["details"]) == ["monthly_amount"], error
    if str(amount).strip("-0.") != "":
        assert "credit" in error["message"], error
    assert not Budget.objects.exists()


@pytest.mark.parametrize(
    "raw",
    [
        b'{"monthly_amount": NaN, "currency": "EUR"}',
        b'{"monthly_amount": -Infinity, "currency": "EUR"}',
        b'{"monthly_amount": 1e400, "currency": "EUR"}',
        b'{"monthly_amount": "Infinity", "currency": "EUR"}',
        b'{"monthly_amount": "-Infinity", "currency": "EUR"}',
        b'{"monthly_amount": 1e308, "currency": "EUR"}',
        b'{"monthly_amount": "1000000000000", "currency": "EUR"}',
        b'{"monthly_amount": "10", "currency": "EUR", "warning_share": "-0.5"}',
        b'{"monthly_amount": "10", "currency": "EUR", "critical_share": "-1"}',
    ],
)
def test_non_finite_huge_and_negative_budget_values_are_a_400(client, raw):
    assert_error(client.generic("PUT", BUDGET_URL, raw, content_type="application/json"), 400)
    assert not Budget.objects.exists()


def test_the_api_schema_says_amounts_are_not_negative(client):
    schema = client.get("/api/schema/", {"format": "json"}).json()
    body = schema["paths"][URL.replace("churn", "{name}")]["post"]["requestBody"]["content"]["application/json"]
    record = body["schema"]["oneOf"][0]
    string, number = record["properties"]["amount"]["oneOf"]
    assert not string["pattern"].startswith("^-") and number["minimum"] == 0
