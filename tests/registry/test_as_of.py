"""'What was in production at time T, and who approved it', across promotions and rollbacks."""

from __future__ import annotations

import datetime

import pytest
from django.urls import reverse

from registry.choices import Decision, PromotionStatus, Stage, TokenScope
from registry.models import ModelVersion, PromotionRequest, RegisteredModel, Review, StageTransition
from tests.factories import ModelVersionFactory, RegisteredModelFactory, TeamFactory, UserFactory
from tests.times import extreme_times

T0 = datetime.datetime(2026, 1, 1, 9, 0, tzinfo=datetime.UTC)
H = datetime.timedelta(hours=1)
D = datetime.timedelta(days=1)


def _at(obj, when, field="created_at"):
    type(obj).objects.filter(pk=obj.pk).update(**{field: when})
    setattr(obj, field, when)
    return obj


def _move(version, to_stage, when, *, kind, actor, request=None, reason=""):
    from_stage = version.stage
    ModelVersion.objects.filter(pk=version.pk).update(stage=to_stage, stage_changed_at=when)
    version.stage = to_stage
    transition = StageTransition.objects.create(
        version=version,
        model=version.model,
        from_stage=from_stage,
        to_stage=to_stage,
        kind=kind,
        actor=actor,
        reason=reason,
        promotion_request=request,
    )
    return _at(transition, when)


def _promote(version, when, *, requester, approvers):
    request = PromotionRequest.objects.create(
        version=version,
        target_stage=Stage.PRODUCTION,
        requested_by=requester,
        justification=f"Better than before ({version})",
        status=PromotionStatus.APPLIED,
        policy_snapshot={"approvals_required": len(approvers)},
        gate_results=[
            {"key": "lineage", "label": "Lineage recorded", "status": "pass", "detail": "", "required": True}
        ],
    )
    _at(request, when - H)
    for i, reviewer in enumerate(approvers):
        review = Review.objects.create(
            request=request, reviewer=reviewer, requester=requester, decision=Decision.APPROVE, comment="ok"
        )
        _at(review, when - H + (i + 1) * datetime.timedelta(minutes=10))
    current = ModelVersion.objects.filter(model=version.model, stage=Stage.PRODUCTION).first()
    if current is not None:
        _move(current, Stage.ARCHIVED, when, kind=StageTransition.Kind.ARCHIVED_BY_PROMOTION, actor=requester)
    _move(version, Stage.PRODUCTION, when, kind=StageTransition.Kind.PROMOTION, actor=requester, request=request)
    return request


@pytest.fixture
def timeline(churn, owner, reviewer, reviewer2):
    """churn: v1 at day 1, v2 at day 2, rollback to v1 at day 3, v3 at day 4."""
    _at(churn, T0)
    v1, v2, v3 = (ModelVersionFactory(model=churn) for _ in range(3))
    r1 = _promote(v1, T0 + 1 * D, requester=owner, approvers=[reviewer])
    r2 = _promote(v2, T0 + 2 * D, requester=owner, approvers=[reviewer, reviewer2])
    _move(v2, Stage.ARCHIVED, T0 + 3 * D, kind=StageTransition.Kind.ROLLBACK, actor=reviewer, reason="latency spike")
    _move(v1, Stage.PRODUCTION, T0 + 3 * D, kind=StageTransition.Kind.ROLLBACK, actor=reviewer, reason="latency spike")
    r3 = _promote(v3, T0 + 4 * D, requester=owner, approvers=[reviewer2])
    # A model of another team, created later, that the owner may not see.
    other = RegisteredModelFactory(name="fraud", owner=UserFactory(username="fraud-owner"), team=TeamFactory())
    _at(other, T0 + 2 * D)
    return {"v1": v1, "v2": v2, "v3": v3, "r1": r1, "r2": r2, "r3": r3, "other": other}


def _as_of(client, when):
    response = client.get("/api/v1/inventory/as-of", {"time": when.isoformat()})
    assert response.status_code == 200, response.content
    return {m["model"]: m for m in response.json()["models"]}


