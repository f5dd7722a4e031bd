"""Reference data is evidence: once a promotion request for the version was approved (or while
one is pending) an upload may not replace it; a first upload, or replacing a failed one, is taken."""

from __future__ import annotations

import pytest

from monitoring.choices import ProfileStatus
from monitoring.models import ReferenceProfile
from monitoring.services.ingestion import reference_upload
from registry.choices import Stage
from registry.services.audit import CLI
from registry.services.promotions import promotion_approve, promotion_request
from registry.services.stages import PromotionConflict
from tests.monitoring.helpers import assert_error, csv_bytes, reference_frame

REF_URL = "/api/v1/models/churn/versions/1/reference/"


def _request(version, owner, target=Stage.PRODUCTION):
    return promotion_request(version=version, target_stage=target, requester=owner, justification="Ship.", context=CLI)


def _upload(version, owner, seed=1):
    body = csv_bytes(reference_frame(500, seed=seed))
    return reference_upload(version=version, body=body, content_type="text/csv", actor=owner, context=CLI)


def test_reference_data_of_an_approved_version_cannot_be_replaced_over_the_api(
    profiled, owner, reviewer, api_client_for, last_seq
):
    req = _request(profiled, owner)
    promotion_approve(request=req, reviewer=reviewer, comment="ok", context=CLI)
    digest = ReferenceProfile.objects.get(version=profiled).data_sha256
    client = api_client_for(owner)
    start = last_seq()
    body = csv_bytes(reference_frame(500, seed=7))
    response = client.generic("POST", REF_URL, body, content_type="text/csv")
    error = assert_error(response, 409, f"#{req.pk}", "reference data")
    assert error["code"] == "conflict"
    assert error["details"] == {"approved_request": req.pk, "fields": ["reference data"]}
    assert ReferenceProfile.objects.get(version=profiled).data_sha256 == digest and last_seq() == start


def test_reference_data_cannot_be_replaced_while_a_request_is_pending(profiled, owner):
    req = _request(profiled, owner, target=Stage.STAGING)
    with pytest.raises(PromotionConflict, match=f"#{req.pk}"):
        _upload(profiled, owner)


def test_a_first_upload_to_an_approved_version_is_taken(churn_v1, owner, reviewer):
    """Reviewers approved without reference data: giving monitoring its baseline rewrites nothing."""
    promotion_approve(request=_request(churn_v1, owner), reviewer=reviewer, comment="ok", context=CLI)
    assert _upload(churn_v1, owner).status == ProfileStatus.PENDING


def test_a_failed_upload_of_an_approved_version_may_be_replaced(churn_v1, owner, reviewer):
    _upload(churn_v1, owner)
    ReferenceProfile.objects.filter(version=churn_v1).update(status=ProfileStatus.FAILED, error="bad")
    promotion_approve(request=_request(churn_v1, owner), reviewer=reviewer, comment="ok", context=CLI)
    assert _upload(churn_v1, owner, seed=2).status == ProfileStatus.PENDING


def test_reference_data_of_a_version_never_approved_is_replaced(profiled, owner):
    profile = _upload(profiled, owner, seed=3)
    assert profile.status == ProfileStatus.PENDING and ReferenceProfile.objects.count() == 1
