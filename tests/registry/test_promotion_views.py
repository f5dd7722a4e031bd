"""Browser pages of the promotion workflow (Django test client): queue, request page, htmx actions."""

import pytest

from registry.choices import PromotionStatus, Stage
from registry.models import AuditEvent, PromotionRequest, Review
from registry.services.audit import CLI
from registry.services.promotions import promotion_approve, promotion_request
from tests.factories import ModelVersionFactory, RegisteredModelFactory

HTMX = {"HTTP_HX_REQUEST": "true"}


def _open(version, requester, target=Stage.PRODUCTION):
    return promotion_request(
        version=version, target_stage=target, requester=requester, justification="Ship it.", context=CLI
    )


def test_owner_requests_a_promotion_from_the_version_page_form(churn_v1, owner, client_for, last_seq, audit_actions):
    client = client_for(owner)
    url = f"/models/churn/versions/{churn_v1.version}/promote/"
    page = client.get(url)
    assert page.status_code == 200
    assert b"Request promotion" in page.content
    seq = last_seq()
    response = client.post(url, {"target_stage": "production", "justification": "AUC up 2 points."})
    req = PromotionRequest.objects.get()
    assert response.status_code == 302 and response["Location"] == req.get_absolute_url()
    assert audit_actions(seq) == ["promotion.requested"]
    assert AuditEvent.objects.get(seq=seq + 1).source == "ui"


@pytest.mark.parametrize(
    "data",
    [{}, {"target_stage": "production", "justification": " "}, {"target_stage": "bogus", "justification": "x"}],
)
def test_bad_promotion_form_is_a_400_and_writes_nothing(churn_v1, owner, client_for, data, last_seq):
    client = client_for(owner)
    seq = last_seq()
    response = client.post(f"/models/churn/versions/{churn_v1.version}/promote/", data)
    assert response.status_code == 400
    assert not PromotionRequest.objects.exists()
    assert last_seq() == seq


def test_a_second_request_from_the_form_is_a_409_with_the_reason(churn_v1, owner, client_for):
    _open(churn_v1, owner, target=Stage.STAGING)
    response = client_for(owner).post(
        f"/models/churn/versions/{churn_v1.version}/promote/", {"target_stage": "production", "justification": "x"}
    )
    assert response.status_code == 409
    assert b"already has a pending request" in response.content


@pytest.mark.parametrize(("role", "status"), [("reviewer", 403), ("auditor", 403), ("outsider", 404)])
def test_only_owner_may_open_the_request_form(churn_v1, roles, client_for, role, status):
    client = client_for(roles[role])
    url = f"/models/churn/versions/{churn_v1.version}/promote/"
    assert client.get(url).status_code == status
    assert client.post(url, {"target_stage": "production", "justification": "x"}).status_code == status
    assert not PromotionRequest.objects.exists()


def test_review_queue_lists_pending_requests_and_the_nav_shows_the_count(churn, owner, reviewer, client_for):
    a = _open(ModelVersionFactory(model=churn), owner)
    b = _open(ModelVersionFactory(model=churn), owner, target=Stage.STAGING)
    page = client_for(reviewer).get("/reviews/")
    assert page.status_code == 200
    html = page.content.decode()
    assert f"#{a.pk}" in html and f"#{b.pk}" in html
    assert '<span class="nav-count" title="Pending requests you may review">2</span>' in html
    assert ">Review</a>" in html


def test_the_nav_count_leaves_out_the_readers_own_requests_and_decided_ones(churn, admin_user, reviewer, client_for):
    _open(ModelVersionFactory(model=churn), admin_user)
    mine_decided = _open(ModelVersionFactory(model=churn), admin_user, target=Stage.STAGING)
    PromotionRequest.objects.filter(pk=mine_decided.pk).update(status="cancelled")
    count = '<span class="nav-count" title="Pending requests you may review">1</span>'
    assert count in client_for(reviewer).get("/reviews/").content.decode()
    assert 'class="nav-count"' not in client_for(admin_user).get("/reviews/").content.decode()