def test_as_of_follows_promotions_and_rollbacks(timeline, reviewer, api_client_for):
    client = api_client_for(reviewer, scopes=[TokenScope.MODELS_READ])

    before_first = _as_of(client, T0 + 12 * H)
    assert before_first["churn"]["version"] is None
    assert "fraud" not in before_first  # did not exist yet

    day1 = _as_of(client, T0 + 1 * D + H)["churn"]
    assert day1["version"] == 1
    assert day1["in_production_since"] == (T0 + 1 * D).isoformat()
    assert day1["requested_by"] == "owner"
    assert day1["approved_by"] == ["reviewer"]
    assert day1["promotion_request"]["id"] == timeline["r1"].pk
    assert day1["promotion_request"]["url"] == reverse("registry:promotion_detail", args=[timeline["r1"].pk])

    day2 = _as_of(client, T0 + 2 * D + H)
    assert day2["churn"]["version"] == 2
    assert day2["churn"]["approved_by"] == ["reviewer", "reviewer2"]
    assert day2["fraud"]["version"] is None

    day3 = _as_of(client, T0 + 3 * D + H)["churn"]
    assert day3["version"] == 1
    assert day3["via"] == "rollback"
    assert day3["in_production_since"] == (T0 + 3 * D).isoformat()
    assert day3["transition"]["actor"] == "reviewer" and day3["transition"]["reason"] == "latency spike"
    assert day3["promotion_request"]["id"] == timeline["r1"].pk  # the approval that first put v1 there
    assert day3["approved_by"] == ["reviewer"]

    day4 = _as_of(client, T0 + 10 * D)["churn"]
    assert day4["version"] == 3 and day4["approved_by"] == ["reviewer2"]


def test_as_of_at_the_exact_moment_of_a_promotion_includes_it(timeline, reviewer, api_client_for):
    assert _as_of(api_client_for(reviewer), T0 + 2 * D)["churn"]["version"] == 2
    assert _as_of(api_client_for(reviewer), T0 + 2 * D - datetime.timedelta(microseconds=1))["churn"]["version"] == 1


def test_as_of_only_lists_models_the_user_may_see(timeline, owner, outsider, auditor, api_client_for):
    assert set(_as_of(api_client_for(owner), T0 + 5 * D)) == {"churn"}
    assert set(_as_of(api_client_for(auditor, scopes=[TokenScope.AUDIT_READ]), T0 + 5 * D)) == {"churn", "fraud"}
    assert _as_of(api_client_for(outsider), T0 + 5 * D) == {}


@pytest.mark.parametrize("value", ["", "yesterday", "2026-02-30", "2026-01-01T25:00:00", "1" * 300])
def test_as_of_with_a_bad_time_is_400_json(timeline, reviewer, api_client_for, value):
    response = api_client_for(reviewer).get("/api/v1/inventory/as-of", {"time": value})
    assert response.status_code == 400
    assert response.json()["error"]["details"]["time"]


def test_as_of_accepts_a_date_and_a_z_suffix(timeline, reviewer, api_client_for):
    client = api_client_for(reviewer)
    assert client.get("/api/v1/inventory/as-of", {"time": "2026-01-03"}).json()["time"] == "2026-01-03T00:00:00+00:00"
    assert client.get("/api/v1/inventory/as-of", {"time": "2026-01-03T10:00:00Z"}).status_code == 200


def test_as_of_api_needs_a_read_scope(timeline, reviewer, api_client_for):
    response = api_client_for(reviewer, scopes=[TokenScope.PROMOTIONS_REVIEW]).get(
        "/api/v1/inventory/as-of", {"time": "2026-01-03"}
    )
    assert response.status_code == 403


def test_as_of_page_shows_version_requester_approvers_and_evidence_links(timeline, auditor, client_for):
    response = client_for(auditor).get(reverse("registry:as_of"), {"time": (T0 + 2 * D + H).isoformat()})
    assert response.status_code == 200
    page = response.content.decode()
    assert ">v2<" in page
    assert "reviewer2" in page
    assert reverse("registry:promotion_detail", args=[timeline["r2"].pk]) in page
    rollback = client_for(auditor).get(reverse("registry:as_of"), {"time": (T0 + 3 * D + H).isoformat()})
    assert "rolled back by reviewer" in rollback.content.decode()


