"""Erasure by data subject and the privacy API: exactly that subject's rows go (not under a
legal hold), the subject id never appears in clear anywhere, policies change only by privacy
officers and admins, and bad input changes nothing."""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta

import pytest
from django.db import connection

from monitoring.models import (
    ErasureOutcome,
    ErasureRequest,
    GroundTruth,
    Prediction,
    PredictionSensitive,
    RetentionPolicy,
)
from monitoring.services.ingestion import labels_ingest, predictions_ingest
from registry.choices import RiskTier
from registry.models import AuditEvent
from registry.services.audit import CLI, audit_export_rows
from tests.factories import FEATURE_SCHEMA, ModelVersionFactory, RegisteredModelFactory
from tests.monitoring.helpers import T0, as_csv, as_json, prediction_records

pytestmark = pytest.mark.django_db
SECRET = "alice-4711@example.org"
OTHER = "bob-0815@example.org"


@pytest.fixture
def fraud_v1(churn, owner):
    return ModelVersionFactory(model=RegisteredModelFactory(name="fraud", owner=owner, team=churn.team))


STEPPED_UP = ["privacy:write", "step-up:sensitive"]  # writes are sensitive: they need the step-up scope


def _with_subjects(records, subjects):
    for record, subject in zip(records, subjects, strict=True):
        if subject is not None:
            record["subject_id"] = subject
    return records


def _load(churn_v1, fraud_v1, owner):
    """churn: 3 rows of alice (over two days), 2 of bob, 5 without; fraud: 1 of alice; labels too."""
    day0 = _with_subjects(prediction_records(5, start=T0), [SECRET, SECRET, OTHER, None, None])
    day1 = _with_subjects(
        prediction_records(5, start=T0 + timedelta(days=1), prefix="d"), [SECRET, OTHER, None, None, None]
    )
    for records in (day0, day1):
        predictions_ingest(
            version=churn_v1, body=as_json(records), content_type="application/json", actor=owner, context=CLI
        )
    csv_body = as_csv(prediction_records(2, start=T0, prefix="f")).decode().splitlines()
    csv_body = [csv_body[0] + ",subject_id", csv_body[1] + "," + SECRET, csv_body[2] + ","]
    body = ("\n".join(csv_body) + "\n").encode()
    predictions_ingest(version=fraud_v1, body=body, content_type="text/csv", actor=owner, context=CLI)
    labels = [
        {"prediction_id": "p0", "label": 1, "subject_id": SECRET},
        {"prediction_id": "p2", "label": 0, "subject_id": OTHER},
    ]
    labels_ingest(
        model=churn_v1.model,
        body=json.dumps(labels).encode(),
        content_type="application/json",
        actor=owner,
        context=CLI,
    )


def _erase(api_client_for, user, subject=SECRET):
    return api_client_for(user, STEPPED_UP).post("/api/v1/erasure-requests/", {"subject_id": subject}, format="json")


