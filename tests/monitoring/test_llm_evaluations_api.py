"""LLM evaluation runs through the evaluation endpoint (models of kind llm_app): JSON, JSON Lines
and CSV; summaries with Wilson/t intervals checked against scipy; the version's offline metrics
and the audit event; one clear 400 per bad upload with nothing stored; permissions per role."""

from __future__ import annotations

import codecs
import json
import math

import numpy as np
import pytest
from scipy import stats

from registry.choices import EvaluationKind, Stage
from registry.models import AuditEvent, EvaluationRun
from registry.services.audit import CLI
from tests.factories import ModelVersionFactory, RegisteredModelFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/models/support-assistant/versions/1/evaluations/"
SET = "support-eval-2026-11"


@pytest.fixture
def assistant(owner, team):
    return RegisteredModelFactory(name="support-assistant", owner=owner, team=team, kind="llm_app")


@pytest.fixture
def assistant_v1(assistant):
    return ModelVersionFactory(model=assistant, feature_schema=[], metrics={"latency_p95_ms": 900.0})


def rows(n=40, *, jailbreak_fail=1):
    out = []
    for i in range(n):
        category = ("jailbreak", "pii", None)[i % 3]
        out.append(
            {
                "case_id": f"case-q{i}",
                "category": category,
                "correctness": round(0.5 + (i % 7) / 14, 4),
                "groundedness": None if i % 5 == 0 else 0.9,
                "safety_pass": not (category == "jailbreak" and i < 3 * jailbreak_fail),
                "refusal": i % 4 == 0,
            }
        )
    return out


def as_json(records) -> bytes:
    return json.dumps(records).encode()


def as_ndjson(records) -> bytes:
    return b"\n".join(json.dumps(r).encode() for r in records)


def _cell(value) -> str:
    return {True: "true", False: "false"}.get(value, "") if isinstance(value, bool | None) else str(value)


def as_csv(records) -> bytes:
    names = list(records[0])
    lines = [",".join(names)] + [",".join(_cell(r[k]) for k in names) for r in records]
    return ("\n".join(lines) + "\n").encode()


def post(client, body: bytes, content_type="application/json", evaluation_set=SET):
    url = URL + (f"?evaluation_set={evaluation_set}" if evaluation_set else "")
    return client.generic("POST", url, body, content_type=content_type)


@pytest.mark.parametrize(
    ("encode", "content_type"),
    [(as_json, "application/json"), (as_ndjson, "application/x-ndjson"), (as_csv, "text/csv")],
)
def test_upload_stores_summaries_metrics_and_audit(assistant_v1, owner, api_client_for, encode, content_type):
    records = rows(60)
    response = post(api_client_for(owner), encode(records), content_type)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["kind"] == "llm" and body["evaluation_set"] == SET and body["rows"] == 60
    run = EvaluationRun.objects.get()
    assert run.kind == EvaluationKind.LLM and run.status == "done" and run.evaluation_set == SET
    metrics = run.results["metrics"]
    # correctness: the mean with a t interval (scipy)
    values = np.array([r["correctness"] for r in records])
    low, high = stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=stats.sem(values))
    assert metrics["correctness"]["value"] == pytest.approx(values.mean())
    assert (metrics["correctness"]["ci_low"], metrics["correctness"]["ci_high"]) == pytest.approx((low, high))
    assert metrics["groundedness"]["n"] == 48  # nulls are not scored
    # safety pass: Wilson (scipy's binomtest)
    passed = sum(r["safety_pass"] for r in records)
    wilson = stats.binomtest(passed, 60).proportion_ci(0.95, method="wilson")
    assert metrics["safety_pass"]["passed"] == passed
    assert (metrics["safety_pass"]["ci_low"], metrics["safety_pass"]["ci_high"]) == pytest.approx(
        (wilson.low, wilson.high)
    )
    categories = {c["category"]: c for c in run.results["safety_categories"]}
    assert categories["jailbreak"]["n"] == 20 and categories["jailbreak"]["passed"] == 19
    assert run.results["safety_categories"][0]["category"] == "jailbreak"  # lowest first
    assert set(categories) == {"jailbreak", "pii"}
    assistant_v1.refresh_from_db()
    assert assistant_v1.metrics["latency_p95_ms"] == 900.0  # kept
    assert assistant_v1.metrics["correctness"] == pytest.approx(values.mean(), abs=1e-6)
    assert assistant_v1.metrics["safety_pass_rate"] == pytest.approx(passed / 60, abs=1e-6)
    assert {"groundedness", "refusal_rate"} <= set(assistant_v1.metrics)
    event = AuditEvent.objects.get(action="evaluation.uploaded")
    assert event.after["evaluation_set"] == SET and event.after["metrics"]["safety_pass_rate"] == pytest.approx(
        passed / 60, abs=1e-6
    )
    assert "case-q" not in json.dumps(event.after)  # no case id, no text in the audit log


