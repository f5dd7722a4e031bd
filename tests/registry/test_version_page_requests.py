"""The version page lists the version's promotion requests, linked: a reviewer who follows the
request page's link to the version can get back to it, and an owner sees the pending request
instead of a "Request promotion" button that would only answer that one is pending."""

from __future__ import annotations

import pytest

from registry.choices import Stage
from registry.services.audit import CLI
from registry.services.promotions import promotion_cancel, promotion_request

pytestmark = pytest.mark.django_db


def _request(version, owner):
    return promotion_request(
        version=version, target_stage=Stage.STAGING, requester=owner, justification="Try it.", context=CLI
    )


def test_the_version_page_links_its_requests_with_their_status(owner, reviewer, churn_v1, client_for):
    old = _request(churn_v1, owner)
    promotion_cancel(request=old, actor=owner, context=CLI)
    pending = _request(churn_v1, owner)
    html = client_for(reviewer).get(churn_v1.get_absolute_url()).content.decode()
    assert f'href="/promotions/{pending.pk}/"' in html and f'href="/promotions/{old.pk}/"' in html
    assert html.index(f"#{pending.pk}") < html.index(f"#{old.pk}")  # newest first
    assert "Pending" in html and "Cancelled" in html


def test_the_owner_is_sent_to_the_pending_request_rather_than_offered_a_new_one(owner, churn_v1, client_for):
    url = f"/models/{churn_v1.model.name}/versions/{churn_v1.version}/promote/"
    client = client_for(owner)
    assert url in client.get(churn_v1.get_absolute_url()).content.decode()
    pending = _request(churn_v1, owner)
    html = client.get(churn_v1.get_absolute_url()).content.decode()
    assert url not in html and f'href="/promotions/{pending.pk}/"' in html


def test_a_version_without_requests_says_so(reviewer, churn_v1, client_for):
    html = client_for(reviewer).get(churn_v1.get_absolute_url()).content.decode()
    assert "No promotion request yet." in html