def test_erasure_removes_exactly_that_subjects_rows_in_every_model(
    api_client_for, privacy, churn_v1, fraud_v1, owner, audit_actions, last_seq
):
    _load(churn_v1, fraud_v1, owner)
    before = Prediction.objects.count()
    client = api_client_for(privacy, STEPPED_UP)
    seq = last_seq()
    response = client.post("/api/v1/erasure-requests/", {"subject_id": SECRET}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["id"] and body["status"] == "completed"
    assert body["results"] == [
        {"model": "churn", "predictions": 3, "labels": 1, "status": "erased"},
        {"model": "fraud", "predictions": 1, "labels": 0, "status": "erased"},
    ]
    assert Prediction.objects.count() == before - 4
    assert set(Prediction.objects.filter(version=churn_v1).values_list("prediction_id", flat=True)) == {
        "p2",
        "p3",
        "p4",
        "d1",
        "d2",
        "d3",
        "d4",
    }
    assert list(GroundTruth.objects.values_list("prediction_id", flat=True)) == ["p2"]
    assert audit_actions(seq) == ["erasure.completed"]
    event = AuditEvent.objects.get(action="erasure.completed")
    assert event.after == {"request": body["id"], "status": "completed", "results": body["results"]}
    outcomes = ErasureOutcome.objects.filter(request_id=body["id"]).values_list("model__name", "status", "predictions")
    assert list(outcomes) == [("churn", "erased", 3), ("fraud", "erased", 1)]
    detail = api_client_for(privacy, ["privacy:write"]).get(f"/api/v1/erasure-requests/{body['id']}/")
    assert detail.status_code == 200 and detail.json()["results"] == body["results"]


def test_a_model_under_legal_hold_answers_held_with_reason_and_article(
    api_client_for, privacy, churn_v1, fraud_v1, owner
):
    _load(churn_v1, fraud_v1, owner)
    RetentionPolicy.objects.create(
        model=fraud_v1.model,
        raw_days=183,
        legal_hold=True,
        legal_hold_reason="Fraud case 2026-3",
        legal_hold_article="GDPR Art. 17(3)(e)",
    )
    body = _erase(api_client_for, privacy).json()
    assert body["status"] == "held"
    held = next(r for r in body["results"] if r["model"] == "fraud")
    assert held == {
        "model": "fraud",
        "predictions": 1,
        "labels": 0,
        "status": "held",
        "reason": "Fraud case 2026-3",
        "article": "GDPR Art. 17(3)(e)",
    }
    assert Prediction.objects.filter(version=fraud_v1, subject_hash__isnull=False).count() == 1
    assert not Prediction.objects.filter(version=churn_v1, prediction_id="p0").exists()


def test_erasure_removes_the_subjects_sensitive_values_and_keeps_the_others(api_client_for, privacy, churn, owner):
    schema = [*FEATURE_SCHEMA, {"name": "sex", "type": "categorical", "sensitive": True, "use": "monitoring"}]
    mine = ModelVersionFactory(model=churn, feature_schema=schema)
    held = ModelVersionFactory(model=RegisteredModelFactory(name="fraud", owner=owner, team=churn.team),
                               feature_schema=schema)  # fmt: skip
    RetentionPolicy.objects.create(
        model=held.model, raw_days=183, legal_hold=True, legal_hold_reason="Case 7", legal_hold_article="Art. 17(3)(e)"
    )
    for version in (mine, held):
        records = _with_subjects(prediction_records(4, start=T0), [SECRET, OTHER, SECRET, None])
        for record in records:
            record["features"]["sex"] = "F"
        predictions_ingest(
            version=version, body=as_json(records), content_type="application/json", actor=owner, context=CLI
        )
    assert _erase(api_client_for, privacy).status_code == 201
    assert sorted(PredictionSensitive.objects.filter(version=mine).values_list("prediction_id", flat=True)) == [
        "p1",
        "p3",
    ]
    assert PredictionSensitive.objects.filter(version=held).count() == 4  # under a legal hold


def _database_text() -> str:
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            quoted = connection.ops.quote_name(table)
            if connection.vendor == "postgresql":
                cursor.execute(f"SELECT t::text FROM {quoted} t")
                chunks += [row[0] for row in cursor.fetchall()]
            else:
                cursor.execute(f"SELECT * FROM {quoted}")
                chunks += [repr(row) for row in cursor.fetchall()]
    return "\n".join(chunks)


def test_the_subject_id_never_appears_in_clear(api_client_for, privacy, churn_v1, fraud_v1, owner, caplog, auditor):
    caplog.set_level(logging.DEBUG)
    _load(churn_v1, fraud_v1, owner)
    _erase(api_client_for, privacy, OTHER)
    bad = api_client_for(owner).post(  # a refused batch does not echo the id either
        "/api/v1/models/churn/versions/1/predictions/",
        [{**prediction_records(1, prefix="z")[0], "subject_id": ["x", SECRET]}],
        format="json",
    )
    assert bad.status_code == 400
    exports = "".join(audit_export_rows(fmt="jsonl")) + "".join(audit_export_rows(fmt="csv"))
    records = api_client_for(auditor, ["audit:read"]).get("/api/v1/records-of-processing/?format=csv").content.decode()
    for subject in (SECRET, OTHER):
        for where, text in [
            ("database", _database_text()),
            ("logs", caplog.text),
            ("exports", exports + records),
            ("answer", bad.content.decode()),
        ]:
            assert subject not in text, where
            assert subject.split("@")[0] not in text, where
    assert Prediction.objects.filter(subject_hash__isnull=False).exists()


def test_refusals_never_echo_the_subject_id(api_client_for, client_for, privacy, churn_v1, owner, caplog, settings):
    """Every way a subject id can be refused (labels, CSV, the erasure API and page, a missing
    key) answers and logs without the id in clear, and stores nothing."""
    caplog.set_level(logging.DEBUG)
    long_secret = SECRET + "x" * 200
    owner_api = api_client_for(owner)
    privacy_api = api_client_for(privacy, STEPPED_UP)
    csv_lines = as_csv(prediction_records(1)).decode().splitlines()
    csv_body = f"{csv_lines[0]},subject_id\n{csv_lines[1]},{long_secret}\n"
    answers = [
        owner_api.post(
            "/api/v1/models/churn/ground-truth/",
            [{"prediction_id": "p0", "label": 1, "subject_id": [SECRET]}],
            format="json",
        ),
        owner_api.post(
            "/api/v1/models/churn/ground-truth/",
            [{"prediction_id": "p0", "label": 1, "subject_id": long_secret}],
            format="json",
        ),
        owner_api.generic(
            "POST", "/api/v1/models/churn/versions/1/predictions/", csv_body.encode(), content_type="text/csv"
        ),
        privacy_api.post("/api/v1/erasure-requests/", {"subject_id": long_secret}, format="json"),
        privacy_api.post("/api/v1/erasure-requests/", {"subject_id": SECRET + "\x00"}, format="json"),
        privacy_api.post("/api/v1/erasure-requests/", {"subject_id": SECRET, "note": SECRET}, format="json"),
        privacy_api.post("/api/v1/erasure-requests/", {"subject_id": {SECRET: 1}}, format="json"),
    ]
    for answer in answers:
        assert 400 <= answer.status_code < 500, answer.content
    page = client_for(privacy)
    followed = page.post("/monitoring/privacy/erasure/", {"subject_id": long_secret}, follow=True)
    settings.SUBJECT_KEY = ""  # no key: refused, still without the id
    answers.append(privacy_api.post("/api/v1/erasure-requests/", {"subject_id": SECRET}, format="json"))
    answers.append(
        owner_api.post(
            "/api/v1/models/churn/versions/1/predictions/",
            [{**prediction_records(1)[0], "subject_id": SECRET}],
            format="json",
        )
    )
    keyless = page.post("/monitoring/privacy/erasure/", {"subject_id": SECRET}, follow=True)
    assert answers[-2].status_code == 503 and answers[-1].status_code == 400  # the key's absence named
    texts = [a.content.decode() for a in answers] + [followed.content.decode(), keyless.content.decode(), caplog.text]
    for text in texts:
        assert SECRET not in text and SECRET.split("@")[0] not in text
    assert not ErasureRequest.objects.exists() and not Prediction.objects.exists() and not GroundTruth.objects.exists()


def test_a_bad_subject_id_is_refused_naming_the_row(churn_v1, owner):
    records = _with_subjects(prediction_records(3), [None, "ok", "x" * 201])
    from monitoring.services.ingest_parsing import BatchError

    with pytest.raises(BatchError) as caught:
        predictions_ingest(
            version=churn_v1, body=as_json(records), content_type="application/json", actor=owner, context=CLI
        )
    assert caught.value.row == 3 and caught.value.field == "subject_id"
    assert not Prediction.objects.exists()


# --------------------------------------------------------------------------- API permissions


def test_retention_is_read_by_who_sees_the_model_and_changed_only_by_privacy_or_admin(
    api_client_for, churn, owner, auditor, outsider, privacy, admin_user
):
    url = "/api/v1/models/churn/retention/"
    assert api_client_for(outsider).get(url).status_code == 404
    assert api_client_for(outsider).patch(url, {"raw_days": 400}, format="json").status_code == 403  # no privacy:write
    got = api_client_for(owner).get(url).json()
    assert got["raw_days"] == 183 and got["legal_hold"] is False
    for user in (owner, auditor):
        assert api_client_for(user).patch(url, {"raw_days": 400}, format="json").status_code == 403
    assert api_client_for(privacy, ["monitoring:read"]).patch(url, {"raw_days": 400}, format="json").status_code == 403
    assert not RetentionPolicy.objects.exists()
    changed = api_client_for(privacy, STEPPED_UP).patch(url, {"raw_days": 400}, format="json")
    assert changed.status_code == 200 and changed.json()["raw_days"] == 400
    hold = {"legal_hold": True, "legal_hold_reason": "Audit by regulator", "legal_hold_article": "EU AI Act Art. 19"}
    assert api_client_for(admin_user).patch(url, hold, format="json").json()["legal_hold"] is True


def test_a_high_risk_floor_violation_is_a_400_naming_the_floor(api_client_for, privacy):
    RegisteredModelFactory(name="credit", risk_tier=RiskTier.HIGH)
    response = api_client_for(privacy).patch("/api/v1/models/credit/retention/", {"raw_days": 90}, format="json")
    assert response.status_code == 400
    assert "183" in response.json()["error"]["message"] + json.dumps(response.json()["error"]["details"])
    assert not RetentionPolicy.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        {"raw_days": "abc"},
        {"raw_days": 0},
        {"raw_days": 10**9},
        {"raw_days": 30.5},
        {"raw_days": True},
        {"legal_hold": "yes"},
        {"legal_hold": True},
        {"colour": "red"},
        [1, 2],
        {"legal_hold_reason": 7},
    ],
)
def test_bad_retention_input_is_a_4xx_with_nothing_changed(api_client_for, churn, privacy, body, last_seq):
    client = api_client_for(privacy)
    seq = last_seq()
    response = client.patch("/api/v1/models/churn/retention/", body, format="json")
    assert 400 <= response.status_code < 500 and "error" in response.json()
    assert not RetentionPolicy.objects.exists() and last_seq() == seq