def test_review_queue_filters_by_model_tier_and_status(churn, owner, team, reviewer, client_for):
    credit = RegisteredModelFactory(name="credit", owner=owner, team=team, risk_tier="high")
    a = _open(ModelVersionFactory(model=churn), owner)
    b = _open(ModelVersionFactory(model=credit), owner)
    client = client_for(reviewer)
    html = client.get("/reviews/", {"tier": "high"}).content.decode()
    assert f'href="/promotions/{b.pk}/"' in html and f'href="/promotions/{a.pk}/"' not in html
    html = client.get("/reviews/", {"model": "churn"}).content.decode()
    assert f'href="/promotions/{a.pk}/"' in html and f'href="/promotions/{b.pk}/"' not in html
    html = client.get("/reviews/", {"status": "applied"}).content.decode()
    assert "No requests match." in html


def test_review_queue_with_an_invalid_filter_is_a_400(reviewer, client_for, db):
    response = client_for(reviewer).get("/reviews/", {"status": "nonsense"})
    assert response.status_code == 400
    assert b"Some filters are invalid" in response.content


def test_outsider_sees_an_empty_review_queue_and_no_request_pages(churn_v1, owner, outsider, client_for):
    req = _open(churn_v1, owner)
    client = client_for(outsider)
    html = client.get("/reviews/").content.decode()
    assert "No requests match." in html and f"#{req.pk}" not in html
    assert client.get(f"/promotions/{req.pk}/").status_code == 404
    for action in ("approve", "reject", "cancel"):
        assert client.post(f"/promotions/{req.pk}/{action}/", {"comment": "x"}).status_code == 404
    assert PromotionRequest.objects.get(pk=req.pk).status == PromotionStatus.PENDING


def test_request_page_shows_evidence_side_by_side_with_coloured_differences(churn, owner, reviewer, client_for):
    ModelVersionFactory(model=churn, stage=Stage.PRODUCTION, metrics={"roc_auc": 0.80, "log_loss": 0.40})
    candidate = ModelVersionFactory(model=churn, metrics={"roc_auc": 0.85, "log_loss": 0.45})
    req = _open(candidate, owner)
    html = client_for(reviewer).get(f"/promotions/{req.pk}/").content.decode()
    assert "Candidate v2" in html and "Production v1" in html
    assert 'class="delta-better" data-direction="better">+0.0500' in html  # roc_auc higher is better
    assert 'class="delta-worse" data-direction="worse">+0.0500' in html  # log_loss lower is better
    assert "Lineage" in html and candidate.training_run_id in html
    assert "Model card" in html and churn.intended_use in html
    assert 'data-gate="metric"' in html and "gate-pass" in html
    assert f'hx-post="/promotions/{req.pk}/approve/"' in html


def test_request_page_shows_red_gates(churn, owner, reviewer, client_for):
    churn.intended_use = ""
    churn.save()
    req = _open(ModelVersionFactory(model=churn), owner)
    html = client_for(reviewer).get(f"/promotions/{req.pk}/").content.decode()
    assert 'class="gate gate-fail" data-gate="model_card"' in html
    assert "Missing: intended use." in html


def test_requester_sees_no_approve_button_on_own_request(churn_v1, owner, client_for):
    req = _open(churn_v1, owner)
    html = client_for(owner).get(f"/promotions/{req.pk}/").content.decode()
    assert "another reviewer must decide" in html
    assert "/approve/" not in html
    assert "Cancel request" in html