def test_bom_csv_and_set_from_a_column(assistant_v1, owner, api_client_for):
    records = [{**r, "evaluation_set": SET} for r in rows(12)]
    response = post(api_client_for(owner), codecs.BOM_UTF8 + as_csv(records), "text/csv", evaluation_set=None)
    assert response.status_code == 201, response.content
    assert EvaluationRun.objects.get().evaluation_set == SET


BAD = [
    ("duplicate case id", lambda r: [*r, dict(r[0])], "application/json", "Duplicate case id"),
    ("missing case id", lambda r: [{k: v for k, v in x.items() if k != "case_id"} for x in r], "application/json",
     "case_id"),
    ("null case id", lambda r: [{**r[0], "case_id": None}, *r[1:]], "application/json", "case_id"),
    ("correctness above 1", lambda r: [*r[:3], {**r[3], "correctness": 1.5}], "application/json", "between 0 and 1"),
    ("correctness text", lambda r: [{**r[0], "correctness": "high"}, *r[1:]], "application/json", "correctness"),
    ("safety_pass as text", lambda r: [{**r[0], "safety_pass": "yes"}, *r[1:]], "application/json", "safety_pass"),
    ("safety_pass 2", lambda r: [{**r[0], "safety_pass": 2}, *r[1:]], "application/json", "safety_pass"),
    ("refusal object", lambda r: [{**r[0], "refusal": {"a": 1}}, *r[1:]], "application/json", "refusal"),
    ("unknown column", lambda r: [{**r[0], "latency": 3}, *r[1:]], "application/json", "latency"),
    ("prompt text", lambda r: [{**r[0], "prompt": "how do I"}, *r[1:]], "application/json", "prompt"),
    ("no score", lambda r: [{"case_id": x["case_id"]} for x in r], "application/json", "score"),
    ("category object", lambda r: [{**r[0], "category": ["a"]}, *r[1:]], "application/json", "category"),
    ("NUL in case id", lambda r: [{**r[0], "case_id": "a\x00b"}, *r[1:]], "application/json", "NUL"),
    ("record not an object", lambda r: [*r, 5], "application/json", "record"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "mutate", "content_type", "needle"), BAD, ids=[b[0] for b in BAD])
def test_bad_rows_are_400_with_nothing_stored(assistant_v1, owner, api_client_for, name, mutate, content_type, needle):
    client = api_client_for(owner)
    seq = AuditEvent.objects.count()
    response = post(client, as_json(mutate(rows(12))), content_type)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert {"code", "message", "details"} <= set(error) and needle in json.dumps(error)
    assert EvaluationRun.objects.count() == 0 and AuditEvent.objects.count() == seq
    assistant_v1.refresh_from_db()
    assert assistant_v1.metrics == {"latency_p95_ms": 900.0}


@pytest.mark.parametrize(
    ("body", "content_type", "needle"),
    [
        (b'[{"case_id": "a", "correctness": NaN}]', "application/json", "NaN"),
        (b'[{"case_id": "a", "correctness": Infinity}]', "application/json", "NaN"),
        (b'[{"case_id": "a", "correctness": 1e999}]', "application/json", "correctness"),
        (b"case_id,correctness\na,0.5\nb,0.4,extra\n", "text/csv", "More cells"),
        (b"case_id,correctness,safety_pass\na,0.5,true\nb,0.4\n", "text/csv", "Fewer cells"),
        (b"case_id,correctness\na,nan\n", "text/csv", "NaN"),
        (b"case_id,safety_pass\na,maybe\n", "text/csv", "safety_pass"),
        (b"case_id,correctness\na,0.5\na,0.4\n", "text/csv", "Duplicate case id"),
        (b"", "application/json", "empty"),
        (b"[]", "application/json", "no records"),
        (b"\xff\xfe", "text/csv", "UTF-8"),
        (b'{"case_id": "a"', "application/x-ndjson", "Invalid JSON"),
        (b'[{"case_id": "a", "correctness": 1' + b"0" * 400 + b"}]", "application/json", "correctness"),
        (b'[{"case_id": 1' + b"0" * 400 + b', "correctness": 0.5}]', "application/json", "case_id"),
        (b'[{"case_id": "a", "safety_pass": 1' + b"0" * 400 + b"}]", "application/json", "safety_pass"),
        (b'[{"case_id": "a", "refusal": 1.0}]', "application/json", "refusal"),
        (b'[{"case_id": "a", "correctness": true}]', "application/json", "correctness"),
        (b'[{"case_id": "a", "category": 1e308, "correctness": 0.5}]', "application/json", "category"),
        (b'[{"case_id": "a", "evaluation_set": 5, "correctness": 0.5}]', "application/json", "evaluation_set"),
        (b'[{"case_id": "a", "evaluation_set": {}, "correctness": 0.5}]', "application/json", "evaluation_set"),
        (b"[" * 5000 + b"]" * 5000, "application/json", "body"),
    ],
)
def test_bad_bodies_are_400_with_nothing_stored(assistant_v1, owner, api_client_for, body, content_type, needle):
    response = post(api_client_for(owner), body, content_type)
    assert response.status_code == 400, response.content
    assert needle in json.dumps(response.json()["error"])
    assert EvaluationRun.objects.count() == 0


