"""Monitoring API: every role (outsider included), scopes, malformed uploads of every kind, limits."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring.choices import AlertKind, AlertSeverity, AlertStatus, ProfileStatus
from monitoring.models import Alert, GroundTruth, MetricValue, MonitoringConfig, Prediction, ReferenceProfile
from tests.factories import UserFactory
from tests.monitoring.helpers import (
    as_csv,
    as_json,
    as_ndjson,
    assert_error,
    csv_bytes,
    parquet_bytes,
    prediction_records,
    reference_frame,
)
from tests.times import extreme_times, off_the_calendar

pytestmark = pytest.mark.django_db

PRED_URL = "/api/v1/models/churn/versions/1/predictions/"
LABEL_URL = "/api/v1/models/churn/ground-truth/"
REF_URL = "/api/v1/models/churn/versions/1/reference/"


def post(client, url, body: bytes, content_type="application/json"):
    return client.generic("POST", url, body, content_type=content_type)


@pytest.fixture
def member(team):
    user = UserFactory(username="member")
    team.members.add(user)
    return user


@pytest.fixture
def ingested(churn_v1, owner, api_client_for, django_capture_on_commit_callbacks):
    client = api_client_for(owner)
    with django_capture_on_commit_callbacks(execute=True):
        assert post(client, REF_URL, csv_bytes(reference_frame(1000)), "text/csv").status_code == 202
        assert post(client, PRED_URL, as_json(prediction_records(150))).status_code == 201
    return churn_v1


# ------------------------------------------------------------------ ingestion: who may send


# An outsider's token cannot hold monitoring:write (registry.rules.usable_scopes): refused before any lookup.
@pytest.mark.parametrize(
    "role,status", [("owner", 201), ("admin", 201), ("reviewer", 403), ("auditor", 403), ("outsider", 403)]
)
def test_only_owner_and_admin_can_send_predictions(churn_v1, roles, api_client_for, role, status, last_seq):
    client = api_client_for(roles[role])
    seq = last_seq()
    response = post(client, PRED_URL, as_json(prediction_records(5)))
    assert response.status_code == status, response.content
    stored = Prediction.objects.count()
    assert stored == (5 if status == 201 else 0)
    if status != 201:
        assert last_seq() == seq


def test_team_member_who_is_not_owner_cannot_send_but_can_read(churn_v1, member, api_client_for):
    client = api_client_for(member)
    assert post(client, PRED_URL, as_json(prediction_records(5))).status_code == 403
    assert client.get("/api/v1/models/churn/health/").status_code == 200


def test_token_without_monitoring_write_scope_is_refused(churn_v1, owner, api_client_for):
    client = api_client_for(owner, scopes=["monitoring:read"])
    assert_error(post(client, PRED_URL, as_json(prediction_records(5))), 403, "monitoring:write")
    assert client.get("/api/v1/models/churn/metrics/").status_code == 200
    assert api_client_for(owner, scopes=["models:read"]).get("/api/v1/models/churn/metrics/").status_code == 403


def test_anonymous_requests_are_refused(churn_v1, client):
    assert client.post(PRED_URL, as_json(prediction_records(1)), content_type="application/json").status_code in (
        401,
        403,
    )


@pytest.mark.parametrize(
    "encode,content_type", [(as_json, "application/json"), (as_ndjson, "application/x-ndjson"), (as_csv, "text/csv")]
)
def test_predictions_are_accepted_in_every_format(
    churn_v1, owner, api_client_for, encode, content_type, audit_actions, last_seq
):
    client = api_client_for(owner)
    seq = last_seq()
    response = post(client, PRED_URL, encode(prediction_records(30)), content_type)
    assert response.status_code == 201, response.content
    assert response.json()["rows"] == 30
    assert Prediction.objects.filter(version=churn_v1).count() == 30
    assert audit_actions(seq) == ["predictions.ingested"]


def _record(**overrides):
    rec = prediction_records(1)[0]
    rec.update(overrides)
    return rec


MALFORMED = {
    "invalid JSON": (b"[{", "application/json", ["Invalid JSON"]),
    "not an array": (b'{"prediction_id": "a"}', "application/json", ["JSON array"]),
    "empty body": (b"", "application/json", ["empty"]),
    "empty array": (b"[]", "application/json", ["no records"]),
    "record not an object": (b"[1]", "application/json", ["Row 1", "Expected an object"]),
    "missing id": (as_json([_record(), _record(prediction_id=None)]), "application/json", ["Row 2", "prediction_id"]),
    "id too long": (as_json([_record(prediction_id="x" * 101)]), "application/json", ["Row 1", "prediction_id"]),
    "duplicate id in batch": (as_json([_record(), _record()]), "application/json", ["Row 2", "Duplicate"]),
    "wrong type": (
        as_json([_record(features={"age": "forty", "income": 1.0, "plan": "basic"})]),
        "application/json",
        ["Row 1", "features.age", "Expected a number"],
    ),
    "boolean as number": (
        as_json([_record(features={"age": True, "income": 1.0, "plan": "basic"})]),
        "application/json",
        ["features.age"],
    ),
    "NaN": (
        b'[{"prediction_id": "a", "timestamp": "2026-03-02T00:00:00Z", "features": {"age": NaN}}]',
        "application/json",
        ["Row 1", "features.age", "NaN"],
    ),
    "Infinity": (
        b'[{"prediction_id": "a", "timestamp": "2026-03-02T00:00:00Z", "features": {"income": Infinity}}]',
        "application/json",
        ["features.income"],
    ),
    "infinite score": (
        b'[{"prediction_id": "a", "timestamp": "2026-03-02T00:00:00Z", "features": {}, "score": -Infinity}]',
        "application/json",
        ["score"],
    ),
    "unknown feature": (
        as_json([_record(features={"age": 1.0, "height": 2.0})]),
        "application/json",
        ["features.height", "Unknown feature"],
    ),
    "unknown field": (as_json([_record(extra=1)]), "application/json", ["extra"]),
    "features not an object": (as_json([_record(features=[1, 2])]), "application/json", ["features"]),
    "bad timestamp": (as_json([_record(timestamp="yesterday")]), "application/json", ["Row 1", "timestamp"]),
    "missing timestamp": (as_json([_record(timestamp=None)]), "application/json", ["timestamp"]),
    "category is an object": (
        as_json([_record(features={"plan": {"a": 1}})]),
        "application/json",
        ["features.plan"],
    ),
    "bad JSON line": (
        as_ndjson(prediction_records(2)) + b"\n{oops",
        "application/x-ndjson",
        ["Row 3", "Invalid JSON"],
    ),
    "CSV bad number": (
        b"prediction_id,timestamp,age,income,plan\na,2026-03-02T00:00:00Z,abc,1,basic\n",
        "text/csv",
        ["Row 1", "features.age"],
    ),
    "CSV unknown column": (
        b"prediction_id,timestamp,height\na,2026-03-02T00:00:00Z,3\n",
        "text/csv",
        ["height"],
    ),
    "CSV missing id column": (b"timestamp,age\n2026-03-02T00:00:00Z,3\n", "text/csv", ["prediction_id"]),
    "CSV ragged row": (
        b"prediction_id,timestamp,age\na,2026-03-02T00:00:00Z,3,4\n",
        "text/csv",
        ["More cells"],
    ),
    "not UTF-8": (b"\xff\xfe\x00garbage", "text/csv", ["UTF-8"]),
}


def test_an_unsupported_content_type_is_a_415(churn_v1, owner, api_client_for):
    client = api_client_for(owner)
    assert_error(post(client, PRED_URL, b"<xml/>", "application/xml"), 415, "Unsupported Content-Type")
    assert_error(post(client, LABEL_URL, b"<xml/>", "application/xml"), 415, "Unsupported Content-Type")
    assert Prediction.objects.count() == 0


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_prediction_batches_are_rejected_naming_the_problem_and_nothing_is_stored(
    churn_v1, owner, api_client_for, case, last_seq
):
    body, content_type, needles = MALFORMED[case]
    client = api_client_for(owner)
    seq = last_seq()
    response = post(client, PRED_URL, body, content_type)
    assert_error(response, 400, *needles)
    assert Prediction.objects.count() == 0
    assert last_seq() == seq


def test_an_id_already_stored_rejects_the_whole_batch(churn_v1, owner, api_client_for):
    client = api_client_for(owner)
    assert post(client, PRED_URL, as_json(prediction_records(3))).status_code == 201
    batch = prediction_records(5, prefix="new") + [prediction_records(3)[1]]
    assert_error(post(client, PRED_URL, as_json(batch)), 400, "Row 6", "already stored")
    assert Prediction.objects.count() == 3


def test_a_body_over_the_ingest_limit_is_a_413_with_a_clear_message(churn_v1, owner, api_client_for, settings):
    settings.INGEST_MAX_BODY_BYTES = 1000
    response = post(api_client_for(owner), PRED_URL, as_json(prediction_records(50)))
    assert_error(response, 413, "INGEST_MAX_BODY_BYTES", "split the batch")
    assert Prediction.objects.count() == 0


def test_unknown_model_or_version_is_a_404(churn_v1, owner, api_client_for):
    client = api_client_for(owner)
    assert_error(post(client, "/api/v1/models/churn/versions/9/predictions/", as_json(prediction_records(1))), 404)
    assert_error(post(client, "/api/v1/models/nope/versions/1/predictions/", as_json(prediction_records(1))), 404)
    assert_error(post(client, "/api/v1/models/nope/ground-truth/", as_json([{"prediction_id": "a", "label": 1}])), 404)


# ------------------------------------------------------------------ labels


def test_labels_are_stored_by_prediction_id(ingested, owner, api_client_for, django_capture_on_commit_callbacks):
    labels = [{"prediction_id": f"p{i}", "label": 1} for i in range(150)]
    with django_capture_on_commit_callbacks(execute=True):
        response = post(api_client_for(owner), LABEL_URL, as_json(labels))
    assert response.status_code == 201, response.content
    assert response.json()["matched_predictions"] == 150
    assert GroundTruth.objects.count() == 150
    assert MetricValue.objects.filter(metric="accuracy", granularity="daily").count() == 1


@pytest.mark.parametrize(
    "body,needles",
    [
        (as_json([{"prediction_id": "a"}]), ["Row 1", "label", "Required"]),
        (as_json([{"prediction_id": "a", "label": None}]), ["label"]),
        (as_json([{"prediction_id": "a", "label": 1}, {"prediction_id": "a", "label": 0}]), ["Row 2", "Duplicate"]),
        (as_json([{"label": 1}]), ["prediction_id"]),
        (as_json([{"prediction_id": "a", "label": 1, "extra": 2}]), ["extra"]),
        (b"[{", ["Invalid JSON"]),
    ],
)
def test_malformed_label_batches_are_rejected_with_nothing_stored(churn_v1, owner, api_client_for, body, needles):
    assert_error(post(api_client_for(owner), LABEL_URL, body), 400, *needles)
    assert GroundTruth.objects.count() == 0


@pytest.mark.parametrize("role,status", [("reviewer", 403), ("auditor", 403), ("outsider", 403)])
def test_only_owner_and_admin_can_send_labels(churn_v1, roles, api_client_for, role, status):
    response = post(api_client_for(roles[role]), LABEL_URL, as_json([{"prediction_id": "a", "label": 1}]))
    assert response.status_code == status
    assert GroundTruth.objects.count() == 0


# ------------------------------------------------------------------ reference data


@pytest.mark.parametrize(
    "encode,content_type", [(csv_bytes, "text/csv"), (parquet_bytes, "application/vnd.apache.parquet")]
)
def test_reference_data_is_accepted_as_csv_or_parquet_and_profiled(
    churn_v1, owner, api_client_for, encode, content_type, django_capture_on_commit_callbacks, audit_actions
):
    client = api_client_for(owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, REF_URL, encode(reference_frame(500)), content_type)
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "pending"
    assert client.get(REF_URL).json()["status"] == ProfileStatus.READY
    assert "reference.uploaded" in audit_actions()


@pytest.mark.parametrize(
    "body,content_type,needles",
    [
        (csv_bytes(reference_frame(50).drop(columns=["age"])), "text/csv", ["age", "missing"]),
        (csv_bytes(reference_frame(50).assign(income=["x"] * 50)), "text/csv", ["income", "Row 1"]),
        (csv_bytes(reference_frame(50).assign(age=[float("inf")] * 50)), "text/csv", ["age", "Row 1", "infinity"]),
        (b"", "text/csv", ["empty"]),
        (b"age,income,plan\n", "text/csv", ["no records"]),
        (b"PAR1 this is not parquet", "application/vnd.apache.parquet", ["Parquet"]),
        (csv_bytes(reference_frame(50).assign(score=["high"] * 50)), "text/csv", ["score"]),
    ],
)
def test_malformed_reference_data_is_rejected_per_column_with_nothing_stored(
    churn_v1, owner, api_client_for, body, content_type, needles, last_seq
):
    client = api_client_for(owner)
    seq = last_seq()
    assert_error(post(client, REF_URL, body, content_type), 400, *needles)
    assert ReferenceProfile.objects.count() == 0
    assert last_seq() == seq


@pytest.mark.parametrize("role,status", [("reviewer", 403), ("auditor", 403), ("outsider", 403)])
def test_only_owner_and_admin_can_upload_reference_data(churn_v1, roles, api_client_for, role, status):
    response = post(api_client_for(roles[role]), REF_URL, csv_bytes(reference_frame(50)), "text/csv")
    assert response.status_code == status
    assert ReferenceProfile.objects.count() == 0


# ------------------------------------------------------------------ reads


@pytest.mark.parametrize(
    "role,status", [("owner", 200), ("reviewer", 200), ("auditor", 200), ("admin", 200), ("outsider", 404)]
)
def test_metrics_and_health_are_readable_by_everyone_who_sees_the_model(ingested, roles, api_client_for, role, status):
    client = api_client_for(roles[role])
    metrics = client.get("/api/v1/models/churn/metrics/", {"metric": "psi", "feature": "age", "granularity": "daily"})
    health = client.get("/api/v1/models/churn/health/")
    assert metrics.status_code == status and health.status_code == status
    if status == 200:
        rows = metrics.json()["results"]
        assert len(rows) == 1 and rows[0]["feature"] == "age" and rows[0]["version"] == 1
        assert health.json()["status"] in ("ok", "warning", "critical")
    else:
        assert "psi" not in metrics.content.decode()


def test_metric_filters_cover_window_range_and_reject_bad_values(ingested, owner, api_client_for):
    client = api_client_for(owner)
    hourly = client.get("/api/v1/models/churn/metrics/", {"metric": "volume", "granularity": "hourly"}).json()
    assert hourly["count"] == 1
    late = client.get("/api/v1/models/churn/metrics/", {"start": "2026-03-03T00:00:00Z"}).json()
    assert late["count"] == 0
    assert_error(client.get("/api/v1/models/churn/metrics/", {"granularity": "weekly"}), 400, "granularity")
    assert_error(client.get("/api/v1/models/churn/metrics/", {"start": "not-a-date"}), 400, "start")


EXTREME_TIMESTAMPS = extreme_times("2026-03-01T00:00:00")


@pytest.mark.parametrize("param", ["start", "end"])
@pytest.mark.parametrize("value", EXTREME_TIMESTAMPS)
def test_metric_window_range_with_extreme_offsets_or_calendar_ends_is_a_json_400_or_a_result(
    ingested, owner, api_client_for, param, value
):
    """Offsets beyond what the database stores and instants outside the calendar once moved
    to UTC are refused as bad input (400 JSON); an offset that still names a real instant is
    read as that instant. Never a 500."""
    response = api_client_for(owner).get("/api/v1/models/churn/metrics/", {param: value})
    if off_the_calendar(value):
        assert_error(response, 400, param)
    else:
        assert response.status_code == 200, response.content
        assert "count" in response.json()


@pytest.mark.parametrize("param", ["opened_after", "opened_before"])
@pytest.mark.parametrize("value", EXTREME_TIMESTAMPS)
def test_alert_time_filters_with_extreme_offsets_or_calendar_ends_never_fail(
    churn, owner, api_client_for, param, value
):
    response = api_client_for(owner).get("/api/v1/alerts/", {param: value})
    if off_the_calendar(value):
        assert_error(response, 400, param)
    else:
        assert response.status_code == 200, response.content


def test_health_of_a_model_never_evaluated_is_no_data(churn_v1, owner, api_client_for):
    assert api_client_for(owner).get("/api/v1/models/churn/health/").json()["status"] == "no_data"


def _alert(model, status=AlertStatus.OPEN, kind=AlertKind.DRIFT):
    now = timezone.now()
    return Alert.objects.create(
        model=model,
        kind=kind,
        severity=AlertSeverity.CRITICAL,
        status=status,
        title="Data drift",
        opened_at=now,
        updated_at=now,
    )


@pytest.mark.parametrize("role,count", [("owner", 1), ("reviewer", 1), ("auditor", 1), ("admin", 1), ("outsider", 0)])
def test_alert_list_shows_only_alerts_of_visible_models(churn, roles, api_client_for, role, count):
    _alert(churn)
    response = api_client_for(roles[role]).get("/api/v1/alerts/", {"status": "open"})
    assert response.status_code == 200
    assert response.json()["count"] == count


def test_alert_list_rejects_bad_filters(churn, owner, api_client_for):
    assert_error(api_client_for(owner).get("/api/v1/alerts/", {"status": "sleeping"}), 400, "status")
    assert_error(api_client_for(owner).get("/api/v1/alerts/", {"days": "0"}), 400, "days")
    assert_error(api_client_for(owner).get("/api/v1/alerts/", {"days": "1.5"}), 400, "days")


def test_alert_list_accepts_the_pages_active_and_days_filters(churn, owner, api_client_for):
    _alert(churn)
    _alert(churn, status=AlertStatus.ACKNOWLEDGED, kind=AlertKind.PERFORMANCE)
    old = _alert(churn, status=AlertStatus.RESOLVED)
    Alert.objects.filter(pk=old.pk).update(opened_at=timezone.now() - timedelta(days=10))
    client = api_client_for(owner)
    assert client.get("/api/v1/alerts/", {"active": "true"}).json()["count"] == 2
    assert client.get("/api/v1/alerts/", {"active": "false"}).json()["count"] == 1
    assert client.get("/api/v1/alerts/", {"days": "3"}).json()["count"] == 2
    assert client.get("/api/v1/alerts/", {"days": "30"}).json()["count"] == 3


@pytest.mark.parametrize(
    "role,status", [("owner", 200), ("admin", 200), ("reviewer", 403), ("auditor", 403), ("outsider", 403)]
)
def test_acknowledge_alert_by_role(churn, roles, api_client_for, role, status, last_seq, audit_actions):
    alert = _alert(churn)
    client = api_client_for(roles[role])
    seq = last_seq()
    response = client.post(f"/api/v1/alerts/{alert.pk}/acknowledge/", {"comment": "On it."}, format="json")
    assert response.status_code == status, response.content
    alert.refresh_from_db()
    if status == 200:
        assert alert.status == AlertStatus.ACKNOWLEDGED and response.json()["acknowledged_by"] == roles[role].username
        assert audit_actions(seq) == ["alert.acknowledged"]
    else:
        assert alert.status == AlertStatus.OPEN and audit_actions(seq) == []


def test_acknowledge_needs_a_comment_and_an_open_alert(churn, owner, api_client_for):
    client = api_client_for(owner)
    alert = _alert(churn)
    url = f"/api/v1/alerts/{alert.pk}/acknowledge/"
    assert_error(client.post(url, {}, format="json"), 400, "comment")
    assert_error(client.post(url, {"comment": ""}, format="json"), 400, "comment")
    assert_error(client.post(url, {"comment": "x", "extra": 1}, format="json"), 400, "extra")
    assert_error(client.post(url, b"[1]", content_type="application/json"), 400)
    resolved = _alert(churn, status=AlertStatus.RESOLVED)
    assert_error(client.post(f"/api/v1/alerts/{resolved.pk}/acknowledge/", {"comment": "x"}, format="json"), 409)
    assert client.post("/api/v1/alerts/99999/acknowledge/", {"comment": "x"}, format="json").status_code == 404
    alert.refresh_from_db()
    assert alert.status == AlertStatus.OPEN


def test_monitoring_config_is_changed_by_the_owner_and_audited(
    churn, owner, reviewer, api_client_for, last_seq, audit_actions
):
    client, other = api_client_for(owner), api_client_for(reviewer)
    seq = last_seq()
    url = "/api/v1/models/churn/monitoring/"
    assert client.get(url).json()["psi_warning"] == 0.1
    response = client.patch(url, {"psi_warning": 0.12, "alert_recipients": ["a@example.com"]}, format="json")
    assert response.status_code == 200, response.content
    assert audit_actions(seq) == ["monitoring.thresholds_changed"]
    assert_error(client.patch(url, {"n_bins": 50}, format="json"), 400, "n_bins")
    assert_error(client.patch(url, {"psi_critical": 0.01}, format="json"), 400, "psi_critical")
    assert_error(client.patch(url, {"bogus": 1}, format="json"), 400, "bogus")
    assert other.patch(url, {"psi_warning": 0.2}, format="json").status_code == 403
    assert MonitoringConfig.objects.get().psi_warning == 0.12
    assert audit_actions(seq) == ["monitoring.thresholds_changed"]


def test_alert_schema_says_acknowledged_by_may_be_null_as_it_is_for_an_open_alert(churn, owner, api_client_for):
    from drf_spectacular.generators import SchemaGenerator

    _alert(churn)
    assert api_client_for(owner).get("/api/v1/alerts/").json()["results"][0]["acknowledged_by"] is None
    schema = SchemaGenerator().get_schema(request=None, public=True)
    assert schema["components"]["schemas"]["Alert"]["properties"]["acknowledged_by"]["nullable"] is True