def test_reviewer_approves_with_htmx_and_gets_the_actions_fragment(
    churn_v1, owner, reviewer, client_for, last_seq, audit_actions
):
    req = _open(churn_v1, owner)
    client = client_for(reviewer)
    seq = last_seq()
    response = client.post(f"/promotions/{req.pk}/approve/", {"comment": "Looks right."}, **HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="promotion-actions"')
    assert "<html" not in html
    assert "Applied" in html and "Looks right." in html
    churn_v1.refresh_from_db()
    assert churn_v1.stage == Stage.PRODUCTION
    assert audit_actions(seq) == ["promotion.approved", "stage.changed", "promotion.applied"]


def test_reviewer_approves_without_javascript_and_is_redirected(churn_v1, owner, reviewer, client_for):
    req = _open(churn_v1, owner)
    response = client_for(reviewer).post(f"/promotions/{req.pk}/approve/", {"comment": ""})
    assert response.status_code == 302 and response["Location"] == f"/promotions/{req.pk}/"
    assert PromotionRequest.objects.get(pk=req.pk).status == PromotionStatus.APPLIED


def test_self_approval_is_refused_in_the_ui(churn_v1, admin_user, client_for):
    req = _open(churn_v1, admin_user)
    client = client_for(admin_user)
    response = client.post(f"/promotions/{req.pk}/approve/", {"comment": "mine"}, **HTMX)
    assert response.status_code == 403
    assert "you cannot review it" in response.content.decode()
    response = client.post(f"/promotions/{req.pk}/approve/", {"comment": "mine"})
    assert response.status_code == 403
    assert not Review.objects.exists()


def test_reject_in_the_ui_needs_a_comment(churn_v1, owner, reviewer, client_for):
    req = _open(churn_v1, owner)
    client = client_for(reviewer)
    response = client.post(f"/promotions/{req.pk}/reject/", {"comment": ""}, **HTMX)
    assert response.status_code == 400
    assert "required" in response.content.decode()
    response = client.post(f"/promotions/{req.pk}/reject/", {"comment": "Not calibrated."}, **HTMX)
    assert response.status_code == 200 and "Rejected" in response.content.decode()
    assert PromotionRequest.objects.get(pk=req.pk).status == PromotionStatus.REJECTED


def test_red_gates_block_approval_in_the_ui_with_a_409(churn, owner, reviewer, client_for):
    ModelVersionFactory(model=churn, stage=Stage.PRODUCTION, metrics={"roc_auc": 0.9})
    req = _open(ModelVersionFactory(model=churn, metrics={"roc_auc": 0.5}), owner)
    response = client_for(reviewer).post(f"/promotions/{req.pk}/approve/", {"comment": ""}, **HTMX)
    assert response.status_code == 409
    assert "Required gates are red" in response.content.decode()
    assert not Review.objects.exists()


def test_approving_twice_is_a_409(churn, owner, team, reviewer, client_for):
    credit = RegisteredModelFactory(name="credit", owner=owner, team=team, risk_tier="high")
    req = _open(ModelVersionFactory(model=credit), owner)
    client = client_for(reviewer)
    assert client.post(f"/promotions/{req.pk}/approve/", {"comment": ""}, **HTMX).status_code == 200
    response = client.post(f"/promotions/{req.pk}/approve/", {"comment": ""}, **HTMX)
    assert response.status_code == 409
    assert "already reviewed" in response.content.decode()


@pytest.mark.parametrize("role", ["auditor", "owner"])
def test_auditor_and_owner_cannot_approve_or_reject_in_the_ui(churn_v1, owner, roles, role, client_for):
    req = _open(churn_v1, owner)
    client = client_for(roles[role])
    assert client.get(f"/promotions/{req.pk}/").status_code == 200
    assert client.post(f"/promotions/{req.pk}/approve/", {"comment": ""}).status_code == 403
    assert client.post(f"/promotions/{req.pk}/reject/", {"comment": "no"}).status_code == 403
    assert not Review.objects.exists()


def test_requester_cancels_in_the_ui(churn_v1, owner, reviewer, client_for):
    req = _open(churn_v1, owner)
    assert client_for(reviewer).post(f"/promotions/{req.pk}/cancel/", {}).status_code == 403
    response = client_for(owner).post(f"/promotions/{req.pk}/cancel/", {"comment": "wrong data"}, **HTMX)
    assert response.status_code == 200 and "Cancelled" in response.content.decode()


def test_get_on_an_action_url_is_405(churn_v1, owner, reviewer, client_for):
    req = _open(churn_v1, owner)
    assert client_for(reviewer).get(f"/promotions/{req.pk}/approve/").status_code == 405


def test_a_post_to_the_request_page_itself_is_405(churn_v1, owner, reviewer, client_for):
    req = _open(churn_v1, owner)
    response = client_for(reviewer).post(f"/promotions/{req.pk}/", {"comment": "ok"})
    assert response.status_code == 405 and response["Allow"] == "GET"
    assert req.reviews.count() == 0


def test_model_timeline_fragment_shows_who_when_why_and_the_approvals(churn, owner, reviewer, client_for):
    version = ModelVersionFactory(model=churn)
    req = _open(version, owner)
    promotion_approve(request=req, reviewer=reviewer, comment="fine", context=CLI)
    response = client_for(owner).get("/models/churn/timeline/", **HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="model-timeline"')
    assert "v1" in html and "Ship it." in html and f'href="/promotions/{req.pk}/"' in html
    assert "reviewer (" in html
    page = client_for(owner).get("/models/churn/timeline/")
    assert b"<html" in page.content


@pytest.mark.parametrize(("role", "status"), [("auditor", 200), ("reviewer", 200), ("outsider", 404)])
def test_model_timeline_visibility(churn_v1, roles, client_for, role, status):
    assert client_for(roles[role]).get("/models/churn/timeline/", **HTMX).status_code == status


def test_anonymous_users_are_sent_to_login(churn_v1, client):
    response = client.get("/reviews/")
    assert response.status_code == 302 and "/login/" in response["Location"]


@pytest.mark.parametrize(
    ("role", "sees", "nav_count"),
    [
        ("owner", True, None),
        ("reviewer", True, "1"),
        ("auditor", True, None),
        ("admin", True, "1"),
        ("outsider", False, None),
    ],
)
def test_review_queue_for_every_role(churn_v1, owner, roles, client_for, role, sees, nav_count):
    req = _open(churn_v1, owner)
    html = client_for(roles[role]).get("/reviews/").content.decode()
    assert (f'href="/promotions/{req.pk}/"' in html) is sees
    if nav_count is None:
        assert 'class="nav-count"' not in html
    else:
        assert f'title="Pending requests you may review">{nav_count}</span>' in html


def test_auditor_reads_the_request_page_without_any_action(churn_v1, owner, auditor, client_for):
    req = _open(churn_v1, owner)
    html = client_for(auditor).get(f"/promotions/{req.pk}/").content.decode()
    assert "Offline metrics" in html
    assert "/approve/" not in html and "/reject/" not in html and "/cancel/" not in html


def test_admin_overrides_red_gates_in_the_ui_with_a_recorded_reason(churn, owner, admin_user, client_for):
    ModelVersionFactory(model=churn, stage=Stage.PRODUCTION, metrics={"roc_auc": 0.9})
    req = _open(ModelVersionFactory(model=churn, metrics={"roc_auc": 0.5}), owner)
    client = client_for(admin_user)
    page = client.get(f"/promotions/{req.pk}/").content.decode()
    assert 'name="override_reason"' in page
    response = client.post(
        f"/promotions/{req.pk}/approve/", {"comment": "", "override_reason": "Hotfix for incident 42."}, **HTMX
    )
    assert response.status_code == 200
    assert "Gates overridden by admin: Hotfix for incident 42." in response.content.decode()
    req.refresh_from_db()
    assert req.status == PromotionStatus.APPLIED and req.override_reason == "Hotfix for incident 42."


def test_reviewer_gets_no_override_field(churn, owner, reviewer, client_for):
    ModelVersionFactory(model=churn, stage=Stage.PRODUCTION, metrics={"roc_auc": 0.9})
    req = _open(ModelVersionFactory(model=churn, metrics={"roc_auc": 0.5}), owner)
    html = client_for(reviewer).get(f"/promotions/{req.pk}/").content.decode()
    assert 'name="override_reason"' not in html
    assert "approval will be refused until they pass" in html


def test_a_decided_request_shows_who_decided_and_when_instead_of_an_approval_count(
    churn_v1, owner, reviewer, client_for
):
    req = _open(churn_v1, owner)
    client_for(reviewer).post(f"/promotions/{req.pk}/reject/", {"comment": "Not calibrated."}, **HTMX)
    req.refresh_from_db()
    html = client_for(owner).get(f"/promotions/{req.pk}/").content.decode()
    assert "approval needed" not in html and "0 of 1" not in html
    decided = f"Rejected by <strong>{reviewer.get_username()}</strong> on {req.decided_at:%Y-%m-%d %H:%M} UTC"
    assert f"<span data-decision>{decided}</span>" in html


def test_a_cancelled_request_names_who_cancelled_it(churn_v1, owner, client_for):
    req = _open(churn_v1, owner)
    client_for(owner).post(f"/promotions/{req.pk}/cancel/", {"comment": "Wrong version."}, **HTMX)
    html = client_for(owner).get(f"/promotions/{req.pk}/").content.decode()
    assert f"Cancelled by <strong>{owner.get_username()}</strong> on " in html and "approval needed" not in html


def test_a_pending_request_still_counts_its_approvals(churn_v1, owner, reviewer, client_for):
    req = _open(churn_v1, owner)
    html = client_for(reviewer).get(f"/promotions/{req.pk}/").content.decode()
    assert "<strong>0 of 1</strong> approval needed" in html and "data-decision" not in html
