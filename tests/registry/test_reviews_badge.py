"""The navigation's "Reviews" count follows an htmx approve, reject or cancel: the actions
fragment carries the badge as an out-of-band swap, counted after the action."""

import re

import pytest

from registry.choices import Stage
from registry.models import PromotionPolicy
from registry.services.audit import CLI
from registry.services.promotions import promotion_request
from tests.factories import ModelVersionFactory

HTMX = {"HTTP_HX_REQUEST": "true"}


def _open(version, requester, target=Stage.PRODUCTION):
    return promotion_request(
        version=version, target_stage=target, requester=requester, justification="Ship it.", context=CLI
    )


def _oob_badge(html: str) -> str:
    """The out-of-band badge's markup (the badge is one short line)."""
    start = html.find('<span id="nav-badge-reviews" hx-swap-oob="true">')
    assert start >= 0, "the fragment carries no out-of-band Reviews badge"
    return html[start : html.index("\n", start)]


@pytest.mark.parametrize("action,comment", [("approve", ""), ("reject", "Not calibrated.")])
def test_an_htmx_review_updates_the_reviews_badge(action, comment, churn, owner, reviewer, client_for):
    first = _open(ModelVersionFactory(model=churn), owner)
    _open(ModelVersionFactory(model=churn), owner, target=Stage.STAGING)
    client = client_for(reviewer)
    assert 'title="Pending requests you may review">2</span>' in client.get("/reviews/").content.decode()
    response = client.post(f"/promotions/{first.pk}/{action}/", {"comment": comment}, **HTMX)
    assert response.status_code == 200
    assert 'title="Pending requests you may review">1</span>' in _oob_badge(response.content.decode())


def test_the_last_review_empties_the_badge(churn_v1, owner, reviewer, client_for):
    req = _open(churn_v1, owner)
    response = client_for(reviewer).post(f"/promotions/{req.pk}/approve/", {"comment": ""}, **HTMX)
    assert response.status_code == 200
    assert "nav-count" not in _oob_badge(response.content.decode())


def test_an_htmx_cancel_updates_the_reviews_badge(churn, owner, admin_user, client_for):
    req = _open(ModelVersionFactory(model=churn), owner)
    client = client_for(admin_user)
    assert 'title="Pending requests you may review">1</span>' in client.get("/reviews/").content.decode()
    response = client.post(f"/promotions/{req.pk}/cancel/", {"comment": "wrong data"}, **HTMX)
    assert response.status_code == 200
    assert "nav-count" not in _oob_badge(response.content.decode())


def test_the_page_has_the_badge_slot_the_swap_targets(churn_v1, owner, reviewer, client_for):
    _open(churn_v1, owner)
    html = client_for(reviewer).get("/reviews/").content.decode()
    assert re.search(r'<span id="nav-badge-reviews">\s*<span class="nav-count"[^>]*>1</span>', html)


def test_a_request_the_reviewer_has_already_approved_leaves_their_badge(churn, owner, reviewer, reviewer2, client_for):
    # the demo's admin approved credit-approval's request #9 (1 of 2 approvals): their badge still said 5
    PromotionPolicy.objects.update_or_create(risk_tier=churn.risk_tier, defaults={"approvals_required": 2})
    req = _open(ModelVersionFactory(model=churn), owner)
    client = client_for(reviewer)
    assert 'title="Pending requests you may review">1</span>' in client.get("/reviews/").content.decode()
    response = client.post(f"/promotions/{req.pk}/approve/", {"comment": "fine"}, **HTMX)
    assert response.status_code == 200 and "1 of 2" in response.content.decode()
    assert "nav-count" not in _oob_badge(response.content.decode())
    assert "nav-count" not in client.get("/reviews/").content.decode()
    assert 'title="Pending requests you may review">1</span>' in client_for(reviewer2).get("/reviews/").content.decode()
