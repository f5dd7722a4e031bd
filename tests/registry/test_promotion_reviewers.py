"""Who may review a request, and how its approvals are counted: one predicate
(``rules.can_review_promotion``) and one count (``promotion_approvals``), the same on the page,
the API and in the service, under a policy whose approver group is not ``reviewer``."""

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied

from registry import rules
from registry.choices import PromotionStatus, RiskTier, Stage, TokenScope
from registry.models import PromotionPolicy, PromotionRequest
from registry.rules import REVIEWER_GROUP
from registry.selectors.promotions import promotion_approvals, promotion_get
from registry.services.audit import CLI
from registry.services.promotions import PromotionConflict, promotion_approve, promotion_request
from tests.factories import ModelVersionFactory, RegisteredModelFactory, UserFactory

SENIOR = "senior"


@pytest.fixture
def senior_group(db):
    return Group.objects.create(name=SENIOR)


def _senior_reviewer(username, senior_group):
    """A reviewer (sees every model) who is also in the `senior` group."""
    user = UserFactory(username=username)
    user.groups.add(senior_group, Group.objects.get_or_create(name=REVIEWER_GROUP)[0])
    return user


@pytest.fixture
def senior(senior_group):
    return _senior_reviewer("senior", senior_group)


@pytest.fixture
def senior2(senior_group):
    return _senior_reviewer("senior2", senior_group)


@pytest.fixture
def senior_request(owner, team, senior_group):
    """A pending request on a high-risk model whose policy needs two approvals from `senior`."""
    PromotionPolicy.objects.filter(risk_tier=RiskTier.HIGH).update(approver_group=SENIOR, approvals_required=2)
    model = RegisteredModelFactory(name="credit", owner=owner, team=team, risk_tier=RiskTier.HIGH)
    version = ModelVersionFactory(model=model)
    return promotion_request(
        version=version, target_stage=Stage.STAGING, requester=owner, justification="Ship it.", context=CLI
    )


def _page(client_for, user, req):
    response = client_for(user).get(f"/promotions/{req.pk}/")
    assert response.status_code == 200
    return response


def _has_approve_button(response) -> bool:
    return b'name="decision" value="approve"' in response.content


# ---------------------------------------------------------------- the predicate


def test_the_predicate_follows_the_snapshot_approver_group(senior_request, senior, reviewer, owner, admin_user):
    req = senior_request
    assert rules.can_review_promotion(senior, req)
    assert rules.can_review_promotion(admin_user, req)
    assert not rules.can_review_promotion(reviewer, req)  # a reviewer, but not in `senior`
    assert not rules.can_review_promotion(owner, req)  # the requester


def test_the_predicate_is_false_once_the_user_has_reviewed(senior_request, senior):
    promotion_approve(request=senior_request, reviewer=senior, comment="ok", context=CLI)
    assert not rules.can_review_promotion(senior, PromotionRequest.objects.get(pk=senior_request.pk))


def test_the_snapshot_group_holds_even_after_the_policy_changes(senior_request, senior, reviewer):
    PromotionPolicy.objects.filter(risk_tier=RiskTier.HIGH).update(approver_group="reviewer")
    req = PromotionRequest.objects.get(pk=senior_request.pk)
    assert rules.can_review_promotion(senior, req)
    assert not rules.can_review_promotion(reviewer, req)


# ---------------------------------------------------------------- the page


def test_a_senior_reviewer_sees_the_approve_button_and_a_plain_reviewer_does_not(
    senior_request, senior, reviewer, client_for
):
    assert _has_approve_button(_page(client_for, senior, senior_request))
    page = _page(client_for, reviewer, senior_request)
    assert not _has_approve_button(page)
    assert b"senior" in page.content


def test_a_plain_reviewer_posting_an_approval_on_the_page_gets_a_403(senior_request, reviewer, client_for):
    response = client_for(reviewer).post(f"/promotions/{senior_request.pk}/approve/", {"comment": "ok"})
    assert response.status_code == 403
    assert not senior_request.reviews.exists()


def test_the_review_queue_offers_review_only_where_the_user_may_review(
    senior_request, churn_v1, owner, senior, reviewer, client_for
):
    plain = promotion_request(
        version=churn_v1, target_stage=Stage.STAGING, requester=owner, justification="x", context=CLI
    )
    for user, reviewable in ((senior, {senior_request.pk, plain.pk}), (reviewer, {plain.pk})):
        response = client_for(user).get("/reviews/")
        assert response.status_code == 200
        assert response.context["reviewable"] == reviewable


# ---------------------------------------------------------------- the API


def test_a_plain_reviewer_gets_a_403_over_the_api_and_a_senior_reviewer_approves(
    senior_request, senior, reviewer, api_client_for
):
    url = f"/api/v1/promotions/{senior_request.pk}/approve/"
    refused = api_client_for(reviewer, [TokenScope.PROMOTIONS_REVIEW]).post(url, {"comment": "x"}, format="json")
    assert refused.status_code == 403
    assert "senior" in refused.json()["error"]["message"]
    # a high-risk approval over the API needs the step-up scope too (registry/stepup.py)
    senior_client = api_client_for(senior, [TokenScope.PROMOTIONS_REVIEW, TokenScope.STEP_UP])
    approved = senior_client.post(url, {"comment": "ok"}, format="json")
    assert approved.status_code == 200
    assert (approved.json()["approvals"], approved.json()["approvals_required"]) == (1, 2)