@pytest.mark.parametrize(
    "body", [{}, {"subject_id": ""}, {"subject_id": 5}, {"subject_id": "x" * 201}, {"subject_id": "a", "x": 1}, ["a"]]
)
def test_bad_erasure_input_is_a_400_with_nothing_recorded(api_client_for, privacy, body):
    response = api_client_for(privacy).post("/api/v1/erasure-requests/", body, format="json")
    assert response.status_code == 400 and not ErasureRequest.objects.exists()


def test_only_privacy_officers_and_admins_file_erasure_requests(api_client_for, owner, auditor, outsider, privacy):
    for user in (owner, auditor, outsider):  # their tokens cannot hold privacy:write
        assert (
            api_client_for(user).post("/api/v1/erasure-requests/", {"subject_id": "a"}, format="json").status_code
            == 403
        )
    assert (
        api_client_for(privacy, ["monitoring:read"])
        .post("/api/v1/erasure-requests/", {"subject_id": "a"}, format="json")
        .status_code
        == 403
    )
    assert not ErasureRequest.objects.exists()
    assert api_client_for(auditor, ["audit:read"]).get("/api/v1/erasure-requests/").status_code == 200
    assert api_client_for(outsider).get("/api/v1/erasure-requests/").status_code == 403


def test_records_of_processing_list_purpose_data_retention_and_who_sees(
    api_client_for, churn_v1, privacy, outsider, owner
):
    churn_v1.model.intended_use = '=HYPERLINK("x") churn outreach'
    churn_v1.model.save()
    body = api_client_for(privacy, ["audit:read"]).get("/api/v1/records-of-processing/").json()
    (record,) = body["records"]
    assert record["model"] == "churn" and record["purpose"].startswith("=HYPERLINK")
    assert record["raw_days"] == 183 and record["owner"] == "owner" and "owner" in record["team_members"]
    assert [c["name"] for c in record["data_categories"]]
    csv_text = api_client_for(privacy).get("/api/v1/records-of-processing/?format=csv").content.decode()
    assert "'=HYPERLINK" in csv_text
    assert api_client_for(outsider).get("/api/v1/records-of-processing/").status_code == 403
    assert api_client_for(privacy).get("/api/v1/records-of-processing/?format=xml").status_code == 400


