"""An approval is given on the comparison the reviewer read: the request page sends the production
version it compared the candidate with, and if production has changed since (a rollback, another
promotion), the approval is refused (409) with the reason instead of being recorded against a
comparison the reviewer never saw."""

from __future__ import annotations

import re

import pytest

from registry.choices import PromotionStatus, Stage
from registry.models import ModelVersion, Review
from registry.services.audit import CLI
from registry.services.promotions import promotion_request
from tests.factories import ModelVersionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def pending(churn, owner):
    ModelVersionFactory(model=churn, version=1, stage=Stage.ARCHIVED, metrics={"roc_auc": 0.80})
    ModelVersionFactory(model=churn, version=2, stage=Stage.PRODUCTION, metrics={"roc_auc": 0.85})
    candidate = ModelVersionFactory(model=churn, version=3, metrics={"roc_auc": 0.851})
    return promotion_request(
        version=candidate, target_stage=Stage.PRODUCTION, requester=owner, justification="Retrained.", context=CLI
    )


def _seen(html: str) -> str:
    return re.search(r'name="production_seen" value="([^"]*)"', html).group(1)


def test_the_page_sends_the_production_version_it_compared_with(pending, reviewer, client_for):
    assert _seen(client_for(reviewer).get(pending.get_absolute_url()).content.decode()) == "2"


def test_an_approval_after_production_changed_is_refused_with_the_reason(churn, pending, reviewer, client_for):
    client = client_for(reviewer)
    seen = _seen(client.get(pending.get_absolute_url()).content.decode())
    ModelVersion.objects.filter(model=churn, version=2).update(stage=Stage.ARCHIVED)  # a rollback meanwhile
    ModelVersion.objects.filter(model=churn, version=1).update(stage=Stage.PRODUCTION)
    response = client.post(f"/promotions/{pending.pk}/approve/", {"comment": "ok", "production_seen": seen})
    assert response.status_code == 409
    html = response.content.decode()
    assert "Production is now v1" in html and "v2" in html and "reload" in html.lower()
    assert not Review.objects.exists()
    pending.refresh_from_db()
    assert pending.status == PromotionStatus.PENDING
    assert _seen(html) == "1"  # the page shown again compares with v1


def test_an_approval_on_the_current_comparison_goes_through(pending, reviewer, client_for):
    data = {"comment": "ok", "production_seen": "2"}
    response = client_for(reviewer).post(f"/promotions/{pending.pk}/approve/", data)
    assert response.status_code == 302
    pending.refresh_from_db()
    assert pending.status == PromotionStatus.APPLIED


def test_the_api_refuses_an_approval_on_a_former_production_version(churn, pending, reviewer, api_client_for):
    client = api_client_for(reviewer)
    ModelVersion.objects.filter(model=churn, version=2).update(stage=Stage.ARCHIVED)
    response = client.post(
        f"/api/v1/promotions/{pending.pk}/approve/", {"comment": "ok", "production_seen": 2}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["error"]["details"] == {"production_seen": 2, "production": 0}
    assert not Review.objects.exists()


def test_the_api_gives_the_comparison_a_reviewer_decides_on(pending, reviewer, api_client_for):
    """The request's JSON carries what the page shows beside the gates: the production version the
    candidate is compared with (what ``production_seen`` sends back) and the offline metrics."""
    body = api_client_for(reviewer).get(f"/api/v1/promotions/{pending.pk}/").json()
    assert body["production_version"] == 2
    roc = next(row for row in body["metrics"] if row["metric"] == "roc_auc")
    assert roc["candidate"] == 0.851 and roc["production"] == 0.85 and roc["direction"] == "better"


def test_the_approval_event_records_the_production_version_compared_with(pending, reviewer, client_for):
    from registry.models import AuditEvent

    client_for(reviewer).post(f"/promotions/{pending.pk}/approve/", {"comment": "ok", "production_seen": "2"})
    event = AuditEvent.objects.filter(action="promotion.approved").latest("seq")
    assert event.after["compared_with_production"] == 2