def test_as_of_page_for_each_role(timeline, roles, client_for):
    when = {"time": (T0 + 5 * D).isoformat()}
    for role in ("owner", "reviewer", "auditor", "admin"):
        response = client_for(roles[role]).get(reverse("registry:as_of"), when)
        assert response.status_code == 200 and "churn" in response.content.decode(), role
    outsider = client_for(roles["outsider"]).get(reverse("registry:as_of"), when)
    assert outsider.status_code == 200
    assert "churn" not in outsider.content.decode()


def test_as_of_page_without_a_time_shows_now_and_a_bad_time_is_400(timeline, reviewer, client_for):
    client = client_for(reviewer)
    now = client.get(reverse("registry:as_of"))
    assert now.status_code == 200 and ">v3<" in now.content.decode()
    bad = client.get(reverse("registry:as_of"), {"time": "soon"})
    assert bad.status_code == 400 and "not an ISO 8601" in bad.content.decode()


def test_models_created_after_the_moment_are_not_listed(timeline, reviewer, api_client_for):
    assert RegisteredModel.objects.filter(name="fraud").exists()
    assert "fraud" not in _as_of(api_client_for(reviewer), T0 + D)


def test_as_of_through_the_promotion_and_rollback_services(churn, owner, reviewer, api_client_for):
    from django.utils import timezone

    from registry.services.audit import CLI
    from registry.services.promotions import promotion_approve, promotion_request
    from registry.services.stages import model_rollback

    v1, v2 = ModelVersionFactory(model=churn), ModelVersionFactory(model=churn)
    moments = [timezone.now()]
    requests = []
    for version in (v1, v2):
        req = promotion_request(
            version=version, target_stage=Stage.PRODUCTION, requester=owner, justification="Better.", context=CLI
        )
        promotion_approve(request=req, reviewer=reviewer, comment="Looks good.", context=CLI)
        requests.append(req)
        moments.append(timezone.now())
    model_rollback(model=churn, actor=owner, reason="Regression on new traffic.", context=CLI)
    moments.append(timezone.now())

    client = api_client_for(reviewer)
    states = [_as_of(client, moment)["churn"] for moment in moments]
    assert [s["version"] for s in states] == [None, 1, 2, 1]
    assert states[1]["promotion_request"]["id"] == requests[0].pk and states[1]["approved_by"] == ["reviewer"]
    assert states[2]["promotion_request"]["id"] == requests[1].pk and states[2]["requested_by"] == "owner"
    assert states[3]["via"] == "rollback" and states[3]["transition"]["actor"] == "owner"
    assert states[3]["promotion_request"]["id"] == requests[0].pk


EXTREME_TIMES = extreme_times("2026-01-03T10:00:00")


@pytest.mark.parametrize("value", EXTREME_TIMES)
def test_as_of_with_an_extreme_offset_or_calendar_end_is_never_a_500(timeline, reviewer, api_client_for, value):
    response = api_client_for(reviewer).get("/api/v1/inventory/as-of", {"time": value})
    if response.status_code == 200:
        # An in-range instant: answered for that instant, in UTC.
        moment = datetime.datetime.fromisoformat(value).astimezone(datetime.UTC)
        assert response.json()["time"] == moment.isoformat()
    else:
        assert response.status_code == 400, response.content
        assert response.json()["error"]["details"]["time"]


@pytest.mark.parametrize("value", [*EXTREME_TIMES, "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"])
def test_as_of_page_with_an_extreme_time_is_never_a_500(timeline, reviewer, client_for, value):
    response = client_for(reviewer).get(reverse("registry:as_of"), {"time": value})
    assert response.status_code in (200, 400)
    if response.status_code == 400:
        assert "out of range" in response.content.decode()


def test_as_of_out_of_range_times_are_400_and_in_range_offsets_are_answered(timeline, reviewer, api_client_for):
    client = api_client_for(reviewer)
    for value in ("0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"):
        response = client.get("/api/v1/inventory/as-of", {"time": value})
        assert response.status_code == 400 and "out of range" in response.json()["error"]["details"]["time"][0]
    plus16 = client.get("/api/v1/inventory/as-of", {"time": "2026-01-03T10:00:00+16:00"})
    assert plus16.status_code == 200 and plus16.json()["time"] == "2026-01-02T18:00:00+00:00"