# --------------------------------------------------------------------------- the privacy page


def test_the_privacy_page_shows_requests_holds_and_receipts_to_privacy_officers_only(
    client_for, privacy, auditor, outsider, owner, churn_v1, fraud_v1
):
    _load(churn_v1, fraud_v1, owner)
    client = client_for(privacy)
    response = client.post("/monitoring/privacy/erasure/", {"subject_id": SECRET})
    assert response.status_code == 302 and ErasureRequest.objects.count() == 1
    page = client.get("/monitoring/privacy/")
    html = page.content.decode()
    assert page.status_code == 200 and "churn: 3 predictions, 1 label " in html and SECRET not in html
    # the navigation links the page for those who may see it, and for no one else
    link = '<a href="/monitoring/privacy/" class="active">Privacy</a>'
    assert link in html
    assert 'href="/monitoring/privacy/"' in client_for(auditor).get("/monitoring/alerts/").content.decode()
    assert 'href="/monitoring/privacy/"' not in client_for(owner).get("/monitoring/alerts/").content.decode()
    assert client_for(auditor).get("/monitoring/privacy/").status_code == 200
    assert "Erase this subject" not in client_for(auditor).get("/monitoring/privacy/").content.decode()
    assert client_for(outsider).get("/monitoring/privacy/").status_code == 403
    assert client_for(owner).post("/monitoring/privacy/erasure/", {"subject_id": OTHER}).status_code == 403
    assert ErasureRequest.objects.count() == 1