@pytest.mark.parametrize("name", [None, "", "has space", "x" * 101, "bad\tname", "-leading"])
def test_the_evaluation_set_name_is_required_and_checked(assistant_v1, owner, api_client_for, name):
    client = api_client_for(owner)
    url = URL if name is None else URL + "?" + __import__("urllib.parse").parse.urlencode({"evaluation_set": name})
    response = client.generic("POST", url, as_json(rows(6)), content_type="application/json")
    assert response.status_code == 400 and "evaluation_set" in json.dumps(response.json())
    assert EvaluationRun.objects.count() == 0


def test_conflicting_set_names_are_refused(assistant_v1, owner, api_client_for):
    records = [{**r, "evaluation_set": "other-set"} for r in rows(6)]
    assert post(api_client_for(owner), as_json(records)).status_code == 400
    mixed = [{**r, "evaluation_set": f"set-{i % 2}"} for i, r in enumerate(rows(6))]
    assert post(api_client_for(owner), as_json(mixed), evaluation_set=None).status_code == 400
    assert EvaluationRun.objects.count() == 0


def test_unsupported_media_type_is_415(assistant_v1, owner, api_client_for):
    assert post(api_client_for(owner), b"<xml/>", "application/xml").status_code == 415


def test_ml_model_keeps_the_fairness_rules(owner, team, api_client_for):
    model = RegisteredModelFactory(name="support-assistant", owner=owner, team=team)  # kind ml
    ModelVersionFactory(model=model)
    response = post(api_client_for(owner), as_json(rows(6)))
    assert response.status_code == 415  # the fairness upload takes CSV or Parquet only
    assert EvaluationRun.objects.count() == 0


def test_the_service_refuses_an_ml_model(owner, churn_v1):
    from monitoring.services.evaluations_llm import llm_evaluation_upload
    from monitoring.services.ingest_parsing import BatchError

    with pytest.raises(BatchError):
        llm_evaluation_upload(
            version=churn_v1, body=as_json(rows(6)), content_type="application/json", actor=owner, context=CLI,
            evaluation_set=SET,
        )  # fmt: skip


@pytest.mark.parametrize(
    ("role", "post_status", "get_status"),
    [("owner", 201, 200), ("admin", 201, 200), ("reviewer", 403, 200), ("auditor", 403, 200), ("outsider", 403, 404)],
)
def test_permissions_per_role(assistant_v1, roles, api_client_for, role, post_status, get_status):
    client = api_client_for(roles[role])
    response = post(client, as_json(rows(9)))
    assert response.status_code == post_status, response.content
    assert EvaluationRun.objects.count() == (1 if post_status == 201 else 0)
    if post_status != 201:
        post(api_client_for(roles["owner"]), as_json(rows(9)))
    listing = client.get(URL)
    assert listing.status_code == get_status
    if get_status == 200:
        results = listing.json()["results"]
        assert len(results) == 1 and results[0]["metrics"]["correctness"]["n"] == 9


def test_read_scope_cannot_upload(assistant_v1, owner, api_client_for):
    response = post(api_client_for(owner, scopes=["monitoring:read"]), as_json(rows(6)))
    assert response.status_code == 403
    assert api_client_for(owner, scopes=["monitoring:read"]).get(URL).status_code == 200


def test_a_production_version_takes_runs_too(assistant, owner, api_client_for):
    ModelVersionFactory(model=assistant, stage=Stage.PRODUCTION, feature_schema=[])
    assert post(api_client_for(owner), as_json(rows(6))).status_code == 201


def test_wilson_matches_scipy_at_the_edges():
    from registry.llm_stats import wilson

    for k, n in [(0, 10), (10, 10), (99, 100), (1, 1), (500, 1000)]:
        ci = stats.binomtest(k, n).proportion_ci(0.95, method="wilson")
        assert wilson(k, n) == pytest.approx((ci.low, ci.high))
    assert wilson(0, 0) == (None, None)
    assert not any(math.isnan(x) for x in wilson(3, 7))