def test_a_second_review_by_the_same_senior_is_a_conflict(senior_request, senior):
    promotion_approve(request=senior_request, reviewer=senior, comment="ok", context=CLI)
    with pytest.raises(PromotionConflict, match="already reviewed"):
        promotion_approve(request=senior_request, reviewer=senior, comment="again", context=CLI)


def test_a_plain_reviewer_is_refused_by_the_service(senior_request, reviewer):
    with pytest.raises(PermissionDenied, match="senior"):
        promotion_approve(request=senior_request, reviewer=reviewer, comment="", context=CLI)


# ---------------------------------------------------------------- the count


def test_an_approval_given_stands_after_the_approver_leaves_the_group(
    senior_request, senior, senior2, senior_group, owner, client_for, api_client_for
):
    """The page, the API and the service agree: a recorded approval (checked against the
    snapshot's group when it was given) still counts after a membership change."""
    promotion_approve(request=senior_request, reviewer=senior, comment="one", context=CLI)
    senior.groups.remove(senior_group)

    page = _page(client_for, owner, senior_request)
    assert page.context["approvals"] == 1
    assert b"1 of 2" in page.content
    api = api_client_for(owner, [TokenScope.MODELS_READ]).get(f"/api/v1/promotions/{senior_request.pk}/")
    assert api.json()["approvals"] == 1
    listed = api_client_for(owner, [TokenScope.MODELS_READ]).get("/api/v1/promotions/")
    assert [r["approvals"] for r in listed.json()["results"]] == [1]
    assert promotion_approvals(PromotionRequest.objects.get(pk=senior_request.pk)) == 1

    promotion_approve(request=senior_request, reviewer=senior2, comment="two", context=CLI)
    req = promotion_get(user=owner, pk=senior_request.pk)
    assert promotion_approvals(req) == 2
    assert req.status == PromotionStatus.APPLIED
    assert req.version.stage == Stage.STAGING


def test_a_member_who_joins_the_group_later_may_review(senior_request, reviewer, senior_group, client_for):
    assert not rules.can_review_promotion(reviewer, senior_request)
    reviewer.groups.add(senior_group)
    fresh = type(reviewer).objects.get(pk=reviewer.pk)
    assert rules.can_review_promotion(fresh, senior_request)
    assert _has_approve_button(_page(client_for, fresh, senior_request))


# ---------------------------------------------------------------- the model's owner


@pytest.fixture
def admin_request_on_owners_model(owner, team, admin_user):
    """The owner is also a reviewer; an admin opened the request on the owner's model."""
    owner.groups.add(Group.objects.get_or_create(name=REVIEWER_GROUP)[0])
    model = RegisteredModelFactory(name="scoring", owner=owner, team=team, risk_tier=RiskTier.LOW)
    version = ModelVersionFactory(model=model)
    return promotion_request(
        version=version, target_stage=Stage.STAGING, requester=admin_user, justification="Ship it.", context=CLI
    )


def test_the_owner_of_the_model_never_reviews_its_promotion(admin_request_on_owners_model, owner, client_for):
    """Only the requester was excluded: an owner in the reviewer group approved their own model's
    promotion whenever someone else (an admin, a colleague) had asked for it."""
    req = admin_request_on_owners_model
    assert not rules.can_review_promotion(owner, req)
    with pytest.raises(PermissionDenied, match="own this model"):
        promotion_approve(request=req, reviewer=owner, comment="mine, and fine", context=CLI)
    client = client_for(owner)
    assert not _has_approve_button(_page(client_for, owner, req))
    assert client.post(f"/promotions/{req.pk}/approve/", {"comment": "ok"}).status_code == 403
    assert client.get("/reviews/").context["reviewable"] == set()
    assert client.get("/models/").context["nav"]["pending_reviews"] == 0
    assert not req.reviews.exists()


def test_the_owner_is_refused_over_the_api_and_another_reviewer_approves(
    admin_request_on_owners_model, owner, reviewer, api_client_for
):
    url = f"/api/v1/promotions/{admin_request_on_owners_model.pk}/approve/"
    refused = api_client_for(owner, [TokenScope.PROMOTIONS_REVIEW]).post(url, {"comment": "x"}, format="json")
    assert refused.status_code == 403 and "own this model" in refused.json()["error"]["message"]
    approved = api_client_for(reviewer, [TokenScope.PROMOTIONS_REVIEW]).post(url, {"comment": "ok"}, format="json")
    assert approved.status_code == 200


def test_the_owner_is_not_asked_to_review_and_the_page_says_why(
    owner, team, admin_user, reviewer, client_for, django_capture_on_commit_callbacks, mailoutbox
):
    owner.email, reviewer.email = "owner@example.com", "reviewer@example.com"
    owner.save()
    reviewer.save()
    owner.groups.add(Group.objects.get_or_create(name=REVIEWER_GROUP)[0])
    version = ModelVersionFactory(model=RegisteredModelFactory(name="scoring", owner=owner, team=team))
    with django_capture_on_commit_callbacks(execute=True):
        req = promotion_request(
            version=version, target_stage=Stage.STAGING, requester=admin_user, justification="x", context=CLI
        )
    asked = {address for message in mailoutbox for address in message.to}
    assert "reviewer@example.com" in asked and "owner@example.com" not in asked
    page = _page(client_for, owner, req).content.decode()
    assert "You own this model, so another reviewer must decide it." in page