def test_a_legal_hold_a_retention_change_and_an_erasure_need_the_step_up_scope(api_client_for, churn, privacy):
    # sensitive actions (issue "Access …"): a token without the step-up scope is refused them
    plain = api_client_for(privacy, ["privacy:write"])
    for body in (
        {"raw_days": 400},
        {"legal_hold": True, "legal_hold_reason": "Claim", "legal_hold_article": "17(3)(e)"},
    ):
        refused = plain.patch("/api/v1/models/churn/retention/", body, format="json")
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "step_up_required"
    refused = plain.post("/api/v1/erasure-requests/", {"subject_id": SECRET}, format="json")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "step_up_required"
    assert not RetentionPolicy.objects.exists() and not ErasureRequest.objects.exists()
    fresh = api_client_for(privacy, STEPPED_UP)
    assert fresh.patch("/api/v1/models/churn/retention/", {"raw_days": 400}, format="json").status_code == 200
    assert fresh.post("/api/v1/erasure-requests/", {"subject_id": SECRET}, format="json").status_code == 201


def test_an_erasure_from_a_stale_session_is_asked_to_confirm_first(client_for, privacy):
    client = client_for(privacy)
    session = client.session
    session["auth_time"] = int(time.time()) - 3600
    session.save()
    asked = client.post(
        "/monitoring/privacy/erasure/", {"subject_id": SECRET}, HTTP_REFERER="http://testserver/monitoring/privacy/"
    )
    assert asked.status_code == 302 and asked["Location"].startswith("/login/step-up/?next=")
    assert not ErasureRequest.objects.exists()


def test_the_retention_schema_allows_a_null_update_time_and_the_export_documents_csv(api_client_for, privacy, churn):
    # schemathesis: `updated_at` came back null (the tier's default, never changed) against a
    # non-nullable schema, and the CSV answer of the records export was undocumented
    assert api_client_for(privacy).get("/api/v1/models/churn/retention/").json()["updated_at"] is None
    schema = api_client_for(privacy).get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert schema["components"]["schemas"]["Retention"]["properties"]["updated_at"]["nullable"] is True
    content = schema["paths"]["/api/v1/records-of-processing/"]["get"]["responses"]["200"]["content"]
    assert {"application/json", "text/csv"} <= set(content)
    assert api_client_for(privacy).get("/api/v1/records-of-processing/?format=").status_code == 200


def test_erasure_forgets_the_slices_of_the_erased_rows_hours(
    api_client_for, privacy, churn_v1, fraud_v1, owner, settings
):
    """A slice's counts can hold few rows: the slices of every hour the subject's rows were in
    go (read whole, without them, when the hour's data next changes); other hours keep theirs."""
    from monitoring.choices import Granularity
    from monitoring.models import WindowSlice
    from monitoring.services.windows import window_compute

    settings.WINDOW_SLICES_KEPT_HOURS = 24 * 366 * 50  # T0 is months ago: its hours keep their slices
    _load(churn_v1, fraud_v1, owner)
    later = prediction_records(5, start=T0 + timedelta(hours=2), prefix="later")
    predictions_ingest(version=churn_v1, body=as_json(later), content_type="application/json", actor=owner, context=CLI)
    for version, hours in ((churn_v1, (T0, T0 + timedelta(days=1), T0 + timedelta(hours=2))), (fraud_v1, (T0,))):
        for hour in hours:
            window_compute(version_id=version.pk, window_start=hour, granularity=Granularity.HOURLY)
    hour_of = {
        (v, ts.replace(minute=0, second=0)) for v, ts in WindowSlice.objects.values_list("version_id", "slice_start")
    }
    assert len(hour_of) == 4
    assert _erase(api_client_for, privacy).status_code == 201
    kept = {
        (v, ts.replace(minute=0, second=0)) for v, ts in WindowSlice.objects.values_list("version_id", "slice_start")
    }
    assert kept == {(churn_v1.pk, T0 + timedelta(hours=2))}
